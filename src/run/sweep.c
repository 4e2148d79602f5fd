// Sweeps (see sweep.h).
#include "run/sweep.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "run/plot.h"
#include "run/reference.h"
#include "run/train_summary.h"
#include "run/trainer.h"
#include "run/run_signals.h"
#include "core/timer.h"
#include "core/atomic_file.h"

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

// The offset of a double member of TrainSummary (another type does not compile).
#define SUMMARY_DOUBLE(member) \
    (offsetof(TrainSummary, member) + 0 * sizeof(_Generic(((TrainSummary *)0)->member, double: 1)))

// The columns of the summary table after the swept keys: a heading, the member of the
// summary (its CSV heading is the member's key in metrics.jsonl) and its format.
typedef struct Column {
    const char *heading;
    size_t offset;
    const char *format;
} Column;
static const Column token_columns[] = {
    {"dense loss", SUMMARY_DOUBLE(dense_val_loss), "%.4f"},
    {"dense ppl", SUMMARY_DOUBLE(dense_val_perplexity), "%.3f"},
    {"dense acc", SUMMARY_DOUBLE(dense_val_accuracy), "%.4f"},
    {"loss", SUMMARY_DOUBLE(val_loss), "%.4f"},
    {"ppl", SUMMARY_DOUBLE(val_perplexity), "%.3f"},
    {"acc", SUMMARY_DOUBLE(val_accuracy), "%.4f"},
    {"sparsity", SUMMARY_DOUBLE(sparsity), "%.4f"},
    {"prune s", SUMMARY_DOUBLE(prune_seconds), "%.1f"},
    {"wall s", SUMMARY_DOUBLE(wall_s), "%.1f"},
};
// Forecasting (docs/DESIGN.md#forecasting): MSE and MAE instead of perplexity and accuracy.
static const Column series_columns[] = {
    {"dense mse", SUMMARY_DOUBLE(dense_val_mse), "%.4f"},
    {"dense mae", SUMMARY_DOUBLE(dense_val_mae), "%.4f"},
    {"mse", SUMMARY_DOUBLE(val_mse), "%.4f"},
    {"mae", SUMMARY_DOUBLE(val_mae), "%.4f"},
    {"repeat-last mse", SUMMARY_DOUBLE(val_repeat_last_mse), "%.4f"},
    {"sparsity", SUMMARY_DOUBLE(sparsity), "%.4f"},
    {"prune s", SUMMARY_DOUBLE(prune_seconds), "%.1f"},
    {"wall s", SUMMARY_DOUBLE(wall_s), "%.1f"},
};

static bool is_forecasting(const RunConfig *c) {
    return c->model.head == CFG_HEAD_FORECAST || c->model.head == CFG_HEAD_DLINEAR;
}

// The table's columns for the sweep's task, and their number.
static const Column *columns_of(const RunConfig *c, int *n) {
    *n = is_forecasting(c) ? (int)(sizeof series_columns / sizeof series_columns[0])
                           : (int)(sizeof token_columns / sizeof token_columns[0]);
    return is_forecasting(c) ? series_columns : token_columns;
}

// The double member at offset of a run's summary, NaN for a run without one.
static double summary_value(const TrainSummary *s, size_t offset) {
    return s ? *(const double *)((const char *)s + offset) : NAN;
}

static void write_number(FILE *out, const char *format, double v) {
    if (isfinite(v)) fprintf(out, format, v);
    else fputs("-", out);
}

static void write_value_name(FILE *md, const char *value);

static void write_markdown(FILE *md, const RunConfig *base, const char *const *values, int n_runs,
                           const TrainSummary *const *summaries) {
    int N_COLUMNS;
    const Column *columns = columns_of(base, &N_COLUMNS);
    int A = base->n_sweep;
    fputs("|", md);
    for (int a = 0; a < A; a++) fprintf(md, " %s |", base->sweep[a].key);
    for (int k = 0; k < N_COLUMNS; k++) fprintf(md, " %s |", columns[k].heading);
    fputs(" status |\n|", md);
    for (int k = 0; k < A + N_COLUMNS + 1; k++) fputs("---|", md);
    fputs("\n", md);
    for (int r = 0; r < n_runs; r++) {
        fputs("|", md);
        for (int a = 0; a < A; a++) fputc(' ', md), write_value_name(md, values[r * A + a]), fputs(" |", md);
        for (int k = 0; k < N_COLUMNS; k++) {
            fputc(' ', md);
            write_number(md, columns[k].format, summary_value(summaries[r], columns[k].offset));
            fputs(" |", md);
        }
        fprintf(md, " %s |\n", summaries[r] ? "done" : "failed");
    }
}

// ---- the seed mean ± sd of each setting, and the last swept key in columns ----

// A key whose values are repetitions of one setting, not settings: train.seed and any
// other key ending in "seed". Rows that differ only in such keys are one setting.
static bool seed_like(const char *key) {
    size_t n = strlen(key);
    return n >= 4 && strcmp(key + n - 4, "seed") == 0;
}

// Accuracy (higher is better) for the synthetic tasks and classification, else perplexity.
static bool reports_accuracy(const RunConfig *base) {
    return base->data.kind == CFG_DATA_SELECTIVE_COPYING || base->data.kind == CFG_DATA_ASSOCIATIVE_RECALL ||
           base->model.head == CFG_HEAD_CLASSIFY;
}

// Whether runs r and q have the same value of every axis that is not seed-like, except skip (-1: none).
static bool same_setting(const RunConfig *base, const char *const *values, int r, int q, int skip) {
    int A = base->n_sweep;
    for (int a = 0; a < A; a++)
        if (a != skip && !seed_like(base->sweep[a].key) && strcmp(values[r * A + a], values[q * A + a]) != 0)
            return false;
    return true;
}

typedef struct Stat {
    int n;
    double mean, sd;  // sd: the sample standard deviation, NAN for fewer than 2 runs
} Stat;

// The mean ± sd of key over the finished runs of run r's setting.
static Stat setting_stat(const RunConfig *base, const char *const *values, int n_runs,
                         const TrainSummary *const *summaries, int r, size_t offset) {
    double sum = 0.0, sq = 0.0;
    int n = 0;
    for (int q = 0; q < n_runs; q++) {
        double v = summary_value(summaries[q], offset);
        if (!same_setting(base, values, r, q, -1) || !isfinite(v)) continue;
        sum += v, sq += v * v, n++;
    }
    Stat st = {n, n ? sum / n : NAN, NAN};
    if (n >= 2) st.sd = sqrt(fmax(0.0, (sq - n * st.mean * st.mean) / (n - 1)));
    return st;
}

static void write_stat(FILE *md, Stat st, const char *format) {
    if (st.n == 0) {
        fputs("-", md);
        return;
    }
    fprintf(md, format, st.mean);
    if (st.n >= 2) fputs(" ± ", md), fprintf(md, format, st.sd);
}

static void write_value_name(FILE *md, const char *value) {
    char name[256];
    config_sweep_value_name(value, name, sizeof name);
    fputs(name, md);
}

// The first run of each setting, in run order; returns how many.
static int first_of_settings(const RunConfig *base, const char *const *values, int n_runs, int skip, int *first) {
    int n = 0;
    for (int r = 0; r < n_runs; r++) {
        bool seen = false;
        for (int g = 0; g < n && !seen; g++) seen = same_setting(base, values, first[g], r, skip);
        if (!seen) first[n++] = r;
    }
    return n;
}

// With a seed-like axis: one row per setting, the mean ± sd over its seeds. With two
// settings' axes or more: the last of them in columns, each cell "quality mean ± sd (prune s)".
static void write_settings(FILE *md, const RunConfig *base, const char *const *values, int n_runs,
                           const TrainSummary *const *summaries) {
    int A = base->n_sweep, seeds = 0, last = -1, n_setting_axes = 0;
    for (int a = 0; a < A; a++) {
        if (seed_like(base->sweep[a].key)) seeds++;
        else last = a, n_setting_axes++;
    }
    size_t metric_offset = is_forecasting(base)     ? SUMMARY_DOUBLE(val_mse)
                           : reports_accuracy(base) ? SUMMARY_DOUBLE(val_accuracy)
                                                    : SUMMARY_DOUBLE(val_perplexity);
    const char *metric = train_summary_key(metric_offset);
    const char *format = reports_accuracy(base) || is_forecasting(base) ? "%.4f" : "%.3f";
    int *first = malloc(sizeof(int) * (size_t)(n_runs > 0 ? n_runs : 1));
    if (seeds > 0) {
        int n = first_of_settings(base, values, n_runs, -1, first);
        fprintf(md, "\nMean ± sd over the seeds of each setting:\n\n|");
        for (int a = 0; a < A; a++)
            if (!seed_like(base->sweep[a].key)) fprintf(md, " %s |", base->sweep[a].key);
        fprintf(md, " runs | %s | prune s |\n|", metric);
        for (int k = 0; k < n_setting_axes + 3; k++) fputs("---|", md);
        fputs("\n", md);
        for (int g = 0; g < n; g++) {
            fputs("|", md);
            for (int a = 0; a < A; a++)
                if (!seed_like(base->sweep[a].key)) fputc(' ', md), write_value_name(md, values[first[g] * A + a]), fputs(" |", md);
            Stat q = setting_stat(base, values, n_runs, summaries, first[g], metric_offset);
            Stat t = setting_stat(base, values, n_runs, summaries, first[g], SUMMARY_DOUBLE(prune_seconds));
            fprintf(md, " %d | ", q.n);
            write_stat(md, q, format);
            fputs(" | ", md);
            write_stat(md, t, "%.1f");
            fputs(" |\n", md);
        }
    }
    if (n_setting_axes >= 2) {
        const SweepAxis *columns_axis = &base->sweep[last];
        int n = first_of_settings(base, values, n_runs, last, first);
        fprintf(md, "\n%s (mean ± sd over the seeds, and prune seconds) by %s:\n\n|", metric, columns_axis->key);
        for (int a = 0; a < A; a++)
            if (a != last && !seed_like(base->sweep[a].key)) fprintf(md, " %s |", base->sweep[a].key);
        for (int v = 0; v < columns_axis->n_values; v++) fputc(' ', md), write_value_name(md, columns_axis->values[v]), fputs(" |", md);
        fputs("\n|", md);
        for (int k = 0; k < n_setting_axes - 1 + columns_axis->n_values; k++) fputs("---|", md);
        fputs("\n", md);
        for (int g = 0; g < n; g++) {
            fputs("|", md);
            for (int a = 0; a < A; a++)
                if (a != last && !seed_like(base->sweep[a].key))
                    fputc(' ', md), write_value_name(md, values[first[g] * A + a]), fputs(" |", md);
            for (int v = 0; v < columns_axis->n_values; v++) {
                int r = -1;
                for (int q = 0; q < n_runs && r < 0; q++)
                    if (same_setting(base, values, first[g], q, last) &&
                        strcmp(values[q * A + last], columns_axis->values[v]) == 0)
                        r = q;
                fputc(' ', md);
                if (r >= 0) {
                    Stat q = setting_stat(base, values, n_runs, summaries, r, metric_offset);
                    Stat t = setting_stat(base, values, n_runs, summaries, r, SUMMARY_DOUBLE(prune_seconds));
                    write_stat(md, q, format);
                    if (t.n) fprintf(md, " (%.1f s)", t.mean);
                } else {
                    fputs("-", md);
                }
                fputs(" |", md);
            }
            fputs("\n", md);
        }
    }
    free(first);
}

static void write_csv(FILE *csv, const RunConfig *base, const char *const *values, int n_runs,
                      const TrainSummary *const *summaries) {
    int N_COLUMNS;
    const Column *columns = columns_of(base, &N_COLUMNS);
    int A = base->n_sweep;
    for (int a = 0; a < A; a++) fprintf(csv, "%s,", base->sweep[a].key);
    for (int k = 0; k < N_COLUMNS; k++) fprintf(csv, "%s,", train_summary_key(columns[k].offset));
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
            double v = summary_value(summaries[r], columns[k].offset);
            if (isfinite(v)) fprintf(csv, "%.9g", v);
            fputc(',', csv);
        }
        fprintf(csv, "%s\n", summaries[r] ? "done" : "failed");
    }
}

// The plot: the first swept key on x, the quality metric on y, one line per combination
// of the other keys; the dense model's mean quality as a dashed line.
static void write_plot(FILE *out, const RunConfig *base, const char *const *values, int n_runs,
                       const TrainSummary *const *summaries) {
    // Accuracy (higher is better) for the synthetic tasks and classification, MSE (lower) for
    // forecasting, else perplexity (lower).
    bool synthetic = base->data.kind == CFG_DATA_SELECTIVE_COPYING || base->data.kind == CFG_DATA_ASSOCIATIVE_RECALL ||
                     base->model.head == CFG_HEAD_CLASSIFY;
    bool forecasting = is_forecasting(base);
    size_t metric = forecasting ? SUMMARY_DOUBLE(val_mse) : synthetic ? SUMMARY_DOUBLE(val_accuracy) : SUMMARY_DOUBLE(val_perplexity);
    size_t dense_metric = forecasting ? SUMMARY_DOUBLE(dense_val_mse)
                          : synthetic ? SUMMARY_DOUBLE(dense_val_accuracy)
                                      : SUMMARY_DOUBLE(dense_val_perplexity);
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
            y[s * per_series + i] = summary_value(summaries[r], metric);
            double dense = summary_value(summaries[r], dense_metric);
            if (isfinite(dense)) dense_sum += dense, dense_count++;
        }
        series[s] = (PlotSeries){names[s], axis_x, &y[s * per_series], per_series};
    }
    char title[512];
    snprintf(title, sizeof title, "%s: %s against %s", base->log.name && base->log.name[0] ? base->log.name : "sweep",
             train_summary_key(metric), base->sweep[0].key);
    Plot plot = {
        .title = title,
        .x_label = base->sweep[0].key,
        .y_label = forecasting ? "held-out MSE, standardised (lower is better)"
                   : synthetic ? "validation accuracy (higher is better)"
                               : "validation perplexity (lower is better)",
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
    TrainSummary *finished = calloc((size_t)n_runs, sizeof(TrainSummary));
    const TrainSummary **summaries = calloc((size_t)n_runs, sizeof(TrainSummary *));  // NULL: failed
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
        int found = rc == 0 ? train_summary_read(run_dir, &finished[r], &run_err) : 0;
        if (found < 0) {
            rc = -1;
        } else if (found) {
            fprintf(stderr, "sweep %d/%d %s: finished before, skipped\n", r + 1, n_runs, label);
        } else if (rc == 0) {
            fprintf(stderr, "sweep %d/%d %s -> %s\n", r + 1, n_runs, label, run_dir);
            rc = train_run(&run, run_dir, "latest", &finished[r], &run_err);
            if (rc == 0) rc = reference_attach(&run, run_dir, &run_err);
        }
        if (rc == 0) summaries[r] = &finished[r];
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
        write_settings(md, base, values, n_runs, summaries);
        write_csv(csv, base, values, n_runs, summaries);
        write_plot(svg, base, values, n_runs, summaries);
        fprintf(stderr, "\nsweep of %d runs in %.0f s (%s/summary.md, summary.csv, summary.svg):\n\n", n_runs,
                now_seconds() - start, sweep_dir);
        write_markdown(stderr, base, values, n_runs, summaries);
        write_settings(stderr, base, values, n_runs, summaries);
    } else {
        rc = -1;
    }
    rc = close_output(md, sweep_dir, "summary.md", rc, err);
    rc = close_output(csv, sweep_dir, "summary.csv", rc, err);
    rc = close_output(svg, sweep_dir, "summary.svg", rc, err);
    if (rc == 0 && failed) rc = error_set(err, "%d of %d sweep runs failed; the first: %s", failed, n_runs, first_failure);
    free(summaries);
    free(finished);
    free(values);
    return rc;
}
