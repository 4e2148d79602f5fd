// Sweeps (see sweep.h).
#include "run/sweep.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "run/plot.h"
#include "run/reference.h"
#include "run/sweep_seeds.h"
#include "run/trainer.h"
#include "run/run_signals.h"
#include "core/timer.h"
#include "core/atomic_file.h"

cJSON *sweep_read_summary(const char *run_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    cJSON *summary = NULL;
    char *line = NULL;
    size_t capacity = 0;
    while (getline(&line, &capacity, f) > 0) {
        cJSON *o = cJSON_Parse(line);
        if (o && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "summary"))) {
            cJSON_Delete(summary);
            summary = o;
        } else {
            cJSON_Delete(o);
        }
    }
    free(line);
    fclose(f);
    return summary;
}

// A folder name from a label: "prune.alpha=0.5,prune.schedule=cubic" stays as it is,
// characters a path should not hold become '_'.
static void folder_name(const char *label, char *out, size_t size) {
    size_t n = 0;
    for (const char *p = label; *p && n + 1 < size; p++) {
        char ch = *p;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                     strchr("._=-,+", ch) != NULL;
        out[n++] = plain ? ch : '_';
    }
    out[n] = '\0';
    if (n == 0) snprintf(out, size, "run");
}

static double number_or_nan(const cJSON *o, const char *key) {
    const cJSON *item = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(item) ? item->valuedouble : NAN;
}

// The columns of the summary table after the swept keys: (heading, summary key, format).
static const struct {
    const char *heading, *key, *format;
} columns[] = {
    {"dense loss", "dense_val_loss", "%.4f"},
    {"dense ppl", "dense_val_perplexity", "%.3f"},
    {"dense acc", "dense_val_accuracy", "%.4f"},
    {"loss", "val_loss", "%.4f"},
    {"ppl", "val_perplexity", "%.3f"},
    {"acc", "val_accuracy", "%.4f"},
    {"sparsity", "sparsity", "%.4f"},
    {"prune s", "prune_seconds", "%.1f"},
    {"wall s", "wall_s", "%.1f"},
};
enum { N_COLUMNS = sizeof columns / sizeof columns[0] };

static void write_number(FILE *out, const char *format, double v) {
    if (isfinite(v)) fprintf(out, format, v);
    else fputs("-", out);
}

static void write_markdown(FILE *md, const RunConfig *base, const char *const *values, int n_runs,
                           cJSON *const *summaries) {
    int A = base->n_sweep;
    fputs("|", md);
    for (int a = 0; a < A; a++) fprintf(md, " %s |", base->sweep[a].key);
    for (int k = 0; k < N_COLUMNS; k++) fprintf(md, " %s |", columns[k].heading);
    fputs(" status |\n|", md);
    for (int k = 0; k < A + N_COLUMNS + 1; k++) fputs("---|", md);
    fputs("\n", md);
    for (int r = 0; r < n_runs; r++) {
        fputs("|", md);
        for (int a = 0; a < A; a++) fprintf(md, " %s |", values[r * A + a]);
        for (int k = 0; k < N_COLUMNS; k++) {
            fputc(' ', md);
            write_number(md, columns[k].format, number_or_nan(summaries[r], columns[k].key));
            fputs(" |", md);
        }
        fprintf(md, " %s |\n", summaries[r] ? "done" : "failed");
    }
}

static void write_csv(FILE *csv, const RunConfig *base, const char *const *values, int n_runs,
                      cJSON *const *summaries) {
    int A = base->n_sweep;
    for (int a = 0; a < A; a++) fprintf(csv, "%s,", base->sweep[a].key);
    for (int k = 0; k < N_COLUMNS; k++) fprintf(csv, "%s,", columns[k].key);
    fputs("status\n", csv);
    for (int r = 0; r < n_runs; r++) {
        for (int a = 0; a < A; a++) {
            // Quoted, with quotes doubled: YAML flow text may hold commas.
            fputc('"', csv);
            for (const char *p = values[r * A + a]; *p; p++) {
                if (*p == '"') fputc('"', csv);
                fputc(*p, csv);
            }
            fputs("\",", csv);
        }
        for (int k = 0; k < N_COLUMNS; k++) {
            double v = number_or_nan(summaries[r], columns[k].key);
            if (isfinite(v)) fprintf(csv, "%.9g", v);
            fputc(',', csv);
        }
        fprintf(csv, "%s\n", summaries[r] ? "done" : "failed");
    }
}

// The plot: the first swept key on x, the quality metric on y, one line per combination
// of the other keys; the dense model's mean quality as a dashed line.
static void write_plot(FILE *out, const RunConfig *base, const char *const *values, int n_runs,
                       cJSON *const *summaries) {
    // Accuracy (higher is better) for the synthetic tasks and classification, else perplexity (lower).
    bool synthetic = base->data.kind == CFG_DATA_SELECTIVE_COPYING || base->data.kind == CFG_DATA_ASSOCIATIVE_RECALL ||
                     base->model.head == CFG_HEAD_CLASSIFY;
    const char *metric = synthetic ? "val_accuracy" : "val_perplexity";
    const char *dense_metric = synthetic ? "dense_val_accuracy" : "dense_val_perplexity";
    int A = base->n_sweep, per_series = base->sweep[0].n_values, n_series = n_runs / per_series;
    // x: numbers when every value of the first key reads as one, else categories.
    bool numeric = true;
    double *axis_x = calloc((size_t)per_series, sizeof(double));
    for (int i = 0; i < per_series; i++) {
        char *end;
        axis_x[i] = strtod(base->sweep[0].values[i], &end);
        if (end == base->sweep[0].values[i] || *end != '\0') numeric = false;
    }
    if (!numeric)
        for (int i = 0; i < per_series; i++) axis_x[i] = i;
    double *y = calloc((size_t)n_runs, sizeof(double));
    char (*names)[256] = calloc((size_t)n_series, sizeof *names);
    PlotSeries *series = calloc((size_t)n_series, sizeof(PlotSeries));
    double dense_sum = 0.0;
    int dense_count = 0;
    // Run r = i * n_series + s, where i is the first key's value (the first key varies slowest).
    for (int s = 0; s < n_series; s++) {
        size_t used = 0;
        for (int a = 1; a < A && used < sizeof names[s]; a++)
            used += (size_t)snprintf(names[s] + used, sizeof names[s] - used, "%s%s=%s", a > 1 ? ", " : "",
                                     base->sweep[a].key, values[s * A + a]);
        for (int i = 0; i < per_series; i++) {
            int r = i * n_series + s;
            y[s * per_series + i] = number_or_nan(summaries[r], metric);
            double dense = number_or_nan(summaries[r], dense_metric);
            if (isfinite(dense)) dense_sum += dense, dense_count++;
        }
        series[s] = (PlotSeries){names[s], axis_x, &y[s * per_series], per_series};
    }
    char title[512];
    snprintf(title, sizeof title, "%s: %s against %s", base->log.name && base->log.name[0] ? base->log.name : "sweep",
             metric, base->sweep[0].key);
    Plot plot = {
        .title = title,
        .x_label = base->sweep[0].key,
        .y_label = synthetic ? "validation accuracy (higher is better)" : "validation perplexity (lower is better)",
        .x_categories = numeric ? NULL : (const char *const *)base->sweep[0].values,
        .n_categories = numeric ? 0 : per_series,
        .reference_y = dense_count ? dense_sum / dense_count : NAN,
        .reference_name = "dense",
    };
    plot_write_svg(out, &plot, series, n_series);
    free(series);
    free(names);
    free(y);
    free(axis_x);
}

static FILE *open_output(const char *dir, const char *name, char *path, size_t size, Error *err) {
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) error_set(err, "%s: cannot open for writing: %s", path, strerror(errno));
    return f;
}

// Closes an output of open_output; a write that failed on the way (a full disk) or at the
// close is an error naming the file, unless an earlier one is already reported (rc != 0).
static int close_output(FILE *f, const char *dir, const char *name, int rc, Error *err) {
    if (!f) return rc;
    int failed = ferror(f);
    failed |= fclose(f) != 0;
    if (failed && rc == 0) rc = error_set(err, "%s/%s: write failed: %s", dir, name, strerror(errno ? errno : EIO));
    return rc;
}

int sweep_run(const RunConfig *base, const char *sweep_dir, Error *err) {
    int n_runs = config_sweep_count(base), A = base->n_sweep;
    const char **values = calloc((size_t)(n_runs * (A > 0 ? A : 1)), sizeof(char *));
    cJSON **summaries = calloc((size_t)n_runs, sizeof(cJSON *));
    int failed = 0;
    char first_failure[ERROR_MESSAGE_BYTES + 256] = "";
    double start = now_seconds();
    for (int r = 0; r < n_runs; r++) {
        config_sweep_values(base, r, &values[r * A]);
        RunConfig run;
        char label[1024], folder[1024], run_dir[4096];
        Error run_err;
        int rc = config_sweep_apply(base, r, &run, label, sizeof label, &run_err);
        folder_name(label, folder, sizeof folder);
        snprintf(run_dir, sizeof run_dir, "%s/%s", sweep_dir, folder);
        if (rc == 0 && (summaries[r] = sweep_read_summary(run_dir)) != NULL) {
            fprintf(stderr, "sweep %d/%d %s: finished before, skipped\n", r + 1, n_runs, label);
        } else if (rc == 0) {
            fprintf(stderr, "sweep %d/%d %s -> %s\n", r + 1, n_runs, label, run_dir);
            TrainSummary summary;
            rc = train_run(&run, run_dir, "latest", &summary, &run_err);
            if (rc == 0) rc = reference_attach(&run, run_dir, &run_err);
            if (rc == 0) summaries[r] = sweep_read_summary(run_dir);
        }
        if (rc != 0) {
            fprintf(stderr, "sweep %d/%d %s failed: %s\n", r + 1, n_runs, label, run_err.message);
            if (!failed++) snprintf(first_failure, sizeof first_failure, "%.200s: %s", label, run_err.message);
        }
        config_free(&run);
        if (run_signals_pending()) break;  // a stopped run stops the sweep (run it again to continue)
    }
    char path[4096];
    int rc = make_directories(sweep_dir, err);
    FILE *md = rc != 0 ? NULL : open_output(sweep_dir, "summary.md", path, sizeof path, err);
    FILE *csv = md ? open_output(sweep_dir, "summary.csv", path, sizeof path, err) : NULL;
    FILE *svg = csv ? open_output(sweep_dir, "summary.svg", path, sizeof path, err) : NULL;
    if (svg) {
        write_markdown(md, base, values, n_runs, summaries);
        sweep_write_seed_table(md, base, values, n_runs, summaries);
        write_csv(csv, base, values, n_runs, summaries);
        write_plot(svg, base, values, n_runs, summaries);
        fprintf(stderr, "\nsweep of %d runs in %.0f s (%s/summary.md, summary.csv, summary.svg):\n\n", n_runs,
                now_seconds() - start, sweep_dir);
        write_markdown(stderr, base, values, n_runs, summaries);
        sweep_write_seed_table(stderr, base, values, n_runs, summaries);
    } else {
        rc = -1;
    }
    rc = close_output(md, sweep_dir, "summary.md", rc, err);
    rc = close_output(csv, sweep_dir, "summary.csv", rc, err);
    rc = close_output(svg, sweep_dir, "summary.svg", rc, err);
    if (rc == 0 && failed) rc = error_set(err, "%d of %d sweep runs failed; the first: %s", failed, n_runs, first_failure);
    for (int r = 0; r < n_runs; r++) cJSON_Delete(summaries[r]);
    free(summaries);
    free(values);
    return rc;
}
