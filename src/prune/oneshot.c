// The one-shot methods' driver (see oneshot.h): the calibration windows, the walk over the
// blocks, and the dispatch to the kernels of linear_prune.h, to SparseSSM (sparsessm.h)
// and to Mamba-Shedder (shedder.h).
//
// Calibration: prune.nsamples windows of prune.calib_seqlen tokens, drawn as the training
// batch number ONESHOT_CALIB_BATCH of data_train_batch: a fixed function of the data's
// seed (train.seed), and an index no training run reaches. Every window weighs the same:
// H = (2/n) Σ XᵀX over the n = nsamples * calib_seqlen tokens.
//
// The walk (docs/DESIGN.md#one-shot-methods; wanda, sparsegpt, sparsessm): the windows are embedded once; X_i, the
// inputs of block i, are the outputs of the already pruned blocks < i. In block i:
//   first   conv1d (and anything else of the block under a mask that is neither a linear
//           layer nor, for sparsessm, A_log) by magnitude: it needs no statistics, and
//           the passes below then see it pruned;
//   then    one pass of the block per masked linear layer, in the block's order (in_proj,
//           x_proj, dt_proj, out_proj), in batches of train.batch_size windows (one tape,
//           no backward): the statistics of that layer's input (u, xs, δ, gated) with
//           every layer before it already pruned, then prune it (the reference
//           SparseGPT's "true sequential"). sparsessm's A_log scores come from x_proj's
//           pass; A_log is pruned right after x_proj;
//   last    X_{i+1} = the pruned block applied to X_i (not after the last block).
// wanda and sparsegpt prune A_log (D, N) and conv1d (D, 1, K), which are not linear
// layers, by magnitude per tensor (N:M along rows of N and K entries). Masked tensors
// outside the blocks (none by default) are pruned by magnitude too. magnitude needs no
// calibration: every masked tensor, per tensor or under one global threshold
// (prune.magnitude_scope).
//
// sparsessm: the linear layers by SparseGPT. Unless N:M is asked for (or sparsessm_alpha
// is 0), in_proj's and out_proj's sparsities follow the component-sensitivity allocation: the sensitivities
// Σ_j H_jj² / cols of every layer come from a first pass of the windows through the dense
// model (only the diagonals of H, i.e. the column sums of squares), before any pruning.
// A_log: the time-weighted OBS scores over the windows of pass 1 (divided by nsamples),
// masked per layer (final_sparsity of the entries, or N:M along the state axis), or with
// prune.sparsessm_structured, whole state columns: final_sparsity of the d_state columns
// of every layer are chosen in pass 1, their B and C rows of x_proj zeroed at once (the
// next blocks calibrate on exactly what the smaller model computes), and at the end the
// model is rebuilt with the smaller d_state.
//
// shedder: the greedy search on the calibration windows, then the extraction.
#include "prune/oneshot.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"          // defines: the ops of mamba_block_forward
#include "core/dist.h"             // defines: dist_size, dist_rank, dist_allreduce_sum
#include "core/timer.h"            // defines: now_seconds
#include "prune/linear_prune.h"    // defines: PruneTarget, WeightView, the kernels, LinearStats
#include "prune/shedder.h"         // defines: shedder_search, shedder_extract
#include "prune/sparsessm.h"       // defines: the A_log scores and masks, shrink, allocation

// The linear layers of a block, in the order the block computes them.
typedef enum LinearSlot { SLOT_IN_PROJ, SLOT_X_PROJ, SLOT_DT_PROJ, SLOT_OUT_PROJ, N_SLOTS } LinearSlot;

static int slot_of(PruneComponent component) {
    switch (component) {
    case PRUNE_IN_PROJ: return SLOT_IN_PROJ;
    case PRUNE_X_PROJ: return SLOT_X_PROJ;
    case PRUNE_DT_PROJ: return SLOT_DT_PROJ;
    case PRUNE_OUT_PROJ: return SLOT_OUT_PROJ;
    default: return -1;
    }
}

// Everything one run of the driver holds.
typedef struct Oneshot {
    const PruneOptions *o;
    MambaModel *model;
    PruneMasks *masks;
    int nsamples, seqlen, batch;
    int32_t *tokens, *targets;    // (nsamples, seqlen)
    float *values;                // a series (heads.h): (nsamples, seqlen, n_features) instead of tokens
    float *future;                // and its values to predict (nsamples, horizon, n_features)
    float *x, *x_next;            // (nsamples * seqlen, d_model): the inputs of the current block, and its outputs
    Tape tape;
    PruneTarget target;
    // sparsessm
    float *time_weights;          // (seqlen): A_log is scored (NULL: by magnitude)
    double *in_proj_sparsity;     // (n_layer) the allocation, or NULL (target for every layer)
    double *out_proj_sparsity;
    uint8_t *state_keep;          // (n_layer, d_state) kept state columns (structured), or NULL
    int n_state_keep;
    double statistics_s, pruning_s, forward_s;
} Oneshot;

// A masked tensor as (rows, cols): a linear layer's (out, in); conv1d (D, 1, K) as (D, K);
// anything else by its last dimension.
static WeightView view_of(MaskedTensor *m) {
    const Tensor *t = m->tensor;
    int cols = t->shape[t->ndim - 1];
    return (WeightView){m->name, t->data, m->keep, (int)(t->size / (size_t)cols), cols};
}

static size_t count_pruned(const MaskedTensor *m) {
    size_t n = 0;
    for (size_t i = 0; i < m->tensor->size; i++) n += m->keep[i] == 0;
    return n;
}

static void zero_pruned(MaskedTensor *m) {
    for (size_t i = 0; i < m->tensor->size; i++)
        if (!m->keep[i]) m->tensor->data[i] = 0.0f;
}

static cJSON *tensor_report(const MaskedTensor *m, const char *how, double seconds) {
    cJSON *o = cJSON_CreateObject();
    size_t pruned = count_pruned(m);
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "pruned_by", how);
    cJSON_AddNumberToObject(o, "pruned", (double)pruned);
    cJSON_AddNumberToObject(o, "size", (double)m->tensor->size);
    cJSON_AddNumberToObject(o, "sparsity", (double)pruned / (double)m->tensor->size);
    cJSON_AddNumberToObject(o, "seconds", seconds);
    return o;
}

static cJSON *numbers_json(const double *values, int n) {
    cJSON *array = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(array, cJSON_CreateNumber(values[i]));
    return array;
}

// ---- calibration ----

static int calibration_check(const PruneOptions *o, const Dataset *data, const MambaModel *model, Error *err) {
    int L = o->calib_seqlen;
    if (o->nsamples < 1) return error_set(err, "prune.nsamples: must be >= 1, got %d", o->nsamples);
    if (L < 2) return error_set(err, "prune.calib_seqlen: must be >= 2, got %d", L);
    if (!data_has_train(data))
        return error_set(err, "prune.method: the one-shot methods calibrate on the training split, and %s has none",
                         data->path ? data->path : "the data");
    // The minimum lengths of data.h's layouts, and a window of L+1 tokens for text.
    if (data->kind == DATA_SELECTIVE_COPYING && L < 2 * data->n_memorize)
        return error_set(err, "prune.calib_seqlen: %d is too short for selective copying with data.n_memorize = %d "
                              "(needs >= %d)", L, data->n_memorize, 2 * data->n_memorize);
    if (data->kind == DATA_ASSOCIATIVE_RECALL && L < 3 * data->n_memorize)
        return error_set(err, "prune.calib_seqlen: %d is too short for associative recall with data.n_memorize = %d "
                              "(needs >= %d)", L, data->n_memorize, 3 * data->n_memorize);
    if (data_is_series(data) && data->train_rows < (long)L + data->horizon)
        return error_set(err, "prune.calib_seqlen: %d + data.horizon %d is more than the %ld training rows of %s", L,
                         data->horizon, data->train_rows, data->path ? data->path : "the series");
    if ((data->kind == DATA_TEXT || data->kind == DATA_TOKENS) && data->n_train < (long)L + 1)
        return error_set(err, "prune.calib_seqlen: %d needs %d training tokens, and %s has %ld", L, L + 1, data->path,
                         data->n_train);
    if (data->vocab_size > model->config.vocab_padded)
        return error_set(err, "prune.method: the data's vocabulary (%d) is larger than the model's (%d)",
                         data->vocab_size, model->config.vocab_padded);
    return 0;
}

static void oneshot_init(Oneshot *s, const PruneOptions *o, const Dataset *data, MambaModel *model, PruneMasks *masks,
                         bool calibrates) {
    memset(s, 0, sizeof *s);
    s->o = o;
    s->model = model;
    s->masks = masks;
    s->nsamples = o->nsamples;
    s->seqlen = o->calib_seqlen;
    s->batch = o->batch_size < s->nsamples ? o->batch_size : s->nsamples;
    s->target = (PruneTarget){.sparsity = o->final_sparsity, .nm_n = o->nm_n, .nm_m = o->nm_m};
    if (calibrates) {
        size_t tokens = (size_t)s->nsamples * s->seqlen;
        s->tokens = xmalloc(tokens * sizeof(int32_t));
        s->targets = xmalloc(tokens * sizeof(int32_t));
        if (data_is_series(data)) {  // heads.h: the forecasting model reads values
            const size_t F = (size_t)data_n_features(data);
            s->values = xmalloc(tokens * F * sizeof(float));
            s->future = xmalloc((size_t)s->nsamples * (size_t)data_horizon(data) * F * sizeof(float));
            data_train_values(data, ONESHOT_CALIB_BATCH, s->nsamples, s->seqlen, s->values, s->future);
        } else {
            data_train_batch(data, ONESHOT_CALIB_BATCH, s->nsamples, s->seqlen, s->tokens, s->targets);
        }
    }
    tape_init(&s->tape, 64u << 20);
    s->tape.recording = false;
}

static void oneshot_free(Oneshot *s) {
    free(s->tokens);
    free(s->targets);
    free(s->values);
    free(s->future);
    free(s->x);
    free(s->x_next);
    free(s->time_weights);
    free(s->in_proj_sparsity);
    free(s->out_proj_sparsity);
    free(s->state_keep);
    tape_free(&s->tape);
}

// X_0: the embedding of every window (a series: its input projection).
static void embed_windows(Oneshot *s) {
    double start = now_seconds();
    int d = s->model->config.d_model;
    size_t rows = (size_t)s->nsamples * s->seqlen;
    if (!s->x) s->x = xmalloc(rows * d * sizeof(float));
    if (!s->x_next) s->x_next = xmalloc(rows * d * sizeof(float));
    if (s->values) {
        tape_reset(&s->tape);
        Tensor *x = mamba_embed_values(&s->tape, s->model, s->values, s->nsamples, s->seqlen);
        memcpy(s->x, x->data, rows * d * sizeof(float));
        tape_reset(&s->tape);
    } else {
        for (size_t t = 0; t < rows; t++)
            memcpy(s->x + t * d, s->model->embedding.data + (size_t)s->tokens[t] * d, (size_t)d * sizeof(float));
    }
    s->forward_s += now_seconds() - start;
}

// What one pass over the windows through block i collects.
typedef struct BlockPass {
    LinearStats *stats[N_SLOTS];  // the statistics of each linear's input, or NULL
    double *alog_scores;          // (D, N) sparsessm's A_log scores are added here, or NULL
    bool outputs;                 // write the block's outputs into x_next
} BlockPass;

static void block_pass(Oneshot *s, int i, const BlockPass *pass) {
    const MambaConfig *cfg = &s->model->config;
    MambaLayer *layer = &s->model->layers[i];
    int d = cfg->d_model, L = s->seqlen;
    // Under mpirun each process passes its own run of windows, and the statistics are
    // summed over the processes (docs/DESIGN.md#data-parallel-training).
    const int P = dist_size(), r = dist_rank();
    const int first = (int)((long)r * s->nsamples / P), last = (int)((long)(r + 1) * s->nsamples / P);
    for (int b0 = first; b0 < last; b0 += s->batch) {
        int nb = last - b0 < s->batch ? last - b0 : s->batch, T = nb * L;
        tape_reset(&s->tape);
        Tensor *x = tensor_view(&s->tape, s->x + (size_t)b0 * L * d, 2, (int[]){T, d});
        MambaBlockTrace trace;
        Tensor *out = mamba_block_forward(&s->tape, cfg, layer, x, nb, L, &trace);
        const Tensor *inputs[N_SLOTS] = {trace.u, trace.xs, trace.delta, trace.gated};
        for (int k = 0; k < N_SLOTS; k++)
            if (pass->stats[k]) linear_stats_add(pass->stats[k], inputs[k]->data, T);
        if (pass->alog_scores) {
            SelectiveScanShape shape = {.batch = nb, .seqlen = L, .d_inner = cfg->d_inner, .d_state = cfg->d_state};
            sparsessm_accumulate_alog_scores(&shape, trace.xs->data, trace.dt->data, layer->dt_proj_bias.data,
                                             layer->A_log.data, trace.B_ssm->data, s->time_weights, pass->alog_scores);
        }
        if (pass->outputs) memcpy(s->x_next + (size_t)b0 * L * d, out->data, (size_t)T * d * sizeof(float));
    }
    tape_reset(&s->tape);
    if (P == 1) return;
    for (int k = 0; k < N_SLOTS; k++) {
        LinearStats *st = pass->stats[k];
        if (!st) continue;
        double tokens = (double)st->tokens;
        dist_allreduce_sum_double(&tokens, 1);
        st->tokens = (long)tokens;
        dist_allreduce_sum_double(st->sq, (size_t)st->cols);
        if (st->gram) dist_allreduce_sum(st->gram, (size_t)st->cols * (size_t)st->cols);
    }
    if (pass->alog_scores) dist_allreduce_sum_double(pass->alog_scores, (size_t)cfg->d_inner * cfg->d_state);
}

// x <- the outputs of block i.
static void propagate(Oneshot *s, int i) {
    double start = now_seconds();
    block_pass(s, i, &(BlockPass){.outputs = true});
    float *t = s->x;
    s->x = s->x_next;
    s->x_next = t;
    s->forward_s += now_seconds() - start;
}

// ---- pruning one tensor ----

static int prune_by_magnitude(Oneshot *s, MaskedTensor *m, cJSON *tensors, Error *err) {
    double start = now_seconds();
    WeightView v = view_of(m);
    if (magnitude_prune(&v, &s->target, err)) return -1;
    double seconds = now_seconds() - start;
    cJSON_AddItemToArray(tensors, tensor_report(m, "magnitude", seconds));
    s->pruning_s += seconds;
    return 0;
}

// A linear layer by wanda or sparsegpt (sparsessm: sparsegpt), from the statistics of its input.
static int prune_linear(Oneshot *s, MaskedTensor *m, const LinearStats *stats, const PruneTarget *target,
                        cJSON *tensors, Error *err) {
    double start = now_seconds();
    WeightView v = view_of(m);
    if (stats->cols != v.cols)
        return error_set(err, "%s: %d input columns, but its input has %d", m->name, v.cols, stats->cols);
    cJSON *o;
    if (s->o->method == PRUNE_METHOD_WANDA) {
        if (wanda_prune(&v, stats->sq, target, err)) return -1;
        o = tensor_report(m, "wanda", 0);
    } else {
        float *H = xmalloc((size_t)v.cols * v.cols * sizeof(float));
        linear_stats_hessian(stats, H);
        SparsegptOptions options = {s->o->percdamp, s->o->blocksize};
        SparsegptResult result;
        int rc = sparsegpt_prune(&v, H, &options, target, &result, err);
        free(H);
        if (rc) return -1;
        o = tensor_report(m, "sparsegpt", 0);
        cJSON_AddNumberToObject(o, "obs_loss", result.obs_loss);
        cJSON_AddNumberToObject(o, "dead_columns", result.dead_columns);
    }
    double seconds = now_seconds() - start;
    cJSON_ReplaceItemInObject(o, "seconds", cJSON_CreateNumber(seconds));
    cJSON_AddItemToArray(tensors, o);
    s->pruning_s += seconds;
    return 0;
}

// sparsessm's A_log of block i from its summed scores (D, N). Entries pruned before stay
// pruned (they score -inf). Structured: chooses the kept state columns instead and zeroes
// the dropped columns' B and C rows of x_proj (x_proj must be pruned already).
static int prune_alog(Oneshot *s, int i, MaskedTensor *m, double *scores, cJSON *layer_report, cJSON *tensors,
                      Error *err) {
    double start = now_seconds();
    const MambaConfig *cfg = &s->model->config;
    int D = cfg->d_inner, N = cfg->d_state;
    for (int k = 0; k < D * N; k++) scores[k] = m->keep[k] ? scores[k] / s->nsamples : -INFINITY;
    if (s->state_keep) {
        uint8_t *keep = s->state_keep + (size_t)i * N;
        int kept = sparsessm_choose_state_columns(scores, D, N, s->target.sparsity, keep, err);
        if (kept < 0) return -1;
        s->n_state_keep = kept;
        Tensor *x_proj = &s->model->layers[i].x_proj_weight;
        int R = cfg->dt_rank;
        for (int n = 0; n < N; n++) {
            if (keep[n]) continue;
            memset(x_proj->data + (size_t)(R + n) * D, 0, sizeof(float) * D);      // B row
            memset(x_proj->data + (size_t)(R + N + n) * D, 0, sizeof(float) * D);  // C row
        }
        cJSON *columns = cJSON_AddArrayToObject(layer_report, "state_columns_kept");
        for (int n = 0; n < N; n++)
            if (keep[n]) cJSON_AddItemToArray(columns, cJSON_CreateNumber(n));
    } else {
        uint8_t *mask = xmalloc((size_t)D * N);
        int rc = prune_target_is_nm(&s->target)
                     ? sparsessm_mask_nm(scores, D, N, s->target.nm_m - s->target.nm_n, s->target.nm_m, mask, err)
                     : sparsessm_mask_unstructured(scores, D, N, s->target.sparsity, mask, err);
        for (int k = 0; k < D * N && rc == 0; k++) m->keep[k] = m->keep[k] && mask[k];
        free(mask);
        if (rc) return error_prefix(err, "%s", m->name);
        zero_pruned(m);
        double seconds = now_seconds() - start;
        cJSON_AddItemToArray(tensors, tensor_report(m, "sparsessm", seconds));
    }
    s->pruning_s += now_seconds() - start;
    return 0;
}

// ---- the walk over the blocks: wanda, sparsegpt, sparsessm ----

static int prune_block(Oneshot *s, int i, cJSON *layer_report, Error *err) {
    const MambaConfig *cfg = &s->model->config;
    MaskedTensor *linear[N_SLOTS] = {NULL}, *alog = NULL;
    cJSON *tensors = cJSON_AddArrayToObject(layer_report, "tensors");
    for (int k = 0; k < s->masks->n; k++) {
        MaskedTensor *m = &s->masks->tensors[k];
        if (m->layer != i) continue;
        int slot = slot_of(m->component);
        if (slot >= 0) linear[slot] = m;
        else if (m->component == PRUNE_A_LOG && s->time_weights) alog = m;
        else if (prune_by_magnitude(s, m, tensors, err)) return -1;
    }
    bool gram = s->o->method != PRUNE_METHOD_WANDA;
    LinearStats stats[N_SLOTS];
    BlockPass pass = {{NULL}, NULL, false};
    const int cols[N_SLOTS] = {cfg->d_model, cfg->d_inner, cfg->dt_rank, cfg->d_inner};
    for (int k = 0; k < N_SLOTS; k++) {
        linear_stats_init(&stats[k], cols[k], gram);
        if (linear[k]) pass.stats[k] = &stats[k];
    }
    if (alog) pass.alog_scores = xcalloc((size_t)cfg->d_inner * cfg->d_state, sizeof(double));

    // One pass per linear layer, in the order the block computes them, each on the block
    // with the layers before it already pruned (the reference SparseGPT's "true
    // sequential"): x_proj sees the pruned in_proj's output, dt_proj the pruned x_proj's,
    // out_proj all three. A_log's scores come with x_proj's pass; A_log is pruned after x_proj.
    int rc = 0;
    double statistics_s = 0.0;
    for (int k = 0; k < N_SLOTS && rc == 0; k++) {
        bool scores_here = k == SLOT_X_PROJ && pass.alog_scores;
        if (!pass.stats[k] && !scores_here) continue;
        double start = now_seconds();
        BlockPass one = {.alog_scores = scores_here ? pass.alog_scores : NULL};
        one.stats[k] = pass.stats[k];
        block_pass(s, i, &one);
        statistics_s += now_seconds() - start;
        if (pass.stats[k]) {
            PruneTarget target = s->target;
            if (k == SLOT_IN_PROJ && s->in_proj_sparsity) target.sparsity = s->in_proj_sparsity[i];
            if (k == SLOT_OUT_PROJ && s->out_proj_sparsity) target.sparsity = s->out_proj_sparsity[i];
            rc = prune_linear(s, linear[k], &stats[k], &target, tensors, err);
        }
        if (rc == 0 && scores_here) rc = prune_alog(s, i, alog, pass.alog_scores, layer_report, tensors, err);
    }
    s->statistics_s += statistics_s;
    for (int k = 0; k < N_SLOTS; k++) linear_stats_free(&stats[k]);
    free(pass.alog_scores);
    cJSON_AddNumberToObject(layer_report, "statistics_s", statistics_s);
    return rc;
}

// block_inputs (n_layer, nsamples * seqlen, d_model), or NULL: receives each block's
// calibration input. s->x already holds block 0's inputs when embedded is true.
static int prune_blocks_from(Oneshot *s, bool embedded, float *block_inputs, cJSON *report, Error *err) {
    int n_layer = s->model->config.n_layer;
    size_t block_floats = (size_t)s->nsamples * s->seqlen * s->model->config.d_model;
    cJSON *layers = cJSON_AddArrayToObject(report, "layers");
    if (!embedded) embed_windows(s);
    for (int i = 0; i < n_layer; i++) {
        if (block_inputs) memcpy(block_inputs + (size_t)i * block_floats, s->x, block_floats * sizeof(float));
        cJSON *layer_report = cJSON_CreateObject();
        cJSON_AddItemToArray(layers, layer_report);
        cJSON_AddNumberToObject(layer_report, "layer", i);
        double start = now_seconds();
        if (prune_block(s, i, layer_report, err)) return error_prefix(err, "layer %d", i);
        cJSON_AddNumberToObject(layer_report, "seconds", now_seconds() - start);
        if (i + 1 < n_layer) propagate(s, i);
    }
    return 0;
}

static int prune_blocks(Oneshot *s, cJSON *report, Error *err) { return prune_blocks_from(s, false, NULL, report, err); }

// ---- magnitude ----

static int prune_magnitude(Oneshot *s, cJSON *report, Error *err) {
    cJSON *tensors = cJSON_AddArrayToObject(report, "tensors");
    if (s->o->magnitude_scope == PRUNE_MAGNITUDE_TENSOR) {
        for (int k = 0; k < s->masks->n; k++)
            if (prune_by_magnitude(s, &s->masks->tensors[k], tensors, err)) return -1;
        return 0;
    }
    if (prune_target_is_nm(&s->target))
        return error_set(err, "prune.magnitude_scope: global is unstructured, N:M (prune.nm_n, prune.nm_m) is per "
                              "tensor: use magnitude_scope: tensor");
    double start = now_seconds();
    WeightView *views = xmalloc(((size_t)s->masks->n + 1) * sizeof(WeightView));
    for (int k = 0; k < s->masks->n; k++) views[k] = view_of(&s->masks->tensors[k]);
    int rc = magnitude_prune_global(views, s->masks->n, s->target.sparsity, err);
    free(views);
    for (int k = 0; k < s->masks->n && rc == 0; k++)
        cJSON_AddItemToArray(tensors, tensor_report(&s->masks->tensors[k], "magnitude (global)", 0));
    s->pruning_s += now_seconds() - start;
    return rc;
}

// Tensors under a mask that no block owns (an embedding or a final norm someone
// included): by magnitude, per tensor.
static int prune_outside_blocks(Oneshot *s, cJSON *report, Error *err) {
    cJSON *tensors = NULL;
    for (int k = 0; k < s->masks->n; k++) {
        MaskedTensor *m = &s->masks->tensors[k];
        if (m->layer >= 0 && m->layer < s->model->config.n_layer) continue;
        if (!tensors) tensors = cJSON_AddArrayToObject(report, "outside_blocks");
        if (prune_by_magnitude(s, m, tensors, err)) return -1;
    }
    return 0;
}

// ---- replacing the model (sparsessm structured, shedder) ----

// Moves *from into *to. mamba_model_create points the parameter table at the struct's
// own tensors (embedding, final norm, the heads' and a forecaster's input projection and
// revin.*), so those entries follow the move.
static void model_move(MambaModel *to, MambaModel *from) {
    *to = *from;
    // Every entry that points inside *from moves to the same offset inside *to, so a tensor
    // the struct gains later follows without a list to keep.
    uintptr_t lo = (uintptr_t)from, hi = lo + sizeof *from;
    for (int k = 0; k < to->n_params; k++) {
        uintptr_t p = (uintptr_t)to->params[k].tensor;
        if (p >= lo && p < hi) to->params[k].tensor = (Tensor *)((char *)to + (p - lo));
    }
    memset(from, 0, sizeof *from);
}

// Where a layer of a replacement model comes from: its layer in the old model, and for
// x_proj and A_log the state columns kept.
typedef struct MaskSource {
    int old_layer;             // the old layer of a new layer's parameter
    const uint8_t *state_keep; // (N_old) kept state columns of that layer, or NULL (same shape)
} MaskSource;

// Replaces *model by *replacement and re-creates *masks on it (prunable by name, as the
// config says), each new mask copied from the old mask of the same parameter:
// sources[j] says where new layer j comes from.
static void replace_model(const PruneOptions *o, MambaModel *model, PruneMasks *masks, MambaModel *replacement,
                          const MaskSource *sources) {
    MambaModel old;
    model_move(&old, model);
    model_move(model, replacement);
    PruneMasks old_masks = *masks;
    bool *prunable = xmalloc((size_t)model->n_params * sizeof(bool));
    for (int k = 0; k < model->n_params; k++) prunable[k] = prune_param_prunable(o, model->params[k].name);
    prune_masks_create(masks, model, prunable);
    free(prunable);
    int N_old = old.config.d_state, R = old.config.dt_rank;
    for (int k = 0; k < masks->n; k++) {
        MaskedTensor *m = &masks->tensors[k];
        char old_name[128];
        const MaskSource *src = m->layer >= 0 ? &sources[m->layer] : NULL;
        if (src) {
            const char *rest = strstr(m->name, ".mixer.") ? strstr(m->name, ".mixer.") : strstr(m->name, ".norm.");
            snprintf(old_name, sizeof old_name, "backbone.layers.%d%s", src->old_layer, rest ? rest : "");
        } else {
            snprintf(old_name, sizeof old_name, "%s", m->name);
        }
        MaskedTensor *o = prune_masks_find(&old_masks, old_name);
        if (!o) continue;
        if (src && src->state_keep && (m->component == PRUNE_A_LOG || m->component == PRUNE_X_PROJ)) {
            // Rows (x_proj: δ rows, then the kept B rows, then the kept C rows) or columns (A_log) of the kept states.
            int cols = m->tensor->shape[1];
            if (m->component == PRUNE_A_LOG) {
                for (int d = 0; d < m->tensor->shape[0]; d++)
                    for (int n = 0, j = 0; n < N_old; n++)
                        if (src->state_keep[n]) m->keep[(size_t)d * cols + j++] = o->keep[(size_t)d * N_old + n];
            } else {
                int n_keep = (m->tensor->shape[0] - R) / 2;
                memcpy(m->keep, o->keep, (size_t)R * cols);
                for (int n = 0, j = 0; n < N_old; n++) {
                    if (!src->state_keep[n]) continue;
                    memcpy(m->keep + (size_t)(R + j) * cols, o->keep + (size_t)(R + n) * cols, (size_t)cols);
                    memcpy(m->keep + (size_t)(R + n_keep + j) * cols, o->keep + (size_t)(R + N_old + n) * cols,
                           (size_t)cols);
                    j++;
                }
            }
        } else if (o->tensor->size == m->tensor->size) {
            memcpy(m->keep, o->keep, m->tensor->size);
        }
    }
    prune_masks_free(&old_masks);
    mamba_model_free(&old);
}

// ---- sparsessm ----

// The component-sensitivity allocation of in_proj's and out_proj's sparsities from a pass
// of the windows through the dense model.
static void allocate_sparsity(Oneshot *s, cJSON *report) {
    const MambaConfig *cfg = &s->model->config;
    int n_layer = cfg->n_layer;
    double *sensitivity[2] = {xmalloc(sizeof(double) * n_layer), xmalloc(sizeof(double) * n_layer)};
    const int slots[2] = {SLOT_IN_PROJ, SLOT_OUT_PROJ}, cols[2] = {cfg->d_model, cfg->d_inner};
    double start = now_seconds();
    embed_windows(s);
    for (int i = 0; i < n_layer; i++) {
        LinearStats stats[2];
        BlockPass pass = {{NULL}, NULL, i + 1 < n_layer};
        for (int k = 0; k < 2; k++) {
            linear_stats_init(&stats[k], cols[k], false);
            pass.stats[slots[k]] = &stats[k];
        }
        block_pass(s, i, &pass);
        for (int k = 0; k < 2; k++) {
            // sparsessm_sensitivity reads only the diagonal of H.
            float *H = xcalloc((size_t)cols[k] * cols[k], sizeof(float));
            for (int j = 0; j < cols[k]; j++) H[(size_t)j * cols[k] + j] = (float)(2.0 * stats[k].sq[j] / stats[k].tokens);
            sensitivity[k][i] = sparsessm_sensitivity(H, cols[k]);
            free(H);
            linear_stats_free(&stats[k]);
        }
        float *t = s->x;
        s->x = s->x_next;
        s->x_next = t;
    }
    s->statistics_s += now_seconds() - start;
    s->in_proj_sparsity = xmalloc(sizeof(double) * n_layer);
    s->out_proj_sparsity = xmalloc(sizeof(double) * n_layer);
    double p = s->target.sparsity, alpha = s->o->sparsessm_alpha;
    sparsessm_allocate_sparsity(sensitivity[0], n_layer, p, alpha, s->in_proj_sparsity);
    sparsessm_allocate_sparsity(sensitivity[1], n_layer, p, alpha, s->out_proj_sparsity);
    cJSON *allocation = cJSON_AddObjectToObject(report, "allocation");
    const char *names[2] = {"in_proj", "out_proj"};
    double *sparsities[2] = {s->in_proj_sparsity, s->out_proj_sparsity};
    for (int k = 0; k < 2; k++) {
        cJSON *o = cJSON_AddObjectToObject(allocation, names[k]);
        cJSON_AddItemToObject(o, "sensitivity", numbers_json(sensitivity[k], n_layer));
        cJSON_AddItemToObject(o, "sparsity", numbers_json(sparsities[k], n_layer));
        free(sensitivity[k]);
    }
}

static int prune_sparsessm(Oneshot *s, cJSON *report, Error *err) {
    const PruneOptions *o = s->o;
    const MambaConfig *cfg = &s->model->config;
    int n_layer = cfg->n_layer, N = cfg->d_state;
    bool structured = o->sparsessm_structured;
    if (structured && prune_target_is_nm(&s->target))
        return error_set(err, "prune.sparsessm_structured: removes final_sparsity of the state columns, and does not "
                              "combine with N:M (prune.nm_n, prune.nm_m)");
    bool any_alog = false, linear_masked[2] = {false, false};
    for (int i = 0; i < n_layer; i++) {
        bool has_alog = false;
        for (int k = 0; k < s->masks->n; k++) {
            const MaskedTensor *m = &s->masks->tensors[k];
            if (m->layer != i) continue;
            has_alog = has_alog || m->component == PRUNE_A_LOG;
            linear_masked[0] = linear_masked[0] || m->component == PRUNE_IN_PROJ;
            linear_masked[1] = linear_masked[1] || m->component == PRUNE_OUT_PROJ;
        }
        if (structured && !has_alog)
            return error_set(err, "prune.sparsessm_structured: removes state columns in every layer, and layer %d's "
                                  "A_log has no mask (see prune.include, prune.exclude)", i);
        any_alog = any_alog || has_alog;
    }
    if (any_alog) {
        s->time_weights = xmalloc(sizeof(float) * s->seqlen);
        if (sparsessm_time_weights(o->sparsessm_weighting, o->sparsessm_gamma, s->seqlen,
                                   s->time_weights, err))
            return error_prefix(err, "prune.sparsessm_weighting");
    }
    if (structured) s->state_keep = xcalloc((size_t)n_layer * N, 1);
    if (!prune_target_is_nm(&s->target) && o->sparsessm_alpha > 0 && (linear_masked[0] || linear_masked[1]))
        allocate_sparsity(s, report);
    if (prune_blocks(s, report, err)) return -1;
    if (!structured) return 0;

    double start = now_seconds();
    MambaModel smaller;
    if (sparsessm_shrink_state(s->model, s->state_keep, s->n_state_keep, &smaller, err)) return -1;
    MaskSource *sources = xmalloc(sizeof(MaskSource) * n_layer);
    for (int i = 0; i < n_layer; i++) sources[i] = (MaskSource){i, s->state_keep + (size_t)i * N};
    replace_model(o, s->model, s->masks, &smaller, sources);
    free(sources);
    cJSON *columns = cJSON_AddObjectToObject(report, "state_columns");
    cJSON_AddNumberToObject(columns, "d_state_before", N);
    cJSON_AddNumberToObject(columns, "d_state_after", s->n_state_keep);
    s->pruning_s += now_seconds() - start;
    return 0;
}

// ---- shedder ----

static int prune_shedder(Oneshot *s, cJSON *report, Error *err) {
    const PruneOptions *o = s->o;
    int n_layer = s->model->config.n_layer, steps = o->shedder_steps;
    ShedderTarget target = o->shedder_target;
    ShedderOptions options = {steps, target, s->batch};
    ShedderRemoval *removals = xcalloc((size_t)(steps > 0 ? steps : 1), sizeof(ShedderRemoval));
    cJSON *log = cJSON_AddArrayToObject(report, "search_log");
    cJSON_AddStringToObject(report, "target", target == SHEDDER_SSM ? "ssm" : "block");
    double start = now_seconds();
    // A forecaster's removal is scored by its MSE on the series windows, an LM's by perplexity.
    const char *metric = s->values ? "mse" : "perplexity";
    int rc = s->values ? shedder_search_values(s->model, s->values, s->future, s->nsamples, s->seqlen, &options,
                                               removals, log, err)
                       : shedder_search(s->model, s->tokens, s->targets, s->nsamples, s->seqlen, &options, removals,
                                        log, err);
    s->statistics_s += now_seconds() - start;
    MambaModel extracted;
    if (rc == 0) {
        start = now_seconds();
        rc = shedder_extract(s->model, target, removals, steps, &extracted, err);
    }
    if (rc == 0) {
        cJSON *removed = cJSON_AddArrayToObject(report, "removals");
        bool *gone = xcalloc((size_t)n_layer, sizeof(bool));
        for (int k = 0; k < steps; k++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "layer", removals[k].layer);
            cJSON_AddNumberToObject(o, metric, removals[k].score);
            cJSON_AddNumberToObject(o, "seconds", removals[k].seconds);
            cJSON_AddItemToArray(removed, o);
            gone[removals[k].layer] = true;
        }
        // New layer j comes from old layer sources[j]: every layer (ssm), or the kept ones in order (block).
        MaskSource *sources = xmalloc(sizeof(MaskSource) * n_layer);
        int n_new = 0;
        for (int i = 0; i < n_layer; i++)
            if (target == SHEDDER_SSM || !gone[i]) sources[n_new++] = (MaskSource){i, NULL};
        replace_model(o, s->model, s->masks, &extracted, sources);
        // A removed SSM is its zeroed C rows: where x_proj has a mask they stay pruned, so
        // that fine-tuning does not bring the SSM back.
        const MambaConfig *cfg = &s->model->config;
        for (int i = 0; i < n_layer && target == SHEDDER_SSM; i++) {
            char name[96];
            snprintf(name, sizeof name, "backbone.layers.%d.mixer.x_proj.weight", i);
            MaskedTensor *m = gone[i] ? prune_masks_find(s->masks, name) : NULL;
            if (m) memset(m->keep + (size_t)(cfg->dt_rank + cfg->d_state) * cfg->d_inner, 0, (size_t)cfg->d_state * cfg->d_inner);
        }
        cJSON_AddNumberToObject(report, "n_layer_before", n_layer);
        cJSON_AddNumberToObject(report, "n_layer_after", cfg->n_layer);
        free(sources);
        free(gone);
        s->pruning_s += now_seconds() - start;
    }
    free(removals);
    return rc;
}

// ---- the entry point ----

int oneshot_prune(const PruneOptions *o, const Dataset *data, MambaModel *model, PruneMasks *masks, cJSON *report,
                  Error *err) {
    PruneMethod method = o->method;
    if (!prune_method_is_oneshot(method) || (int)method >= PRUNE_METHOD_COUNT)
        return error_set(err, "prune.method: oneshot_prune runs magnitude, wanda, sparsegpt, sparsessm or shedder");
    const char *name = prune_method_names[method];
    PruneTarget target = {.sparsity = o->final_sparsity, .nm_n = o->nm_n, .nm_m = o->nm_m};
    if (method != PRUNE_METHOD_SHEDDER) {
        if (prune_target_check(&target, prune_target_is_nm(&target) ? target.nm_m : 1, "prune", err)) return -1;
        // Every masked tensor against the target before anything is pruned (N:M needs
        // rows of a multiple of nm_m), so that a failure leaves the model as it was.
        for (int k = 0; k < masks->n; k++) {
            WeightView v = view_of(&masks->tensors[k]);
            if (prune_target_check(&target, v.cols, v.name, err)) return -1;
        }
    }
    // The methods that build a smaller model remove layers or state columns of the Mamba blocks.
    if (model->config.head == MAMBA_HEAD_DLINEAR &&
        (method == PRUNE_METHOD_SHEDDER || (method == PRUNE_METHOD_SPARSESSM && o->sparsessm_structured)))
        return error_set(err, "prune.method: %s%s removes parts of the Mamba blocks, and model.head dlinear has none",
                         name, method == PRUNE_METHOD_SPARSESSM ? " with sparsessm_structured" : "");
    bool calibrates = method != PRUNE_METHOD_MAGNITUDE;
    if (calibrates && calibration_check(o, data, model, err)) return -1;

    double start = now_seconds();
    Oneshot s;
    oneshot_init(&s, o, data, model, masks, calibrates);
    cJSON_AddStringToObject(report, "method", name);
    if (method == PRUNE_METHOD_SHEDDER) {
        cJSON_AddNumberToObject(report, "shedder_steps", o->shedder_steps);
    } else if (prune_target_is_nm(&target)) {
        cJSON_AddNumberToObject(report, "nm_n", target.nm_n);
        cJSON_AddNumberToObject(report, "nm_m", target.nm_m);
    } else {
        cJSON_AddNumberToObject(report, "target_sparsity", target.sparsity);
    }
    if (calibrates) {
        cJSON *calibration = cJSON_AddObjectToObject(report, "calibration");
        cJSON_AddNumberToObject(calibration, "nsamples", s.nsamples);
        cJSON_AddNumberToObject(calibration, "seqlen", s.seqlen);
        cJSON_AddNumberToObject(calibration, "batch", s.batch);
        cJSON_AddNumberToObject(calibration, "data_batch_index", (double)ONESHOT_CALIB_BATCH);
    }
    int rc = 0;
    switch (method) {
    case PRUNE_METHOD_MAGNITUDE: rc = prune_magnitude(&s, report, err); break;
    case PRUNE_METHOD_SHEDDER: rc = prune_shedder(&s, report, err); break;
    case PRUNE_METHOD_SPARSESSM: rc = prune_outside_blocks(&s, report, err) || prune_sparsessm(&s, report, err) ? -1 : 0; break;
    default: rc = prune_outside_blocks(&s, report, err) || prune_blocks(&s, report, err) ? -1 : 0; break;
    }
    if (rc == 0) {
        prune_masks_apply(masks, NULL);
        cJSON *seconds = cJSON_AddObjectToObject(report, "seconds");
        cJSON_AddNumberToObject(seconds, "total", now_seconds() - start);
        cJSON_AddNumberToObject(seconds, "statistics", s.statistics_s);
        cJSON_AddNumberToObject(seconds, "pruning", s.pruning_s);
        cJSON_AddNumberToObject(seconds, "forward", s.forward_s);
        cJSON_AddNumberToObject(report, "pruned", (double)prune_masks_pruned(masks));
        cJSON_AddNumberToObject(report, "prunable", (double)masks->total);
        cJSON_AddNumberToObject(report, "sparsity", prune_masks_sparsity(masks));
    }
    oneshot_free(&s);
    return rc;
}

int oneshot_prune_inputs(const PruneOptions *o, const float *inputs, int nsamples, int seqlen, MambaModel *model,
                         PruneMasks *masks, float *block_inputs, cJSON *report, Error *err) {
    if (o->method != PRUNE_METHOD_WANDA && o->method != PRUNE_METHOD_SPARSEGPT)
        return error_set(err, "prune.method: oneshot_prune_inputs runs wanda or sparsegpt, not %s",
                         (int)o->method < PRUNE_METHOD_COUNT ? prune_method_names[o->method] : "?");
    if (nsamples < 1 || seqlen < 1) return error_set(err, "oneshot_prune_inputs: %d windows of %d tokens", nsamples, seqlen);
    PruneTarget target = {.sparsity = o->final_sparsity, .nm_n = o->nm_n, .nm_m = o->nm_m};
    if (prune_target_check(&target, prune_target_is_nm(&target) ? target.nm_m : 1, "prune", err)) return -1;
    for (int k = 0; k < masks->n; k++) {
        WeightView v = view_of(&masks->tensors[k]);
        if (prune_target_check(&target, v.cols, v.name, err)) return -1;
    }
    PruneOptions windows = *o;
    windows.nsamples = nsamples;
    windows.calib_seqlen = seqlen;
    Oneshot s;
    oneshot_init(&s, &windows, NULL, model, masks, false);
    size_t floats = (size_t)nsamples * seqlen * model->config.d_model;
    s.x = xmalloc(floats * sizeof(float));
    s.x_next = xmalloc(floats * sizeof(float));
    memcpy(s.x, inputs, floats * sizeof(float));
    int rc = prune_outside_blocks(&s, report, err) || prune_blocks_from(&s, true, block_inputs, report, err) ? -1 : 0;
    if (rc == 0) prune_masks_apply(masks, NULL);
    oneshot_free(&s);
    return rc;
}
