// The iterative pruner (prune/iterative.h) on a tiny model, with gradients set by hand:
// which steps feed the accumulator (the last grad_accum_batches before an update, never
// reaching back past the previous one); the accumulator is the sum of those raw gradients
// and the update scores with their mean (the masks equal a sort of |w| |mean g|^alpha);
// the gradient statistics (|mean g|, mean |g|, sqrt(mean g^2)) and the per-tensor score
// normalisations against a direct computation of the masks; exact counts for the global
// (also with A_log apart at its own sparsity), layer-wise and per-component strategies, with
// and without the stability check; the allocations that cannot hold are refused; masks only grow; pruned weights and moments are 0; the pruner's state
// survives a checkpoint round trip.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run/trainer.h"
#include "prune/iterative.h"
#include "tiny_model.h"

#include "check.h"

enum { BATCH = 2, SEQ = 12 };

typedef struct Setup {
    RunConfig config;
    Dataset data;
    MambaModel model;
    AdamW optimizer;
    PruneMasks masks;
    IterativePruner pruner;
    Tape tape;
    Rng rng;
} Setup;

static void setup_create(Setup *s, const char *const *settings, int n_settings) {
    memset(s, 0, sizeof *s);
    config_defaults(&s->config);
    Error err;
    const char *base[] = {"prune.method=gradient", "train.steps=100", "train.batch_size=2", "train.seqlen=12",
                          "data.vocab=8", "data.n_memorize=4", "stability.batches=2", "prune.prune_every=10",
                          "prune.grad_accum_batches=4"};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        if (config_set(&s->config, base[i], &err) != 0) fprintf(stderr, "%s\n", err.message), exit(1);
    for (int i = 0; i < n_settings; i++)
        if (config_set(&s->config, settings[i], &err) != 0) fprintf(stderr, "%s\n", err.message), exit(1);
    if (config_check(&s->config, &err) != 0) fprintf(stderr, "%s\n", err.message), exit(1);
    DataOptions options;
    run_data_options(&s->config, &options);
    if (data_open(&s->data, &options, SEQ, &err) != 0) fprintf(stderr, "%s\n", err.message), exit(1);
    tiny_model_create(&s->model, 2, 21);
    AdamWOptions adamw_options;
    adamw_options_defaults(&adamw_options);
    adamw_init(&s->optimizer, &adamw_options);
    for (int i = 0; i < s->model.n_params; i++) adamw_add(&s->optimizer, s->model.params[i].tensor, true);
    bool *prunable = calloc((size_t)s->model.n_params, sizeof(bool));
    for (int i = 0; i < s->model.n_params; i++) prunable[i] = config_param_prunable(&s->config, s->model.params[i].name);
    prune_masks_create(&s->masks, &s->model, prunable);
    free(prunable);
    tape_init(&s->tape, 16u << 20);
    rng_seed(&s->rng, 77);
    PruneOptions prune_options;
    PruneStabilityOptions stability;
    config_prune_options(&s->config, &prune_options);
    config_stability_options(&s->config, &stability);
    if (iterative_init(&s->pruner, &prune_options, &stability, &s->data, &s->model, &s->masks, &err) != 0)
        fprintf(stderr, "%s\n", err.message), exit(1);
}

static void setup_free(Setup *s) {
    iterative_free(&s->pruner);
    prune_masks_free(&s->masks);
    tape_free(&s->tape);
    adamw_free(&s->optimizer);
    mamba_model_free(&s->model);
    data_close(&s->data);
    config_free(&s->config);
}

// Random gradients in every parameter, and non-zero moments, as after a training step.
static void fake_step(Setup *s) {
    for (int i = 0; i < s->model.n_params; i++) {
        Tensor *t = s->model.params[i].tensor;
        for (size_t j = 0; j < t->size; j++) t->grad[j] = rng_normal(&s->rng) * 0.01f;
    }
    adamw_step(&s->optimizer, 1e-4);
}

static int update(Setup *s, long t) {
    cJSON *event = NULL;
    Error err;
    int rc = iterative_update(&s->pruner, t, &s->model, &s->optimizer, &s->tape, &event, &err);
    if (rc != 0) printf("       update after step %ld: %s\n", t, err.message);
    cJSON_Delete(event);
    return rc;
}

static size_t zeros_of(const uint8_t *keep, size_t n) {
    size_t z = 0;
    for (size_t j = 0; j < n; j++) z += keep[j] == 0;
    return z;
}

static bool weights_and_moments_zero(Setup *s) {
    for (int i = 0; i < s->masks.n; i++) {
        const MaskedTensor *m = &s->masks.tensors[i];
        AdamWSlot *slot = adamw_find(&s->optimizer, m->tensor);
        for (size_t j = 0; j < m->tensor->size; j++)
            if (!m->keep[j] && (m->tensor->data[j] != 0.0f || slot->m[j] != 0.0f || slot->v[j] != 0.0f)) return false;
    }
    return true;
}

// Copies of every mask, to check that they only grow.
static uint8_t *snapshot_masks(const PruneMasks *masks) {
    uint8_t *copy = malloc(masks->total), *p = copy;
    for (int i = 0; i < masks->n; i++, p += masks->tensors[i - 1].tensor->size)
        memcpy(p, masks->tensors[i].keep, masks->tensors[i].tensor->size);
    return copy;
}

static bool only_grew(const PruneMasks *masks, const uint8_t *before) {
    const uint8_t *p = before;
    for (int i = 0; i < masks->n; p += masks->tensors[i].tensor->size, i++)
        for (size_t j = 0; j < masks->tensors[i].tensor->size; j++)
            if (!p[j] && masks->tensors[i].keep[j]) return false;
    return true;
}

static void check_window(void) {
    // every 10, G 4: steps 6..9 feed the update at 10; every 3, G 4: the window is clipped
    // at the previous update (steps 3, 4, 5 for the update at 6).
    const char *a[] = {"prune.prune_every=10", "prune.grad_accum_batches=4", "prune.end_step=50"};
    const char *b[] = {"prune.prune_every=3", "prune.grad_accum_batches=4", "prune.end_step=50",
                       "prune.start_step=1"};
    const char *c[] = {"prune.alpha=0"};
    Setup s;
    setup_create(&s, a, 3);
    bool ok = true;
    for (long step = 0; step < 60; step++) {
        long u = (step / 10 + 1) * 10;
        bool want = u <= 50 && step >= u - 4;
        ok = ok && iterative_wants_gradient(&s.pruner, step) == want;
    }
    check(ok, "every 10, G 4: exactly the 4 steps before each update up to T = 50");
    setup_free(&s);
    setup_create(&s, b, 4);
    bool wanted[60];
    for (long step = 0; step < 60; step++) wanted[step] = iterative_wants_gradient(&s.pruner, step);
    // Updates at 1, 4, 7, ..., 49, 50.
    check(wanted[0] && wanted[1] && wanted[2] && wanted[3] && wanted[4] && wanted[46] && wanted[48] && wanted[49] &&
              !wanted[50] && !wanted[55],
          "every 3, G 4: every step up to T (the windows clipped at the previous update), none after");
    setup_free(&s);
    setup_create(&s, c, 1);
    ok = true;
    for (long step = 0; step < 100; step++) ok = ok && !iterative_wants_gradient(&s.pruner, step);
    check(ok && s.pruner.grad_sum == NULL, "alpha 0: no gradient is ever accumulated");
    setup_free(&s);
}

// The reference: a sort of |w| |sum/count| over all masked weights, already pruned first.
typedef struct Ranked {
    int pruned_before;
    float score;
    size_t position;
} Ranked;

static int by_rank(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->pruned_before != y->pruned_before) return y->pruned_before - x->pruned_before;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    return (x->position > y->position) - (x->position < y->position);
}

static int compare_floats(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

// The divisor of one tensor's scores under score_norm, computed directly: the mean (in
// double, in order) or the lower middle of the sorted finite scores of the kept weights.
static float reference_divisor(const float *scores, const uint8_t *keep, size_t n, CfgScoreNorm norm) {
    if (norm == CFG_NORM_NONE) return 1.0f;
    float *kept = malloc(sizeof(float) * (n ? n : 1));
    size_t m = 0;
    double sum = 0;
    for (size_t j = 0; j < n; j++)
        if (keep[j] && isfinite(scores[j])) sum += scores[j], kept[m++] = scores[j];
    double c = 0;
    if (m > 0 && norm == CFG_NORM_MEAN) c = sum / (double)m;
    if (m > 0 && norm == CFG_NORM_MEDIAN) {
        qsort(kept, m, sizeof(float), compare_floats);
        c = kept[(m - 1) / 2];
    }
    free(kept);
    return c > 0 && isfinite(c) ? (float)c : 1.0f;
}

static void check_accumulator_and_scores(double alpha, const char *stat_name, const char *norm_name) {
    char alpha_setting[64], stat_setting[64], norm_setting[64], label[96];
    snprintf(alpha_setting, sizeof alpha_setting, "prune.alpha=%g", alpha);
    snprintf(stat_setting, sizeof stat_setting, "prune.grad_stat=%s", stat_name);
    snprintf(norm_setting, sizeof norm_setting, "prune.score_norm=%s", norm_name);
    snprintf(label, sizeof label, "%g, %s, norm %s", alpha, stat_name, norm_name);
    const char *settings[] = {alpha_setting, "stability.enabled=false", stat_setting, norm_setting};
    Setup s;
    setup_create(&s, settings, 4);
    const CfgGradStat stat = s.config.prune.grad_stat;
    size_t total = s.masks.total;
    // An earlier update so that some weights are already pruned.
    for (long step = 0; step < 10; step++) {
        fake_step(&s);
        if (iterative_wants_gradient(&s.pruner, step)) iterative_accumulate(&s.pruner);
    }
    update(&s, 10);
    // Steps 10..19: 16..19 are accumulated; keep the sum in double on the side.
    double *sum = calloc(total, sizeof(double));
    float *fsum = calloc(total, sizeof(float));  // the same sums in float, in the same order
    int count = 0;
    for (long step = 10; step < 20; step++) {
        fake_step(&s);
        if (!iterative_wants_gradient(&s.pruner, step)) continue;
        iterative_accumulate(&s.pruner);
        count++;
        size_t offset = 0;
        for (int i = 0; i < s.masks.n; i++) {
            const Tensor *t = s.masks.tensors[i].tensor;
            for (size_t j = 0; j < t->size; j++) {
                float g = t->grad[j];
                float term = stat == CFG_GRAD_MEAN ? g : stat == CFG_GRAD_ABS_MEAN ? fabsf(g) : g * g;
                sum[offset + j] += term, fsum[offset + j] += term;
            }
            offset += t->size;
        }
    }
    double worst = 0.0;
    for (size_t k = 0; alpha != 0.0 && k < total; k++) worst = fmax(worst, fabs(s.pruner.grad_sum[k] - sum[k]));
    if (alpha != 0.0)
        check(count == 4 && s.pruner.grad_count == 4 && worst < 1e-7,
              "alpha %s: the accumulator holds the 4 raw gradients' terms before the update (%d, max difference %.1e)", label,
              s.pruner.grad_count, worst);

    Ranked *ranked = malloc(sizeof(Ranked) * total);
    size_t offset = 0, pruned_before = 0;
    float *raw = malloc(sizeof(float) * total);
    for (int i = 0; i < s.masks.n; i++) {
        const MaskedTensor *m = &s.masks.tensors[i];
        for (size_t j = 0; j < m->tensor->size; j++) {
            // In float like the pruner, so that near-equal scores rank the same.
            float mean = fsum[offset + j] / (float)count;
            float g = stat == CFG_GRAD_MEAN ? fabsf(mean) : stat == CFG_GRAD_ABS_MEAN ? mean : sqrtf(mean);
            float power = alpha == 0.0 ? 1.0f : alpha == 0.5 ? sqrtf(g) : alpha == 1.0 ? g : g * g;
            raw[offset + j] = fabsf(m->tensor->data[j]) * power;
        }
        float divisor = reference_divisor(raw + offset, m->keep, m->tensor->size, s.config.prune.score_norm);
        for (size_t j = 0; j < m->tensor->size; j++) {
            ranked[offset + j] = (Ranked){!m->keep[j], raw[offset + j] / divisor, offset + j};
            pruned_before += !m->keep[j];
        }
        offset += m->tensor->size;
    }
    free(raw);
    qsort(ranked, total, sizeof(Ranked), by_rank);
    size_t target = sparsity_count(sparsity_at(&s.pruner.schedule, 20), total);
    uint8_t *expected = malloc(total);
    memset(expected, 1, total);
    for (size_t k = 0; k < target; k++) expected[ranked[k].position] = 0;
    update(&s, 20);
    uint8_t *got = snapshot_masks(&s.masks);
    size_t differ = 0;
    for (size_t k = 0; k < total; k++) differ += got[k] != expected[k];
    check(differ == 0 && target > pruned_before,
          "alpha %s: the update prunes the %zu lowest normalised |w| G^alpha, already pruned first (%zu differ)", label,
          target, differ);
    check(s.pruner.grad_count == 0, "alpha %s: the accumulator is empty after the update", label);
    free(got);
    free(expected);
    free(ranked);
    free(sum);
    free(fsum);
    setup_free(&s);
}

// Runs the schedule's updates with fake steps and checks the counts after each.
static void check_strategy(const char *label, const char *const *settings, int n_settings) {
    Setup s;
    setup_create(&s, settings, n_settings);
    bool exact = true, grew = true, zero = true;
    int updates = 0;
    for (long step = 0; step < 100; step++) {
        fake_step(&s);
        prune_masks_apply(&s.masks, &s.optimizer);
        if (iterative_wants_gradient(&s.pruner, step)) iterative_accumulate(&s.pruner);
        long t = step + 1;
        if (!sparsity_updates_at(&s.pruner.schedule, t)) continue;
        uint8_t *before = snapshot_masks(&s.masks);
        if (update(&s, t) != 0) {
            exact = false;
            free(before);
            break;
        }
        updates++;
        grew = grew && only_grew(&s.masks, before);
        zero = zero && weights_and_moments_zero(&s);
        free(before);
        // The counts, group by group.
        const RunConfig *c = &s.config;
        if (c->prune.strategy == CFG_STRATEGY_GLOBAL && c->prune.a_log_sparsity >= 0) {
            // A_log on its own schedule to a_log_sparsity; the rest to the sparsity that
            // keeps the total at final_sparsity.
            size_t zeros[2] = {0, 0}, size[2] = {0, 0};
            for (int i = 0; i < s.masks.n; i++) {
                int a = s.masks.tensors[i].component == PRUNE_A_LOG;
                zeros[a] += zeros_of(s.masks.tensors[i].keep, s.masks.tensors[i].tensor->size);
                size[a] += s.masks.tensors[i].tensor->size;
            }
            SparsitySchedule own = s.pruner.schedule, rest = s.pruner.schedule;
            own.final = c->prune.a_log_sparsity;
            rest.final = (c->prune.final_sparsity * (double)(size[0] + size[1]) - own.final * (double)size[1]) /
                         (double)size[0];
            if (own.initial > own.final) own.initial = own.final;
            exact = exact && size[1] > 0 && zeros[1] == sparsity_count(sparsity_at(&own, t), size[1]) &&
                    zeros[0] == sparsity_count(sparsity_at(&rest, t), size[0]);
        } else if (c->prune.strategy == CFG_STRATEGY_GLOBAL) {
            size_t want = sparsity_count(sparsity_at(&s.pruner.schedule, t), s.masks.total);
            exact = exact && prune_masks_pruned(&s.masks) == want;
        } else if (c->prune.strategy == CFG_STRATEGY_LAYERWISE) {
            for (int i = 0; i < s.masks.n; i++) {
                size_t n = s.masks.tensors[i].tensor->size;
                exact = exact && zeros_of(s.masks.tensors[i].keep, n) == sparsity_count(sparsity_at(&s.pruner.schedule, t), n);
            }
        } else {
            for (int comp = 0; comp < PRUNE_OTHER; comp++) {
                size_t zeros = 0, size = 0;
                for (int i = 0; i < s.masks.n; i++) {
                    if (s.masks.tensors[i].component != (PruneComponent)comp) continue;
                    zeros += zeros_of(s.masks.tensors[i].keep, s.masks.tensors[i].tensor->size);
                    size += s.masks.tensors[i].tensor->size;
                }
                SparsitySchedule own = s.pruner.schedule;
                own.final = config_map_get(&c->prune.component_sparsity, prune_component_name(comp), c->prune.final_sparsity);
                exact = exact && zeros == sparsity_count(sparsity_at(&own, t), size);
            }
        }
    }
    check(updates == 8 && exact, "%s: exact counts after each of the %d updates", label, updates);
    check(grew, "%s: masks only grow", label);
    check(zero, "%s: pruned weights and their moments exactly 0", label);
    if (s.config.prune.strategy == CFG_STRATEGY_GLOBAL && s.config.prune.a_log_sparsity < 0)
        check(prune_masks_pruned(&s.masks) == sparsity_count(s.config.prune.final_sparsity, s.masks.total),
              "%s: the final sparsity exactly (%zu of %zu)", label, prune_masks_pruned(&s.masks), s.masks.total);
    setup_free(&s);
}

// Allocations that cannot hold: A_log alone prunable; A_log so sparse the rest would need
// a negative sparsity.
static void check_a_log_errors(void) {
    const char *settings[][3] = {
        {"prune.a_log_sparsity=0.3", "prune.include=[mixer.A_log]", "is the only prunable tensor"},
        {"prune.a_log_sparsity=0.9", "prune.final_sparsity=0.01", "expected one in [0, 1)"},
        {"prune.a_log_sparsity=0.3", "prune.exclude=[A_log]", "no A_log tensor is prunable"},
    };
    for (int k = 0; k < 3; k++) {
        RunConfig c;
        config_defaults(&c);
        Error err;
        const char *set[] = {"prune.method=gradient", settings[k][0], settings[k][1]};
        for (int i = 0; i < 3; i++)
            if (config_set(&c, set[i], &err) != 0) fprintf(stderr, "%s\n", err.message), exit(1);
        MambaModel model;
        tiny_model_create(&model, 2, 21);
        bool *prunable = calloc((size_t)model.n_params, sizeof(bool));
        for (int i = 0; i < model.n_params; i++) prunable[i] = config_param_prunable(&c, model.params[i].name);
        PruneMasks masks;
        prune_masks_create(&masks, &model, prunable);
        free(prunable);
        PruneOptions o;
        PruneStabilityOptions stability;
        config_prune_options(&c, &o);
        config_stability_options(&c, &stability);
        stability.enabled = false;
        IterativePruner p;
        int rc = masks.n > 0 ? iterative_init(&p, &o, &stability, NULL, &model, &masks, &err) : -1;
        check(rc != 0 && masks.n > 0 && strstr(err.message, settings[k][2]) && strstr(err.message, "prune.a_log_sparsity"),
              "%s, %s: refused (%s)", settings[k][0], settings[k][1], rc ? err.message : "accepted");
        if (rc == 0) iterative_free(&p);
        prune_masks_free(&masks);
        mamba_model_free(&model);
        config_free(&c);
    }
}

static void check_checkpoint(void) {
    const char *settings[] = {"stability.enabled=true"};
    Setup s;
    setup_create(&s, settings, 1);
    for (long step = 0; step < 18; step++) {
        fake_step(&s);
        if (iterative_wants_gradient(&s.pruner, step)) iterative_accumulate(&s.pruner);
        if (sparsity_updates_at(&s.pruner.schedule, step + 1)) update(&s, step + 1);
    }
    s.pruner.layer_corrected[1] += 3;  // a total to carry (the check may or may not have corrected anything)
    char path[] = "/tmp/test_prune_iterative_XXXXXX.h5";
    int fd = mkstemps(path, 3);
    close(fd);
    CheckpointState state = {.step = 18};
    Error err;
    int rc = iterative_checkpoint_save(&s.pruner, &state, &err);
    CheckpointMask *views = malloc(sizeof(CheckpointMask) * (size_t)s.masks.n);
    prune_masks_checkpoint_views(&s.masks, views);
    if (rc == 0)
        rc = checkpoint_save(path, s.model.params, s.model.n_params, &s.optimizer, views, s.masks.n, &state, "", &err);
    check(rc == 0 && state.n_arrays == 3, "save with 2 accumulated gradients: %s", rc ? err.message : "3 arrays");

    Setup r;
    setup_create(&r, settings, 1);
    CheckpointState loaded;
    memset(&loaded, 0, sizeof loaded);
    iterative_checkpoint_prepare_load(&r.pruner, &loaded);
    CheckpointMask *loaded_views = malloc(sizeof(CheckpointMask) * (size_t)r.masks.n);
    prune_masks_checkpoint_views(&r.masks, loaded_views);
    rc = checkpoint_load(path, r.model.params, r.model.n_params, &r.optimizer, loaded_views, r.masks.n, &loaded, &err);
    if (rc == 0) rc = iterative_checkpoint_restore(&r.pruner, &loaded, path, &err);
    check(rc == 0, "load and restore: %s", rc ? err.message : "ok");
    bool same = rc == 0 && r.pruner.grad_count == s.pruner.grad_count && s.pruner.grad_count == 2 &&
                memcmp(r.pruner.grad_sum, s.pruner.grad_sum, sizeof(float) * s.masks.total) == 0 &&
                r.pruner.updates == s.pruner.updates &&
                memcmp(r.pruner.layer_corrected, s.pruner.layer_corrected, sizeof(float) * 2) == 0 &&
                memcmp(r.pruner.group_pruned, s.pruner.group_pruned, sizeof(size_t) * (size_t)s.pruner.n_groups) == 0;
    check(same, "accumulator (%d gradients), update count (%ld), stability totals and group counts restored",
          r.pruner.grad_count, r.pruner.updates);
    // The next update of both gives the same masks.
    update(&s, 20);
    update(&r, 20);
    uint8_t *a = snapshot_masks(&s.masks), *b = snapshot_masks(&r.masks);
    check(memcmp(a, b, s.masks.total) == 0, "the next update is the same after the round trip");
    free(a);
    free(b);

    // A checkpoint saved with an empty accumulator does not hold one; loading it is fine.
    CheckpointState empty = {.step = 20};
    rc = iterative_checkpoint_save(&s.pruner, &empty, &err);
    if (rc == 0)
        rc = checkpoint_save(path, s.model.params, s.model.n_params, &s.optimizer, views, s.masks.n, &empty, "", &err);
    check(rc == 0 && empty.n_arrays == 2, "right after an update the accumulator is not saved (%d arrays)", empty.n_arrays);
    memset(&loaded, 0, sizeof loaded);
    iterative_checkpoint_prepare_load(&r.pruner, &loaded);
    rc = checkpoint_load(path, r.model.params, r.model.n_params, &r.optimizer, loaded_views, r.masks.n, &loaded, &err);
    if (rc == 0) rc = iterative_checkpoint_restore(&r.pruner, &loaded, path, &err);
    check(rc == 0 && r.pruner.grad_count == 0, "and loads back empty: %s", rc ? err.message : "ok");
    free(views);
    free(loaded_views);
    remove(path);
    setup_free(&r);
    setup_free(&s);
}

int main(void) {
    check_window();
    check_accumulator_and_scores(0.0, "mean", "none");
    check_accumulator_and_scores(0.5, "mean", "none");
    check_accumulator_and_scores(1.0, "mean", "none");
    check_accumulator_and_scores(2.0, "mean", "none");
    check_accumulator_and_scores(1.0, "abs_mean", "none");
    check_accumulator_and_scores(1.0, "rms", "none");
    check_accumulator_and_scores(2.0, "rms", "median");
    check_accumulator_and_scores(1.0, "abs_mean", "mean");
    check_accumulator_and_scores(0.0, "mean", "median");

    // Updates at 0 (nothing), 10, ..., 70, 75: 8 of them prune.
    const char *global[] = {"stability.enabled=false"};
    check_strategy("global", global, 1);
    const char *global_stable[] = {"stability.enabled=true"};
    check_strategy("global, stability check on", global_stable, 1);
    const char *layerwise[] = {"prune.strategy=layerwise", "stability.enabled=false"};
    check_strategy("layerwise", layerwise, 2);
    const char *layerwise_stable[] = {"prune.strategy=layerwise", "stability.enabled=true", "prune.final_sparsity=0.8"};
    check_strategy("layerwise to 80%, stability check on", layerwise_stable, 3);
    const char *component[] = {"prune.strategy=component", "prune.component_sparsity={in_proj: 0.6, A_log: 0.3}",
                               "stability.enabled=false"};
    check_strategy("component (in_proj 0.6, A_log 0.3, the rest 0.5)", component, 3);
    const char *component_stable[] = {"prune.strategy=component", "prune.component_sparsity={x_proj: 0.7, dt_proj: 0.2}",
                                      "stability.enabled=true", "prune.initial_sparsity=0.1",
                                      "prune.schedule=exponential"};
    check_strategy("component from 10%, exponential, stability check on", component_stable, 5);

    const char *a_log_apart[] = {"prune.a_log_sparsity=0.3", "stability.enabled=false"};
    check_strategy("global, A_log apart at 30%", a_log_apart, 2);
    const char *a_log_apart_stable[] = {"prune.a_log_sparsity=0.2", "stability.enabled=true", "prune.final_sparsity=0.6"};
    check_strategy("global to 60%, A_log apart at 20%, stability check on", a_log_apart_stable, 3);
    check_a_log_errors();

    check_checkpoint();
    return check_summary("iterative pruner");
}
