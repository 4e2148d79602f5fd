// The one-shot methods' driver (see oneshot.h): the calibration windows, the walk over the
// blocks, and the dispatch to the kernels of linear_prune.h.
//
// Calibration: prune.nsamples windows of prune.calib_seqlen tokens, drawn as the training
// batch number ONESHOT_CALIB_BATCH of data_train_batch: a fixed function of the data's
// seed (train.seed), and an index no training run reaches, so that the windows do not
// repeat a training batch's draws. Every window weighs the same: H = (2/n) Σ XᵀX over the
// n = nsamples * calib_seqlen tokens.
//
// The walk (SPEC §4), wanda and sparsegpt: the windows are embedded once; X_i, the inputs
// of block i, are the outputs of the already pruned blocks < i. In block i:
//   first   conv1d and A_log (and anything else of the block under a mask that is not a
//           linear layer), by magnitude: they need no statistics, and the passes below
//           then already see them pruned;
//   pass 1  the block in batches of train.batch_size windows (one tape, no backward):
//           the statistics of in_proj (its input u), x_proj (xs) and out_proj (gated),
//           all in the same forward; prune in_proj, x_proj and out_proj;
//   pass 2  only when dt_proj has a mask: the block again, now with x_proj pruned, for
//           dt_proj's statistics (its input δ is an output of x_proj); prune dt_proj;
//   pass 3  X_{i+1} = the pruned block applied to X_i (not after the last block).
// conv1d (D, 1, K) and A_log (D, N) are not linear layers: wanda and sparsegpt prune them
// by magnitude, per tensor, when they have a mask (N:M along rows of K and N entries).
// Masked tensors outside the blocks (none by default) are pruned by magnitude too.
// magnitude needs no calibration: every masked tensor, per tensor or with one global
// threshold (prune.magnitude_scope).
#include "prune/oneshot.h"

#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"          // defines: the ops of mamba_block_forward
#include "core/timer.h"            // defines: now_seconds
#include "prune/linear_prune.h"    // defines: PruneTarget, WeightView, the kernels, LinearStats

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
    const RunConfig *c;
    MambaModel *model;
    PruneMasks *masks;
    int nsamples, seqlen, batch;
    int32_t *tokens, *targets;    // (nsamples, seqlen)
    float *x, *x_next;            // (nsamples * seqlen, d_model): the inputs of the current block, and its outputs
    Tape tape;
    PruneTarget target;
    double statistics_s, pruning_s, forward_s;
} Oneshot;

static const char *method_name(CfgPruneMethod method) {
    switch (method) {
    case CFG_PRUNE_MAGNITUDE: return "magnitude";
    case CFG_PRUNE_WANDA: return "wanda";
    case CFG_PRUNE_SPARSEGPT: return "sparsegpt";
    case CFG_PRUNE_SPARSESSM: return "sparsessm";
    case CFG_PRUNE_SHEDDER: return "shedder";
    default: return NULL;
    }
}

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

static cJSON *tensor_report(const MaskedTensor *m, const char *how, double seconds) {
    cJSON *o = cJSON_CreateObject();
    size_t pruned = count_pruned(m);
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "component", prune_component_name(m->component));
    cJSON_AddStringToObject(o, "pruned_by", how);
    cJSON_AddNumberToObject(o, "pruned", (double)pruned);
    cJSON_AddNumberToObject(o, "size", (double)m->tensor->size);
    cJSON_AddNumberToObject(o, "sparsity", (double)pruned / (double)m->tensor->size);
    cJSON_AddNumberToObject(o, "seconds", seconds);
    return o;
}

// ---- calibration ----

static int calibration_check(const RunConfig *c, const Dataset *data, const MambaModel *model, Error *err) {
    int L = c->prune.calib_seqlen;
    if (c->prune.nsamples < 1) return error_set(err, "prune.nsamples: must be >= 1, got %d", c->prune.nsamples);
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
    if ((data->kind == DATA_TEXT || data->kind == DATA_TOKENS) && data->n_train < (long)L + 1)
        return error_set(err, "prune.calib_seqlen: %d needs %d training tokens, and %s has %ld", L, L + 1, data->path,
                         data->n_train);
    if (data->vocab_size > model->config.vocab_padded)
        return error_set(err, "prune.method: the data's vocabulary (%d) is larger than the model's (%d)",
                         data->vocab_size, model->config.vocab_padded);
    return 0;
}

static void oneshot_init(Oneshot *s, const RunConfig *c, const Dataset *data, MambaModel *model, PruneMasks *masks,
                         bool calibrates) {
    memset(s, 0, sizeof *s);
    s->c = c;
    s->model = model;
    s->masks = masks;
    s->nsamples = c->prune.nsamples;
    s->seqlen = c->prune.calib_seqlen;
    s->batch = c->train.batch_size < s->nsamples ? c->train.batch_size : s->nsamples;
    s->target = (PruneTarget){.sparsity = c->prune.final_sparsity, .nm_n = c->prune.nm_n, .nm_m = c->prune.nm_m};
    if (calibrates) {
        size_t tokens = (size_t)s->nsamples * s->seqlen;
        s->tokens = xmalloc(tokens * sizeof(int32_t));
        s->targets = xmalloc(tokens * sizeof(int32_t));
        data_train_batch(data, ONESHOT_CALIB_BATCH, s->nsamples, s->seqlen, s->tokens, s->targets);
    }
    tape_init(&s->tape, 64u << 20);
    s->tape.recording = false;
}

static void oneshot_free(Oneshot *s) {
    free(s->tokens);
    free(s->targets);
    free(s->x);
    free(s->x_next);
    tape_free(&s->tape);
}

// X_0: the embedding of every window.
static void embed_windows(Oneshot *s) {
    double start = now_seconds();
    int d = s->model->config.d_model;
    size_t rows = (size_t)s->nsamples * s->seqlen;
    if (!s->x) s->x = xmalloc(rows * d * sizeof(float));
    if (!s->x_next) s->x_next = xmalloc(rows * d * sizeof(float));
    for (size_t t = 0; t < rows; t++)
        memcpy(s->x + t * d, s->model->embedding.data + (size_t)s->tokens[t] * d, (size_t)d * sizeof(float));
    s->forward_s += now_seconds() - start;
}

// What one pass over the windows through block i collects.
typedef struct BlockPass {
    LinearStats *stats[N_SLOTS];  // the statistics of each linear's input, or NULL
    bool outputs;                 // write the block's outputs into x_next
} BlockPass;

static void block_pass(Oneshot *s, int i, const BlockPass *pass) {
    const MambaConfig *cfg = &s->model->config;
    MambaLayer *layer = &s->model->layers[i];
    int d = cfg->d_model, L = s->seqlen;
    for (int b0 = 0; b0 < s->nsamples; b0 += s->batch) {
        int nb = s->nsamples - b0 < s->batch ? s->nsamples - b0 : s->batch, T = nb * L;
        tape_reset(&s->tape);
        Tensor *x = tensor_view(&s->tape, s->x + (size_t)b0 * L * d, 2, (int[]){T, d});
        MambaBlockTrace trace;
        Tensor *out = mamba_block_forward(&s->tape, cfg, layer, x, nb, L, &trace);
        const Tensor *inputs[N_SLOTS] = {trace.u, trace.xs, trace.delta, trace.gated};
        for (int k = 0; k < N_SLOTS; k++)
            if (pass->stats[k]) linear_stats_add(pass->stats[k], inputs[k]->data, T);
        if (pass->outputs) memcpy(s->x_next + (size_t)b0 * L * d, out->data, (size_t)T * d * sizeof(float));
    }
    tape_reset(&s->tape);
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

static int prune_by_magnitude(MaskedTensor *m, const PruneTarget *target, cJSON *tensors, Error *err) {
    double start = now_seconds();
    WeightView v = view_of(m);
    if (magnitude_prune(&v, target, err)) return -1;
    cJSON_AddItemToArray(tensors, tensor_report(m, "magnitude", now_seconds() - start));
    return 0;
}

// A linear layer by wanda or sparsegpt, from the statistics of its input.
static int prune_linear(Oneshot *s, MaskedTensor *m, const LinearStats *stats, const PruneTarget *target,
                        cJSON *tensors, Error *err) {
    double start = now_seconds();
    WeightView v = view_of(m);
    if (stats->cols != v.cols)
        return error_set(err, "%s: %d input columns, but its input has %d", m->name, v.cols, stats->cols);
    cJSON *o;
    if (s->c->prune.method == CFG_PRUNE_WANDA) {
        if (wanda_prune(&v, stats->sq, target, err)) return -1;
        o = tensor_report(m, "wanda", 0);
    } else {
        float *H = xmalloc((size_t)v.cols * v.cols * sizeof(float));
        linear_stats_hessian(stats, H);
        SparsegptOptions options = {s->c->prune.percdamp, s->c->prune.blocksize};
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

// ---- the walk over the blocks: wanda, sparsegpt ----

static int prune_block(Oneshot *s, int i, cJSON *layer_report, Error *err) {
    MaskedTensor *linear[N_SLOTS] = {NULL};
    cJSON *tensors = cJSON_AddArrayToObject(layer_report, "tensors");
    // conv1d, A_log (and anything else of the block under a mask): by magnitude.
    for (int k = 0; k < s->masks->n; k++) {
        MaskedTensor *m = &s->masks->tensors[k];
        if (m->layer != i) continue;
        int slot = slot_of(m->component);
        if (slot >= 0) {
            linear[slot] = m;
        } else {
            double start = now_seconds();
            if (prune_by_magnitude(m, &s->target, tensors, err)) return -1;
            s->pruning_s += now_seconds() - start;
        }
    }
    // Pass 1: in_proj, x_proj and out_proj from one forward of the block as it is.
    bool gram = s->c->prune.method == CFG_PRUNE_SPARSEGPT;
    LinearStats stats[N_SLOTS];
    BlockPass pass = {{NULL}, false};
    const int cols[N_SLOTS] = {s->model->config.d_model, s->model->config.d_inner, s->model->config.dt_rank,
                               s->model->config.d_inner};
    for (int k = 0; k < N_SLOTS; k++) {
        linear_stats_init(&stats[k], cols[k], gram);
        if (linear[k] && k != SLOT_DT_PROJ) pass.stats[k] = &stats[k];
    }
    int rc = 0;
    double start = now_seconds();
    if (pass.stats[SLOT_IN_PROJ] || pass.stats[SLOT_X_PROJ] || pass.stats[SLOT_OUT_PROJ]) block_pass(s, i, &pass);
    double pass1_s = now_seconds() - start;
    s->statistics_s += pass1_s;
    for (int k = 0; k < N_SLOTS && rc == 0; k++)
        if (pass.stats[k]) rc = prune_linear(s, linear[k], &stats[k], &s->target, tensors, err);
    // Pass 2: dt_proj, whose input δ comes out of the pruned x_proj.
    double pass2_s = 0;
    if (rc == 0 && linear[SLOT_DT_PROJ]) {
        start = now_seconds();
        block_pass(s, i, &(BlockPass){.stats = {[SLOT_DT_PROJ] = &stats[SLOT_DT_PROJ]}});
        pass2_s = now_seconds() - start;
        s->statistics_s += pass2_s;
        rc = prune_linear(s, linear[SLOT_DT_PROJ], &stats[SLOT_DT_PROJ], &s->target, tensors, err);
    }
    for (int k = 0; k < N_SLOTS; k++) linear_stats_free(&stats[k]);
    cJSON_AddNumberToObject(layer_report, "statistics_s", pass1_s + pass2_s);
    return rc;
}

static int prune_blocks(Oneshot *s, cJSON *report, Error *err) {
    int n_layer = s->model->config.n_layer;
    cJSON *layers = cJSON_AddArrayToObject(report, "layers");
    embed_windows(s);
    for (int i = 0; i < n_layer; i++) {
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

// ---- magnitude ----

static int prune_magnitude(Oneshot *s, cJSON *report, Error *err) {
    cJSON *tensors = cJSON_AddArrayToObject(report, "tensors");
    double start = now_seconds();
    int rc = 0;
    if (s->c->prune.magnitude_scope == CFG_MAGNITUDE_GLOBAL) {
        if (prune_target_is_nm(&s->target))
            return error_set(err, "prune.magnitude_scope: global is unstructured; N:M (prune.nm_n, prune.nm_m) is per "
                                  "tensor, use magnitude_scope: tensor");
        WeightView *views = xmalloc(((size_t)s->masks->n + 1) * sizeof(WeightView));
        for (int k = 0; k < s->masks->n; k++) views[k] = view_of(&s->masks->tensors[k]);
        rc = magnitude_prune_global(views, s->masks->n, s->target.sparsity, err);
        free(views);
        for (int k = 0; k < s->masks->n && rc == 0; k++)
            cJSON_AddItemToArray(tensors, tensor_report(&s->masks->tensors[k], "magnitude (global)", 0));
    } else {
        for (int k = 0; k < s->masks->n && rc == 0; k++) rc = prune_by_magnitude(&s->masks->tensors[k], &s->target, tensors, err);
    }
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
        if (prune_by_magnitude(m, &s->target, tensors, err)) return -1;
    }
    return 0;
}

int oneshot_prune(const RunConfig *c, const Dataset *data, MambaModel *model, PruneMasks *masks, cJSON *report,
                  Error *err) {
    const char *name = method_name(c->prune.method);
    if (!name) return error_set(err, "prune.method: oneshot_prune runs magnitude, wanda, sparsegpt, sparsessm or shedder");
    PruneTarget target = {.sparsity = c->prune.final_sparsity, .nm_n = c->prune.nm_n, .nm_m = c->prune.nm_m};
    if (prune_target_is_nm(&target)) {
        if (prune_target_check(&target, target.nm_m, "prune", err)) return -1;
    } else if (prune_target_check(&target, 1, "prune", err)) {
        return -1;
    }
    // Every masked tensor against the target before anything is pruned (N:M needs rows
    // of a multiple of nm_m), so that a failure leaves the model as it was.
    for (int k = 0; k < masks->n; k++) {
        WeightView v = view_of(&masks->tensors[k]);
        if (prune_target_check(&target, v.cols, v.name, err)) return -1;
    }
    bool calibrates = c->prune.method != CFG_PRUNE_MAGNITUDE;
    if (calibrates && calibration_check(c, data, model, err)) return -1;
    if (c->prune.method == CFG_PRUNE_SPARSESSM || c->prune.method == CFG_PRUNE_SHEDDER)
        return error_set(err, "prune.method: %s is not implemented yet", name);

    double start = now_seconds();
    Oneshot s;
    oneshot_init(&s, c, data, model, masks, calibrates);
    cJSON_AddStringToObject(report, "method", name);
    if (prune_target_is_nm(&target)) {
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
    double outside_start = now_seconds();
    if (c->prune.method != CFG_PRUNE_MAGNITUDE) rc = prune_outside_blocks(&s, report, err);
    s.pruning_s += now_seconds() - outside_start;
    if (rc == 0) rc = c->prune.method == CFG_PRUNE_MAGNITUDE ? prune_magnitude(&s, report, err) : prune_blocks(&s, report, err);
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
