// The eigenvalue stability check (docs/DESIGN.md#stability-check): stability_measure against Δ recomputed by hand
// from mamba_forward_traced's trace; constructed updates that do push an eigenvalue past the
// bound, through A_log and through dt_proj, and their correction (what is given back, in which
// order, what pays for it, the counts, nothing left after); an update that needs nothing;
// the groups; and the failures, which must leave the model and the new mask as they were.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prune/stability.h"
#include "tiny_model.h"

#include "check.h"

enum { BATCH = 2, SEQ = 9, N_BATCHES = 2, N_TOKENS = N_BATCHES * BATCH * SEQ };
static const double EPSILON = 0.01;

// A tiny model, masks on the mixers' weight matrices and A_log, an update to check (new_keep,
// scores = |w|, one global group) and the calibration batches.
typedef struct Setup {
    MambaModel model;
    PruneMasks masks;
    uint8_t **new_keep;
    float **scores;
    int *group;
    int32_t tokens[N_TOKENS];
    StabilityOptions options;
    Tape tape;
} Setup;

// A model whose eigenvalues stay far from the bound whatever is pruned: Δ = softplus(1 + small)
// in every channel, so exp(Δ A) <= exp(-1.3 * 0.9) even with A = -1.
static void setup_create(Setup *s, int n_layer, uint64_t seed) {
    tiny_model_create(&s->model, n_layer, seed);
    const MambaConfig *c = &s->model.config;
    for (int l = 0; l < n_layer; l++) {
        MambaLayer *layer = &s->model.layers[l];
        for (int d = 0; d < c->d_inner; d++) layer->dt_proj_bias.data[d] = 1.0f;
        for (size_t k = 0; k < layer->dt_proj_weight.size; k++) layer->dt_proj_weight.data[k] *= 0.1f;
    }
    bool *prunable = calloc((size_t)s->model.n_params, sizeof(bool));
    for (int i = 0; i < s->model.n_params; i++)
        prunable[i] = prune_component_of(s->model.params[i].name, NULL) != PRUNE_OTHER;
    prune_masks_create(&s->masks, &s->model, prunable);
    free(prunable);
    s->new_keep = calloc((size_t)s->masks.n, sizeof(uint8_t *));
    s->scores = calloc((size_t)s->masks.n, sizeof(float *));
    s->group = calloc((size_t)s->masks.n, sizeof(int));
    for (int i = 0; i < s->masks.n; i++) {
        const Tensor *t = s->masks.tensors[i].tensor;
        s->new_keep[i] = malloc(t->size);
        memset(s->new_keep[i], 1, t->size);
        s->scores[i] = malloc(sizeof(float) * t->size);
        for (size_t j = 0; j < t->size; j++) s->scores[i][j] = fabsf(t->data[j]);
    }
    Rng rng;
    rng_seed(&rng, seed + 100);
    for (int k = 0; k < N_TOKENS; k++) s->tokens[k] = (int32_t)rng_below(&rng, (uint64_t)c->vocab_size);
    s->options = (StabilityOptions){
        .epsilon = EPSILON, .batch_size = BATCH, .seqlen = SEQ, .n_batches = N_BATCHES, .tokens = s->tokens};
    tape_init(&s->tape, 1 << 20);
}

static void setup_free(Setup *s) {
    for (int i = 0; i < s->masks.n; i++) {
        free(s->new_keep[i]);
        free(s->scores[i]);
    }
    free(s->new_keep);
    free(s->scores);
    free(s->group);
    prune_masks_free(&s->masks);
    mamba_model_free(&s->model);
    tape_free(&s->tape);
}

static int mask_index(Setup *s, const char *format, int layer) {
    char name[96];
    snprintf(name, sizeof name, format, layer);
    MaskedTensor *m = prune_masks_find(&s->masks, name);
    return m ? (int)(m - s->masks.tensors) : -1;
}

static int compare_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

// Prunes in keep[i] every weight of each tensor whose score is at most that tensor's
// `fraction` quantile (scores are distinct |w| but for exact zeros, which go too).
static void prune_lowest(Setup *s, uint8_t **keep, double fraction) {
    for (int i = 0; i < s->masks.n; i++) {
        size_t size = s->masks.tensors[i].tensor->size, k = (size_t)(fraction * (double)size);
        if (k == 0) continue;
        float *sorted = malloc(sizeof(float) * size);
        memcpy(sorted, s->scores[i], sizeof(float) * size);
        qsort(sorted, size, sizeof(float), compare_float);
        for (size_t j = 0; j < size; j++)
            if (s->scores[i][j] <= sorted[k - 1]) keep[i][j] = 0;
        free(sorted);
    }
}

// The old masks prune the lowest `fraction`: set them and apply them to the model.
static void set_old_masks(Setup *s, double fraction) {
    uint8_t **keep = malloc(sizeof(uint8_t *) * (size_t)s->masks.n);
    for (int i = 0; i < s->masks.n; i++) keep[i] = s->masks.tensors[i].keep;
    prune_lowest(s, keep, fraction);
    free(keep);
    prune_masks_apply(&s->masks, NULL);
    for (int i = 0; i < s->masks.n; i++)
        memcpy(s->new_keep[i], s->masks.tensors[i].keep, s->masks.tensors[i].tensor->size);
}

static uint8_t **copy_keep(const Setup *s, uint8_t *const *keep) {
    uint8_t **copy = malloc(sizeof(uint8_t *) * (size_t)s->masks.n);
    for (int i = 0; i < s->masks.n; i++) {
        size_t size = s->masks.tensors[i].tensor->size;
        copy[i] = malloc(size);
        memcpy(copy[i], keep[i], size);
    }
    return copy;
}

static void free_keep(const Setup *s, uint8_t **keep) {
    for (int i = 0; i < s->masks.n; i++) free(keep[i]);
    free(keep);
}

static long count_pruned(size_t size, const uint8_t *keep) {
    long pruned = 0;
    for (size_t j = 0; j < size; j++) pruned += !keep[j];
    return pruned;
}

// Every parameter's values, to show that the model comes back unchanged.
static float *snapshot(const MambaModel *model) {
    float *copy = malloc(sizeof(float) * model->n_elements), *p = copy;
    for (int i = 0; i < model->n_params; i++) {
        const Tensor *t = model->params[i].tensor;
        memcpy(p, t->data, sizeof(float) * t->size);
        p += t->size;
    }
    return copy;
}

static bool unchanged(const MambaModel *model, const float *copy) {
    for (int i = 0; i < model->n_params; i++) {
        const Tensor *t = model->params[i].tensor;
        if (memcmp(copy, t->data, sizeof(float) * t->size) != 0) return false;
        copy += t->size;
    }
    return true;
}

static long n_entries(const MambaModel *model) {
    return (long)model->config.n_layer * model->config.d_inner * model->config.d_state;
}

// Entries past the bound under keep (applied to a copy of the weights) that were within it in
// ref; per layer into per_layer (may be NULL).
static long violations_under(Setup *s, uint8_t *const *keep, const float *ref, long *per_layer) {
    MambaModel *model = &s->model;
    float *saved = snapshot(model);
    for (int i = 0; i < s->masks.n; i++)
        for (size_t j = 0; j < s->masks.tensors[i].tensor->size; j++)
            if (!keep[i][j]) s->masks.tensors[i].tensor->data[j] = 0.0f;
    float *m = malloc(sizeof(float) * (size_t)n_entries(model));
    Error err;
    int rc = stability_measure(model, &s->tape, &s->options, m, &err);
    // Put the weights back.
    const float *p = saved;
    for (int i = 0; i < model->n_params; i++) {
        Tensor *t = model->params[i].tensor;
        memcpy(t->data, p, sizeof(float) * t->size);
        p += t->size;
    }
    free(saved);
    long count = rc == 0 ? 0 : -1;
    long per_entry_layer = (long)model->config.d_inner * model->config.d_state;
    if (per_layer) memset(per_layer, 0, sizeof(long) * (size_t)model->config.n_layer);
    for (long k = 0; rc == 0 && k < n_entries(model); k++)
        if ((double)m[k] > 1.0 - EPSILON && (double)ref[k] <= 1.0 - EPSILON) {
            count++;
            if (per_layer) per_layer[k / per_entry_layer]++;
        }
    free(m);
    return count;
}

static float *measure(Setup *s) {
    float *m = malloc(sizeof(float) * (size_t)n_entries(&s->model));
    Error err;
    if (stability_measure(&s->model, &s->tape, &s->options, m, &err) != 0) {
        printf("stability_measure failed: %s\n", err.message);
        exit(1);
    }
    return m;
}

// The weights where after differs from before: (tensor, index) pairs.
typedef struct Change {
    int tensor;
    size_t index;
    int was, now;
} Change;

static int changes(const Setup *s, uint8_t *const *before, uint8_t *const *after, Change *out, int max) {
    int n = 0;
    for (int i = 0; i < s->masks.n; i++)
        for (size_t j = 0; j < s->masks.tensors[i].tensor->size; j++)
            if (before[i][j] != after[i][j]) {
                if (n < max) out[n] = (Change){i, j, before[i][j], after[i][j]};
                n++;
            }
    return n;
}

// The k-th (0-based) lowest-scored weight kept in keep among tensors with in_group[i], in
// the order (score, tensor, index), leaving out the rows `excluded` says.
typedef bool (*Excluded)(const Setup *s, int tensor, size_t index);

static Change lowest_kept(const Setup *s, uint8_t *const *keep, const bool *in_group, Excluded excluded, int k) {
    Change best = {-1, 0, 1, 0};
    for (int round = 0; round <= k; round++) {
        Change found = {-1, 0, 1, 0};
        float found_score = INFINITY;
        for (int i = 0; i < s->masks.n; i++) {
            if (!in_group[i]) continue;
            for (size_t j = 0; j < s->masks.tensors[i].tensor->size; j++) {
                if (!keep[i][j] || excluded(s, i, j)) continue;
                // Strictly after the previous pick in the order.
                if (best.tensor >= 0) {
                    float b = s->scores[best.tensor][best.index], x = s->scores[i][j];
                    bool after = x > b || (x == b && (i > best.tensor || (i == best.tensor && j > best.index)));
                    if (!after) continue;
                }
                if (s->scores[i][j] < found_score) {
                    found_score = s->scores[i][j];
                    found = (Change){i, j, 1, 0};
                }
            }
        }
        best = found;
    }
    return best;
}

// ---------------------------------------------------------------------------------------
// stability_measure against Δ recomputed from the trace

static void test_measure(void) {
    Setup s;
    setup_create(&s, 2, 11);
    const MambaConfig *c = &s.model.config;
    int D = c->d_inner, N = c->d_state, T = BATCH * SEQ;
    // Some channels with small Δ, whose eigenvalues come close to 1.
    for (int l = 0; l < c->n_layer; l++)
        for (int d = 0; d < 4; d++) s.model.layers[l].dt_proj_bias.data[d * 3] = -6.0f;
    float *m = measure(&s);

    double *min_delta = malloc(sizeof(double) * (size_t)c->n_layer * D);
    for (long k = 0; k < (long)c->n_layer * D; k++) min_delta[k] = INFINITY;
    MambaBlockTrace *traces = malloc(sizeof(MambaBlockTrace) * (size_t)c->n_layer);
    s.tape.recording = false;
    for (int b = 0; b < N_BATCHES; b++) {
        tape_reset(&s.tape);
        mamba_forward_traced(&s.tape, &s.model, s.tokens + b * T, NULL, BATCH, SEQ, NULL, traces);
        for (int l = 0; l < c->n_layer; l++)
            for (int t = 0; t < T; t++)
                for (int d = 0; d < D; d++) {
                    double x = (double)traces[l].dt->data[t * D + d] + s.model.layers[l].dt_proj_bias.data[d];
                    double delta = log1p(exp(x));
                    if (delta < min_delta[l * D + d]) min_delta[l * D + d] = delta;
                }
    }
    s.tape.recording = true;
    double max_rel = 0.0;
    int near_one = 0;
    for (int l = 0; l < c->n_layer; l++)
        for (int d = 0; d < D; d++)
            for (int n = 0; n < N; n++) {
                double a = -exp((double)s.model.layers[l].A_log.data[d * N + n]);
                double expected = exp(min_delta[l * D + d] * a);
                double got = m[(l * D + d) * N + n];
                double rel = fabs(got - expected) / expected;
                max_rel = rel > max_rel ? rel : max_rel;
                near_one += expected > 1.0 - EPSILON;
            }
    check(max_rel < 1e-5, "stability_measure against min_t exp(softplus(dt + dt_bias) A) from the trace: max rel err %.2e",
          max_rel);
    check(near_one > 0 && near_one < c->n_layer * D * N,
          "the measured model has entries on both sides of the bound (%d of %d past it)", near_one,
          c->n_layer * D * N);
    free(traces);
    free(min_delta);
    free(m);
    setup_free(&s);
}

// ---------------------------------------------------------------------------------------
// An update that prunes an A_log entry whose eigenvalue then passes the bound

enum { A_LAYER = 1, A_CHANNEL = 5, A_STATE = 2 };

static bool a_case_excluded(const Setup *s, int i, size_t j) {
    const MaskedTensor *m = &s->masks.tensors[i];
    if (m->layer != A_LAYER) return false;
    if (m->component == PRUNE_A_LOG) return j / (size_t)s->model.config.d_state == A_CHANNEL;
    if (m->component == PRUNE_DT_PROJ) return j / (size_t)s->model.config.dt_rank == A_CHANNEL;
    return false;
}

// Channel A_CHANNEL of layer A_LAYER gets Δ ≈ softplus(-7) ≈ 9e-4 at every token, and entry
// A_STATE of it A_log = 4.5: m = exp(-9e-4 * 90) ≈ 0.92, within the bound, but 0.9991 once
// A_log is pruned to 0 (A = -1). The old masks prune 10% of every tensor, the update 30%
// and that entry.
static void a_case_create(Setup *s) {
    setup_create(s, 2, 23);
    MambaLayer *layer = &s->model.layers[A_LAYER];
    int N = s->model.config.d_state, R = s->model.config.dt_rank;
    layer->dt_proj_bias.data[A_CHANNEL] = -7.0f;
    for (int r = 0; r < R; r++) layer->dt_proj_weight.data[A_CHANNEL * R + r] = 0.0f;
    layer->A_log.data[A_CHANNEL * N + A_STATE] = 4.5f;
    for (int i = 0; i < s->masks.n; i++)
        for (size_t j = 0; j < s->masks.tensors[i].tensor->size; j++)
            s->scores[i][j] = fabsf(s->masks.tensors[i].tensor->data[j]);
    // The old masks spare the entry: it is pruned by the update, not before.
    int a = mask_index(s, "backbone.layers.%d.mixer.A_log", A_LAYER);
    s->scores[a][A_CHANNEL * N + A_STATE] = 100.0f;
    set_old_masks(s, 0.1);
    prune_lowest(s, s->new_keep, 0.3);
    s->new_keep[a][A_CHANNEL * N + A_STATE] = 0;
    s->scores[a][A_CHANNEL * N + A_STATE] = 0.5f;
}

static void check_a_case(const char *label, bool layerwise) {
    Setup s;
    a_case_create(&s);
    int N = s.model.config.d_state;
    int a = mask_index(&s, "backbone.layers.%d.mixer.A_log", A_LAYER);
    if (layerwise)
        for (int i = 0; i < s.masks.n; i++) s.group[i] = i;
    float *ref = measure(&s);
    float *weights = snapshot(&s.model);
    uint8_t **before = copy_keep(&s, s.new_keep);
    long per_layer[2];
    long found = violations_under(&s, s.new_keep, ref, per_layer);
    check(found == 1 && per_layer[A_LAYER] == 1, "%s: the update pushes exactly one entry past the bound (%ld)", label,
          found);

    StabilityReport report;
    Error err;
    int rc = stability_correct(&s.model, &s.tape, &s.masks, s.new_keep, (const float *const *)s.scores, s.group,
                               &s.options, &report, &err);
    check(rc == 0, "%s: stability_correct succeeds (%s)", label, rc ? err.message : "");
    check(unchanged(&s.model, weights), "%s: the model is unchanged on return", label);
    check(s.new_keep[a][A_CHANNEL * N + A_STATE] == 1, "%s: the pruned A_log entry is given back", label);
    check(report.n_layer == 2 && report.violations[0] == 0 && report.violations[1] == 1 && report.corrected[0] == 0 &&
              report.corrected[1] == 1,
          "%s: the report counts the violation and the correction in layer %d", label, A_LAYER);
    check(report.corrected_a_log == 1 && report.corrected_dt_proj == 0 && report.rebalanced == 1 &&
              report.remaining == 0,
          "%s: corrected_a_log 1, dt_proj 0, rebalanced 1, remaining 0 (got %ld, %ld, %ld, %ld)", label,
          report.corrected_a_log, report.corrected_dt_proj, report.rebalanced, report.remaining);

    // Exactly two changes: the entry given back, and the lowest-scored kept weight of its group.
    bool *in_group = malloc(sizeof(bool) * (size_t)s.masks.n);
    for (int i = 0; i < s.masks.n; i++) in_group[i] = s.group[i] == s.group[a];
    Change expected = lowest_kept(&s, before, in_group, a_case_excluded, 0);
    Change seen[4];
    int n_changes = changes(&s, before, s.new_keep, seen, 4);
    int k = n_changes == 2 && seen[0].now == 1 ? 1 : 0;  // the given-back one may come first
    check(n_changes == 2 && seen[1 - k].tensor == a && seen[1 - k].index == (size_t)(A_CHANNEL * N + A_STATE) &&
              seen[k].tensor == expected.tensor && seen[k].index == expected.index && seen[k].now == 0,
          "%s: the rebalance prunes the lowest-scored kept weight of the group (%s[%zu])", label,
          expected.tensor >= 0 ? s.masks.tensors[expected.tensor].name : "none", expected.index);
    bool exact = true;
    long total_before = 0, total_after = 0;
    for (int i = 0; i < s.masks.n; i++) {
        size_t size = s.masks.tensors[i].tensor->size;
        total_before += count_pruned(size, before[i]);
        total_after += count_pruned(size, s.new_keep[i]);
        if (layerwise) exact = exact && count_pruned(size, before[i]) == count_pruned(size, s.new_keep[i]);
    }
    check(exact && total_before == total_after, "%s: the counts stay exact (%ld pruned before and after)", label,
          total_after);
    check(violations_under(&s, s.new_keep, ref, NULL) == 0, "%s: measured again, no violation remains", label);

    cJSON *json = stability_report_json(&report);
    char *text = cJSON_PrintUnformatted(json);
    // The cost in blocks per batch: the reference pass (2), the pass over the update, which
    // changes both layers (2), the re-measure from the layer of the rebalanced weight (layer 0
    // in the global group: 2; the A_log of layer 1 layer-wise: 1).
    const char *want = layerwise ? "{\"violations\":[0,1],\"corrected\":[0,1],\"corrected_a_log\":1,"
                                   "\"corrected_dt_proj\":0,\"rebalanced\":1,\"remaining\":0,\"blocks\":5}"
                                 : "{\"violations\":[0,1],\"corrected\":[0,1],\"corrected_a_log\":1,"
                                   "\"corrected_dt_proj\":0,\"rebalanced\":1,\"remaining\":0,\"blocks\":6}";
    check(strcmp(text, want) == 0, "%s: report JSON %s", label, text);
    free(text);
    cJSON_Delete(json);

    stability_report_free(&report);
    free(in_group);
    free_keep(&s, before);
    free(weights);
    free(ref);
    setup_free(&s);
}

// ---------------------------------------------------------------------------------------
// An update that prunes a dt_proj row, so that Δ of its channel collapses

enum { W_LAYER = 0, W_CHANNEL = 6 };

static bool w_case_excluded(const Setup *s, int i, size_t j) {
    const MaskedTensor *m = &s->masks.tensors[i];
    if (m->layer != W_LAYER) return false;
    if (m->component == PRUNE_A_LOG) return j / (size_t)s->model.config.d_state == W_CHANNEL;
    if (m->component == PRUNE_DT_PROJ) return j / (size_t)s->model.config.dt_rank == W_CHANNEL;
    return false;
}

// In layer W_LAYER, a large conv bias makes every xs positive, and x_proj's first row (δ_0)
// all 0.2, so δ_{t,0} > 0 at every token; the other δ columns are scaled down. Channel
// W_CHANNEL gets dt_bias -8 and dt_proj row (12 / min_t δ_{t,0}, 0.3, -0.2): with the row,
// dt >= 12 - small and m tiny; without it Δ ≈ softplus(-8) ≈ 3e-4 and every m > 0.998.
// The row's scores say: give back column 1 first (it does not help), then column 0 (it
// fixes the channel), never column 2.
static void w_case_create(Setup *s) {
    setup_create(s, 2, 37);
    const MambaConfig *c = &s->model.config;
    int D = c->d_inner, R = c->dt_rank, T = BATCH * SEQ;
    MambaLayer *layer = &s->model.layers[W_LAYER];
    for (int d = 0; d < D; d++) layer->conv1d_bias.data[d] = 6.0f;
    for (int d = 0; d < D; d++) layer->x_proj_weight.data[d] = 0.2f;
    for (int r = 1; r < R; r++)
        for (int d = 0; d < D; d++) layer->x_proj_weight.data[r * D + d] *= 0.1f;
    for (int d = 0; d < D; d++) layer->dt_proj_weight.data[d * R] = 0.0f;
    float min_delta0 = INFINITY;
    MambaBlockTrace traces[2];
    s->tape.recording = false;
    for (int b = 0; b < N_BATCHES; b++) {
        tape_reset(&s->tape);
        mamba_forward_traced(&s->tape, &s->model, s->tokens + b * T, NULL, BATCH, SEQ, NULL, traces);
        for (int t = 0; t < T; t++)
            if (traces[W_LAYER].delta->data[t * R] < min_delta0) min_delta0 = traces[W_LAYER].delta->data[t * R];
    }
    s->tape.recording = true;
    check(min_delta0 > 0.5f, "dt_proj case: δ_0 > 0 at every calibration token (min %.3f)", min_delta0);
    float *row = layer->dt_proj_weight.data + W_CHANNEL * R;
    row[0] = 12.0f / min_delta0;
    row[1] = 0.3f;
    row[2] = -0.2f;
    layer->dt_proj_bias.data[W_CHANNEL] = -8.0f;
    for (int i = 0; i < s->masks.n; i++)
        for (size_t j = 0; j < s->masks.tensors[i].tensor->size; j++)
            s->scores[i][j] = fabsf(s->masks.tensors[i].tensor->data[j]);
    // δ_0 must survive the update: x_proj's first row scores high.
    int x = mask_index(s, "backbone.layers.%d.mixer.x_proj.weight", W_LAYER);
    for (int d = 0; d < D; d++) s->scores[x][d] = 10.0f;
    int w = mask_index(s, "backbone.layers.%d.mixer.dt_proj.weight", W_LAYER);
    s->scores[w][W_CHANNEL * R + 0] = 2.0f;
    s->scores[w][W_CHANNEL * R + 1] = 3.0f;
    s->scores[w][W_CHANNEL * R + 2] = 1.0f;
    prune_lowest(s, s->new_keep, 0.3);
    for (int r = 0; r < R; r++) s->new_keep[w][W_CHANNEL * R + r] = 0;
    // A_log of the channel stays: this case is about Δ alone.
    int a = mask_index(s, "backbone.layers.%d.mixer.A_log", W_LAYER);
    for (int n = 0; n < c->d_state; n++) s->new_keep[a][W_CHANNEL * c->d_state + n] = 1;
}

static void check_w_case(const char *label, bool by_component) {
    Setup s;
    w_case_create(&s);
    int R = s.model.config.dt_rank, N = s.model.config.d_state;
    int w = mask_index(&s, "backbone.layers.%d.mixer.dt_proj.weight", W_LAYER);
    if (by_component)
        for (int i = 0; i < s.masks.n; i++) s.group[i] = (int)s.masks.tensors[i].component;
    float *ref = measure(&s);
    float *weights = snapshot(&s.model);
    uint8_t **before = copy_keep(&s, s.new_keep);
    long per_layer[2];
    long found = violations_under(&s, s.new_keep, ref, per_layer);
    check(found == N && per_layer[W_LAYER] == N, "%s: the update pushes the channel's %d entries past the bound (%ld)",
          label, N, found);

    StabilityReport report;
    Error err;
    int rc = stability_correct(&s.model, &s.tape, &s.masks, s.new_keep, (const float *const *)s.scores, s.group,
                               &s.options, &report, &err);
    check(rc == 0, "%s: stability_correct succeeds (%s)", label, rc ? err.message : "");
    check(unchanged(&s.model, weights), "%s: the model is unchanged on return", label);
    const uint8_t *row = s.new_keep[w] + W_CHANNEL * R;
    check(row[0] == 1 && row[1] == 1 && row[2] == 0,
          "%s: dt_proj row given back highest score first, stopping once fixed: keep %d %d %d (want 1 1 0)", label,
          row[0], row[1], row[2]);
    check(report.violations[W_LAYER] == N && report.violations[1 - W_LAYER] == 0 && report.corrected[W_LAYER] == 2 &&
              report.corrected[1 - W_LAYER] == 0,
          "%s: the report counts %d violations and 2 corrections in layer %d", label, N, W_LAYER);
    check(report.corrected_a_log == 0 && report.corrected_dt_proj == 2 && report.rebalanced == 2 &&
              report.remaining == 0,
          "%s: corrected_a_log 0, dt_proj 2, rebalanced 2, remaining 0 (got %ld, %ld, %ld, %ld)", label,
          report.corrected_a_log, report.corrected_dt_proj, report.rebalanced, report.remaining);

    bool *in_group = malloc(sizeof(bool) * (size_t)s.masks.n);
    for (int i = 0; i < s.masks.n; i++) in_group[i] = s.group[i] == s.group[w];
    Change first = lowest_kept(&s, before, in_group, w_case_excluded, 0);
    Change second = lowest_kept(&s, before, in_group, w_case_excluded, 1);
    Change seen[8];
    int n_changes = changes(&s, before, s.new_keep, seen, 8);
    int n_pruned = 0;
    bool as_expected = n_changes == 4;
    for (int k = 0; k < n_changes && k < 8; k++) {
        if (seen[k].now == 1) {
            as_expected = as_expected && seen[k].tensor == w && seen[k].index / (size_t)R == W_CHANNEL;
            continue;
        }
        n_pruned++;
        bool is_first = seen[k].tensor == first.tensor && seen[k].index == first.index;
        bool is_second = seen[k].tensor == second.tensor && seen[k].index == second.index;
        as_expected = as_expected && (is_first || is_second);
    }
    check(as_expected && n_pruned == 2,
          "%s: the rebalance prunes the two lowest-scored kept weights of the group (%s[%zu], %s[%zu])", label,
          first.tensor >= 0 ? s.masks.tensors[first.tensor].name : "none", first.index,
          second.tensor >= 0 ? s.masks.tensors[second.tensor].name : "none", second.index);
    // Per group (component) counts exact.
    bool exact = true;
    for (int g = 0; g < PRUNE_N_COMPONENTS; g++) {
        long b = 0, a = 0;
        for (int i = 0; i < s.masks.n; i++) {
            if (s.group[i] != g && by_component) continue;
            size_t size = s.masks.tensors[i].tensor->size;
            b += count_pruned(size, before[i]);
            a += count_pruned(size, s.new_keep[i]);
        }
        exact = exact && a == b;
    }
    check(exact, "%s: the counts of every group stay exact", label);
    check(violations_under(&s, s.new_keep, ref, NULL) == 0, "%s: measured again, no violation remains", label);

    stability_report_free(&report);
    free(in_group);
    free_keep(&s, before);
    free(weights);
    free(ref);
    setup_free(&s);
}

// An update that changes only the last layer (the A_log entry of the A case, layer-wise
// groups): the pass over it starts at that layer from the reference pass's kept input, and
// finds what a whole measure finds.
static void test_last_layer_update(void) {
    Setup s;
    a_case_create(&s);
    int N = s.model.config.d_state;
    int a = mask_index(&s, "backbone.layers.%d.mixer.A_log", A_LAYER);
    for (int i = 0; i < s.masks.n; i++) {
        memcpy(s.new_keep[i], s.masks.tensors[i].keep, s.masks.tensors[i].tensor->size);
        s.group[i] = i;
    }
    s.new_keep[a][A_CHANNEL * N + A_STATE] = 0;
    float *ref = measure(&s);
    long per_layer[2];
    long found = violations_under(&s, s.new_keep, ref, per_layer);
    check(found == 1 && per_layer[A_LAYER] == 1, "last layer: a whole measure finds one violation in layer 1 (%ld)",
          found);
    StabilityReport report;
    Error err;
    int rc = stability_correct(&s.model, &s.tape, &s.masks, s.new_keep, (const float *const *)s.scores, s.group,
                               &s.options, &report, &err);
    check(rc == 0, "last layer: stability_correct succeeds (%s)", rc ? err.message : "");
    check(rc == 0 && report.violations[0] == 0 && report.violations[1] == found && report.corrected_a_log == 1 &&
              report.remaining == 0,
          "last layer: the check finds and corrects the same violation");
    check(s.new_keep[a][A_CHANNEL * N + A_STATE] == 1, "last layer: the pruned A_log entry is given back");
    check(violations_under(&s, s.new_keep, ref, NULL) == 0, "last layer: measured again, no violation remains");
    // The reference pass (2 blocks), the pass over the update from layer 1 (1), the re-measure
    // after the rebalance inside layer 1's A_log (1).
    check(rc == 0 && report.blocks == 4, "last layer: 4 blocks per batch (got %ld)", report.blocks);
    if (rc == 0) stability_report_free(&report);
    free(ref);
    setup_free(&s);
}

// ---------------------------------------------------------------------------------------
// An update with no violation, and the failures

static void test_no_violation(void) {
    Setup s;
    setup_create(&s, 2, 41);
    set_old_masks(&s, 0.2);
    prune_lowest(&s, s.new_keep, 0.5);
    // A whole A_log row too: A = -1 is far from the bound when Δ ≈ 1.3.
    int a = mask_index(&s, "backbone.layers.%d.mixer.A_log", 0);
    for (int n = 0; n < s.model.config.d_state; n++) s.new_keep[a][3 * s.model.config.d_state + n] = 0;
    float *weights = snapshot(&s.model);
    uint8_t **before = copy_keep(&s, s.new_keep);
    StabilityReport report;
    Error err;
    int rc = stability_correct(&s.model, &s.tape, &s.masks, s.new_keep, (const float *const *)s.scores, s.group,
                               &s.options, &report, &err);
    check(rc == 0, "no violation: stability_correct succeeds (%s)", rc ? err.message : "");
    check(changes(&s, before, s.new_keep, NULL, 0) == 0, "no violation: new_keep unchanged");
    check(unchanged(&s.model, weights), "no violation: the model is unchanged on return");
    cJSON *json = stability_report_json(&report);
    char *text = cJSON_PrintUnformatted(json);
    // Two whole passes of 2 blocks (before and after the update), no re-measure.
    const char *want = "{\"violations\":[0,0],\"corrected\":[0,0],\"corrected_a_log\":0,\"corrected_dt_proj\":0,"
                       "\"rebalanced\":0,\"remaining\":0,\"blocks\":4}";
    check(strcmp(text, want) == 0, "no violation: report all zero: %s", text);
    free(text);
    cJSON_Delete(json);
    stability_report_free(&report);
    free_keep(&s, before);
    free(weights);
    setup_free(&s);
}

static void test_failures(void) {
    Setup s;
    a_case_create(&s);
    int N = s.model.config.d_state;
    float *weights = snapshot(&s.model);
    StabilityReport report;
    Error err;

    StabilityOptions bad = s.options;
    bad.epsilon = 0.0;
    int rc = stability_correct(&s.model, &s.tape, &s.masks, s.new_keep, (const float *const *)s.scores, s.group, &bad,
                               &report, &err);
    check_error("epsilon 0", rc, &err, "epsilon", "(0, 1)", NULL);
    bad = s.options;
    s.tokens[5] = 999;
    rc = stability_correct(&s.model, &s.tape, &s.masks, s.new_keep, (const float *const *)s.scores, s.group, &bad,
                           &report, &err);
    check_error("token outside the vocabulary", rc, &err, "calibration token 5", "999", NULL);
    s.tokens[5] = 1;

    // A new mask that keeps what the masks prune.
    int x = mask_index(&s, "backbone.layers.%d.mixer.x_proj.weight", 0);
    size_t pruned_x = 0;
    while (s.masks.tensors[x].keep[pruned_x]) pruned_x++;
    s.new_keep[x][pruned_x] = 1;
    rc = stability_correct(&s.model, &s.tape, &s.masks, s.new_keep, (const float *const *)s.scores, s.group,
                           &s.options, &report, &err);
    check_error("new mask not a superset", rc, &err, "x_proj", "already prune", NULL);
    s.new_keep[x][pruned_x] = 0;

    // Layer-wise groups, and the update prunes every A_log entry of the layer outside the
    // violating channel's row: nothing can pay for the entry given back.
    for (int i = 0; i < s.masks.n; i++) s.group[i] = i;
    int a = mask_index(&s, "backbone.layers.%d.mixer.A_log", A_LAYER);
    for (size_t j = 0; j < s.masks.tensors[a].tensor->size; j++)
        if (j / (size_t)N != A_CHANNEL) s.new_keep[a][j] = 0;
    uint8_t **before = copy_keep(&s, s.new_keep);
    rc = stability_correct(&s.model, &s.tape, &s.masks, s.new_keep, (const float *const *)s.scores, s.group,
                           &s.options, &report, &err);
    check_error("nothing left to pay for a give-back", rc, &err, "A_log", "no kept weight left", NULL);
    check(changes(&s, before, s.new_keep, NULL, 0) == 0, "after the failure, new_keep is as it was given");
    check(unchanged(&s.model, weights), "after the failures, the model is unchanged");
    check(report.violations == NULL && report.corrected == NULL, "after a failure, the report holds nothing");
    free_keep(&s, before);
    free(weights);
    setup_free(&s);
}

int main(void) {
    test_measure();
    check_a_case("A_log, global group", false);
    check_a_case("A_log, layer-wise groups", true);
    check_w_case("dt_proj, global group", false);
    check_w_case("dt_proj, component groups", true);
    test_last_layer_update();
    test_no_violation();
    test_failures();
    return check_summary("stability");
}
