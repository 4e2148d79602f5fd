// Mamba-Shedder: the greedy search over removable blocks or SSMs, and the extraction of
// its result (see shedder.h). The search evaluates views of the model and never writes
// its weights; the extraction builds a new model.
#include "prune/shedder.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"

#define LAYER_TENSORS 10

// Every tensor of a layer, in one fixed order, so that copies are one loop.
static void layer_tensors(MambaLayer *l, Tensor *out[LAYER_TENSORS]) {
    Tensor *all[LAYER_TENSORS] = {&l->norm_weight,    &l->in_proj_weight, &l->conv1d_weight, &l->conv1d_bias,
                                  &l->x_proj_weight,  &l->dt_proj_weight, &l->dt_proj_bias,  &l->A_log,
                                  &l->D,              &l->out_proj_weight};
    memcpy(out, all, sizeof all);
}

static void copy_tensor_data(Tensor *dst, const Tensor *src) {
    memcpy(dst->data, src->data, sizeof(float) * src->size);
}

// The parameter change that turns a layer's SSM into the identity y_t = x_t: C = 0 makes
// h_t C_t = 0, D = 1 keeps x_t. x_proj is (R+2N, D_inner), D is (D_inner).
static void bypass_ssm(const MambaConfig *c, float *x_proj, float *D) {
    int R = c->dt_rank, N = c->d_state, D_inner = c->d_inner;
    memset(x_proj + (size_t)(R + N) * D_inner, 0, sizeof(float) * (size_t)N * D_inner);
    for (int j = 0; j < D_inner; j++) D[j] = 1.0f;
}

// removals name distinct layers in [0, n_layer) and 1 <= steps < n_layer.
static int check_steps(int steps, int n_layer, Error *err) {
    if (steps < 1 || steps >= n_layer)
        return error_set(err,
                         "prune.shedder_steps: %d removals asked, expected at least 1 and fewer than the %d "
                         "candidates (one per layer of the model)",
                         steps, n_layer);
    return 0;
}

static int check_removals(const ShedderRemoval *removals, int steps, int n_layer, bool *removed, Error *err) {
    memset(removed, 0, sizeof(bool) * (size_t)n_layer);
    for (int s = 0; s < steps; s++) {
        int l = removals[s].layer;
        if (l < 0 || l >= n_layer)
            return error_set(err, "shedder: removal %d names layer %d, expected 0 .. %d", s + 1, l, n_layer - 1);
        if (removed[l]) return error_set(err, "shedder: layer %d is removed twice (removal %d)", l, s + 1);
        removed[l] = true;
    }
    return 0;
}

// ---- the search ----

// What the search shares between its evaluations.
typedef struct Search {
    MambaModel *model;
    const int32_t *tokens, *targets;
    const float *values, *future;  // a forecaster (heads.h): (nsamples, seqlen, F) and (nsamples, H, F), or NULL
    int nsamples, seqlen, batch;
    ShedderTarget target;
    Tape tape;
    MambaLayer *view_layers;  // n_layer: the layers of the model under evaluation
    float *bypass_x_proj;     // SHEDDER_SSM: per layer, x_proj with its C rows zeroed
    float *ones;              // SHEDDER_SSM: a D of ones (D_inner)
    long counted;             // targets >= 0 over all samples
} Search;

// A layer struct whose SSM is the identity: its x_proj and D point at the substitutes.
static MambaLayer ssm_bypassed_layer(const Search *s, int layer) {
    MambaLayer l = s->model->layers[layer];
    l.x_proj_weight.data = s->bypass_x_proj + (size_t)layer * l.x_proj_weight.size;
    l.D.data = s->ones;
    l.x_proj_weight.grad = l.D.grad = NULL;
    l.x_proj_weight.requires_grad = l.D.requires_grad = false;
    return l;
}

// The shallow view of the model with the layers (or SSMs) marked in removed taken out: it
// shares every head tensor and the config; only layers differ.
static MambaModel search_view(Search *s, const bool *removed) {
    const MambaModel *m = s->model;
    MambaModel view = *m;
    view.params = NULL;
    view.n_params = 0;
    int n_view = 0;
    for (int i = 0; i < m->config.n_layer; i++) {
        if (!removed[i]) s->view_layers[n_view++] = m->layers[i];
        else if (s->target == SHEDDER_SSM) s->view_layers[n_view++] = ssm_bypassed_layer(s, i);
    }
    view.layers = s->view_layers;
    view.config.n_layer = n_view;
    return view;
}

// Calibration perplexity of the model with the layers (or SSMs) marked in removed taken
// out: exp(Σ NLL / Σ counted targets).
static double search_perplexity(Search *s, const bool *removed) {
    MambaModel view = search_view(s, removed);
    double total_nll = 0.0;
    s->tape.recording = false;
    for (int first = 0; first < s->nsamples; first += s->batch) {
        int b = s->nsamples - first < s->batch ? s->nsamples - first : s->batch;
        const int32_t *tokens = s->tokens + (size_t)first * s->seqlen;
        const int32_t *targets = s->targets + (size_t)first * s->seqlen;
        long counted = 0;
        for (long t = 0; t < (long)b * s->seqlen; t++) counted += targets[t] >= 0;
        if (counted == 0) continue;
        tape_reset(&s->tape);
        Tensor *loss = mamba_forward(&s->tape, &view, tokens, targets, b, s->seqlen, NULL);
        // The loss is the batch's mean over its counted targets.
        total_nll += (double)loss->data[0] * (double)counted;
    }
    tape_reset(&s->tape);
    return exp(total_nll / (double)s->counted);
}

// A forecaster's calibration MSE with the layers (or SSMs) marked in removed taken out:
// the mean squared error over every predicted value of every window (each batch's mean
// weighted by its windows, which all predict H x F values).
static double search_mse(Search *s, const bool *removed) {
    MambaModel view = search_view(s, removed);
    const size_t F = (size_t)view.config.n_features, H = (size_t)view.config.horizon;
    double total = 0.0;
    s->tape.recording = false;
    for (int first = 0; first < s->nsamples; first += s->batch) {
        int b = s->nsamples - first < s->batch ? s->nsamples - first : s->batch;
        tape_reset(&s->tape);
        Tensor *loss = mamba_forward_values(&s->tape, &view, s->values + (size_t)first * s->seqlen * F,
                                            s->future + (size_t)first * H * F, b, s->seqlen, NULL, NULL);
        total += (double)loss->data[0] * (double)b;
    }
    tape_reset(&s->tape);
    return total / (double)s->nsamples;
}

static double search_score(Search *s, const bool *removed) {
    return s->values ? search_mse(s, removed) : search_perplexity(s, removed);
}

// Appends {"step": step, key: layer, "perplexity": perplexity} to log (if any).
static void log_layer(cJSON *log, int step, const char *key, int layer, const char *metric, double score) {
    if (!log) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", step);
    cJSON_AddNumberToObject(o, key, layer);
    cJSON_AddNumberToObject(o, metric, score);
    cJSON_AddItemToArray(log, o);
}

static void log_dense(cJSON *log, const char *metric, double score) {
    if (!log) return;
    char key[32];
    snprintf(key, sizeof key, "dense_%s", metric);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", 0);
    cJSON_AddNumberToObject(o, key, score);
    cJSON_AddItemToArray(log, o);
}

// The options and the window counts, which both searches check alike.
static int check_search_options(const MambaModel *model, int nsamples, int seqlen, const ShedderOptions *options,
                                Error *err) {
    if (check_steps(options->steps, model->config.n_layer, err) != 0) return -1;
    if (options->target != SHEDDER_BLOCK && options->target != SHEDDER_SSM)
        return error_set(err, "prune.shedder_target: unknown target %d, expected block or ssm", (int)options->target);
    if (nsamples < 1) return error_set(err, "prune.nsamples: %d calibration sequences, expected at least 1", nsamples);
    if (seqlen < 1) return error_set(err, "prune.calib_seqlen: %d tokens per sequence, expected at least 1", seqlen);
    if (options->batch < 1) return error_set(err, "shedder: batch %d, expected at least 1", options->batch);
    return 0;
}

static int check_search_input(const MambaModel *model, const int32_t *tokens, const int32_t *targets, int nsamples,
                              int seqlen, const ShedderOptions *options, long *counted, Error *err) {
    if (check_search_options(model, nsamples, seqlen, options, err) != 0) return -1;
    int V = model->config.vocab_padded;
    *counted = 0;
    for (long i = 0; i < (long)nsamples * seqlen; i++) {
        if (tokens[i] < 0 || tokens[i] >= V)
            return error_set(err, "shedder: calibration token %ld is %d, expected 0 .. %d", i, tokens[i], V - 1);
        if (targets[i] >= V)
            return error_set(err, "shedder: calibration target %ld is %d, expected < %d", i, targets[i], V);
        *counted += targets[i] >= 0;
    }
    if (*counted == 0) return error_set(err, "shedder: every calibration target is ignored (< 0), nothing to score");
    return 0;
}

// The greedy search of shedder.h on s's windows, scored by search_score (metric: its name
// in the log).
static int run_search(Search *s, const ShedderOptions *options, const char *metric, ShedderRemoval *removals,
                      cJSON *search_log, Error *err) {
    MambaModel *model = s->model;
    const MambaConfig *c = &model->config;
    int n_layer = c->n_layer;
    s->view_layers = xcalloc((size_t)n_layer, sizeof(MambaLayer));
    if (s->target == SHEDDER_SSM) {
        size_t x_proj_size = model->layers[0].x_proj_weight.size;
        s->bypass_x_proj = xmalloc(sizeof(float) * x_proj_size * (size_t)n_layer);
        s->ones = xmalloc(sizeof(float) * (size_t)c->d_inner);
        for (int i = 0; i < n_layer; i++) {
            float *x_proj = s->bypass_x_proj + (size_t)i * x_proj_size;
            memcpy(x_proj, model->layers[i].x_proj_weight.data, sizeof(float) * x_proj_size);
            bypass_ssm(c, x_proj, s->ones);
        }
    }
    tape_init(&s->tape, 16u << 20);
    bool *removed = xcalloc((size_t)n_layer, sizeof(bool));
    int rc = 0;

    log_dense(search_log, metric, search_score(s, removed));
    for (int step = 1; step <= options->steps; step++) {
        double start = now_seconds();
        int best = -1;
        double best_score = INFINITY;
        for (int l = 0; l < n_layer; l++) {
            if (removed[l]) continue;
            removed[l] = true;
            double score = search_score(s, removed);
            removed[l] = false;
            log_layer(search_log, step, "layer", l, metric, score);
            // Strictly lower: a tie keeps the lower layer, a NaN or infinity never wins.
            if (score < best_score) {
                best = l;
                best_score = score;
            }
        }
        if (best < 0) {
            rc = error_set(err, "shedder: step %d: every candidate gives a non-finite calibration %s", step,
                           s->values ? "MSE" : "perplexity");
            break;
        }
        removed[best] = true;
        removals[step - 1] = (ShedderRemoval){best, best_score, now_seconds() - start};
        log_layer(search_log, step, "removed", best, metric, best_score);
    }

    free(removed);
    tape_free(&s->tape);
    free(s->ones);
    free(s->bypass_x_proj);
    free(s->view_layers);
    return rc;
}

int shedder_search(MambaModel *model, const int32_t *tokens, const int32_t *targets, int nsamples, int seqlen,
                   const ShedderOptions *options, ShedderRemoval *removals, cJSON *search_log, Error *err) {
    Search s = {.model = model, .tokens = tokens, .targets = targets, .nsamples = nsamples, .seqlen = seqlen,
                .batch = options->batch, .target = options->target};
    if (check_search_input(model, tokens, targets, nsamples, seqlen, options, &s.counted, err) != 0) return -1;
    return run_search(&s, options, "perplexity", removals, search_log, err);
}

int shedder_search_values(MambaModel *model, const float *values, const float *future, int nsamples, int seqlen,
                          const ShedderOptions *options, ShedderRemoval *removals, cJSON *search_log, Error *err) {
    if (model->config.head != MAMBA_HEAD_FORECAST)
        return error_set(err, "shedder: the search on series windows needs model.head forecast (the Mamba blocks "
                              "under a forecasting head)");
    if (!values || !future) return error_set(err, "shedder: the search on series windows needs values and future");
    if (check_search_options(model, nsamples, seqlen, options, err) != 0) return -1;
    Search s = {.model = model, .values = values, .future = future, .nsamples = nsamples, .seqlen = seqlen,
                .batch = options->batch, .target = options->target};
    return run_search(&s, options, "mse", removals, search_log, err);
}

// ---- the extraction ----

int shedder_extract(const MambaModel *model, ShedderTarget target, const ShedderRemoval *removals, int steps,
                    MambaModel *out, Error *err) {
    const MambaConfig *c = &model->config;
    if (target != SHEDDER_BLOCK && target != SHEDDER_SSM)
        return error_set(err, "prune.shedder_target: unknown target %d, expected block or ssm", (int)target);
    if (check_steps(steps, c->n_layer, err) != 0) return -1;
    bool *removed = xmalloc(sizeof(bool) * (size_t)c->n_layer);
    if (check_removals(removals, steps, c->n_layer, removed, err) != 0) {
        free(removed);
        return -1;
    }

    MambaConfig config = *c;
    if (target == SHEDDER_BLOCK) config.n_layer -= steps;
    mamba_model_create(out, &config);
    // Every parameter outside the blocks (the embedding or the forecaster's input
    // projection and revin.*, norm_f, the head): the same config but n_layer, so the same names.
    for (int k = 0; k < out->n_params; k++) {
        if (strncmp(out->params[k].name, "backbone.layers.", 16) == 0) continue;
        for (int j = 0; j < model->n_params; j++)
            if (strcmp(model->params[j].name, out->params[k].name) == 0)
                copy_tensor_data(out->params[k].tensor, model->params[j].tensor);
    }
    int kept = 0;
    for (int i = 0; i < c->n_layer; i++) {
        if (target == SHEDDER_BLOCK && removed[i]) continue;
        Tensor *src[LAYER_TENSORS], *dst[LAYER_TENSORS];
        layer_tensors(&model->layers[i], src);
        layer_tensors(&out->layers[kept], dst);
        for (int k = 0; k < LAYER_TENSORS; k++) copy_tensor_data(dst[k], src[k]);
        if (target == SHEDDER_SSM && removed[i])
            bypass_ssm(c, out->layers[kept].x_proj_weight.data, out->layers[kept].D.data);
        kept++;
    }
    free(removed);
    return 0;
}
