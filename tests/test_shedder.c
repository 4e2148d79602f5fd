// Tests of src/prune/shedder: the search's perplexities and choices against direct
// forwards of models built another way (block removal by parameter names, SSM removal by
// a hand-written mixer on the ops), ties and no-op layers, the extracted models, a
// checkpoint round trip of an extracted model, the errors on bad input, and the search of
// a forecaster by its MSE.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autograd/ops.h"     // defines: op_* for the hand-written forward
#include "io/checkpoint.h"    // defines: checkpoint_save, checkpoint_load
#include "prune/shedder.h"    // defines: shedder_search, shedder_extract

#include "check.h"
#include "tiny_model.h"

enum { NSAMPLES = 5, SEQLEN = 9, BATCH = 2 };

// ---- calibration data and direct evaluations ----

// Random sequences: tokens[t] and targets[t] = the next token; every 4th target ignored.
static void random_calibration(int32_t *tokens, int32_t *targets, int vocab, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (int b = 0; b < NSAMPLES; b++) {
        int32_t seq[SEQLEN + 1];
        for (int t = 0; t <= SEQLEN; t++) seq[t] = (int32_t)rng_below(&rng, (uint64_t)vocab);
        for (int t = 0; t < SEQLEN; t++) {
            tokens[b * SEQLEN + t] = seq[t];
            targets[b * SEQLEN + t] = (b * SEQLEN + t) % 4 == 3 ? -1 : seq[t + 1];
        }
    }
}

// exp(mean NLL) of one forward over every sample at once (no batching).
static double direct_perplexity(MambaModel *model, const int32_t *tokens, const int32_t *targets) {
    Tape tape;
    tape_init(&tape, 1 << 20);
    tape.recording = false;
    Tensor *loss = mamba_forward(&tape, model, tokens, targets, NSAMPLES, SEQLEN, NULL);
    double perplexity = exp((double)loss->data[0]);
    tape_free(&tape);
    return perplexity;
}

static double relative_error(double a, double b) { return fabs(a - b) / fabs(b); }

// A copy of model without layer `skip`, built by parameter names: layer i > skip becomes
// i - 1. Independent of shedder_extract's layer-struct copies.
static void model_without_layer(MambaModel *model, int skip, MambaModel *out) {
    MambaConfig config = model->config;
    config.n_layer--;
    mamba_model_create(out, &config);
    for (int p = 0; p < model->n_params; p++) {
        const char *name = model->params[p].name;
        char new_name[96];
        int layer, rest;
        if (sscanf(name, "backbone.layers.%d.%n", &layer, &rest) == 1) {
            if (layer == skip) continue;
            snprintf(new_name, sizeof new_name, "backbone.layers.%d.%s", layer > skip ? layer - 1 : layer, name + rest);
        } else {
            snprintf(new_name, sizeof new_name, "%s", name);
        }
        Tensor *dst = mamba_model_find(out, new_name);
        memcpy(dst->data, model->params[p].tensor->data, sizeof(float) * dst->size);
    }
}

// The forward of docs/DESIGN.md#model written out on the ops, where a layer with bypassed[i] computes
// y = x ⊙ silu(z) without x_proj, dt_proj and the scan. Returns exp(mean NLL).
static double hand_perplexity(MambaModel *model, const bool *bypassed, const int32_t *tokens, const int32_t *targets) {
    const MambaConfig *c = &model->config;
    int D = c->d_inner, N = c->d_state, R = c->dt_rank, T = NSAMPLES * SEQLEN;
    Tape tape;
    tape_init(&tape, 1 << 20);
    tape.recording = false;
    Tensor *x = op_embedding(&tape, &model->embedding, tokens, T);
    for (int i = 0; i < c->n_layer; i++) {
        MambaLayer *l = &model->layers[i];
        Tensor *u = op_rmsnorm(&tape, x, &l->norm_weight, c->norm_eps);
        Tensor *xz = op_matmul(&tape, u, &l->in_proj_weight);
        Tensor *xi = op_slice_cols(&tape, xz, 0, D);
        Tensor *z = op_slice_cols(&tape, xz, D, D);
        Tensor *xs = op_silu(&tape, op_conv1d_causal(&tape, xi, &l->conv1d_weight, &l->conv1d_bias, NSAMPLES, SEQLEN));
        Tensor *y = xs;
        if (!bypassed[i]) {
            Tensor *dbc = op_matmul(&tape, xs, &l->x_proj_weight);
            Tensor *dt = op_matmul(&tape, op_slice_cols(&tape, dbc, 0, R), &l->dt_proj_weight);
            y = op_selective_scan(&tape, xs, dt, &l->dt_proj_bias, &l->A_log, op_slice_cols(&tape, dbc, R, N),
                                  op_slice_cols(&tape, dbc, R + N, N), &l->D, NSAMPLES, SEQLEN);
        }
        Tensor *gated = op_mul(&tape, y, op_silu(&tape, z));
        x = op_add(&tape, x, op_matmul(&tape, gated, &l->out_proj_weight));
    }
    Tensor *h = op_rmsnorm(&tape, x, &model->norm_f_weight, c->norm_eps);
    Tensor *loss = op_cross_entropy(&tape, op_matmul(&tape, h, &model->embedding), targets, T);
    double perplexity = exp((double)loss->data[0]);
    tape_free(&tape);
    return perplexity;
}

// ---- snapshots: the model is unchanged by the search ----

static float *snapshot(const MambaModel *model) {
    float *copy = xmalloc(sizeof(float) * model->n_elements), *at = copy;
    for (int p = 0; p < model->n_params; p++) {
        const Tensor *t = model->params[p].tensor;
        memcpy(at, t->data, sizeof(float) * t->size);
        at += t->size;
    }
    return copy;
}

static bool same_as_snapshot(const MambaModel *model, const float *copy) {
    for (int p = 0; p < model->n_params; p++) {
        const Tensor *t = model->params[p].tensor;
        if (memcmp(copy, t->data, sizeof(float) * t->size) != 0) return false;
        copy += t->size;
    }
    return true;
}

// ---- the search log ----

// The perplexity logged for (step, key = layer) with key "layer" or "removed"; NAN if none.
static double logged_metric(const cJSON *log, int step, const char *key, int layer, const char *metric) {
    const cJSON *o;
    cJSON_ArrayForEach(o, log) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, key);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, metric);
        if (cJSON_IsNumber(s) && s->valueint == step && cJSON_IsNumber(l) && l->valueint == layer && cJSON_IsNumber(p))
            return p->valuedouble;
    }
    return NAN;
}

static double logged(const cJSON *log, int step, const char *key, int layer) {
    return logged_metric(log, step, key, layer, "perplexity");
}

// ---- tests ----

// Block removal: step 1's candidates and choice against direct forwards of models built
// by names, the chosen perplexities against the extracted models, step 2's choice the
// argmin of its logged candidates, batching irrelevant. Returns the extracted model.
static void test_block_search(MambaModel *extracted, int kept_layers[2]) {
    enum { LAYERS = 4, STEPS = 2 };
    MambaModel model;
    tiny_model_create(&model, LAYERS, 11);
    int32_t tokens[NSAMPLES * SEQLEN], targets[NSAMPLES * SEQLEN];
    random_calibration(tokens, targets, model.config.vocab_size, 12);
    float *before = snapshot(&model);

    ShedderOptions options = {.steps = STEPS, .target = SHEDDER_BLOCK, .batch = BATCH};
    ShedderRemoval removals[STEPS];
    cJSON *log = cJSON_CreateArray();
    Error err;
    int rc = shedder_search(&model, tokens, targets, NSAMPLES, SEQLEN, &options, removals, log, &err);
    check(rc == 0, "block search runs: %s", rc ? err.message : "");
    check(same_as_snapshot(&model, before), "block search leaves the model's weights as they were");
    check(cJSON_GetArraySize(log) == 1 + (LAYERS + 1) + (LAYERS - 1 + 1), "log has %d entries, expected %d",
          cJSON_GetArraySize(log), 1 + (LAYERS + 1) + (LAYERS - 1 + 1));
    const cJSON *first = cJSON_GetArrayItem(log, 0);
    const cJSON *dense_logged = cJSON_GetObjectItemCaseSensitive(first, "dense_perplexity");
    double dense = direct_perplexity(&model, tokens, targets);
    check(cJSON_IsNumber(dense_logged) && relative_error(dense_logged->valuedouble, dense) < 1e-5,
          "logged dense perplexity %.8g vs direct %.8g", cJSON_IsNumber(dense_logged) ? dense_logged->valuedouble : NAN,
          dense);

    // Step 1: every candidate against a direct evaluation, and the choice is their argmin.
    int argmin = -1;
    double min = INFINITY, max_err = 0.0;
    for (int l = 0; l < LAYERS; l++) {
        MambaModel without;
        model_without_layer(&model, l, &without);
        double reference = direct_perplexity(&without, tokens, targets);
        mamba_model_free(&without);
        double err_l = relative_error(logged(log, 1, "layer", l), reference);
        max_err = err_l > max_err || isnan(err_l) ? err_l : max_err;
        printf("       step 1 without layer %d: perplexity %.6f (dense %.6f)\n", l, reference, dense);
        if (reference < min) {
            min = reference;
            argmin = l;
        }
    }
    check(max_err < 1e-5, "step 1 candidates' logged perplexities match direct forwards (max relative error %.2e)",
          max_err);
    check(removals[0].layer == argmin && relative_error(removals[0].score, min) < 1e-5,
          "step 1 removes layer %d (perplexity %.6f), the argmin is layer %d (%.6f)", removals[0].layer,
          removals[0].score, argmin, min);
    check(relative_error(logged(log, 1, "removed", argmin), min) < 1e-5, "step 1's removal is logged");

    // Step 2: the choice is the argmin of the logged candidates, which match extractions.
    int argmin2 = -1;
    double min2 = INFINITY, max_err2 = 0.0;
    for (int l = 0; l < LAYERS; l++) {
        if (l == removals[0].layer) {
            check(isnan(logged(log, 2, "layer", l)), "step 2 does not evaluate the removed layer %d again", l);
            continue;
        }
        ShedderRemoval pair[2] = {{.layer = removals[0].layer}, {.layer = l}};
        MambaModel two;
        rc = shedder_extract(&model, SHEDDER_BLOCK, pair, 2, &two, &err);
        double reference = direct_perplexity(&two, tokens, targets);
        mamba_model_free(&two);
        double p = logged(log, 2, "layer", l);
        double err_l = relative_error(p, reference);
        max_err2 = err_l > max_err2 || isnan(err_l) ? err_l : max_err2;
        if (p < min2) {
            min2 = p;
            argmin2 = l;
        }
    }
    check(max_err2 < 1e-5, "step 2 candidates match the extracted models (max relative error %.2e)", max_err2);
    check(removals[1].layer == argmin2 && removals[1].score == min2,
          "step 2 removes layer %d, the argmin of the logged candidates is %d", removals[1].layer, argmin2);

    // The chosen perplexities are those of the extracted models.
    // (A MambaModel holds pointers into itself: extract into its final place, never copy it.)
    for (int s = 1; s <= STEPS; s++) {
        MambaModel first_only, *out = s < STEPS ? &first_only : extracted;
        rc = shedder_extract(&model, SHEDDER_BLOCK, removals, s, out, &err);
        double p = rc == 0 ? direct_perplexity(out, tokens, targets) : NAN;
        check(rc == 0 && out->config.n_layer == LAYERS - s && out->n_params == 2 + 10 * (LAYERS - s) &&
                  relative_error(p, removals[s - 1].score) < 1e-5,
              "extracted model after %d removal(s): %d layers, perplexity %.8g vs search %.8g", s,
              rc == 0 ? out->config.n_layer : -1, p, removals[s - 1].score);
        if (s < STEPS) mamba_model_free(out);
    }
    for (int l = 0, k = 0; l < LAYERS; l++)
        if (l != removals[0].layer && l != removals[1].layer) kept_layers[k++] = l;

    // One forward for all samples finds the same removals.
    ShedderOptions whole = options;
    whole.batch = NSAMPLES;
    ShedderRemoval again[STEPS];
    rc = shedder_search(&model, tokens, targets, NSAMPLES, SEQLEN, &whole, again, NULL, &err);
    check(rc == 0 && again[0].layer == removals[0].layer && again[1].layer == removals[1].layer &&
              relative_error(again[1].score, removals[1].score) < 1e-5,
          "batch %d finds the same removals as batch %d", NSAMPLES, BATCH);

    // The extracted model's layers are the kept ones, bit for bit, under their new names.
    bool same = true;
    for (int j = 0; j < LAYERS - STEPS; j++)
        for (int p = 0; p < extracted->n_params; p++) {
            int layer, rest;
            const char *name = extracted->params[p].name;
            if (sscanf(name, "backbone.layers.%d.%n", &layer, &rest) != 1 || layer != j) continue;
            char old_name[96];
            snprintf(old_name, sizeof old_name, "backbone.layers.%d.%s", kept_layers[j], name + rest);
            Tensor *src = mamba_model_find(&model, old_name);
            same = same && src && memcmp(src->data, extracted->params[p].tensor->data,
                                         sizeof(float) * src->size) == 0;
        }
    check(same, "extracted layers 0, 1 are the model's layers %d, %d", kept_layers[0], kept_layers[1]);

    cJSON_Delete(log);
    free(before);
    mamba_model_free(&model);
}

// Targets drawn from the model's own next-token distributions: the model is then the best
// predictor of them in expectation (Gibbs' inequality), so removing a layer that matters
// raises the perplexity, whereas on random targets it may as well lower it.
static void targets_from_model(MambaModel *model, const int32_t *tokens, int32_t *targets, uint64_t seed) {
    int V = model->config.vocab_padded;
    Tape tape;
    tape_init(&tape, 1 << 20);
    tape.recording = false;
    Tensor *logits;
    mamba_forward(&tape, model, tokens, NULL, NSAMPLES, SEQLEN, &logits);
    Rng rng;
    rng_seed(&rng, seed);
    for (int t = 0; t < NSAMPLES * SEQLEN; t++) {
        const float *row = logits->data + (size_t)t * V;
        double sum = 0.0, cumulative = 0.0;
        for (int v = 0; v < V; v++) sum += exp((double)row[v]);
        double u = rng_uniform_double(&rng) * sum;
        targets[t] = V - 1;
        for (int v = 0; v < V; v++) {
            cumulative += exp((double)row[v]);
            if (u < cumulative) {
                targets[t] = v;
                break;
            }
        }
    }
    tape_free(&tape);
}

// Layers 3 and 1 are no-ops (zero out_proj): removing either costs nothing, so the search
// takes them first, the lower one first (a tie), each at exactly the dense perplexity.
static void test_noop_layers(void) {
    enum { LAYERS = 5, STEPS = 2 };
    MambaModel model;
    tiny_model_create(&model, LAYERS, 21);
    int noop[2] = {3, 1};
    for (int k = 0; k < 2; k++) memset(model.layers[noop[k]].out_proj_weight.data, 0,
                                       sizeof(float) * model.layers[noop[k]].out_proj_weight.size);
    int32_t tokens[NSAMPLES * SEQLEN], targets[NSAMPLES * SEQLEN];
    // A confident model (logits scaled up by norm_f), so that a layer's removal costs
    // clearly more than the sampling noise of 45 targets.
    for (int j = 0; j < model.config.d_model; j++) model.norm_f_weight.data[j] *= 20.0f;
    random_calibration(tokens, targets, model.config.vocab_size, 22);
    targets_from_model(&model, tokens, targets, 23);
    double dense = direct_perplexity(&model, tokens, targets);
    for (int l = 0; l < LAYERS; l++) {
        MambaModel without;
        model_without_layer(&model, l, &without);
        printf("       without layer %d: perplexity %.6f (dense %.6f)\n", l, direct_perplexity(&without, tokens, targets),
               dense);
        mamba_model_free(&without);
    }

    ShedderOptions options = {.steps = STEPS, .target = SHEDDER_BLOCK, .batch = BATCH};
    ShedderRemoval removals[STEPS];
    Error err;
    int rc = shedder_search(&model, tokens, targets, NSAMPLES, SEQLEN, &options, removals, NULL, &err);
    check(rc == 0 && removals[0].layer == 1 && removals[1].layer == 3,
          "no-op layers 1 and 3 removed first, lower first: removed %d then %d", rc ? -1 : removals[0].layer,
          rc ? -1 : removals[1].layer);
    check(rc == 0 && relative_error(removals[0].score, dense) < 1e-6 &&
              relative_error(removals[1].score, dense) < 1e-6,
          "removing no-op layers keeps the dense perplexity %.8g: %.8g, %.8g", dense, removals[0].score,
          removals[1].score);
    mamba_model_free(&model);
}

// SSM removal: the hand-written bypass forward is checked against mamba_forward first
// (nothing bypassed), then the search's candidates and choices against it, and the
// extracted model (C rows zero, D = 1, nothing else changed) against it.
static void test_ssm_search(void) {
    enum { LAYERS = 3, STEPS = 2 };
    MambaModel model;
    tiny_model_create(&model, LAYERS, 31);
    const MambaConfig *c = &model.config;
    int32_t tokens[NSAMPLES * SEQLEN], targets[NSAMPLES * SEQLEN];
    random_calibration(tokens, targets, c->vocab_size, 32);
    float *before = snapshot(&model);

    bool bypassed[LAYERS] = {false};
    double dense = direct_perplexity(&model, tokens, targets);
    double hand_dense = hand_perplexity(&model, bypassed, tokens, targets);
    check(relative_error(hand_dense, dense) < 1e-6, "hand-written forward matches mamba_forward: %.8g vs %.8g",
          hand_dense, dense);

    ShedderOptions options = {.steps = STEPS, .target = SHEDDER_SSM, .batch = BATCH};
    ShedderRemoval removals[STEPS];
    cJSON *log = cJSON_CreateArray();
    Error err;
    int rc = shedder_search(&model, tokens, targets, NSAMPLES, SEQLEN, &options, removals, log, &err);
    check(rc == 0, "ssm search runs: %s", rc ? err.message : "");
    check(same_as_snapshot(&model, before), "ssm search leaves the model's weights as they were");

    int argmin = -1;
    double min = INFINITY, max_err = 0.0;
    for (int l = 0; l < LAYERS; l++) {
        bypassed[l] = true;
        double reference = hand_perplexity(&model, bypassed, tokens, targets);
        bypassed[l] = false;
        double err_l = relative_error(logged(log, 1, "layer", l), reference);
        max_err = err_l > max_err || isnan(err_l) ? err_l : max_err;
        printf("       step 1 without the SSM of layer %d: perplexity %.6f (dense %.6f)\n", l, reference, dense);
        if (reference < min) {
            min = reference;
            argmin = l;
        }
    }
    check(max_err < 1e-5, "ssm step 1 candidates match the hand-written bypass (max relative error %.2e)", max_err);
    check(removals[0].layer == argmin && relative_error(removals[0].score, min) < 1e-5,
          "ssm step 1 removes layer %d, the argmin is layer %d", removals[0].layer, argmin);

    MambaModel out;
    rc = shedder_extract(&model, SHEDDER_SSM, removals, STEPS, &out, &err);
    check(rc == 0 && out.config.n_layer == LAYERS && out.n_params == model.n_params, "ssm extraction keeps %d layers",
          LAYERS);
    // Every parameter equal to the model's, but the removed layers' C rows (0) and D (1).
    int R = c->dt_rank, N = c->d_state, D = c->d_inner;
    long changed_wrongly = 0, expected_wrong = 0;
    for (int p = 0; p < out.n_params; p++) {
        const Tensor *t = out.params[p].tensor, *src = model.params[p].tensor;
        int layer = -1, rest = 0;
        sscanf(out.params[p].name, "backbone.layers.%d.%n", &layer, &rest);
        bool removed = layer == removals[0].layer || layer == removals[1].layer;
        const char *field = out.params[p].name + rest;
        for (size_t k = 0; k < t->size; k++) {
            float expected = src->data[k];
            if (removed && strcmp(field, "mixer.x_proj.weight") == 0 && (int)(k / D) >= R + N) expected = 0.0f;
            if (removed && strcmp(field, "mixer.D") == 0) expected = 1.0f;
            changed_wrongly += t->data[k] != expected;
            expected_wrong += expected != src->data[k];
        }
    }
    check(changed_wrongly == 0 && expected_wrong == 2L * (N * D + D),
          "extracted ssm model: C rows zero and D = 1 in layers %d, %d, all else equal (%ld wrong, %ld changed)",
          removals[0].layer, removals[1].layer, changed_wrongly, expected_wrong);
    bypassed[removals[0].layer] = bypassed[removals[1].layer] = true;
    double hand = hand_perplexity(&model, bypassed, tokens, targets);
    double extracted = direct_perplexity(&out, tokens, targets);
    check(relative_error(extracted, hand) < 1e-5 && relative_error(removals[1].score, hand) < 1e-5,
          "extracted ssm model %.8g, search %.8g, hand-written y = x ⊙ silu(z) %.8g", extracted,
          removals[1].score, hand);
    mamba_model_free(&out);
    cJSON_Delete(log);
    free(before);
    mamba_model_free(&model);
}

// The extracted block model saves and loads as a model of its own size and names.
static void test_checkpoint_round_trip(MambaModel *extracted, const int kept_layers[2], const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/shed.h5", dir);
    Error err;
    int rc = checkpoint_save(path, extracted->params, extracted->n_params, NULL, NULL, 0, NULL, NULL, &err);
    check(rc == 0, "extracted model saves: %s", rc ? err.message : "");
    MambaModel loaded;
    mamba_model_create(&loaded, &extracted->config);
    rc = checkpoint_load(path, loaded.params, loaded.n_params, NULL, NULL, 0, NULL, &err);
    check(rc == 0, "extracted model loads into a %d-layer model: %s", loaded.config.n_layer, rc ? err.message : "");
    bool same = true;
    for (int p = 0; p < loaded.n_params; p++)
        same = same && memcmp(loaded.params[p].tensor->data, extracted->params[p].tensor->data,
                              sizeof(float) * loaded.params[p].tensor->size) == 0;
    check(same, "reloaded parameters equal the extracted ones bit for bit");
    check(mamba_model_find(&loaded, "backbone.layers.1.mixer.A_log") &&
              !mamba_model_find(&loaded, "backbone.layers.2.mixer.A_log"),
          "names run backbone.layers.0 .. 1 (kept layers %d, %d)", kept_layers[0], kept_layers[1]);
    // A model with the original layer count does not load it: the file has 2 layers.
    MambaConfig config = extracted->config;
    config.n_layer += 2;
    MambaModel bigger;
    mamba_model_create(&bigger, &config);
    rc = checkpoint_load(path, bigger.params, bigger.n_params, NULL, NULL, 0, NULL, &err);
    check_error("a 4-layer model does not load the 2-layer checkpoint", rc, &err, "backbone.layers.2", NULL);
    mamba_model_free(&bigger);
    mamba_model_free(&loaded);
    unlink(path);
}

static void test_bad_input(void) {
    enum { LAYERS = 3 };
    MambaModel model;
    tiny_model_create(&model, LAYERS, 41);
    int32_t tokens[NSAMPLES * SEQLEN], targets[NSAMPLES * SEQLEN];
    random_calibration(tokens, targets, model.config.vocab_size, 42);
    float *before = snapshot(&model);
    ShedderRemoval removals[LAYERS + 1];
    Error err;
    ShedderOptions o = {.steps = 1, .target = SHEDDER_SSM, .batch = BATCH};

    o.steps = LAYERS;
    int rc = shedder_search(&model, tokens, targets, NSAMPLES, SEQLEN, &o, removals, NULL, &err);
    check_error("steps = number of candidates", rc, &err, "prune.shedder_steps", "3", NULL);
    o.steps = 0;
    rc = shedder_search(&model, tokens, targets, NSAMPLES, SEQLEN, &o, removals, NULL, &err);
    check_error("steps = 0", rc, &err, "prune.shedder_steps", "at least 1", NULL);
    o.steps = 1;
    rc = shedder_search(&model, tokens, targets, 0, SEQLEN, &o, removals, NULL, &err);
    check_error("nsamples = 0", rc, &err, "prune.nsamples", NULL);
    rc = shedder_search(&model, tokens, targets, NSAMPLES, 0, &o, removals, NULL, &err);
    check_error("seqlen = 0", rc, &err, "prune.calib_seqlen", NULL);
    o.batch = 0;
    rc = shedder_search(&model, tokens, targets, NSAMPLES, SEQLEN, &o, removals, NULL, &err);
    check_error("batch = 0", rc, &err, "batch", NULL);
    o.batch = BATCH;
    int32_t saved = tokens[7];
    tokens[7] = model.config.vocab_padded;
    rc = shedder_search(&model, tokens, targets, NSAMPLES, SEQLEN, &o, removals, NULL, &err);
    check_error("a token beyond the vocabulary", rc, &err, "token 7", NULL);
    tokens[7] = saved;
    int32_t ignored[NSAMPLES * SEQLEN];
    for (int i = 0; i < NSAMPLES * SEQLEN; i++) ignored[i] = -1;
    rc = shedder_search(&model, tokens, ignored, NSAMPLES, SEQLEN, &o, removals, NULL, &err);
    check_error("every target ignored", rc, &err, "ignored", NULL);
    check(same_as_snapshot(&model, before), "the model is unchanged after the errors");

    MambaModel out;
    ShedderRemoval twice[LAYERS] = {{.layer = 1}, {.layer = 1}, {.layer = 2}}, outside[1] = {{.layer = LAYERS}};
    rc = shedder_extract(&model, SHEDDER_BLOCK, twice, 2, &out, &err);
    check_error("extract a layer twice", rc, &err, "layer 1", "twice", NULL);
    rc = shedder_extract(&model, SHEDDER_SSM, outside, 1, &out, &err);
    check_error("extract a layer outside the model", rc, &err, "layer 3", NULL);
    rc = shedder_extract(&model, SHEDDER_BLOCK, twice, LAYERS, &out, &err);
    check_error("extract every layer", rc, &err, "prune.shedder_steps", NULL);
    free(before);
    mamba_model_free(&model);
}

// A forecaster (model.head forecast, RevIN with its affine): the search's MSEs against one
// direct forward of models built by names over every window at once, the choice their
// argmin, the extracted model's MSE the chosen one, its head parameters the model's.
static void test_forecast_search(void) {
    enum { LAYERS = 3, F = 3, H = 4 };
    MambaConfig config;
    mamba_config_defaults(&config);
    config.d_model = 8, config.n_layer = LAYERS, config.d_state = 5, config.head = MAMBA_HEAD_FORECAST;
    config.window_norm = MAMBA_WINDOW_REVIN_AFFINE, config.n_features = F, config.horizon = H;
    Error err;
    check(mamba_config_finish(&config, &err) == 0, "forecast config: %s", err.message);
    MambaModel model;
    mamba_model_create(&model, &config);
    Rng rng;
    rng_seed(&rng, 77);
    mamba_model_init_random(&model, &rng);
    for (int i = 0; i < model.n_params; i++) {
        Tensor *t = model.params[i].tensor;
        for (size_t k = 0; k < t->size; k++) t->data[k] += 0.2f * rng_normal(&rng);
    }
    float values[NSAMPLES * SEQLEN * F], future[NSAMPLES * H * F];
    for (int i = 0; i < NSAMPLES * SEQLEN * F; i++) values[i] = rng_normal(&rng) + (float)(i % 5);
    for (int i = 0; i < NSAMPLES * H * F; i++) future[i] = rng_normal(&rng);
    Tape tape;
    tape_init(&tape, 1 << 20);
    tape.recording = false;

    cJSON *log = cJSON_CreateArray();
    ShedderRemoval removal;
    ShedderOptions options = {1, SHEDDER_BLOCK, BATCH};
    int rc = shedder_search_values(&model, values, future, NSAMPLES, SEQLEN, &options, &removal, log, &err);
    check(rc == 0, "forecast search: %s", rc ? err.message : "");
    double dense = (double)mamba_forward_values(&tape, &model, values, future, NSAMPLES, SEQLEN, NULL, NULL)->data[0];
    const cJSON *first = cJSON_GetArrayItem(log, 0);
    const cJSON *logged_dense = first ? cJSON_GetObjectItemCaseSensitive(first, "dense_mse") : NULL;
    check(cJSON_IsNumber(logged_dense) && relative_error(logged_dense->valuedouble, dense) < 1e-5,
          "forecast: dense_mse %g = the direct MSE %g", cJSON_IsNumber(logged_dense) ? logged_dense->valuedouble : NAN,
          dense);
    int best = -1;
    double best_mse = INFINITY;
    for (int l = 0; l < LAYERS; l++) {
        MambaModel without;
        model_without_layer(&model, l, &without);
        tape_reset(&tape);
        double direct = (double)mamba_forward_values(&tape, &without, values, future, NSAMPLES, SEQLEN, NULL, NULL)->data[0];
        double mse = logged_metric(log, 1, "layer", l, "mse");
        check(relative_error(mse, direct) < 1e-5, "forecast: layer %d removed, logged MSE %g = direct %g", l, mse, direct);
        check(relative_error(direct, dense) > 1e-6, "forecast: removing layer %d changes the MSE", l);
        if (direct < best_mse) best = l, best_mse = direct;
        mamba_model_free(&without);
    }
    check(rc == 0 && removal.layer == best, "forecast: removed layer %d, the argmin is %d", removal.layer, best);

    MambaModel extracted;
    rc = shedder_extract(&model, SHEDDER_BLOCK, &removal, 1, &extracted, &err);
    check(rc == 0, "forecast extract: %s", rc ? err.message : "");
    if (rc == 0) {
        check(extracted.config.n_layer == LAYERS - 1, "forecast extract: %d layers", extracted.config.n_layer);
        tape_reset(&tape);
        double mse = (double)mamba_forward_values(&tape, &extracted, values, future, NSAMPLES, SEQLEN, NULL, NULL)->data[0];
        check(relative_error(mse, removal.score) < 1e-5, "forecast extract: MSE %g = the chosen %g", mse,
              removal.score);
        const char *heads[] = {"input_proj.weight", "input_proj.bias", "revin.weight", "revin.bias", "head.weight",
                               "head.bias", "backbone.norm_f.weight"};
        for (int k = 0; k < 7; k++) {
            Tensor *a = mamba_model_find(&model, heads[k]), *b = mamba_model_find(&extracted, heads[k]);
            check(a && b && a->size == b->size && memcmp(a->data, b->data, sizeof(float) * a->size) == 0,
                  "forecast extract: %s copied", heads[k]);
        }
        mamba_model_free(&extracted);
    }
    cJSON_Delete(log);

    // The series search on a language model is an error, and so are missing windows.
    MambaModel lm;
    tiny_model_create_sized(&lm, 8, 2, 11, 4, 2, 3);
    rc = shedder_search_values(&lm, values, future, NSAMPLES, SEQLEN, &options, &removal, NULL, &err);
    check_error("series search on an LM", rc, &err, "model.head forecast", NULL);
    rc = shedder_search_values(&model, values, NULL, NSAMPLES, SEQLEN, &options, &removal, NULL, &err);
    check_error("series search without future", rc, &err, "future", NULL);
    mamba_model_free(&lm);
    tape_free(&tape);
    mamba_model_free(&model);
}

int main(void) {
    char dir[] = "/tmp/test_shedder.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    MambaModel extracted;
    int kept_layers[2];
    test_block_search(&extracted, kept_layers);
    test_noop_layers();
    test_ssm_search();
    test_checkpoint_round_trip(&extracted, kept_layers, dir);
    mamba_model_free(&extracted);
    test_bad_input();
    test_forecast_search();
    rmdir(dir);
    return check_summary("shedder");
}
