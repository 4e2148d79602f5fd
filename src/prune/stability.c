// The eigenvalue stability check and its correction (see stability.h, docs/DESIGN.md#stability-check).
//
// A calibration pass runs the blocks forward, without recording and without the head, on
// every calibration batch and keeps per layer the smallest Δ of each channel. Since A < 0,
// the largest eigenvalue modulus of entry (d, n) is exp(min_t Δ_{t,d} · A_{d,n}); entries are
// compared in log space, s = min Δ · A against log(1 - ε).
//
// The correction works channel by channel from the δ rows (dt_proj's input) that the pass
// captured: Δ of channel d sees the mask only through dt_proj row d, and the eigenvalues of
// the channel through A_log row d as well, so giving back weights of those rows is re-checked
// exactly without another forward. Weights elsewhere (the rebalance, or corrections upstream)
// move δ itself: a re-measure after each round finds what they did, a second round corrects
// it, and what a last re-measure still finds is report->remaining. So a call costs two
// forwards per batch when nothing violates, three when one round fixes everything, four at most.
// Every pass after the reference starts at the first layer whose weights changed since the
// pass before it (the update's, then a round's): the blocks before it see the same inputs and
// weights, so their Δ, δ rows and outputs (the input of that layer, kept from the pass before)
// are those of the pass before, to the bit. The last block of a pass runs only up to Δ.
// Each pass resets the caller's tape before every batch and once at the end.
#include "prune/stability.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { CORRECTION_ROUNDS = 2 };

void stability_report_free(StabilityReport *report) {
    free(report->violations);
    free(report->corrected);
    memset(report, 0, sizeof *report);
}

cJSON *stability_report_json(const StabilityReport *report) {
    cJSON *o = cJSON_CreateObject();
    cJSON *violations = cJSON_AddArrayToObject(o, "violations");
    cJSON *corrected = cJSON_AddArrayToObject(o, "corrected");
    for (int l = 0; l < report->n_layer; l++) {
        cJSON_AddItemToArray(violations, cJSON_CreateNumber((double)report->violations[l]));
        cJSON_AddItemToArray(corrected, cJSON_CreateNumber((double)report->corrected[l]));
    }
    cJSON_AddNumberToObject(o, "corrected_a_log", (double)report->corrected_a_log);
    cJSON_AddNumberToObject(o, "corrected_dt_proj", (double)report->corrected_dt_proj);
    cJSON_AddNumberToObject(o, "rebalanced", (double)report->rebalanced);
    cJSON_AddNumberToObject(o, "remaining", (double)report->remaining);
    cJSON_AddNumberToObject(o, "blocks", (double)report->blocks);
    return o;
}

static double softplus(double x) { return x > 30.0 ? x : log1p(exp(x)); }

static int check_options(const MambaModel *model, const StabilityOptions *o, Error *err) {
    if (!(o->epsilon > 0.0 && o->epsilon < 1.0))
        return error_set(err, "stability: epsilon must be in (0, 1), got %g", o->epsilon);
    if (o->batch_size < 1 || o->seqlen < 1 || o->n_batches < 1)
        return error_set(err, "stability: batch_size, seqlen and n_batches must be at least 1, got %d, %d and %d",
                         o->batch_size, o->seqlen, o->n_batches);
    if (mamba_head_reads_values(model->config.head))  // heads.h: the forecasting model reads values
        return o->values ? 0 : error_set(err, "stability: no calibration values for the forecasting model");
    if (!o->tokens) return error_set(err, "stability: no calibration tokens");
    long n = (long)o->n_batches * o->batch_size * o->seqlen;
    for (long i = 0; i < n; i++)
        if (o->tokens[i] < 0 || o->tokens[i] >= model->config.vocab_padded)
            return error_set(err, "stability: calibration token %ld is %d, outside the vocabulary [0, %d)", i,
                             (int)o->tokens[i], model->config.vocab_padded);
    return 0;
}

// Per column of a (T, D) row-major matrix, the minimum into min (D values, updated).
static void column_min(const float *x, int T, int D, float *min) {
#pragma omp parallel for schedule(static)
    for (int d0 = 0; d0 < D; d0 += 64) {
        int d1 = d0 + 64 < D ? d0 + 64 : D;
        for (int t = 0; t < T; t++)
            for (int d = d0; d < d1; d++) min[d] = x[(long)t * D + d] < min[d] ? x[(long)t * D + d] : min[d];
    }
}

// The calibration pass over the model as it is, from layer `first` on: min_delta (n_layer,
// D) receives min_t Δ of every channel of those layers; delta_rows (n_layer, T_total, R),
// when not NULL, every token's δ row. inputs (n_layer, T_total, d), when not NULL, keeps the
// input of every block; with first > 0 the pass starts from the kept input of block
// `first`, which must come from a pass over the same weights of the blocks before it.
// Returns the number of blocks run per batch.
static int calibrate(MambaModel *model, Tape *tape, const StabilityOptions *o, double *min_delta,
                     float *delta_rows, float *inputs, int first) {
    const MambaConfig *c = &model->config;
    int n_layer = c->n_layer, D = c->d_inner, R = c->dt_rank, d_model = c->d_model;
    int T = o->batch_size * o->seqlen;
    long total = (long)T * o->n_batches;
    if (!inputs) first = 0;
    float *min_dt = xmalloc(sizeof(float) * (size_t)n_layer * D);
    for (long k = 0; k < (long)n_layer * D; k++) min_dt[k] = INFINITY;
    bool recording = tape->recording;
    tape->recording = false;
    for (int b = 0; b < o->n_batches && first < n_layer; b++) {
        tape_reset(tape);
        Tensor *x;
        if (first == 0) {
            x = o->values ? mamba_embed_values(tape, model, o->values + (long)b * T * c->n_features, o->batch_size,
                                               o->seqlen)
                          : mamba_embed(tape, model, o->tokens + (long)b * T, T);    // (T, d)
        } else {
            x = tensor_new_2d(tape, T, d_model);
            memcpy(x->data, inputs + ((long)first * total + (long)b * T) * d_model, sizeof(float) * (size_t)T * d_model);
        }
        for (int l = first; l < n_layer; l++) {
            MambaBlockTrace trace;
            if (inputs)
                memcpy(inputs + ((long)l * total + (long)b * T) * d_model, x->data, sizeof(float) * (size_t)T * d_model);
            // The last block's output feeds no Δ: it runs only up to dt.
            if (l + 1 < n_layer) x = mamba_block_forward(tape, c, &model->layers[l], x, o->batch_size, o->seqlen, &trace);
            else mamba_block_forward_dt(tape, c, &model->layers[l], x, o->batch_size, o->seqlen, &trace);
            column_min(trace.dt->data, T, D, min_dt + (long)l * D);
            if (delta_rows)
                memcpy(delta_rows + ((long)l * total + (long)b * T) * R, trace.delta->data,
                       sizeof(float) * (size_t)T * R);
        }
    }
    tape->recording = recording;
    tape_reset(tape);
    // softplus is increasing: the smallest Δ comes from the smallest dt.
    for (int l = first; l < n_layer; l++)
        for (int d = 0; d < D; d++)
            min_delta[(long)l * D + d] =
                softplus((double)min_dt[(long)l * D + d] + (double)model->layers[l].dt_proj_bias.data[d]);
    free(min_dt);
    return first < n_layer ? n_layer - first : 0;
}

int stability_measure(MambaModel *model, Tape *tape, const StabilityOptions *options, float *max_eigenvalue,
                      Error *err) {
    if (check_options(model, options, err) != 0) return -1;
    const MambaConfig *c = &model->config;
    int n_layer = c->n_layer, D = c->d_inner, N = c->d_state;
    double *min_delta = xmalloc(sizeof(double) * (size_t)n_layer * D);
    calibrate(model, tape, options, min_delta, NULL, NULL, 0);
    for (int l = 0; l < n_layer; l++) {
        const float *a_log = model->layers[l].A_log.data;
        for (int d = 0; d < D; d++)
            for (int n = 0; n < N; n++)
                max_eigenvalue[((long)l * D + d) * N + n] =
                    (float)exp(-min_delta[(long)l * D + d] * exp((double)a_log[d * N + n]));
    }
    free(min_delta);
    return 0;
}

// ---------------------------------------------------------------------------------------
// The state of one stability_correct call

typedef struct Check {
    MambaModel *model;
    const PruneMasks *masks;
    uint8_t *const *new_keep;
    const float *const *scores;
    int n_layer, D, N, R;
    long T;                   // calibration tokens over all batches
    double bound;             // log(1 - ε)
    double *ref_s;            // (n_layer, D, N): min Δ · A of the model as it was given
    double *min_delta;        // (n_layer, D): min Δ of the model as it is now
    float *delta_rows;        // (n_layer, T, R): dt_proj's input at every token, from the last pass
    float *inputs;            // (n_layer, T, d): every block's input, from the last pass
    int dirty_from;           // the first layer whose weights changed since the last pass
    uint8_t *seen;            // (n_layer, D, N): entries found violating in some round
    uint8_t *guarded;         // (n_layer, D): corrected channels, whose rows the rebalance leaves alone
    int *a_log_of, *dt_proj_of;  // per layer: the index of its A_log / dt_proj mask, or -1
    int *group_of;            // per tensor: the first tensor of its group, which holds the group's debt
    long *owed;               // per tensor (group heads): weights given back, not yet paid for
    float **original;         // per tensor, NULL until touched: the weights as the model had them
    uint8_t **keep_before;    // per tensor, NULL until touched: new_keep as the caller gave it
} Check;

// Keeps what is needed to undo any change to tensor i's weights or new_keep.
static void touch(Check *c, int i) {
    const Tensor *t = c->masks->tensors[i].tensor;
    if (!c->original[i]) {
        c->original[i] = xmalloc(sizeof(float) * t->size);
        memcpy(c->original[i], t->data, sizeof(float) * t->size);
    }
    if (!c->keep_before[i]) {
        c->keep_before[i] = xmalloc(t->size);
        memcpy(c->keep_before[i], c->new_keep[i], t->size);
    }
}

// Sets weight j of tensor i kept (its old value back) or pruned (zero), in new_keep and in
// the model. Tensor i must have been touched.
static void set_kept(Check *c, int i, size_t j, bool kept) {
    int layer = c->masks->tensors[i].layer < 0 ? 0 : c->masks->tensors[i].layer;
    if (layer < c->dirty_from) c->dirty_from = layer;
    c->new_keep[i][j] = kept;
    c->masks->tensors[i].tensor->data[j] = kept ? c->original[i][j] : 0.0f;
}

static bool newly_pruned(const Check *c, int i, size_t j) {
    return c->masks->tensors[i].keep[j] && !c->new_keep[i][j];
}

static double a_of(const Check *c, int l, int d, int n) {
    return -exp((double)c->model->layers[l].A_log.data[d * c->N + n]);
}

// Entry (l, d, n) with min Δ = min_delta is past the bound where the reference was not.
static bool violates(const Check *c, int l, int d, int n, double min_delta) {
    long k = ((long)l * c->D + d) * c->N + n;
    return min_delta * a_of(c, l, d, n) > c->bound && c->ref_s[k] <= c->bound;
}

static bool channel_violates(const Check *c, int l, int d, double min_delta) {
    for (int n = 0; n < c->N; n++)
        if (violates(c, l, d, n, min_delta)) return true;
    return false;
}

// dt[t] = W_d · δ_t for channel d of layer l at every calibration token, with dt_proj's row
// as the model has it now.
static void channel_dt(const Check *c, int l, int d, double *dt) {
    const float *w = c->model->layers[l].dt_proj_weight.data + (long)d * c->R;
    const float *rows = c->delta_rows + (long)l * c->T * c->R;
    for (long t = 0; t < c->T; t++) {
        double sum = 0.0;
        for (int r = 0; r < c->R; r++) sum += (double)w[r] * rows[t * c->R + r];
        dt[t] = sum;
    }
}

// min_t softplus(dt[t] + dt_bias_d), optionally with column r's term w·δ_{t,r} taken out.
static double channel_min_delta(const Check *c, int l, int d, const double *dt, int r, double w) {
    const float *rows = c->delta_rows + (long)l * c->T * c->R;
    double min = INFINITY;
    for (long t = 0; t < c->T; t++) {
        double v = dt[t] - (r >= 0 ? w * rows[t * c->R + r] : 0.0);
        min = v < min ? v : min;
    }
    return softplus(min + (double)c->model->layers[l].dt_proj_bias.data[d]);
}

// Corrects channel d of layer l, whose entries violate: gives back the violating entries'
// newly pruned A_log weights, then, while the channel still violates, the newly pruned
// weights of its dt_proj row, highest score first, re-checking from the δ rows after each.
// Touches only row d of the layer's A_log and dt_proj (safe in parallel over channels).
// dt is T doubles of scratch. Returns whether the channel is fixed.
static bool correct_channel(Check *c, int l, int d, double *dt, long *gave_a_log, long *gave_dt_proj) {
    double *min_delta = &c->min_delta[(long)l * c->D + d];
    int a = c->a_log_of[l];
    if (a >= 0)
        for (int n = 0; n < c->N; n++) {
            size_t j = (size_t)d * c->N + n;
            if (violates(c, l, d, n, *min_delta) && newly_pruned(c, a, j)) {
                set_kept(c, a, j, true);
                (*gave_a_log)++;
            }
        }
    if (!channel_violates(c, l, d, *min_delta)) return true;
    int w = c->dt_proj_of[l];
    if (w < 0) return false;
    channel_dt(c, l, d, dt);
    *min_delta = channel_min_delta(c, l, d, dt, -1, 0.0);
    const float *rows = c->delta_rows + (long)l * c->T * c->R;
    while (channel_violates(c, l, d, *min_delta)) {
        int best = -1;
        for (int r = 0; r < c->R; r++) {
            size_t j = (size_t)d * c->R + r;
            if (newly_pruned(c, w, j) && (best < 0 || c->scores[w][j] > c->scores[w][(size_t)d * c->R + best]))
                best = r;
        }
        if (best < 0) return false;
        size_t j = (size_t)d * c->R + best;
        set_kept(c, w, j, true);
        (*gave_dt_proj)++;
        double value = c->original[w][j];
        for (long t = 0; t < c->T; t++) dt[t] += value * rows[t * c->R + best];
        *min_delta = channel_min_delta(c, l, d, dt, -1, 0.0);
    }
    return true;
}

// ---------------------------------------------------------------------------------------
// The rebalance: each weight given back is paid for by the lowest-scored kept weight of its
// group, outside the A_log and dt_proj rows of the corrected channels, and not one whose
// pruning would itself push an entry past the bound (checked for A_log and dt_proj weights,
// whose effect is known exactly; a weight elsewhere moves δ, which the next measure sees).

typedef struct Candidate {
    float score;
    int tensor;
    size_t index;
} Candidate;

// Lower score first, then tensor order, then position: the prune order.
static bool candidate_before(const Candidate *x, const Candidate *y) {
    if (x->score != y->score) return x->score < y->score;
    if (x->tensor != y->tensor) return x->tensor < y->tensor;
    return x->index < y->index;
}

static int candidate_compare(const void *x, const void *y) {
    return candidate_before(x, y) ? -1 : candidate_before(y, x) ? 1 : 0;
}

// A max-heap (by prune order) of the `capacity` first candidates seen so far.
typedef struct CandidateHeap {
    Candidate *items;
    int n, capacity;
} CandidateHeap;

static void heap_sift_down(CandidateHeap *h, int i) {
    for (;;) {
        int largest = i, left = 2 * i + 1, right = 2 * i + 2;
        if (left < h->n && candidate_before(&h->items[largest], &h->items[left])) largest = left;
        if (right < h->n && candidate_before(&h->items[largest], &h->items[right])) largest = right;
        if (largest == i) return;
        Candidate swap = h->items[i];
        h->items[i] = h->items[largest];
        h->items[largest] = swap;
        i = largest;
    }
}

static void heap_offer(CandidateHeap *h, Candidate item) {
    if (h->n < h->capacity) {
        int i = h->n++;
        h->items[i] = item;
        while (i > 0 && candidate_before(&h->items[(i - 1) / 2], &h->items[i])) {
            Candidate swap = h->items[i];
            h->items[i] = h->items[(i - 1) / 2];
            h->items[(i - 1) / 2] = swap;
            i = (i - 1) / 2;
        }
    } else if (candidate_before(&item, &h->items[0])) {
        h->items[0] = item;
        heap_sift_down(h, 0);
    }
}

// The channel (layer and d) whose A_log or dt_proj row holds weight j of tensor i, or false.
static bool ssm_row_of(const Check *c, int i, size_t j, int *layer, int *d) {
    const MaskedTensor *m = &c->masks->tensors[i];
    if (m->layer < 0 || m->layer >= c->n_layer) return false;
    if (m->component == PRUNE_A_LOG && c->a_log_of[m->layer] == i) *d = (int)(j / (size_t)c->N);
    else if (m->component == PRUNE_DT_PROJ && c->dt_proj_of[m->layer] == i) *d = (int)(j / (size_t)c->R);
    else return false;
    *layer = m->layer;
    return true;
}

// Whether pruning weight j of tensor i (in channel d of layer l) would leave the channel past
// the bound; when it would not, *min_delta receives the channel's min Δ after the prune.
static bool prune_is_safe(const Check *c, int i, size_t j, int l, int d, double *dt, double *min_delta) {
    double current = c->min_delta[(long)l * c->D + d];
    if (c->masks->tensors[i].component == PRUNE_A_LOG) {
        int n = (int)(j % (size_t)c->N);
        long k = ((long)l * c->D + d) * c->N + n;
        *min_delta = current;
        return !(-current > c->bound && c->ref_s[k] <= c->bound);  // a pruned A_log is 0: A = -1
    }
    channel_dt(c, l, d, dt);
    int r = (int)(j % (size_t)c->R);
    *min_delta = channel_min_delta(c, l, d, dt, r, (double)c->model->layers[l].dt_proj_weight.data[j]);
    return !channel_violates(c, l, d, *min_delta);
}

static int rebalance_group(Check *c, int head, double *dt, StabilityReport *report, Error *err) {
    CandidateHeap heap = {0};
    int status = 0;
    for (int capacity = (int)c->owed[head] + 16; c->owed[head] > 0; capacity *= 4) {
        heap.items = xrealloc(heap.items, sizeof(Candidate) * (size_t)capacity);
        heap.n = 0;
        heap.capacity = capacity;
        for (int i = 0; i < c->masks->n; i++) {
            if (c->group_of[i] != head) continue;
            size_t size = c->masks->tensors[i].tensor->size;
            for (size_t j = 0; j < size; j++) {
                if (!c->new_keep[i][j]) continue;
                int l, d;
                if (ssm_row_of(c, i, j, &l, &d) && c->guarded[(long)l * c->D + d]) continue;
                heap_offer(&heap, (Candidate){c->scores[i][j], i, j});
            }
        }
        qsort(heap.items, (size_t)heap.n, sizeof(Candidate), candidate_compare);
        for (int k = 0; k < heap.n && c->owed[head] > 0; k++) {
            const Candidate *x = &heap.items[k];
            int l, d;
            double min_delta = 0.0;
            bool in_row = ssm_row_of(c, x->tensor, x->index, &l, &d);
            if (in_row && !prune_is_safe(c, x->tensor, x->index, l, d, dt, &min_delta)) continue;
            touch(c, x->tensor);
            set_kept(c, x->tensor, x->index, false);
            if (in_row) c->min_delta[(long)l * c->D + d] = min_delta;
            c->owed[head]--;
            report->rebalanced++;
        }
        // Fewer candidates than room: every candidate of the group has been seen.
        if (c->owed[head] > 0 && heap.n < capacity) {
            status = error_set(err,
                               "stability: the group of %s has no kept weight left to prune in place of %ld "
                               "weight(s) given back (outside the corrected channels' A_log and dt_proj rows)",
                               c->masks->tensors[head].name, c->owed[head]);
            break;
        }
    }
    free(heap.items);
    return status;
}

// ---------------------------------------------------------------------------------------
// stability_correct

// Counts the entries past the bound now (report->violations counts each entry once over the
// rounds); lists the violating channels as layer * D + d in channels.
static long find_violations(Check *c, StabilityReport *report, long *channels, long *n_channels) {
    long count = 0;
    *n_channels = 0;
    for (int l = 0; l < c->n_layer; l++)
        for (int d = 0; d < c->D; d++) {
            bool any = false;
            for (int n = 0; n < c->N; n++) {
                if (!violates(c, l, d, n, c->min_delta[(long)l * c->D + d])) continue;
                long k = ((long)l * c->D + d) * c->N + n;
                if (!c->seen[k]) report->violations[l]++;
                c->seen[k] = 1;
                count++;
                any = true;
            }
            if (any) channels[(*n_channels)++] = (long)l * c->D + d;
        }
    return count;
}

// One round of corrections over the violating channels, in parallel; then the rebalance.
// Returns the number of weights given back, or -1 on error.
static long correct_round(Check *c, const long *channels, long n_channels, StabilityReport *report, Error *err) {
    long *gave_a_log = xcalloc((size_t)n_channels, sizeof(long));
    long *gave_dt_proj = xcalloc((size_t)n_channels, sizeof(long));
#pragma omp parallel
    {
        double *dt = xmalloc(sizeof(double) * (size_t)c->T);
#pragma omp for schedule(dynamic)
        for (long k = 0; k < n_channels; k++)
            correct_channel(c, (int)(channels[k] / c->D), (int)(channels[k] % c->D), dt, &gave_a_log[k],
                            &gave_dt_proj[k]);
        free(dt);
    }
    long given = 0;
    for (long k = 0; k < n_channels; k++) {
        int l = (int)(channels[k] / c->D);
        c->guarded[channels[k]] = 1;
        report->corrected[l] += gave_a_log[k] + gave_dt_proj[k];
        report->corrected_a_log += gave_a_log[k];
        report->corrected_dt_proj += gave_dt_proj[k];
        if (c->a_log_of[l] >= 0) c->owed[c->group_of[c->a_log_of[l]]] += gave_a_log[k];
        if (c->dt_proj_of[l] >= 0) c->owed[c->group_of[c->dt_proj_of[l]]] += gave_dt_proj[k];
        given += gave_a_log[k] + gave_dt_proj[k];
    }
    free(gave_a_log);
    free(gave_dt_proj);
    double *dt = xmalloc(sizeof(double) * (size_t)c->T);
    for (int i = 0; i < c->masks->n && given >= 0; i++)
        if (c->group_of[i] == i && c->owed[i] > 0 && rebalance_group(c, i, dt, report, err) != 0) given = -1;
    free(dt);
    return given;
}

// Finds the layer of every A_log and dt_proj mask and the head of every tensor's group;
// checks the shapes and that new_keep prunes everything the masks prune.
static int check_setup(Check *c, const int *group, Error *err) {
    const PruneMasks *masks = c->masks;
    for (int l = 0; l < c->n_layer; l++) c->a_log_of[l] = c->dt_proj_of[l] = -1;
    for (int i = 0; i < masks->n; i++) {
        const MaskedTensor *m = &masks->tensors[i];
        if (!c->new_keep[i] || !c->scores[i])
            return error_set(err, "stability: no new mask or no scores for %s", m->name);
        for (size_t j = 0; j < m->tensor->size; j++)
            if (c->new_keep[i][j] && !m->keep[j])
                return error_set(err, "stability: the new mask of %s keeps weight %zu, which the masks already prune",
                                 m->name, j);
        c->group_of[i] = i;
        for (int k = 0; k < i; k++)
            if (group[k] == group[i]) {
                c->group_of[i] = c->group_of[k];
                break;
            }
        if (m->layer < 0 || m->layer >= c->n_layer) continue;
        const MambaLayer *layer = &c->model->layers[m->layer];
        if (m->component == PRUNE_A_LOG && m->tensor == &layer->A_log) c->a_log_of[m->layer] = i;
        if (m->component == PRUNE_DT_PROJ && m->tensor == &layer->dt_proj_weight) c->dt_proj_of[m->layer] = i;
    }
    return 0;
}

int stability_correct(MambaModel *model, Tape *tape, const PruneMasks *masks, uint8_t *const *new_keep,
                      const float *const *scores, const int *group, const StabilityOptions *options,
                      StabilityReport *report, Error *err) {
    const MambaConfig *cfg = &model->config;
    memset(report, 0, sizeof *report);
    if (check_options(model, options, err) != 0) return -1;
    Check c = {
        .model = model, .masks = masks, .new_keep = new_keep, .scores = scores,
        .n_layer = cfg->n_layer, .D = cfg->d_inner, .N = cfg->d_state, .R = cfg->dt_rank,
        .T = (long)options->n_batches * options->batch_size * options->seqlen,
        .bound = log1p(-options->epsilon),
    };
    long entries = (long)c.n_layer * c.D * c.N, channels_total = (long)c.n_layer * c.D;
    c.a_log_of = xmalloc(sizeof(int) * (size_t)c.n_layer);
    c.dt_proj_of = xmalloc(sizeof(int) * (size_t)c.n_layer);
    c.group_of = xmalloc(sizeof(int) * (size_t)(masks->n + 1));
    c.owed = xcalloc((size_t)masks->n + 1, sizeof(long));
    c.original = xcalloc((size_t)masks->n + 1, sizeof(float *));
    c.keep_before = xcalloc((size_t)masks->n + 1, sizeof(uint8_t *));
    c.ref_s = xmalloc(sizeof(double) * (size_t)entries);
    c.min_delta = xmalloc(sizeof(double) * (size_t)channels_total);
    c.seen = xcalloc((size_t)entries, 1);
    c.guarded = xcalloc((size_t)channels_total, 1);
    long *channels = xmalloc(sizeof(long) * (size_t)channels_total);
    report->n_layer = c.n_layer;
    report->violations = xcalloc((size_t)c.n_layer, sizeof(long));
    report->corrected = xcalloc((size_t)c.n_layer, sizeof(long));
    int status = check_setup(&c, group, err);
    if (status == 0) {
        // The reference: the model as it was given, under the old masks. Its δ rows and block
        // inputs stay: the first pass over the new masks starts at the first layer they change.
        c.delta_rows = xmalloc(sizeof(float) * (size_t)c.n_layer * (size_t)c.T * (size_t)c.R);
        c.inputs = xmalloc(sizeof(float) * (size_t)c.n_layer * (size_t)c.T * (size_t)cfg->d_model);
        report->blocks += calibrate(model, tape, options, c.min_delta, c.delta_rows, c.inputs, 0);
        for (int l = 0; l < c.n_layer; l++)
            for (int d = 0; d < c.D; d++)
                for (int n = 0; n < c.N; n++)
                    c.ref_s[((long)l * c.D + d) * c.N + n] = c.min_delta[(long)l * c.D + d] * a_of(&c, l, d, n);
        // The update, for now: its newly pruned weights zeroed (their values kept).
        c.dirty_from = c.n_layer;
        for (int l = 0; l < c.n_layer; l++) {
            if (c.a_log_of[l] >= 0) touch(&c, c.a_log_of[l]);
            if (c.dt_proj_of[l] >= 0) touch(&c, c.dt_proj_of[l]);
        }
        for (int i = 0; i < masks->n; i++)
            for (size_t j = 0; j < masks->tensors[i].tensor->size; j++)
                if (newly_pruned(&c, i, j)) {
                    touch(&c, i);
                    set_kept(&c, i, j, false);
                }
        for (int round = 0;; round++) {
            // Each pass starts at the first layer whose weights changed since the last one (the
            // update's, then a round's corrections and rebalance); the layers before it keep their Δ.
            report->blocks += calibrate(model, tape, options, c.min_delta, c.delta_rows, c.inputs, c.dirty_from);
            c.dirty_from = c.n_layer;
            long n_channels;
            long count = find_violations(&c, report, channels, &n_channels);
            if (count == 0 || round == CORRECTION_ROUNDS) {
                report->remaining = count;
                break;
            }
            long given = correct_round(&c, channels, n_channels, report, err);
            if (given < 0) {
                status = -1;
                break;
            }
            if (given == 0) {  // nothing left to give back: a re-measure would find the same
                report->remaining = count;
                break;
            }
        }
    }
    // The model as it was given, whatever happened; on error new_keep too.
    for (int i = 0; i < masks->n; i++) {
        const Tensor *t = masks->tensors[i].tensor;
        if (c.original[i]) memcpy(t->data, c.original[i], sizeof(float) * t->size);
        if (status != 0 && c.keep_before[i]) memcpy(new_keep[i], c.keep_before[i], t->size);
        free(c.original[i]);
        free(c.keep_before[i]);
    }
    if (status != 0) stability_report_free(report);
    free(channels);
    free(c.guarded);
    free(c.seen);
    free(c.delta_rows);
    free(c.inputs);
    free(c.min_delta);
    free(c.ref_s);
    free(c.keep_before);
    free(c.original);
    free(c.owed);
    free(c.group_of);
    free(c.dt_proj_of);
    free(c.a_log_of);
    return status;
}
