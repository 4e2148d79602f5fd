// Datasets and batches (see data.h): option checks, the seeding that makes batch k a
// pure function of (seed, k), training windows, validation batching for every kind of
// data, and the accuracy of argmax predictions.
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "data/data_internal.h"

void data_options_defaults(DataOptions *o) {
    *o = (DataOptions){
        .kind = DATA_SELECTIVE_COPYING,
        .path = NULL,
        .val_fraction = 0.1f,
        .vocab = 0,
        .n_memorize = 16,
        .val_sequences = 256,
        .seed = 1234,
        .min_len = 0,
        .max_len = 0,
        .split = DATA_SPLIT_VALIDATION,
        .horizon = 96,
        .target_only = 0,
        .train_rows = 8640,  // ETTh: 12, 4 and 4 months of hourly rows
        .val_rows = 2880,
        .test_rows = 2880,
        .n_series = 7,
    };
}

static const char *const KIND_NAMES[] = {
    [DATA_SELECTIVE_COPYING] = "selective_copying",
    [DATA_ASSOCIATIVE_RECALL] = "associative_recall",
    [DATA_TEXT] = "text",
    [DATA_TOKENS] = "tokens",
    [DATA_FILE] = "file",
    [DATA_LISTOPS] = "listops",
    [DATA_TEXT_CLASSIFICATION] = "text_classification",
    [DATA_TIMESERIES] = "timeseries",
    [DATA_SEASONAL] = "seasonal",
};

int data_kind_parse(const char *name, DataKind *kind) {
    for (int k = 0; k < (int)(sizeof KIND_NAMES / sizeof KIND_NAMES[0]); k++) {
        if (strcmp(name, KIND_NAMES[k]) == 0) {
            *kind = (DataKind)k;
            return 0;
        }
    }
    return -1;
}

const char *data_kind_name(DataKind kind) {
    return (unsigned)kind < sizeof KIND_NAMES / sizeof KIND_NAMES[0] ? KIND_NAMES[kind] : "?";
}

static int is_synthetic(DataKind kind) { return kind == DATA_SELECTIVE_COPYING || kind == DATA_ASSOCIATIVE_RECALL; }

// Shortest sequence that holds the layout of a synthetic task.
static int synthetic_min_len(DataKind kind, int n) { return kind == DATA_SELECTIVE_COPYING ? 2 * n : 3 * n; }

// The synthetic alphabet when data.vocab is 0, as in the Mamba paper's selective copying.
#define DEFAULT_ALPHABET 16

static int open_synthetic(Dataset *ds, const DataOptions *o, int seqlen, Error *err) {
    const char *task = data_kind_name(o->kind);
    int alphabet = o->vocab == 0 ? DEFAULT_ALPHABET : o->vocab;
    if (alphabet < 1) return error_set(err, "data.vocab (alphabet of %s, 0 = 16) must be >= 0, got %d", task, o->vocab);
    if (o->n_memorize < 1) return error_set(err, "data.n_memorize must be >= 1, got %d", o->n_memorize);
    if (o->val_sequences < 0) return error_set(err, "data.val_sequences must be >= 0, got %d", o->val_sequences);
    if (o->kind == DATA_ASSOCIATIVE_RECALL && alphabet < o->n_memorize)
        return error_set(err, "data.vocab (%d) must be >= data.n_memorize (%d): associative recall needs distinct keys",
                         alphabet, o->n_memorize);
    int need = synthetic_min_len(o->kind, o->n_memorize);
    if (seqlen < need)
        return error_set(err, "seqlen %d is too short for %s with data.n_memorize = %d: it needs seqlen >= %d (%s)",
                         seqlen, task, o->n_memorize, need,
                         o->kind == DATA_SELECTIVE_COPYING ? "n data tokens, then n markers"
                                                           : "n key-value pairs, then n queries");
    ds->alphabet = alphabet;
    ds->n_memorize = o->n_memorize;
    ds->val_sequences = o->val_sequences;
    ds->vocab_size = o->kind == DATA_SELECTIVE_COPYING ? alphabet + 2 : 2 * alphabet + 1;
    return 0;
}

// ---- classification kinds (listops.c, tsv.c) ----

static int open_listops(Dataset *ds, const DataOptions *o, int seqlen, Error *err) {
    int max_len = o->max_len == 0 ? seqlen : o->max_len;
    int min_len = o->min_len == 0 ? max_len / 2 : o->min_len;
    if (max_len > seqlen)
        return error_set(err, "data.max_len (%d) must be <= the sequence length %d (rows hold a whole expression)",
                         max_len, seqlen);
    if (max_len < 4) return error_set(err, "data.max_len must be >= 4 (the shortest expression, e.g. [MAX 1 2 ]), got %d", max_len);
    if (min_len < 1 || min_len > max_len)
        return error_set(err, "data.min_len must be in [1, data.max_len = %d] (0 = max_len / 2), got %d", max_len, min_len);
    if (o->val_sequences < 0) return error_set(err, "data.val_sequences must be >= 0, got %d", o->val_sequences);
    ds->min_len = min_len;
    ds->max_len = max_len;
    ds->val_sequences = o->val_sequences;
    ds->vocab_size = LISTOPS_VOCAB;
    ds->n_classes = 10;
    return 0;
}

static int open_text_classification(Dataset *ds, const DataOptions *o, Error *err) {
    if (!o->path || !o->path[0]) return error_set(err, "data.path is required for data.kind = text_classification");
    if (!(o->val_fraction >= 0.0f && o->val_fraction <= 1.0f))
        return error_set(err, "data.val_fraction must be in [0, 1], got %g", o->val_fraction);
    ds->path = xstrdup(o->path);
    if (tsv_load(ds, o->path, err)) return -1;
    long n_val = (long)((double)ds->n_lines * o->val_fraction);
    ds->n_train = ds->n_lines - n_val;
    if (o->val_fraction < 1.0f && ds->n_train < 1)
        return error_set(err, "%s: no training line (%ld lines, data.val_fraction = %g)", o->path, ds->n_lines, o->val_fraction);
    if (o->val_fraction > 0.0f && n_val < 1)
        return error_set(err, "%s: no validation line (%ld lines, data.val_fraction = %g)", o->path, ds->n_lines, o->val_fraction);
    ds->vocab_size = 257;  // bytes + 1, 0 is padding
    return 0;
}

// ---- forecasting kinds (timeseries.c) ----

static int is_series_kind(DataKind kind) { return kind == DATA_TIMESERIES || kind == DATA_SEASONAL; }

static void stream_rng(Rng *rng, uint64_t seed, uint64_t stream);

static int open_series(Dataset *ds, const DataOptions *o, int seqlen, Error *err) {
    const int L = seqlen, H = o->horizon;
    if (H < 1) return error_set(err, "data.horizon must be >= 1, got %d", H);
    if (o->train_rows < 1 || o->val_rows < 1 || o->test_rows < 1)
        return error_set(err, "data.train_rows, data.val_rows and data.test_rows must be >= 1, got %ld, %ld, %ld",
                         o->train_rows, o->val_rows, o->test_rows);
    // Every split holds at least one window (data.h): the training rows L + H, the others H.
    if (o->train_rows < (long)L + H)
        return error_set(err, "data.train_rows (%ld) must be >= the input length train.seqlen (%d) + data.horizon (%d): "
                         "no training window fits", o->train_rows, L, H);
    if (o->val_rows < H || o->test_rows < H)
        return error_set(err, "data.val_rows (%ld) and data.test_rows (%ld) must be >= data.horizon (%d): no %s window fits",
                         o->val_rows, o->test_rows, H, o->val_rows < H ? "validation" : "test");
    ds->horizon = H;
    ds->train_rows = o->train_rows;
    ds->val_rows = o->val_rows;
    ds->test_rows = o->test_rows;
    if (o->kind == DATA_SEASONAL) {
        if (o->n_series < 1) return error_set(err, "data.n_series must be >= 1, got %d", o->n_series);
        ds->n_features = o->target_only ? 1 : o->n_series;
        Rng rng;
        stream_rng(&rng, ds->seed, UINT64_MAX);  // not a batch stream
        Dataset all = *ds;
        all.n_features = o->n_series;
        timeseries_generate(&all, &rng);
        if (o->target_only) {  // features S: the last series alone
            long n = ds->train_rows + ds->val_rows + ds->test_rows;
            ds->series = xmalloc(sizeof(float) * (size_t)n);
            for (long t = 0; t < n; t++) ds->series[t] = all.series[(size_t)t * o->n_series + o->n_series - 1];
            free(all.series);
        } else {
            ds->series = all.series;
        }
        return timeseries_standardise(ds, "data.kind seasonal", err);
    }
    if (!o->path || !o->path[0]) return error_set(err, "data.path is required for data.kind = timeseries");
    ds->path = xstrdup(o->path);
    return timeseries_load_csv(ds, o->path, o->target_only, err);
}

static int open_text(Dataset *ds, const DataOptions *o, int seqlen, Error *err) {
    if (!o->path || !o->path[0])
        return error_set(err, "data.path is required for data.kind = %s", data_kind_name(o->kind));
    if (!(o->val_fraction >= 0.0f && o->val_fraction <= 1.0f))
        return error_set(err, "data.val_fraction must be in [0, 1], got %g", o->val_fraction);
    if (o->vocab < 0) return error_set(err, "data.vocab must be >= 0 (0 = from the data), got %d", o->vocab);
    ds->path = xstrdup(o->path);
    if (text_load(ds, o->kind, o->path, o->vocab, err)) return -1;
    long n = ds->n_tokens;
    long n_val = (long)((double)n * o->val_fraction);
    ds->n_train = n - n_val;
    if (o->val_fraction < 1.0f && ds->n_train < (long)seqlen + 1)
        return error_set(err,
                         "%s: the training split holds %ld tokens (%ld in the file, data.val_fraction = %g), "
                         "but one window of seqlen %d needs %d",
                         o->path, ds->n_train, n, o->val_fraction, seqlen, seqlen + 1);
    if (o->val_fraction > 0.0f && data_val_batch_count(ds, 1, seqlen) == 0)
        return error_set(err,
                         "%s: the validation split (data.val_fraction = %g of %ld tokens) holds no token to predict",
                         o->path, o->val_fraction, n);
    return 0;
}

int data_open(Dataset *ds, const DataOptions *o, int seqlen, Error *err) {
    memset(ds, 0, sizeof *ds);
    if (seqlen < 1) return error_set(err, "seqlen must be >= 1, got %d", seqlen);
    ds->kind = o->kind;
    ds->seqlen = seqlen;
    ds->seed = o->seed;
    ds->split = o->split;
    if (o->split == DATA_SPLIT_TEST && o->kind != DATA_LISTOPS && !is_series_kind(o->kind))
        return error_set(err, "data.split: %s has no test split (only listops, timeseries and seasonal have one)",
                         data_kind_name(o->kind));
    int rc = is_series_kind(o->kind)               ? open_series(ds, o, seqlen, err)
             : o->kind == DATA_LISTOPS             ? open_listops(ds, o, seqlen, err)
             : o->kind == DATA_TEXT_CLASSIFICATION ? open_text_classification(ds, o, err)
             : is_synthetic(o->kind)               ? open_synthetic(ds, o, seqlen, err)
                                                   : open_text(ds, o, seqlen, err);
    if (rc) data_close(ds);
    return rc;
}

void data_close(Dataset *ds) {
    free(ds->path);
    free(ds->bytes);
    free(ds->ids);
    free(ds->ids32);
    free(ds->line_span);
    free(ds->line_label);
    free(ds->series);
    free(ds->feature_mean);
    free(ds->feature_std);
    memset(ds, 0, sizeof *ds);
}

int data_vocab_size(const Dataset *ds) { return ds->vocab_size; }

int data_n_classes(const Dataset *ds) { return ds->n_classes; }

int data_is_series(const Dataset *ds) { return is_series_kind(ds->kind); }

int data_n_features(const Dataset *ds) { return ds->n_features; }

int data_horizon(const Dataset *ds) { return ds->horizon; }

int data_has_train(const Dataset *ds) {
    if (ds->kind == DATA_LISTOPS || is_series_kind(ds->kind)) return 1;
    if (ds->kind == DATA_TEXT_CLASSIFICATION) return ds->n_train > 0;
    return is_synthetic(ds->kind) || ds->n_train > ds->seqlen;
}

static inline int32_t token_at(const Dataset *ds, long i) {
    return ds->bytes ? ds->bytes[i] : ds->ids ? ds->ids[i] : (int32_t)ds->ids32[i];
}

// The rng of one stream: training batch k is stream 2k, validation sequence i stream
// 2i+1. The seed is hashed, then offset by an odd multiple of the stream number, which
// is injective: every stream of one seed starts from a different rng state.
static void stream_rng(Rng *rng, uint64_t seed, uint64_t stream) {
    Rng hash;
    rng_seed(&hash, seed);
    rng_seed(rng, rng_next_u64(&hash) + stream * 0xd1b54a32d192ed03ULL);
}

static void synthetic_sequence(const Dataset *ds, Rng *rng, int L, int32_t *tokens, int32_t *targets) {
    if (ds->kind == DATA_SELECTIVE_COPYING)
        synthetic_selective_copying(rng, L, ds->n_memorize, ds->alphabet, tokens, targets);
    else
        synthetic_associative_recall(rng, L, ds->n_memorize, ds->alphabet, tokens, targets);
}

void data_train_batch(const Dataset *ds, long index, int B, int L, int32_t *tokens, int32_t *targets) {
    assert(index >= 0 && B >= 1 && L >= 1 && !is_series_kind(ds->kind));
    Rng rng;
    stream_rng(&rng, ds->seed, 2 * (uint64_t)index);
    if (ds->kind == DATA_LISTOPS) {
        for (int r = 0; r < B; r++)
            listops_row(&rng, ds->min_len, ds->max_len, L, tokens + (size_t)r * L, targets + (size_t)r * L);
        return;
    }
    if (ds->kind == DATA_TEXT_CLASSIFICATION) {
        for (int r = 0; r < B; r++)
            tsv_row(ds, (long)rng_below(&rng, (uint64_t)ds->n_train), L, tokens + (size_t)r * L, targets + (size_t)r * L);
        return;
    }
    if (is_synthetic(ds->kind)) {
        assert(L >= synthetic_min_len(ds->kind, ds->n_memorize));
        for (int r = 0; r < B; r++) synthetic_sequence(ds, &rng, L, tokens + (size_t)r * L, targets + (size_t)r * L);
        return;
    }
    // Text: B windows of L+1 tokens at uniform starts inside the training split.
    assert(ds->n_train >= (long)L + 1);
    uint64_t starts = (uint64_t)(ds->n_train - L);
    for (int r = 0; r < B; r++) {
        long start = (long)rng_below(&rng, starts);
        int32_t *tok = tokens + (size_t)r * L, *tgt = targets + (size_t)r * L;
        for (int c = 0; c < L; c++) {
            tok[c] = token_at(ds, start + c);
            tgt[c] = token_at(ds, start + c + 1);
        }
    }
}

// Text validation: target positions t in [first, n_tokens), the input of each is token
// t-1; window w covers the L target positions first + w*L, ...
static long val_first_target(const Dataset *ds) { return ds->n_train > 1 ? ds->n_train : 1; }

// A series: the first row of split [lo, hi) that a window's input may start at, and the
// number of windows (data.h).
static long series_windows(const Dataset *ds, DataSplit split, int L, long *lo) {
    long start = split == DATA_SPLIT_TEST ? ds->train_rows + ds->val_rows : ds->train_rows;
    long rows = split == DATA_SPLIT_TEST ? ds->test_rows : ds->val_rows;
    *lo = start - L;
    return rows - ds->horizon + 1;
}

static void series_window(const Dataset *ds, long start, int L, float *values, float *future) {
    const int F = ds->n_features;
    memcpy(values, ds->series + (size_t)start * F, sizeof(float) * (size_t)L * F);
    memcpy(future, ds->series + (size_t)(start + L) * F, sizeof(float) * (size_t)ds->horizon * F);
}

void data_train_values(const Dataset *ds, long index, int B, int L, float *values, float *future) {
    assert(index >= 0 && B >= 1 && L >= 1 && is_series_kind(ds->kind));
    assert(ds->train_rows >= (long)L + ds->horizon);
    Rng rng;
    stream_rng(&rng, ds->seed, 2 * (uint64_t)index);
    uint64_t starts = (uint64_t)(ds->train_rows - L - ds->horizon + 1);
    const size_t in = (size_t)L * ds->n_features, out = (size_t)ds->horizon * ds->n_features;
    for (int r = 0; r < B; r++) series_window(ds, (long)rng_below(&rng, starts), L, values + r * in, future + r * out);
}

int data_val_values(const Dataset *ds, long i, int B, int L, float *values, float *future) {
    assert(is_series_kind(ds->kind) && i >= 0 && i < data_val_batch_count(ds, B, L));
    long lo, windows = series_windows(ds, ds->split, L, &lo);
    const size_t in = (size_t)L * ds->n_features, out = (size_t)ds->horizon * ds->n_features;
    int real = 0;
    for (int r = 0; r < B; r++) {
        long w = i * B + r;
        if (w >= windows) {  // padding row of the last batch
            memset(values + r * in, 0, sizeof(float) * in);
            memset(future + r * out, 0, sizeof(float) * out);
            continue;
        }
        series_window(ds, lo + w, L, values + r * in, future + r * out);
        real++;
    }
    return real;
}

static long val_windows(const Dataset *ds, int L) {
    long lo;
    if (is_series_kind(ds->kind)) return series_windows(ds, ds->split, L, &lo);
    if (is_synthetic(ds->kind) || ds->kind == DATA_LISTOPS) return ds->val_sequences;
    if (ds->kind == DATA_TEXT_CLASSIFICATION) return ds->n_lines - ds->n_train;
    long n_targets = ds->n_tokens - val_first_target(ds);
    return n_targets > 0 ? (n_targets + L - 1) / L : 0;
}

long data_val_batch_count(const Dataset *ds, int B, int L) {
    assert(B >= 1 && L >= 1);
    return (val_windows(ds, L) + B - 1) / B;
}

void data_val_batch(const Dataset *ds, long i, int B, int L, int32_t *tokens, int32_t *targets) {
    assert(i >= 0 && i < data_val_batch_count(ds, B, L) && !is_series_kind(ds->kind));
    long windows = val_windows(ds, L);
    for (int r = 0; r < B; r++) {
        long w = i * B + r;
        int32_t *tok = tokens + (size_t)r * L, *tgt = targets + (size_t)r * L;
        if (w >= windows) {  // padding row of the last batch
            for (int c = 0; c < L; c++) tok[c] = 0, tgt[c] = -1;
        } else if (ds->kind == DATA_LISTOPS) {
            // The test split: the same streams of another seed (hashing makes them unrelated).
            Rng rng;
            uint64_t seed = ds->split == DATA_SPLIT_TEST ? ds->seed ^ 0x7e57da7a5eedULL : ds->seed;
            stream_rng(&rng, seed, 2 * (uint64_t)w + 1);
            listops_row(&rng, ds->min_len, ds->max_len, L, tok, tgt);
        } else if (ds->kind == DATA_TEXT_CLASSIFICATION) {
            tsv_row(ds, ds->n_train + w, L, tok, tgt);
        } else if (is_synthetic(ds->kind)) {
            assert(L >= synthetic_min_len(ds->kind, ds->n_memorize));
            Rng rng;
            stream_rng(&rng, ds->seed, 2 * (uint64_t)w + 1);
            synthetic_sequence(ds, &rng, L, tok, tgt);
        } else {
            long t0 = val_first_target(ds) + w * L;
            for (int c = 0; c < L; c++) {
                long t = t0 + c;
                int in_file = t < ds->n_tokens;
                tok[c] = in_file ? token_at(ds, t - 1) : 0;
                tgt[c] = in_file ? token_at(ds, t) : -1;
            }
        }
    }
}

void data_accuracy(const float *logits, int V, const int32_t *targets, int T, long *correct, long *counted) {
    long hits = 0, total = 0;
    for (int t = 0; t < T; t++) {
        if (targets[t] < 0) continue;
        const float *row = logits + (size_t)t * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (row[v] > row[best]) best = v;
        total++;
        hits += best == targets[t];
    }
    *correct = hits;
    *counted = total;
}
