// The table of every configuration key (docs/DESIGN.md#configuration): section, name, type, field, default,
// allowed values and a one-line help. The parser, --set, the defaults, the YAML dump and
// the Markdown reference all read this table; adding a key is adding one line here.
#include "config/config_schema.h"

#include <stdio.h>
#include <string.h>

// Offset of a RunConfig member that must have type T: a wrong type fails to compile
// (the _Generic has no matching association).
#define FIELD(T, member) \
    (offsetof(RunConfig, member) + 0 * sizeof(_Generic(((RunConfig *)0)->member, T: 1)))

#define ANY {BOUND_NONE, BOUND_NONE, 0, 0}
#define AT_LEAST(x) {BOUND_INCLUSIVE, BOUND_NONE, (x), 0}
#define ABOVE(x) {BOUND_EXCLUSIVE, BOUND_NONE, (x), 0}
#define IN_OPEN(a, b) {BOUND_EXCLUSIVE, BOUND_EXCLUSIVE, (a), (b)}      // (a, b)
#define IN_CLOSED_OPEN(a, b) {BOUND_INCLUSIVE, BOUND_EXCLUSIVE, (a), (b)}  // [a, b)
#define IN_OPEN_CLOSED(a, b) {BOUND_EXCLUSIVE, BOUND_INCLUSIVE, (a), (b)}  // (a, b]

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

#define INT(sec, key, def, range, help) \
    {#sec, #key, CT_INT, FIELD(int, sec.key), def, range, NULL, 0, help}
#define FLOAT(sec, key, def, range, help) \
    {#sec, #key, CT_FLOAT, FIELD(double, sec.key), def, range, NULL, 0, help}
#define BOOL(sec, key, def, help) \
    {#sec, #key, CT_BOOL, FIELD(bool, sec.key), def, ANY, NULL, 0, help}
#define STRING(sec, key, def, help) \
    {#sec, #key, CT_STRING, FIELD(char *, sec.key), def, ANY, NULL, 0, help}
#define ENUM(sec, key, T, names, def, help) \
    {#sec, #key, CT_ENUM, FIELD(T, sec.key), def, ANY, names, COUNT(names), help}
#define STRINGS(sec, key, def, help) \
    {#sec, #key, CT_STRINGS, FIELD(StringList, sec.key), def, ANY, NULL, 0, help}
#define FLOATMAP(sec, key, names, def, range, help) \
    {#sec, #key, CT_FLOATMAP, FIELD(FloatMap, sec.key), def, range, names, COUNT(names), help}

// Spellings of the enum values, in the order of the enums of config.h.
static const char *const data_kind_names[] = {"selective_copying", "associative_recall", "text", "tokens",
                                              "listops", "text_classification", "timeseries", "seasonal"};
static const char *const head_names[] = {"lm", "classify", "forecast", "dlinear"};
static const char *const features_names[] = {"M", "S"};
static const char *const pool_names[] = {"mean", "last"};
static const char *const window_norm_names[] = {"none", "revin", "revin_affine", "last"};
static const char *const split_names[] = {"validation", "test"};
static const char *const matmul_names[] = {"openblas", "onednn"};
static const char *const reference_names[] = {"none", "finetuned"};
static const char *const component_names[] = {"in_proj", "conv1d", "x_proj", "dt_proj", "A_log", "out_proj"};

_Static_assert(COUNT(reference_names) == CFG_REFERENCE_FINETUNED + 1, "reference_names");
_Static_assert(COUNT(data_kind_names) == CFG_DATA_SEASONAL + 1, "data_kind_names");
_Static_assert(COUNT(features_names) == CFG_FEATURES_S + 1, "features_names");
_Static_assert(COUNT(head_names) == CFG_HEAD_DLINEAR + 1 && COUNT(pool_names) == CFG_POOL_LAST + 1 &&
                   COUNT(window_norm_names) == CFG_WINDOW_LAST + 1 &&
                   COUNT(split_names) == CFG_SPLIT_TEST + 1,
               "head_names, pool_names, split_names");
// The pruning choices' names are the pruning library's (prune/options.h).
_Static_assert(COUNT(prune_method_names) == CFG_PRUNE_SHEDDER + 1, "prune_method_names");
_Static_assert(COUNT(prune_schedule_names) == CFG_SCHEDULE_EXPONENTIAL + 1, "prune_schedule_names");
_Static_assert(COUNT(prune_strategy_names) == CFG_STRATEGY_COMPONENT + 1, "prune_strategy_names");
_Static_assert(COUNT(prune_weighting_names) == CFG_WEIGHTING_WINDOW + 1, "prune_weighting_names");
_Static_assert(COUNT(prune_shedder_target_names) == CFG_SHEDDER_SSM + 1, "prune_shedder_target_names");
_Static_assert(COUNT(prune_magnitude_scope_names) == CFG_MAGNITUDE_GLOBAL + 1, "prune_magnitude_scope_names");
_Static_assert(COUNT(prune_grad_stat_names) == CFG_GRAD_RMS + 1, "prune_grad_stat_names");
_Static_assert(COUNT(prune_score_norm_names) == CFG_NORM_MEDIAN + 1, "prune_score_norm_names");
// The table reads and writes enum fields as int.
_Static_assert(sizeof(CfgDataKind) == sizeof(int) && sizeof(CfgMatmul) == sizeof(int) &&
                   sizeof(CfgPruneMethod) == sizeof(int) && sizeof(CfgSchedule) == sizeof(int) &&
                   sizeof(CfgStrategy) == sizeof(int) && sizeof(CfgWeighting) == sizeof(int) &&
                   sizeof(CfgShedderTarget) == sizeof(int) && sizeof(CfgMagnitudeScope) == sizeof(int) &&
                   sizeof(CfgGradStat) == sizeof(int) && sizeof(CfgReference) == sizeof(int) && sizeof(CfgScoreNorm) == sizeof(int) &&
                   sizeof(CfgHead) == sizeof(int) && sizeof(CfgPool) == sizeof(int) && sizeof(CfgSplit) == sizeof(int),
               "enum fields are read and written as int");

const ConfigSection config_sections[] = {
    {"model", "Model sizes (docs/DESIGN.md#model) and where the weights come from."},
    {"data", "The training and validation data."},
    {"train", "The training loop."},
    {"optim", "AdamW; the learning rate warms up linearly to lr, then decays linearly to lr_min."},
    {"prune", "Pruning: the method, the sparsity schedule and which tensors are pruned (docs/DESIGN.md#iterative-pruning, #one-shot-methods)."},
    {"stability", "The eigenvalue stability check and correction (docs/DESIGN.md#stability-check)."},
    {"eval", "Evaluation on the validation split."},
    {"checkpoint", "Checkpoints (one HDF5 file per save, docs/DESIGN.md#files)."},
    {"log", "The run folder, metrics and progress output."},
};
const int config_n_sections = COUNT(config_sections);

const ConfigKey config_keys[] = {
    INT(model, d_model, "256", AT_LEAST(1), "width d of the residual stream"),
    INT(model, n_layer, "4", AT_LEAST(0), "number of Mamba blocks; 0 only for head dlinear"),
    INT(model, vocab_size, "0", AT_LEAST(0), "vocabulary size before padding; 0 = taken from the data"),
    INT(model, pad_vocab_size_multiple, "8", AT_LEAST(1),
        "the embedding has vocab_size rounded up to a multiple of this many rows"),
    INT(model, d_state, "16", AT_LEAST(1), "SSM state size N"),
    INT(model, d_conv, "4", AT_LEAST(1), "width K of the causal depthwise convolution"),
    INT(model, expand, "2", AT_LEAST(1), "d_inner = expand * d_model"),
    INT(model, dt_rank, "0", AT_LEAST(0), "rank R of the dt projection; 0 = ceil(d_model / 16)"),
    STRING(model, init, "\"random\"",
           "\"random\" (the docs/DESIGN.md#model initialisation, seeded by train.seed), or the path of a checkpoint or of a "
           "transformers folder to start from"),
    ENUM(model, head, CfgHead, head_names, "lm",
         "lm = next-token prediction with the tied embedding; classify = pool the positions, then a linear layer "
         "to n_classes (cross-entropy, accuracy); forecast = series values in through a linear input projection, the "
         "last position out through a linear layer to data.horizon x n_features values (mean squared error; MSE and "
         "MAE); dlinear = the DLinear baseline (moving-average trend and seasonal parts, two linear maps; no Mamba "
         "blocks: n_layer 0)"),
    INT(model, n_classes, "0", AT_LEAST(0), "classify: the number of classes; 0 = taken from the data"),
    ENUM(model, pool, CfgPool, pool_names, "mean",
         "classify: the mean over the positions of the sequence, or its last position"),
    INT(model, n_features, "0", AT_LEAST(0), "forecast, dlinear: values per time step; 0 = taken from the data"),
    ENUM(model, window_norm, CfgWindowNorm, window_norm_names, "none",
         "forecast: per-window normalisation (docs/DESIGN.md#forecasting); revin = each input window minus its "
         "per-feature mean, over its std, the forecast mapped back (RevIN); revin_affine = the same with a "
         "learnable scale and shift per feature (revin.weight, revin.bias; dense unless prune.include names "
         "them); last = minus the window's last value, added back to the forecast (NLinear)"),

    ENUM(data, kind, CfgDataKind, data_kind_names, "selective_copying",
         "the synthetic selective copying or associative recall task, raw UTF-8 text (byte tokens), or an "
         "llm.c token file; classification (model.head = classify): ListOps generated from the seed, or a TSV "
         "file of label<TAB>text lines (bytes); forecasting (model.head = forecast or dlinear): a CSV file in ETT's "
         "format (timeseries), or a multi-seasonal series generated from the seed (seasonal)"),
    STRING(data, path, "\"\"",
           "the text, token, TSV or CSV file; required when kind is text, tokens, text_classification or timeseries"),
    FLOAT(data, val_fraction, "0.1", IN_OPEN(0, 1), "text and tokens: the fraction at the end of the file held out for validation"),
    INT(data, vocab, "16", AT_LEAST(2), "synthetic tasks: size of the alphabet"),
    INT(data, n_memorize, "16", AT_LEAST(1),
        "synthetic tasks: tokens to copy (selective copying) or key-value pairs to recall (associative recall)"),
    INT(data, val_sequences, "256", AT_LEAST(1), "synthetic tasks and listops: number of validation (and test) sequences"),
    INT(data, min_len, "0", AT_LEAST(0), "listops: fewest tokens of an expression; 0 = max_len / 2"),
    INT(data, max_len, "0", AT_LEAST(0), "listops: most tokens of an expression (<= train.seqlen); 0 = train.seqlen"),
    ENUM(data, split, CfgSplit, split_names, "validation",
         "the held-out split that evaluations read: validation, or test (listops, timeseries, seasonal)"),
    INT(data, horizon, "96", AT_LEAST(1), "forecasting: time steps predicted (the input length is train.seqlen)"),
    ENUM(data, features, CfgFeatures, features_names, "M",
         "forecasting: M = every feature in and out; S = the target (the last column) alone"),
    INT(data, train_rows, "8640", AT_LEAST(1), "forecasting: the first rows, the training split (ETTh: 12 months)"),
    INT(data, val_rows, "2880", AT_LEAST(1),
        "forecasting: the validation split, the rows after the training ones (ETTh: 4 months); its windows' inputs "
        "start up to train.seqlen rows before it"),
    INT(data, test_rows, "2880", AT_LEAST(1), "forecasting: the test split, the rows after validation (ETTh: 4 months)"),
    INT(data, n_series, "7", AT_LEAST(1), "seasonal: series generated (the last is the target of features S)"),

    INT(train, steps, "1000", AT_LEAST(0), "optimizer steps"),
    INT(train, batch_size, "8", AT_LEAST(1), "sequences per step"),
    INT(train, seqlen, "256", AT_LEAST(2), "tokens per training sequence"),
    INT(train, seed, "1234", AT_LEAST(0), "seed of the initialisation, the data order and the calibration samples"),
    INT(train, threads, "0", AT_LEAST(0), "OpenMP threads; 0 = all cores"),
    INT(train, eval_every, "100", AT_LEAST(0), "evaluate every this many steps; 0 = only at the end"),
    INT(train, eval_batches, "16", AT_LEAST(0),
        "validation batches per evaluation during training; 0 = the whole validation split"),
    INT(train, log_every, "10", AT_LEAST(1), "write a metrics line every this many steps"),
    ENUM(train, matmul, CfgMatmul, matmul_names, "onednn",
         "matrix multiplication library (oneDNN measured fastest here: bench_train)"),
    BOOL(train, recompute, "false",
         "keep only each block's output during the forward and recompute its activations in the backward "
         "(the same gradients, one more forward of every block, a fraction of the activation memory: bench_memory)"),
    FLOAT(train, max_memory_gb, "0", AT_LEAST(0),
          "memory (GB, 1e9 bytes) that the model, AdamW and a step's activations may take by the up-front "
          "estimate; 0 = the machine's physical memory. A run estimated to need more is refused before anything is "
          "allocated"),

    FLOAT(optim, lr, "1e-4", ABOVE(0), "peak learning rate"),
    FLOAT(optim, lr_min, "1e-6", AT_LEAST(0), "learning rate reached at the last step; must be <= lr"),
    INT(optim, warmup_steps, "0", AT_LEAST(0), "steps of linear warm-up from 0 to lr"),
    FLOAT(optim, weight_decay, "0.1", AT_LEAST(0), "AdamW decoupled weight decay"),
    FLOAT(optim, beta1, "0.9", IN_CLOSED_OPEN(0, 1), "AdamW beta1"),
    FLOAT(optim, beta2, "0.999", IN_CLOSED_OPEN(0, 1), "AdamW beta2"),
    FLOAT(optim, eps, "1e-8", ABOVE(0), "AdamW epsilon"),
    FLOAT(optim, grad_clip, "1.0", AT_LEAST(0), "clip the global gradient norm to this value; 0 = off"),

    ENUM(prune, method, CfgPruneMethod, prune_method_names, "none",
         "none = dense training; gradient = iterative gradient-aware pruning during training (docs/DESIGN.md#iterative-pruning); "
         "magnitude, wanda, sparsegpt, sparsessm, shedder = one-shot methods (docs/DESIGN.md#one-shot-methods)"),
    FLOAT(prune, alpha, "1.0", AT_LEAST(0), "exponent of the gradient in the score |w| * |g|^alpha; 0 = magnitude"),
    ENUM(prune, grad_stat, CfgGradStat, prune_grad_stat_names, "mean",
         "the gradient statistic |g| of the score over the grad_accum_batches steps (docs/DESIGN.md#gradient-statistics): "
         "mean = |mean g|, abs_mean = mean |g|, rms = sqrt(mean g^2) (empirical Fisher / Optimal Brain Damage)"),
    ENUM(prune, score_norm, CfgScoreNorm, prune_score_norm_names, "none",
         "gradient method: each tensor's scores divided by the mean or the median of its kept weights' scores "
         "before the selection (docs/DESIGN.md#gradient-statistics); none = raw scores"),
    ENUM(prune, schedule, CfgSchedule, prune_schedule_names, "cubic", "shape of the sparsity ramp from start_step to end_step"),
    FLOAT(prune, exp_k, "5.0", ABOVE(0), "rate k of the exponential schedule"),
    FLOAT(prune, initial_sparsity, "0", IN_CLOSED_OPEN(0, 1), "sparsity s_0 up to start_step"),
    FLOAT(prune, final_sparsity, "0.5", IN_CLOSED_OPEN(0, 1),
          "sparsity s_f from end_step on; the target of the one-shot methods"),
    INT(prune, start_step, "0", AT_LEAST(0), "step t0 where the schedule starts"),
    INT(prune, end_step, "0", AT_LEAST(0),
        "step T where final_sparsity is reached; 0 = train.steps * 3 / 4 (integer division)"),
    INT(prune, prune_every, "50", AT_LEAST(1), "recompute the mask every this many steps"),
    INT(prune, grad_accum_batches, "4", AT_LEAST(1), "batches whose gradients are averaged before each scoring"),
    ENUM(prune, strategy, CfgStrategy, prune_strategy_names, "global",
         "global = one threshold over all prunable weights; layerwise = the same sparsity in every tensor; "
         "component = a target per component from component_sparsity"),
    ENUM(prune, reference, CfgReference, reference_names, "none",
         "finetuned = a pruning run also reports the dense model trained the same steps, schedule, data and seed "
         "unpruned (trained once per dense model and configuration in log.dir/references/<key>/, then reused; "
         "docs/DESIGN.md#fair-reference), and its headline ratio is pruned / dense fine-tuned; none = only the dense "
         "model before pruning"),
    FLOAT(prune, distill_weight, "0", IN_CLOSED_OPEN(0, 1),
          "fine-tune against the dense teacher (model.init): the loss is (1 - w) cross-entropy + w T^2 KL(teacher || "
          "student) at temperature T (docs/DESIGN.md#distillation); 0 = off"),
    FLOAT(prune, distill_temperature, "2", ABOVE(0), "distillation: the temperature T of both softmaxes"),
    FLOAT(prune, a_log_sparsity, "-1", IN_CLOSED_OPEN(-1, 1),
          "gradient method, strategy global: A_log's own final sparsity, selected apart from the other weights, "
          "which get the sparsity that keeps the total at final_sparsity (docs/DESIGN.md#a_log); -1 = A_log is "
          "in the one global pool"),
    FLOATMAP(prune, component_sparsity, component_names, "{}", IN_CLOSED_OPEN(0, 1),
             "strategy component: final sparsity of each component named (a component not named gets "
             "final_sparsity); unused by the other strategies"),
    STRINGS(prune, include,
            "[\"mixer.in_proj.weight\", \"mixer.conv1d.weight\", \"mixer.x_proj.weight\", "
            "\"mixer.dt_proj.weight\", \"mixer.A_log\", \"mixer.out_proj.weight\"]",
            "the prunable parameters: name patterns; a pattern with *, ? or [ is a glob over the whole name "
            "(* also matches dots), any other pattern matches as a substring"),
    STRINGS(prune, exclude, "[]", "parameters never pruned even when included (same patterns)"),
    INT(prune, nsamples, "64", AT_LEAST(1), "one-shot methods: number of calibration windows"),
    INT(prune, calib_seqlen, "256", AT_LEAST(2), "one-shot methods: tokens per calibration window"),
    FLOAT(prune, percdamp, "0.01", AT_LEAST(0), "sparsegpt: dampening added to diag(H), as a fraction of its mean"),
    INT(prune, blocksize, "128", AT_LEAST(1), "sparsegpt: columns per block"),
    INT(prune, nm_n, "0", AT_LEAST(0),
        "N:M sparsity (when nm_n and nm_m are both > 0): nm_n weights pruned in every group of nm_m; must be "
        "< nm_m"),
    INT(prune, nm_m, "0", AT_LEAST(0), "the group size M of N:M sparsity"),
    ENUM(prune, magnitude_scope, CfgMagnitudeScope, prune_magnitude_scope_names, "tensor",
         "magnitude: final_sparsity of each tensor (tensor), or one threshold over all prunable tensors (global)"),
    ENUM(prune, sparsessm_weighting, CfgWeighting, prune_weighting_names, "harmonic",
         "sparsessm: weights of the time steps: 1/(t+1), uniform, sparsessm_gamma^t, or the first 25% of the "
         "steps"),
    FLOAT(prune, sparsessm_gamma, "0.9", IN_OPEN_CLOSED(0, 1), "sparsessm: gamma of the geometric weighting"),
    FLOAT(prune, sparsessm_alpha, "0.04", AT_LEAST(0),
          "sparsessm: the in_proj / out_proj sparsity of each layer ranges over final_sparsity +- this, by "
          "sensitivity"),
    BOOL(prune, sparsessm_structured, "false",
         "sparsessm: remove whole state columns of A_log (final_sparsity of the d_state columns of every layer, "
         "with their B and C rows of x_proj), so that d_state shrinks, instead of masking entries"),
    INT(prune, shedder_steps, "1", AT_LEAST(1),
        "shedder: number of structures removed; fewer than model.n_layer (at least one is kept)"),
    ENUM(prune, shedder_target, CfgShedderTarget, prune_shedder_target_names, "block",
         "shedder: remove whole blocks, or only the SSM of a block"),

    BOOL(stability, enabled, "true", "check, and correct, the eigenvalues of the pruned state matrices"),
    FLOAT(stability, epsilon, "0.01", IN_OPEN(0, 1),
          "margin: a violation is max_t |lambda| > 1 - epsilon where the dense model had <= 1 - epsilon"),
    INT(stability, batches, "4", AT_LEAST(1), "calibration batches of the check"),

    INT(eval, seqlen, "0", AT_LEAST(0), "window length of the perplexity evaluation; 0 = train.seqlen"),
    INT(eval, batches, "0", AT_LEAST(0), "validation batches of the final evaluation; 0 = all"),
    BOOL(eval, at_end, "true", "evaluate at the end of the run"),

    INT(checkpoint, every, "0", AT_LEAST(0), "save every this many steps; 0 = only at the end"),
    INT(checkpoint, keep, "3", AT_LEAST(1), "checkpoints kept in the run folder, the oldest deleted first"),

    STRING(log, dir, "\"runs\"", "folder that holds one folder per run"),
    STRING(log, name, "\"\"", "the run's name (its folder is dir/name); \"\" = the config file's base name"),
    BOOL(log, progress, "true", "print a progress line to stderr"),
    BOOL(log, jsonl, "true", "write the metrics as JSON Lines"),
};
const int config_n_keys = COUNT(config_keys);

int config_find_section(const char *name) {
    for (int i = 0; i < config_n_sections; i++)
        if (strcmp(config_sections[i].name, name) == 0) return i;
    return -1;
}

int config_find_key(const char *section, const char *name) {
    for (int i = 0; i < config_n_keys; i++)
        if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, name) == 0) return i;
    return -1;
}

// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
// two neighbours each cost 1 ("stpes" is 1 from "steps").
int config_edit_distance(const char *a, const char *b) {
    enum { MAX = 64 };
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n >= MAX || m >= MAX) return MAX;
    int d[MAX + 1][MAX + 1];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++) {
        for (int j = 1; j <= m; j++) {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best) best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

const char *config_closest(const char *word, const char *const *names, int n) {
    // Close enough to be a typo: 1 edit for short words, 2 from 5 letters on.
    int limit = strlen(word) >= 5 ? 2 : 1;
    const char *best = NULL;
    int best_distance = limit + 1;
    for (int i = 0; i < n; i++) {
        int distance = config_edit_distance(word, names[i]);
        if (distance < best_distance) {
            best = names[i];
            best_distance = distance;
        }
    }
    return best;
}

void config_suggest(const char *word, const char *section, char *out, size_t out_size) {
    enum { MAX_NAMES = 128 };
    const char *names[MAX_NAMES];
    int n = 0;
    if (section) {
        for (int i = 0; i < config_n_keys && n < MAX_NAMES; i++)
            if (strcmp(config_keys[i].section, section) == 0) names[n++] = config_keys[i].name;
    } else {
        for (int i = 0; i < config_n_sections && n < MAX_NAMES; i++) names[n++] = config_sections[i].name;
        names[n++] = "sweep";
    }
    const char *best = config_closest(word, names, n);
    if (best)
        snprintf(out, out_size, "did you mean '%s'? ", best);
    else
        snprintf(out, out_size, "%s", "");
}

void config_range_text(ConfigRange r, char *out, size_t out_size) {
    if (r.lo_kind != BOUND_NONE && r.hi_kind != BOUND_NONE)
        snprintf(out, out_size, "in %c%g, %g%c", r.lo_kind == BOUND_INCLUSIVE ? '[' : '(', r.lo, r.hi,
                 r.hi_kind == BOUND_INCLUSIVE ? ']' : ')');
    else if (r.lo_kind != BOUND_NONE)
        snprintf(out, out_size, "%s %g", r.lo_kind == BOUND_INCLUSIVE ? ">=" : ">", r.lo);
    else if (r.hi_kind != BOUND_NONE)
        snprintf(out, out_size, "%s %g", r.hi_kind == BOUND_INCLUSIVE ? "<=" : "<", r.hi);
    else
        snprintf(out, out_size, "%s", "");
}

void config_describe_expected(const ConfigKey *key, char *out, size_t out_size) {
    char range[64];
    config_range_text(key->range, range, sizeof range);
    const char *space = range[0] ? " " : "";
    switch (key->type) {
    case CT_INT: snprintf(out, out_size, "an integer%s%s", space, range); break;
    case CT_FLOAT: snprintf(out, out_size, "a number%s%s", space, range); break;
    case CT_BOOL: snprintf(out, out_size, "true or false"); break;
    case CT_STRING: snprintf(out, out_size, "a string"); break;
    case CT_STRINGS: snprintf(out, out_size, "a list of name patterns"); break;
    case CT_ENUM:
    case CT_FLOATMAP: {
        size_t used = (size_t)snprintf(out, out_size, "%s", key->type == CT_ENUM ? "one of " : "a mapping of ");
        for (int i = 0; i < key->n_choices && used < out_size; i++)
            used += (size_t)snprintf(out + used, out_size - used, "%s%s", i ? ", " : "", key->choices[i]);
        if (key->type == CT_FLOATMAP && used < out_size)
            snprintf(out + used, out_size - used, " to numbers%s%s", space, range);
        break;
    }
    }
}
