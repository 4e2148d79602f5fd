// Gradient-aware iterative pruning (see iterative.h).
#include "prune/iterative.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"
#include "prune/select.h"

// Below this many weights a loop is not worth starting threads for.
#define PARALLEL_MIN ((size_t)1 << 15)

// The calibration batches of the stability check are training batches this far out:
// training never reaches them, so they are held out and fixed for the whole run.
#define CALIBRATION_BATCH_INDEX 1000000000L

double prune_times_total(const PruneTimes *t) { return t->accumulate + t->score + t->select + t->stability + t->apply; }

// Groups of the selection: one (global), one per tensor (layerwise), one per component;
// global with a_log_sparsity >= 0 has two, A_log (group 1, its own sparsity) and the rest
// (group 0, the sparsity that keeps the total at final_sparsity).
static int make_groups(IterativePruner *p, const PruneOptions *o, Error *err) {
    const PruneMasks *masks = p->masks;
    p->group = xcalloc((size_t)(masks->n > 0 ? masks->n : 1), sizeof(int));
    switch (p->strategy) {
    case PRUNE_STRATEGY_GLOBAL: p->n_groups = 1; break;
    case PRUNE_STRATEGY_LAYERWISE: p->n_groups = masks->n; break;
    case PRUNE_STRATEGY_COMPONENT: p->n_groups = PRUNE_N_COMPONENTS; break;
    }
    if (p->n_groups < 1) p->n_groups = 1;
    const bool a_log_apart = p->strategy == PRUNE_STRATEGY_GLOBAL && o->a_log_sparsity >= 0;
    if (a_log_apart) p->n_groups = 2;
    p->group_final = xcalloc((size_t)p->n_groups, sizeof(double));
    p->group_total = xcalloc((size_t)p->n_groups, sizeof(size_t));
    p->group_pruned = xcalloc((size_t)p->n_groups, sizeof(size_t));
    for (int g = 0; g < p->n_groups; g++) {
        // A component not named in component_sparsity (or "other") has final_sparsity there.
        p->group_final[g] = p->strategy == PRUNE_STRATEGY_COMPONENT ? o->component_sparsity[g] : o->final_sparsity;
    }
    for (int i = 0; i < masks->n; i++) {
        const MaskedTensor *m = &masks->tensors[i];
        p->group[i] = p->strategy == PRUNE_STRATEGY_GLOBAL ? (a_log_apart && m->component == PRUNE_A_LOG)
                                                             : p->strategy == PRUNE_STRATEGY_LAYERWISE ? i : (int)m->component;
        p->group_total[p->group[i]] += m->tensor->size;
    }
    if (!a_log_apart) return 0;
    double n_a_log = (double)p->group_total[1], n_rest = (double)p->group_total[0];
    if (n_a_log == 0 || n_rest == 0)
        return error_set(err, "prune.a_log_sparsity: %s, so A_log cannot have its own allocation",
                         n_a_log == 0 ? "no A_log tensor is prunable" : "A_log is the only prunable tensor");
    double rest = (o->final_sparsity * (n_a_log + n_rest) - o->a_log_sparsity * n_a_log) / n_rest;
    if (rest < 0 || rest >= 1)
        return error_set(err,
                         "prune.a_log_sparsity: %g on the %.0f A_log entries leaves the other %.0f weights a sparsity "
                         "of %g to reach prune.final_sparsity %g; expected one in [0, 1)",
                         o->a_log_sparsity, n_a_log, n_rest, rest, o->final_sparsity);
    p->group_final[0] = rest;
    p->group_final[1] = o->a_log_sparsity;
    return 0;
}

// Pruned weights of each group under the current masks.
static void count_groups(IterativePruner *p) {
    memset(p->group_pruned, 0, sizeof(size_t) * (size_t)p->n_groups);
    for (int i = 0; i < p->masks->n; i++) {
        const MaskedTensor *m = &p->masks->tensors[i];
        size_t n = m->tensor->size, pruned = 0;
#pragma omp parallel for reduction(+ : pruned) schedule(static) if (n >= PARALLEL_MIN)
        for (size_t j = 0; j < n; j++) pruned += m->keep[j] == 0;
        p->group_pruned[p->group[i]] += pruned;
    }
}

int iterative_init(IterativePruner *p, const PruneOptions *o, const PruneStabilityOptions *stability,
                   const Dataset *data, const MambaModel *model, PruneMasks *masks, Error *err) {
    memset(p, 0, sizeof *p);
    if (masks->n == 0)
        return error_set(err, "prune.include: no parameter of the model matches these patterns (nothing to prune)");
    p->masks = masks;
    sparsity_schedule_from_options(&p->schedule, o);
    p->alpha = o->alpha;
    p->grad_stat = o->grad_stat;
    p->score_norm = o->score_norm;
    p->strategy = o->strategy;
    p->grad_accum_batches = o->grad_accum_batches;
    if (make_groups(p, o, err) != 0) {
        iterative_free(p);
        return -1;
    }
    count_groups(p);

    size_t total = masks->total;
    if (p->alpha != 0.0) p->grad_sum = xcalloc(total, sizeof(float));
    p->scores = xmalloc(sizeof(float) * total);
    p->new_keep = xmalloc(total);
    p->score_views = xmalloc(sizeof(float *) * (size_t)masks->n);
    p->keep_views = xmalloc(sizeof(uint8_t *) * (size_t)masks->n);
    p->norm_divisors = xmalloc(sizeof(double) * (size_t)masks->n);
    size_t offset = 0, largest = 0;
    for (int i = 0; i < masks->n; i++) {
        p->score_views[i] = p->scores + offset;
        p->keep_views[i] = p->new_keep + offset;
        p->norm_divisors[i] = 1.0;
        offset += masks->tensors[i].tensor->size;
        if (masks->tensors[i].tensor->size > largest) largest = masks->tensors[i].tensor->size;
    }
    if (p->score_norm == PRUNE_NORM_MEDIAN) p->norm_work = xmalloc(sizeof(float) * largest);

    p->n_layer = model->config.n_layer;
    p->layer_violations = xcalloc((size_t)p->n_layer, sizeof(float));
    p->layer_corrected = xcalloc((size_t)p->n_layer, sizeof(float));
    p->stability_enabled = stability->enabled;
    if (p->stability_enabled) {
        const int B = o->batch_size, L = o->seqlen, n = stability->batches;
        size_t batch = (size_t)B * (size_t)L;
        if (data_is_series(data)) {  // heads.h: the forecasting model reads values
            const size_t F = (size_t)data_n_features(data);
            p->calibration_values = xmalloc(sizeof(float) * batch * F * (size_t)n);
            float *future = xmalloc(sizeof(float) * (size_t)B * (size_t)data_horizon(data) * F);
            for (int k = 0; k < n; k++)
                data_train_values(data, CALIBRATION_BATCH_INDEX + k, B, L, p->calibration_values + (size_t)k * batch * F,
                                  future);
            free(future);
        } else {
            p->calibration_tokens = xmalloc(sizeof(int32_t) * batch * (size_t)n);
            int32_t *targets = xmalloc(sizeof(int32_t) * batch);
            for (int k = 0; k < n; k++)
                data_train_batch(data, CALIBRATION_BATCH_INDEX + k, B, L, p->calibration_tokens + (size_t)k * batch, targets);
            free(targets);
        }
        p->stability = (StabilityOptions){
            .epsilon = stability->epsilon,
            .batch_size = B,
            .seqlen = L,
            .n_batches = n,
            .tokens = p->calibration_tokens,
            .values = p->calibration_values,
        };
    }
    return 0;
}

void iterative_free(IterativePruner *p) {
    free(p->group);
    free(p->group_final);
    free(p->group_total);
    free(p->group_pruned);
    free(p->grad_sum);
    free(p->scores);
    free(p->score_views);
    free(p->new_keep);
    free(p->keep_views);
    free(p->norm_work);
    free(p->norm_divisors);
    free(p->calibration_tokens);
    free(p->calibration_values);
    free(p->layer_violations);
    free(p->layer_corrected);
    memset(p, 0, sizeof *p);
}

// The first step whose gradient the update after `update` steps averages.
static long window_start(const IterativePruner *p, long update) {
    long start = update - p->grad_accum_batches;
    long previous = sparsity_previous_update(&p->schedule, update - 1);
    if (start < previous) start = previous;
    return start < 0 ? 0 : start;
}

bool iterative_wants_gradient(const IterativePruner *p, long step) {
    if (p->alpha == 0.0) return false;
    long next = sparsity_next_update(&p->schedule, step);
    return next >= 0 && step >= window_start(p, next);
}

void iterative_accumulate(IterativePruner *p) {
    double start = now_seconds();
    float *sum = p->grad_sum;
    for (int i = 0; i < p->masks->n; i++) {
        const Tensor *t = p->masks->tensors[i].tensor;
        const float *g = t->grad;
        size_t n = t->size;
        if (g && p->grad_stat == PRUNE_GRAD_MEAN) {
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
            for (size_t j = 0; j < n; j++) sum[j] += g[j];
        } else if (g) {
            const PruneGradStat stat = p->grad_stat;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
            for (size_t j = 0; j < n; j++) sum[j] += prune_grad_term(stat, g[j]);
        }
        sum += n;
    }
    p->grad_count++;
    p->times.accumulate += now_seconds() - start;
}

static void clear_accumulator(IterativePruner *p) {
    if (p->grad_sum && p->grad_count > 0) memset(p->grad_sum, 0, sizeof(float) * p->masks->total);
    p->grad_count = 0;
}

// The target sparsity of group g after t steps. Components follow the schedule towards
// their own final sparsity (starting from s_0, or from their final one if that is lower).
static double group_sparsity(const IterativePruner *p, int g, long t) {
    SparsitySchedule s = p->schedule;
    s.final = p->group_final[g];
    if (s.initial > s.final) s.initial = s.final;
    return sparsity_at(&s, t);
}

static size_t group_target(const IterativePruner *p, int g, long t) {
    size_t target = sparsity_count(group_sparsity(p, g, t), p->group_total[g]);
    return target > p->group_pruned[g] ? target : p->group_pruned[g];  // masks only grow
}

bool iterative_would_prune(const IterativePruner *p, long t) {
    for (int g = 0; g < p->n_groups; g++)
        if (group_target(p, g, t) > p->group_pruned[g]) return true;
    return false;
}

bool iterative_needs_gradient(const IterativePruner *p, long t) {
    return p->alpha != 0.0 && p->grad_count == 0 && iterative_would_prune(p, t);
}

static void compute_scores(IterativePruner *p) {
    size_t offset = 0;
    for (int i = 0; i < p->masks->n; i++) {
        const Tensor *t = p->masks->tensors[i].tensor;
        prune_scores(t->data, p->grad_sum ? p->grad_sum + offset : NULL, p->grad_count, p->alpha, p->grad_stat,
                     t->size, p->scores + offset);
        p->norm_divisors[i] = prune_normalize_scores(p->scores + offset, p->masks->tensors[i].keep, t->size,
                                                     p->score_norm, p->norm_work);
        offset += t->size;
    }
}

// new_keep = the current masks, then each group's lowest-scored kept weights pruned up to its target.
static void select_masks(IterativePruner *p, const size_t *target) {
    const PruneMasks *masks = p->masks;
    for (int i = 0; i < masks->n; i++) memcpy(p->keep_views[i], masks->tensors[i].keep, masks->tensors[i].tensor->size);
    PruneSlice *slices = xmalloc(sizeof(PruneSlice) * (size_t)masks->n);
    for (int g = 0; g < p->n_groups; g++) {
        if (target[g] <= p->group_pruned[g]) continue;
        int n = 0;
        for (int i = 0; i < masks->n; i++)
            if (p->group[i] == g)
                slices[n++] = (PruneSlice){p->keep_views[i], p->score_views[i], masks->tensors[i].tensor->size};
        prune_select_lowest(slices, n, target[g] - p->group_pruned[g]);
    }
    free(slices);
}

// Copies new_keep into the masks, checking what the update promised: no pruned weight comes
// back, and every group ends at its target count.
static int install_masks(IterativePruner *p, const size_t *target, long t, Error *err) {
    PruneMasks *masks = p->masks;
    size_t *pruned = xcalloc((size_t)p->n_groups, sizeof(size_t));
    long revived = 0;
    for (int i = 0; i < masks->n; i++) {
        const uint8_t *old_keep = masks->tensors[i].keep, *new_keep = p->keep_views[i];
        size_t n = masks->tensors[i].tensor->size, zeros = 0;
        long back = 0;
#pragma omp parallel for reduction(+ : zeros, back) schedule(static) if (n >= PARALLEL_MIN)
        for (size_t j = 0; j < n; j++) {
            zeros += new_keep[j] == 0;
            back += new_keep[j] && !old_keep[j];
        }
        pruned[p->group[i]] += zeros;
        revived += back;
    }
    int status = 0;
    if (revived > 0) status = error_set(err, "mask update after step %ld: %ld pruned weights would come back", t, revived);
    for (int g = 0; g < p->n_groups && status == 0; g++)
        if (pruned[g] != target[g])
            status = error_set(err, "mask update after step %ld: group %d has %zu pruned weights, %zu expected", t, g,
                               pruned[g], target[g]);
    if (status == 0) {
        for (int i = 0; i < masks->n; i++) memcpy(masks->tensors[i].keep, p->keep_views[i], masks->tensors[i].tensor->size);
        memcpy(p->group_pruned, pruned, sizeof(size_t) * (size_t)p->n_groups);
    }
    free(pruned);
    return status;
}

static void add_stability_totals(IterativePruner *p, const StabilityReport *r) {
    for (int l = 0; l < r->n_layer && l < p->n_layer; l++) {
        if (r->violations) p->layer_violations[l] += (float)r->violations[l];
        if (r->corrected) p->layer_corrected[l] += (float)r->corrected[l];
    }
    p->corrected_a_log += (double)r->corrected_a_log;
    p->corrected_dt_proj += (double)r->corrected_dt_proj;
    p->rebalanced += (double)r->rebalanced;
    p->remaining += (double)r->remaining;
}

int iterative_update(IterativePruner *p, long t, MambaModel *model, AdamW *optimizer, Tape *tape, cJSON **event,
                     Error *err) {
    *event = NULL;
    double start = now_seconds();
    size_t *target = xmalloc(sizeof(size_t) * (size_t)p->n_groups);
    size_t before = 0, after = 0;
    for (int g = 0; g < p->n_groups; g++) {
        target[g] = group_target(p, g, t);
        before += p->group_pruned[g];
        after += target[g];
    }
    if (after == before) {  // nothing to prune: the window's gradients are spent all the same
        clear_accumulator(p);
        free(target);
        return 0;
    }
    if (p->alpha != 0.0 && p->grad_count == 0) {
        free(target);
        return error_set(err, "mask update after step %ld: no gradient accumulated for the scores (alpha %g)", t,
                         p->alpha);
    }
    double mark = now_seconds();
    compute_scores(p);
    p->times.score += now_seconds() - mark;

    mark = now_seconds();
    select_masks(p, target);
    p->times.select += now_seconds() - mark;

    StabilityReport report;
    memset(&report, 0, sizeof report);
    int status = 0;
    if (p->stability_enabled) {
        mark = now_seconds();
        status = stability_correct(model, tape, p->masks, p->keep_views, (const float *const *)p->score_views,
                                   p->group, &p->stability, &report, err);
        p->times.stability += now_seconds() - mark;
        if (status != 0) error_prefix(err, "stability check of the mask update after step %ld", t);
    }

    if (status == 0) {
        mark = now_seconds();
        status = install_masks(p, target, t, err);
        if (status == 0) prune_masks_apply(p->masks, optimizer);
        p->times.apply += now_seconds() - mark;
    }
    if (status == 0) {
        mark = now_seconds();
        clear_accumulator(p);
        p->times.accumulate += now_seconds() - mark;
        p->updates++;
        if (p->stability_enabled) add_stability_totals(p, &report);

        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "step", (double)t);
        cJSON_AddBoolToObject(o, "prune_update", 1);
        cJSON_AddNumberToObject(o, "schedule_sparsity", sparsity_at(&p->schedule, t));  // s_t (components: their own)
        cJSON_AddNumberToObject(o, "sparsity", (double)after / (double)p->masks->total);
        cJSON_AddNumberToObject(o, "pruned", (double)after);
        cJSON_AddNumberToObject(o, "newly_pruned", (double)(after - before));
        cJSON_AddNumberToObject(o, "prune_seconds", now_seconds() - start);
        if (p->stability_enabled) cJSON_AddItemToObject(o, "stability", stability_report_json(&report));
        *event = o;
    }
    stability_report_free(&report);
    free(target);
    return status;
}

// ---- checkpoints ----

// The pruner's counters and times, as /state/schedule datasets (docs/DESIGN.md#files).
static const Field pruner_fields[] = {
    FIELD_OF(IterativePruner, grad_count, "prune_grad_count"),
    FIELD_OF(IterativePruner, updates, "prune_updates"),
    FIELD_OF(IterativePruner, corrected_a_log, "stability_a_log"),
    FIELD_OF(IterativePruner, corrected_dt_proj, "stability_dt_proj"),
    FIELD_OF(IterativePruner, rebalanced, "stability_rebalanced"),
    FIELD_OF(IterativePruner, remaining, "stability_remaining"),
    FIELD_OF(IterativePruner, times.accumulate, "time_accumulate"),
    FIELD_OF(IterativePruner, times.score, "time_score"),
    FIELD_OF(IterativePruner, times.select, "time_select"),
    FIELD_OF(IterativePruner, times.stability, "time_stability"),
    FIELD_OF(IterativePruner, times.apply, "time_apply"),
};
enum { N_PRUNER_FIELDS = sizeof pruner_fields / sizeof pruner_fields[0] };

static CheckpointArray array_view(const char *name, float *data, size_t size) {
    CheckpointArray a;
    memset(&a, 0, sizeof a);
    snprintf(a.name, sizeof a.name, "%s", name);
    a.data = data;
    a.size = size;
    return a;
}

// The arrays of the pruner; with `saving`, the accumulator only when it holds something.
static int list_arrays(IterativePruner *p, bool saving) {
    int n = 0;
    if (p->grad_sum && (!saving || p->grad_count > 0))
        p->arrays[n++] = array_view("grad_accum", p->grad_sum, p->masks->total);
    if (p->stability_enabled) {
        p->arrays[n++] = array_view("stability_violations", p->layer_violations, (size_t)p->n_layer);
        p->arrays[n++] = array_view("stability_corrected", p->layer_corrected, (size_t)p->n_layer);
    }
    return n;
}

int iterative_checkpoint_save(IterativePruner *p, CheckpointState *state, Error *err) {
    if (checkpoint_fields_add(state, pruner_fields, N_PRUNER_FIELDS, p, err) != 0) return -1;
    state->arrays = p->arrays;
    state->n_arrays = list_arrays(p, true);
    return 0;
}

void iterative_checkpoint_prepare_load(IterativePruner *p, CheckpointState *state) {
    state->arrays = p->arrays;
    state->n_arrays = list_arrays(p, false);
}

int iterative_checkpoint_restore(IterativePruner *p, const CheckpointState *state, const char *path, Error *err) {
    if (checkpoint_fields_read(state, pruner_fields, N_PRUNER_FIELDS, p, path, err) != 0) return -1;
    for (int i = 0; i < state->n_arrays; i++) {
        const CheckpointArray *a = &state->arrays[i];
        if (a->found) continue;
        if (strcmp(a->name, "grad_accum") == 0 && p->grad_count > 0)
            return error_set(err, "%s: /prune/grad_accum is missing, but %d accumulated gradients were saved", path,
                             p->grad_count);
        memset(a->data, 0, sizeof(float) * a->size);
    }
    if (p->grad_count > 0 && !p->grad_sum)
        return error_set(err, "%s: the checkpoint holds accumulated gradients, but prune.alpha is 0", path);
    count_groups(p);
    return 0;
}

cJSON *iterative_stability_totals(const IterativePruner *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "enabled", p->stability_enabled);
    cJSON_AddNumberToObject(o, "updates", (double)p->updates);
    double violations = 0, corrected = 0;
    for (int l = 0; l < p->n_layer; l++) {
        violations += p->layer_violations[l];
        corrected += p->layer_corrected[l];
    }
    cJSON_AddNumberToObject(o, "violations", violations);
    cJSON_AddNumberToObject(o, "corrected", corrected);
    cJSON_AddNumberToObject(o, "corrected_a_log", p->corrected_a_log);
    cJSON_AddNumberToObject(o, "corrected_dt_proj", p->corrected_dt_proj);
    cJSON_AddNumberToObject(o, "rebalanced", p->rebalanced);
    cJSON_AddNumberToObject(o, "remaining", p->remaining);
    size_t *layer_weights = xcalloc((size_t)p->n_layer, sizeof(size_t));
    for (int i = 0; i < p->masks->n; i++) {
        int l = p->masks->tensors[i].layer;
        if (l >= 0 && l < p->n_layer) layer_weights[l] += p->masks->tensors[i].tensor->size;
    }
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int l = 0; l < p->n_layer; l++) {
        cJSON *layer = cJSON_CreateObject();
        cJSON_AddNumberToObject(layer, "layer", l);
        cJSON_AddNumberToObject(layer, "violations", p->layer_violations[l]);
        cJSON_AddNumberToObject(layer, "corrected", p->layer_corrected[l]);
        cJSON_AddNumberToObject(layer, "corrected_fraction",
                                layer_weights[l] ? p->layer_corrected[l] / (double)layer_weights[l] : 0.0);
        cJSON_AddItemToArray(layers, layer);
    }
    free(layer_weights);
    return o;
}
