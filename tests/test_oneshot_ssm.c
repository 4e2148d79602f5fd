// The one-shot driver's sparsessm and shedder paths on tiny models: sparsessm's A_log mask
// is the one its scores give on the first block's inputs (computed here directly), the
// linear layers follow the sensitivity allocation with exact counts, N:M holds along the
// state axis, the structured variant really shrinks d_state (the smaller model computes
// what the masked one did) and keeps every other mask; the shedder removes blocks or
// SSMs, renumbers the layers, and carries each kept layer's masks over; bad settings fail
// naming the key.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "check.h"
#include "oneshot_setup.h"
#include "prune/linear_prune.h"
#include "prune/sparsessm.h"

static size_t pruned_of(const MaskedTensor *m) {
    size_t n = 0;
    for (size_t i = 0; i < m->tensor->size; i++) n += !m->keep[i];
    return n;
}

static MaskedTensor *mask_of(PruneMasks *masks, int layer, const char *suffix) {
    char name[96];
    snprintf(name, sizeof name, "backbone.layers.%d.mixer.%s", layer, suffix);
    return prune_masks_find(masks, name);
}

static const cJSON *at_path(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItem(o, a);
    return b ? cJSON_GetObjectItem(x, b) : x;
}

// Logits of the windows' tokens.
static float *logits_of(MambaModel *model, const int32_t *tokens, int batch, int seqlen) {
    Tape tape;
    tape_init(&tape, 1 << 20);
    tape.recording = false;
    Tensor *logits;
    mamba_forward(&tape, model, tokens, NULL, batch, seqlen, &logits);
    float *copy = malloc(logits->size * sizeof(float));
    memcpy(copy, logits->data, logits->size * sizeof(float));
    tape_free(&tape);
    return copy;
}

static void test_sparsessm_unstructured(void) {
    // One batch of all windows, so that the direct scores below sum in the driver's order.
    const char *sets[] = {"train.batch_size=6", NULL};
    Setup s, direct, again;
    setup_create(&s, 2, "sparsessm", sets);
    setup_create(&direct, 2, "sparsessm", sets);
    setup_create(&again, 2, "sparsessm", sets);
    Error err;
    cJSON *report;
    int rc = run(&s, &report, &err);
    check(rc == 0, "sparsessm runs: %s", rc ? err.message : "ok");
    // Layer 0's A_log directly: conv1d pruned by magnitude first, in_proj as the driver
    // pruned it (the scores come from x_proj's pass, after in_proj), then the scores of
    // the block's scan inputs.
    const MambaConfig *c = &direct.model.config;
    int D = c->d_inner, N = c->d_state, T = NSAMPLES * SEQLEN;
    MaskedTensor *conv = mask_of(&direct.masks, 0, "conv1d.weight");
    WeightView v = {conv->name, conv->tensor->data, conv->keep, D, c->d_conv};
    magnitude_prune(&v, &(PruneTarget){.sparsity = 0.5}, &err);
    int32_t tokens[NSAMPLES * SEQLEN], targets[NSAMPLES * SEQLEN];
    data_train_batch(&direct.data, ONESHOT_CALIB_BATCH, NSAMPLES, SEQLEN, tokens, targets);
    Tape tape;
    tape_init(&tape, 1 << 20);
    tape.recording = false;
    MambaBlockTrace tr;
    MambaLayer *l0 = &direct.model.layers[0];
    memcpy(l0->in_proj_weight.data, s.model.layers[0].in_proj_weight.data, l0->in_proj_weight.size * sizeof(float));
    mamba_block_forward(&tape, c, l0, mamba_embed(&tape, &direct.model, tokens, T), NSAMPLES, SEQLEN, &tr);
    float w[SEQLEN];
    sparsessm_time_weights(SPARSESSM_HARMONIC, 0.9, SEQLEN, w, &err);
    double scores[64] = {0};
    SelectiveScanShape shape = {.batch = NSAMPLES, .seqlen = SEQLEN, .d_inner = D, .d_state = N};
    sparsessm_accumulate_alog_scores(&shape, tr.xs->data, tr.dt->data, l0->dt_proj_bias.data, l0->A_log.data,
                                     tr.B_ssm->data, w, scores);
    for (int k = 0; k < D * N; k++) scores[k] /= NSAMPLES;
    uint8_t expect[64];
    sparsessm_mask_unstructured(scores, D, N, 0.5, expect, &err);
    tape_free(&tape);
    const MaskedTensor *alog0 = mask_of(&s.masks, 0, "A_log"), *alog1 = mask_of(&s.masks, 1, "A_log");
    check(memcmp(alog0->keep, expect, (size_t)D * N) == 0 && pruned_of(alog1) == 32,
          "sparsessm A_log of layer 0 = the mask of its time-weighted OBS scores; 32 of 64 in each layer");
    // Linear layers: x_proj, dt_proj, conv1d at 50% exactly; in_proj / out_proj at the allocated sparsities.
    bool exact = true;
    double mean_in = 0;
    const cJSON *alloc_in = at_path(report, "allocation", "in_proj"), *alloc_out = at_path(report, "allocation", "out_proj");
    for (int i = 0; i < 2; i++) {
        const char *half[] = {"x_proj.weight", "dt_proj.weight", "conv1d.weight"};
        for (int k = 0; k < 3; k++) {
            const MaskedTensor *m = mask_of(&s.masks, i, half[k]);
            exact = exact && pruned_of(m) == (size_t)llround(0.5 * m->tensor->size);
        }
        double p_in = cJSON_GetArrayItem(cJSON_GetObjectItem(alloc_in, "sparsity"), i)->valuedouble;
        double p_out = cJSON_GetArrayItem(cJSON_GetObjectItem(alloc_out, "sparsity"), i)->valuedouble;
        const MaskedTensor *in = mask_of(&s.masks, i, "in_proj.weight"), *out = mask_of(&s.masks, i, "out_proj.weight");
        exact = exact && pruned_of(in) == (size_t)llround(p_in * in->tensor->size) &&
                pruned_of(out) == (size_t)llround(p_out * out->tensor->size);
        mean_in += p_in / 2;
    }
    double p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(alloc_in, "sparsity"), 0)->valuedouble;
    check(exact && fabs(mean_in - 0.5) < 1e-12 && fabs(fabs(p0 - 0.5) - 0.02) < 1e-12,
          "sparsessm linear layers: exact counts, in_proj at 0.5 +- 0.02 by sensitivity (mean %.3f, layer 0 %.3f)",
          mean_in, p0);
    rc = run(&again, NULL, &err);
    check(rc == 0 && same_weights(&s.model, &again.model), "sparsessm is deterministic");
    cJSON_Delete(report);
    setup_free(&s), setup_free(&direct), setup_free(&again);

    // N:M along the state axis (and the linear layers).
    const char *nm[] = {"prune.nm_n=2", "prune.nm_m=4", "prune.exclude=[dt_proj]", NULL};
    setup_create(&s, 2, "sparsessm", nm);
    rc = run(&s, NULL, &err);
    bool groups = true;
    for (int k = 0; k < s.masks.n; k++) {
        const MaskedTensor *m = &s.masks.tensors[k];
        for (size_t g = 0; g < m->tensor->size; g += 4)
            groups = groups && (!m->keep[g] + !m->keep[g + 1] + !m->keep[g + 2] + !m->keep[g + 3]) == 2;
    }
    check(rc == 0 && groups, "sparsessm 2:4: 2 of every 4 pruned in every tensor, A_log along the state axis");
    setup_free(&s);
}

static void test_sparsessm_structured(void) {
    // Only A_log: the state columns go, nothing else changes, so the smaller model must
    // compute what the dense model does with the dropped columns' B and C rows zeroed.
    const char *alog_only[] = {"prune.sparsessm_structured=true", "prune.include=[A_log]", NULL};
    Setup s;
    setup_create(&s, 2, "sparsessm", alog_only);
    MambaModel dense;
    tiny_model_create(&dense, 2, 7);
    Error err;
    cJSON *report;
    int rc = run(&s, &report, &err);
    check(rc == 0 && s.model.config.d_state == 2 && s.model.layers[1].A_log.shape[1] == 2 &&
              s.model.layers[0].x_proj_weight.shape[0] == 3 + 2 * 2 && s.masks.n == 2 && s.masks.total == 2 * 16 * 2,
          "structured: d_state 4 -> %d, A_log (16, 2), x_proj (7, 16), masks re-created (%d, %zu weights) %s",
          s.model.config.d_state, s.masks.n, s.masks.total, rc ? err.message : "");
    const MambaConfig *c = &dense.config;
    int D = c->d_inner, R = c->dt_rank, N = c->d_state;
    const cJSON *layers = cJSON_GetObjectItem(report, "layers");
    for (int i = 0; i < 2; i++) {
        bool kept[4] = {false};
        const cJSON *col;
        cJSON_ArrayForEach(col, cJSON_GetObjectItem(cJSON_GetArrayItem(layers, i), "state_columns_kept")) kept[col->valueint] = true;
        for (int n = 0; n < N; n++)
            if (!kept[n]) {
                memset(dense.layers[i].x_proj_weight.data + (size_t)(R + n) * D, 0, sizeof(float) * D);
                memset(dense.layers[i].x_proj_weight.data + (size_t)(R + N + n) * D, 0, sizeof(float) * D);
            }
    }
    int32_t tokens[2 * SEQLEN], targets[2 * SEQLEN];
    data_train_batch(&s.data, 5, 2, SEQLEN, tokens, targets);
    float *a = logits_of(&s.model, tokens, 2, SEQLEN), *b = logits_of(&dense, tokens, 2, SEQLEN);
    double max_diff = 0;
    for (int k = 0; k < 2 * SEQLEN * c->vocab_padded; k++) max_diff = fmax(max_diff, fabs(a[k] - b[k]));
    check(rc == 0 && max_diff < 1e-5, "structured: the smaller model = the dense one with those B, C rows zeroed (%.1e)",
          max_diff);
    free(a), free(b);
    cJSON_Delete(report);
    mamba_model_free(&dense);
    setup_free(&s);

    // With every mixer tensor: the other masks survive the rebuild with their counts.
    const char *all[] = {"prune.sparsessm_structured=true", NULL};
    setup_create(&s, 2, "sparsessm", all);
    rc = run(&s, NULL, &err);
    bool exact = s.masks.n == 12;
    for (int k = 0; k < s.masks.n && rc == 0; k++) {
        const MaskedTensor *m = &s.masks.tensors[k];
        bool zero = true;
        for (size_t j = 0; j < m->tensor->size; j++) zero = zero && (m->keep[j] || m->tensor->data[j] == 0.0f);
        if (m->component == PRUNE_A_LOG) exact = exact && pruned_of(m) == 0 && zero;
        else if (m->component == PRUNE_CONV1D || m->component == PRUNE_DT_PROJ)
            exact = exact && pruned_of(m) == (size_t)llround(0.5 * m->tensor->size) && zero;
        else exact = exact && pruned_of(m) > 0 && zero;
    }
    check(rc == 0 && exact && s.model.config.d_state == 2,
          "structured with every mixer tensor: masks carried into the smaller model, pruned weights 0 %s",
          rc ? err.message : "");
    setup_free(&s);

    const char *with_nm[] = {"prune.sparsessm_structured=true", "prune.nm_n=2", "prune.nm_m=4", "prune.exclude=[dt_proj]", NULL};
    setup_create(&s, 2, "sparsessm", with_nm);
    check_error("structured with N:M", run(&s, NULL, &err), &err, "prune.sparsessm_structured", NULL);
    setup_free(&s);
    const char *one_layer[] = {"prune.sparsessm_structured=true", "prune.exclude=[layers.1.mixer.A_log]", NULL};
    setup_create(&s, 2, "sparsessm", one_layer);
    check_error("structured without layer 1's A_log", run(&s, NULL, &err), &err, "prune.sparsessm_structured",
                "layer 1", NULL);
    setup_free(&s);
}

static void test_shedder(void) {
    Error err;
    for (int t = 0; t < 2; t++) {
        const char *sets[] = {"prune.shedder_steps=2", t == 0 ? "prune.shedder_target=block" : "prune.shedder_target=ssm",
                              NULL};
        Setup s;
        setup_create(&s, 4, "shedder", sets);
        MambaModel dense;
        tiny_model_create(&dense, 4, 7);
        // A pattern of masks pruned before, different in every layer, to follow through the extraction.
        for (int k = 0; k < s.masks.n; k++) {
            MaskedTensor *m = &s.masks.tensors[k];
            for (size_t j = 0; j < m->tensor->size; j++) m->keep[j] = (j + (size_t)m->layer) % 3 != 0;
        }
        prune_masks_apply(&s.masks, NULL);
        cJSON *report;
        int rc = run(&s, &report, &err);
        const cJSON *removals = cJSON_GetObjectItem(report, "removals"), *log = cJSON_GetObjectItem(report, "search_log");
        bool gone[4] = {false};
        const cJSON *r;
        cJSON_ArrayForEach(r, removals) gone[cJSON_GetObjectItem(r, "layer")->valueint] = true;
        int expect_layers = t == 0 ? 2 : 4;
        bool masks_follow = s.masks.n == 6 * expect_layers, weights_follow = true;
        for (int j = 0, old = 0; j < expect_layers && rc == 0; j++, old++) {
            while (t == 0 && gone[old]) old++;
            const char *names[] = {"in_proj.weight", "conv1d.weight", "x_proj.weight", "dt_proj.weight", "A_log",
                                   "out_proj.weight"};
            for (int k = 0; k < 6; k++) {
                const MaskedTensor *m = mask_of(&s.masks, j, names[k]);
                for (size_t q = 0; m && q < m->tensor->size; q++) {
                    bool was_kept = (q + (size_t)old) % 3 != 0;
                    bool c_row_of_removed_ssm = t == 1 && gone[old] && k == 2 &&
                                                q >= (size_t)(dense.config.dt_rank + dense.config.d_state) * dense.config.d_inner;
                    masks_follow = masks_follow && m->keep[q] == (was_kept && !c_row_of_removed_ssm);
                }
                masks_follow = masks_follow && m != NULL;
            }
            const Tensor *in = &s.model.layers[j].in_proj_weight, *in_old = &dense.layers[old].in_proj_weight;
            for (size_t q = 0; q < in->size; q++)
                weights_follow = weights_follow && in->data[q] == ((q + (size_t)old) % 3 != 0 ? in_old->data[q] : 0.0f);
        }
        check(rc == 0 && s.model.config.n_layer == expect_layers && cJSON_GetArraySize(removals) == 2 &&
                  cJSON_GetArraySize(log) > 2 && masks_follow && weights_follow,
              "shedder %s, 2 steps: %d layers left, search log of %d entries, masks and weights follow their layers %s",
              t == 0 ? "block" : "ssm", s.model.config.n_layer, cJSON_GetArraySize(log), rc ? err.message : "");
        cJSON_Delete(report);
        mamba_model_free(&dense);
        setup_free(&s);
    }
    const char *too_many[] = {"prune.shedder_steps=2", NULL};
    Setup s;
    setup_create(&s, 2, "shedder", too_many);
    check_error("shedder: 2 removals of 2 blocks", run(&s, NULL, &err), &err, "prune.shedder_steps", NULL);
    check(s.model.config.n_layer == 2, "a failed search leaves the model as it was");
    setup_free(&s);
}

int main(void) {
    test_sparsessm_unstructured();
    test_sparsessm_structured();
    test_shedder();
    return check_summary("one-shot sparsessm and shedder");
}
