// Sweeps over seeds (see sweep_seeds.h).
#include "run/sweep_seeds.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/memory.h"

static const char *const seed_keys[] = {"train.seed"};

bool sweep_is_seed_key(const char *key) {
    for (size_t i = 0; i < sizeof seed_keys / sizeof seed_keys[0]; i++)
        if (strcmp(key, seed_keys[i]) == 0) return true;
    return false;
}

static bool same_setting(const RunConfig *base, const char *const *values, int r, int s) {
    int A = base->n_sweep;
    for (int a = 0; a < A; a++)
        if (!sweep_is_seed_key(base->sweep[a].key) && strcmp(values[r * A + a], values[s * A + a]) != 0) return false;
    return true;
}

int sweep_seed_groups(const RunConfig *base, const char *const *values, int n_runs, int *group) {
    int n_groups = 0;
    for (int r = 0; r < n_runs; r++) {
        group[r] = -1;
        for (int s = 0; s < r && group[r] < 0; s++)
            if (same_setting(base, values, r, s)) group[r] = group[s];
        if (group[r] < 0) group[r] = n_groups++;
    }
    return n_groups;
}

static const struct {
    const char *heading, *key, *format;
} columns[] = {
    {"dense ppl", "dense_val_perplexity", "%.4f"},
    {"ppl", "val_perplexity", "%.4f"},
    {"loss", "val_loss", "%.4f"},
    {"acc", "val_accuracy", "%.4f"},
    {"sparsity", "sparsity", "%.4f"},
};
enum { N_COLUMNS = sizeof columns / sizeof columns[0] };

static double number_or_nan(const cJSON *o, const char *key) {
    const cJSON *item = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(item) ? item->valuedouble : NAN;
}

void sweep_write_seed_table(FILE *md, const RunConfig *base, const char *const *values, int n_runs,
                            cJSON *const *summaries) {
    int A = base->n_sweep;
    bool any_seed = false;
    for (int a = 0; a < A; a++) any_seed = any_seed || sweep_is_seed_key(base->sweep[a].key);
    if (!any_seed || n_runs == 0) return;
    int *group = xmalloc(sizeof(int) * (size_t)n_runs);
    int n_groups = sweep_seed_groups(base, values, n_runs, group);
    fputs("\nOver seeds (", md);
    for (int a = 0, first = 1; a < A; a++)
        if (sweep_is_seed_key(base->sweep[a].key)) fprintf(md, "%s%s", first ? "" : ", ", base->sweep[a].key), first = 0;
    fputs("): mean ± sd over the finished runs of each setting.\n\n|", md);
    int shown = 0;
    for (int a = 0; a < A; a++)
        if (!sweep_is_seed_key(base->sweep[a].key)) fprintf(md, " %s |", base->sweep[a].key), shown++;
    fputs(" n |", md);
    for (int k = 0; k < N_COLUMNS; k++) fprintf(md, " %s |", columns[k].heading);
    fputs("\n|", md);
    for (int k = 0; k < shown + 1 + N_COLUMNS; k++) fputs("---|", md);
    fputs("\n", md);
    for (int g = 0; g < n_groups; g++) {
        int first = -1, n = 0;
        for (int r = 0; r < n_runs; r++)
            if (group[r] == g) {
                if (first < 0) first = r;
                n += summaries[r] != NULL;
            }
        fputs("|", md);
        for (int a = 0; a < A; a++)
            if (!sweep_is_seed_key(base->sweep[a].key)) fprintf(md, " %s |", values[first * A + a]);
        fprintf(md, " %d |", n);
        for (int k = 0; k < N_COLUMNS; k++) {
            double sum = 0, m = 0;
            for (int r = 0; r < n_runs; r++) {
                double v = group[r] == g ? number_or_nan(summaries[r], columns[k].key) : NAN;
                if (isfinite(v)) sum += v, m++;
            }
            double mean = m > 0 ? sum / m : NAN, squares = 0;
            for (int r = 0; r < n_runs; r++) {
                double v = group[r] == g ? number_or_nan(summaries[r], columns[k].key) : NAN;
                if (isfinite(v)) squares += (v - mean) * (v - mean);
            }
            fputc(' ', md);
            if (m == 0) {
                fputs("-", md);
            } else {
                fprintf(md, columns[k].format, mean);
                fputs(" ± ", md);
                if (m > 1) fprintf(md, columns[k].format, sqrt(squares / (m - 1)));
                else fputs("-", md);
            }
            fputs(" |", md);
        }
        fputs("\n", md);
    }
    free(group);
}
