// Forecasting series (see data.h, docs/DESIGN.md#forecasting): the CSV reader of ETT's
// format through libcsv (RFC 4180 quoting, strict), the multi-seasonal series generated
// from the seed, and the standardisation by the training rows. A bad cell is an error
// naming the file, the line and the column.
#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/input_file.h"
#include "data/data_internal.h"

// A CSV file of hourly or minutely data: 17,420 rows of ETTh1 are 2.6 MB; 1 GB is plenty.
#define CSV_MAX_BYTES (1ull << 30)
#define CSV_NAME_MAX 64

typedef struct CsvRead {
    const char *path;
    Error *err;
    bool failed;
    long row;                 // 0 = the header; data row r is row r + 1 (line r + 2 of a file without quoted newlines)
    int col;                  // the field of the row being read
    int n_cols;               // fields of the header
    char (*names)[CSV_NAME_MAX];
    int first_value;          // the first column kept: 1 (M: every feature) or n_cols - 1 (S: the target)
    float *values;            // (rows, n_cols - first_value) so far
    long capacity;            // rows the buffer holds
} CsvRead;

static void csv_fail(CsvRead *r, const char *format, const char *cell) {
    if (r->failed) return;
    r->failed = true;
    char shown[48];
    snprintf(shown, sizeof shown, "%.40s%s", cell, strlen(cell) > 40 ? "..." : "");
    error_set(r->err, "%s: line %ld (data row %ld), column %d (%s): %s, got \"%s\"", r->path, r->row + 1, r->row - 1,
              r->col + 1, r->col < r->n_cols ? r->names[r->col] : "past the header", format, shown);
}

static void on_field(void *field, size_t length, void *data) {
    CsvRead *r = data;
    if (r->failed) return;
    const char *text = field ? field : "";  // CSV_APPEND_NULL: every field ends with a NUL
    if (r->row == 0) {
        r->names = xrealloc(r->names, sizeof *r->names * (size_t)(r->col + 1));
        snprintf(r->names[r->col], CSV_NAME_MAX, "%s", text);
        r->col++;
        return;
    }
    if (r->col >= r->n_cols) {
        r->col++;  // counted, reported at the end of the row
        return;
    }
    if (r->col >= r->first_value) {
        if (length == 0) {
            csv_fail(r, "the cell is empty, expected a number", text);
            return;
        }
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        while (*end == ' ' || *end == '\t') end++;
        if (end == text || *end != '\0') csv_fail(r, "expected a number", text);
        else if (isnan(v)) csv_fail(r, "NaN is not a value (missing data must be filled before)", text);
        else if (!isfinite(v) || errno == ERANGE || fabs(v) > 3.0e38) csv_fail(r, "expected a finite float32 number", text);
        else {
            long k = r->row - 1, width = r->n_cols - r->first_value;
            if (k >= r->capacity) {
                r->capacity = r->capacity ? 2 * r->capacity : 1024;
                r->values = xrealloc(r->values, sizeof(float) * (size_t)(r->capacity * width));
            }
            r->values[k * width + (r->col - r->first_value)] = (float)v;
        }
    } else if (length == 0) {
        csv_fail(r, "the date is empty", text);
    }
    r->col++;
}

static void on_row(int terminator, void *data) {
    (void)terminator;
    CsvRead *r = data;
    if (r->failed) return;
    if (r->row == 0) {
        r->n_cols = r->col;
        if (r->n_cols < 2) {
            r->failed = true;
            error_set(r->err, "%s: line 1: the header has %d column%s; expected date, features..., target", r->path,
                      r->n_cols, r->n_cols == 1 ? "" : "s");
            return;
        }
    } else if (r->col != r->n_cols) {
        r->failed = true;
        error_set(r->err, "%s: line %ld (data row %ld): %d fields, but the header has %d (%s)", r->path, r->row + 1,
                  r->row - 1, r->col, r->n_cols, r->col < r->n_cols ? "a missing cell" : "an extra cell");
        return;
    }
    r->row++;
    r->col = 0;
}

int timeseries_load_csv(Dataset *ds, const char *path, int target_only, Error *err) {
    char *text;
    size_t size;
    if (input_file_read(path, "data file", CSV_MAX_BYTES, &text, &size, err)) return -1;
    struct csv_parser parser;
    if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) abort();
    CsvRead r = {.path = path, .err = err};
    // The header decides which columns are kept; parse it first, then the rest.
    size_t header_end = 0;
    while (header_end < size && text[header_end] != '\n') header_end++;
    header_end += header_end < size;
    size_t done = csv_parse(&parser, text, header_end, on_field, on_row, &r);
    bool finished = false;
    if (!r.failed && done == header_end && r.row == 0) {  // a file of one line, or nothing
        csv_fini(&parser, on_field, on_row, &r);
        finished = true;
    }
    if (!r.failed && r.row == 0) {
        r.failed = true;
        error_set(err, "%s: no header line (expected date, features..., target)", path);
    }
    r.first_value = target_only ? r.n_cols - 1 : 1;
    if (!r.failed) done += csv_parse(&parser, text + header_end, size - header_end, on_field, on_row, &r);
    if (!r.failed && done != size)
        error_set(err, "%s: line %ld: malformed CSV (%s)", path, r.row + 1, csv_strerror(csv_error(&parser))), r.failed = true;
    if (!r.failed && !finished && csv_fini(&parser, on_field, on_row, &r) != 0 && !r.failed)
        error_set(err, "%s: line %ld: malformed CSV at the end of the file (%s)", path, r.row + 1,
                  csv_strerror(csv_error(&parser))), r.failed = true;
    csv_free(&parser);
    free(text);
    long data_rows = r.row - 1, need = ds->train_rows + ds->val_rows + ds->test_rows;
    if (!r.failed && data_rows < need) {
        error_set(err, "%s: %ld data rows, but data.train_rows + data.val_rows + data.test_rows = %ld + %ld + %ld = %ld",
                  path, data_rows, ds->train_rows, ds->val_rows, ds->test_rows, need);
        r.failed = true;
    }
    free(r.names);
    if (r.failed) {
        free(r.values);
        return -1;
    }
    ds->n_features = r.n_cols - r.first_value;
    ds->series = r.values;  // the rows past need stay allocated, unused
    return timeseries_standardise(ds, path, err);
}

// Periods of the generated series, in steps: a day and a week of hourly data.
#define SEASON_DAY 24
#define SEASON_WEEK 168

void timeseries_generate(Dataset *ds, Rng *rng) {
    const long n = ds->train_rows + ds->val_rows + ds->test_rows;
    const int F = ds->n_features;
    ds->series = xmalloc(sizeof(float) * (size_t)n * F);
    const double two_pi = 6.283185307179586;
    for (int f = 0; f < F; f++) {
        // Per series: a daily and a weekly wave of random amplitudes and phases, a slow
        // linear trend, and AR(1) noise (phi 0.7).
        double day = 0.5 + rng_uniform_double(rng), week = 0.3 + 0.7 * rng_uniform_double(rng);
        double day_phase = two_pi * rng_uniform_double(rng), week_phase = two_pi * rng_uniform_double(rng);
        double slope = (2.0 * rng_uniform_double(rng) - 1.0) / (double)n, noise = 0.0;
        for (long t = 0; t < n; t++) {
            noise = 0.7 * noise + 0.2 * rng_normal(rng);
            double v = day * sin(two_pi * (double)t / SEASON_DAY + day_phase) +
                       week * sin(two_pi * (double)t / SEASON_WEEK + week_phase) + slope * (double)t + noise;
            ds->series[(size_t)t * F + f] = (float)v;
        }
    }
    // The last series (the target of features S) also follows the mean of the others, as a load does its parts.
    for (long t = 0; t < n && F > 1; t++) {
        double mean = 0.0;
        for (int f = 0; f < F - 1; f++) mean += ds->series[(size_t)t * F + f];
        ds->series[(size_t)t * F + F - 1] += (float)(mean / (F - 1));
    }
}

int timeseries_standardise(Dataset *ds, const char *what, Error *err) {
    const int F = ds->n_features;
    const long n = ds->train_rows + ds->val_rows + ds->test_rows;
    ds->feature_mean = xcalloc((size_t)F, sizeof(double));
    ds->feature_std = xcalloc((size_t)F, sizeof(double));
    for (int f = 0; f < F; f++) {
        double sum = 0.0, sq = 0.0;
        for (long t = 0; t < ds->train_rows; t++) sum += ds->series[(size_t)t * F + f];
        double mean = sum / (double)ds->train_rows;
        for (long t = 0; t < ds->train_rows; t++) {
            double e = ds->series[(size_t)t * F + f] - mean;
            sq += e * e;
        }
        double std = sqrt(sq / (double)ds->train_rows);  // population std, as sklearn's StandardScaler
        if (!(std > 1e-12))
            return error_set(err, "%s: feature %d is constant over the %ld training rows: it cannot be standardised", what,
                             f + 1, ds->train_rows);
        ds->feature_mean[f] = mean;
        ds->feature_std[f] = std;
        for (long t = 0; t < n; t++)
            ds->series[(size_t)t * F + f] = (float)((ds->series[(size_t)t * F + f] - mean) / std);
    }
    return 0;
}
