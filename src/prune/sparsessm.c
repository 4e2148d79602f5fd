// SparseSSM (docs/DESIGN.md#one-shot-methods, see sparsessm.h): time weights, the A_log scores accumulated from a
// layer's scan inputs, masks and state columns chosen from them, the shrunken model of the
// structured variant, and the sensitivity-ramped sparsities of the linear layers.
//
// The score kernel walks the scan the way the forward does (selective_scan.c): lanes are
// 16 channels, the N states of a block are N vectors, and Δ and Ā go through the same
// fast_expf / softplusf / fmaf, so its states are the forward's states. Nothing of
// (B, L, D, N) is ever held.
#include "prune/sparsessm.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/scan_lanes.h"  // defines: SCAN_LANES, token_delta
#include "core/fastmath.h"        // defines: fast_expf, softplusf

// ---- time weights ----

int sparsessm_time_weights(SparsessmWeighting kind, double gamma, int L, float *w, Error *err) {
    if (L < 1) return error_set(err, "sparsessm: time weights need a sequence length >= 1, got %d", L);
    if (kind == SPARSESSM_GEOMETRIC && !(gamma > 0.0 && gamma <= 1.0))
        return error_set(err, "sparsessm: geometric time weights need 0 < gamma <= 1, got %g", gamma);
    const int window = (L + 3) / 4;  // ceil(L/4)
    double *raw = xmalloc(sizeof(double) * L);
    double total = 0.0;
    for (int t = 0; t < L; t++) {
        switch (kind) {
        case SPARSESSM_HARMONIC: raw[t] = 1.0 / (t + 1); break;
        case SPARSESSM_UNIFORM: raw[t] = 1.0; break;
        case SPARSESSM_GEOMETRIC: raw[t] = pow(gamma, t); break;
        case SPARSESSM_WINDOW: raw[t] = t < window ? 1.0 : 0.0; break;
        default: free(raw); return error_set(err, "sparsessm: unknown time weighting %d", (int)kind);
        }
        total += raw[t];
    }
    // gamma^t may underflow to 0 late in a long sequence, but raw[0] = 1 keeps total >= 1.
    for (int t = 0; t < L; t++) w[t] = (float)(raw[t] / total);
    free(raw);
    return 0;
}

// ---- scores of A_log ----

// Channels per block, as in the scan.
#define SCORE_LANES SCAN_LANES

// Channels [d0, d0 + width) of all sequences: adds Σ_b Σ_t w_t (Ā_t h_{t-1})² into acc,
// (N, LANES) doubles. h is (N, LANES) floats of scratch; A is (N, LANES), bias (LANES),
// both padded (A = -1, bias 0) so that a padding lane, whose x reads 0, keeps h = 0 and
// adds exact zeros.
static void score_block(const SelectiveScanShape *shape, int d0, int width, const float *x, const float *dt,
                        const float *B_ssm, const float *time_weights, const float *A, const float *bias,
                        float *restrict h, double *restrict acc) {
    const int Bsz = shape->batch, L = shape->seqlen, D = shape->d_inner, N = shape->d_state;
    for (int b = 0; b < Bsz; b++) {
        memset(h, 0, sizeof(float) * N * SCORE_LANES);
        for (int t = 0; t < L; t++) {
            const size_t row = (size_t)b * L + t;  // token index in (B, L)
            const float *x_t = x + row * D + d0, *dt_t = dt + row * D + d0, *B_t = B_ssm + row * N;
            const double w_t = time_weights[t];
            float delta[SCORE_LANES], delta_x[SCORE_LANES];
            token_delta(delta, delta_x, x_t, dt_t, bias, width);
            for (int n = 0; n < N; n++) {
                float *h_n = h + n * SCORE_LANES;
                double *acc_n = acc + n * SCORE_LANES;
                const float *A_n = A + n * SCORE_LANES, B_n = B_t[n];
#pragma omp simd
                for (int j = 0; j < SCORE_LANES; j++) {
                    float decay = fast_expf(delta[j] * A_n[j]);
                    float decayed = decay * h_n[j];  // Ā_t h_{t-1}
                    acc_n[j] += w_t * ((double)decayed * decayed);
                    h_n[j] = fmaf(decay, h_n[j], delta_x[j] * B_n);
                }
            }
        }
    }
}

void sparsessm_accumulate_alog_scores(const SelectiveScanShape *shape, const float *x, const float *dt,
                                      const float *dt_bias, const float *A_log, const float *B_ssm,
                                      const float *time_weights, double *scores) {
    const int D = shape->d_inner, N = shape->d_state;
    if (shape->batch <= 0 || shape->seqlen <= 0 || D <= 0 || N <= 0) return;
    const int n_blocks = (D + SCORE_LANES - 1) / SCORE_LANES;
    // Each block has one owner and walks b, t in order: the sums do not depend on the schedule.
#pragma omp parallel
    {
        float *A = xmalloc(sizeof(float) * (2 * N + 1) * SCORE_LANES);  // (N, LANES)
        float *h = A + (size_t)N * SCORE_LANES;                         // (N, LANES)
        float *bias = h + (size_t)N * SCORE_LANES;                      // (LANES)
        double *acc = xmalloc(sizeof(double) * N * SCORE_LANES);        // (N, LANES)
#pragma omp for schedule(dynamic)
        for (int block = 0; block < n_blocks; block++) {
            const int d0 = block * SCORE_LANES;
            const int width = D - d0 < SCORE_LANES ? D - d0 : SCORE_LANES;
            for (int j = 0; j < SCORE_LANES; j++) {
                bias[j] = j < width ? dt_bias[d0 + j] : 0.0f;
                for (int n = 0; n < N; n++)
                    A[n * SCORE_LANES + j] = j < width ? -fast_expf(A_log[(size_t)(d0 + j) * N + n]) : -1.0f;
            }
            memset(acc, 0, sizeof(double) * N * SCORE_LANES);
            score_block(shape, d0, width, x, dt, B_ssm, time_weights, A, bias, h, acc);
            for (int j = 0; j < width; j++)
                for (int n = 0; n < N; n++) scores[(size_t)(d0 + j) * N + n] += acc[n * SCORE_LANES + j];
        }
        free(A);
        free(acc);
    }
}

// ---- masks ----

// An entry to rank: ascending by score, ties by index. Scores are checked NaN-free first,
// so this is a total order.
typedef struct Ranked {
    double score;
    int index;
} Ranked;

static int ranked_compare(const void *pa, const void *pb) {
    const Ranked *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

static int check_scores(const double *scores, int D, int N, Error *err) {
    if (D < 1 || N < 1) return error_set(err, "sparsessm: scores need D >= 1 and N >= 1, got D %d, N %d", D, N);
    for (long k = 0; k < (long)D * N; k++)
        if (isnan(scores[k]))
            return error_set(err, "sparsessm: the score of A_log entry (%ld, %ld) is NaN", k / N, k % N);
    return 0;
}

static int check_sparsity(double sparsity, Error *err) {
    if (!(sparsity >= 0.0 && sparsity < 1.0))
        return error_set(err, "sparsessm: sparsity must be in [0, 1), got %g", sparsity);
    return 0;
}

int sparsessm_mask_unstructured(const double *scores, int D, int N, double sparsity, uint8_t *mask, Error *err) {
    if (check_sparsity(sparsity, err) || check_scores(scores, D, N, err)) return -1;
    const long total = (long)D * N;
    const long n_prune = lround(sparsity * (double)total);
    Ranked *order = xmalloc(sizeof(Ranked) * total);
    for (long k = 0; k < total; k++) order[k] = (Ranked){scores[k], (int)k};
    qsort(order, total, sizeof(Ranked), ranked_compare);
    memset(mask, 1, total);
    for (long k = 0; k < n_prune; k++) mask[order[k].index] = 0;
    free(order);
    return 0;
}

int sparsessm_mask_nm(const double *scores, int D, int N, int n, int m, uint8_t *mask, Error *err) {
    if (!(n > 0 && n < m)) return error_set(err, "sparsessm: N:M pruning needs 0 < n < m, got %d:%d", n, m);
    if (check_scores(scores, D, N, err)) return -1;
    if (N % m != 0) return error_set(err, "sparsessm: N:M pruning needs d_state %d to be a multiple of m = %d", N, m);
    Ranked *group = xmalloc(sizeof(Ranked) * m);
    for (int d = 0; d < D; d++)
        for (int g = 0; g < N; g += m) {
            const long first = (long)d * N + g;
            for (int k = 0; k < m; k++) group[k] = (Ranked){scores[first + k], (int)(first + k)};
            qsort(group, m, sizeof(Ranked), ranked_compare);
            for (int k = 0; k < m; k++) mask[group[k].index] = k >= m - n;  // the n highest stay
        }
    free(group);
    return 0;
}

int sparsessm_choose_state_columns(const double *scores, int D, int N, double sparsity, uint8_t *keep, Error *err) {
    if (check_sparsity(sparsity, err) || check_scores(scores, D, N, err)) return -1;
    Ranked *columns = xmalloc(sizeof(Ranked) * N);
    for (int n = 0; n < N; n++) {
        double sum = 0.0;
        for (int d = 0; d < D; d++) sum += scores[(size_t)d * N + n];
        columns[n] = (Ranked){sum, n};
    }
    qsort(columns, N, sizeof(Ranked), ranked_compare);
    long n_drop = lround(sparsity * N);
    if (n_drop > N - 1) n_drop = N - 1;
    memset(keep, 1, N);
    for (long k = 0; k < n_drop; k++) keep[columns[k].index] = 0;
    free(columns);
    return N - (int)n_drop;
}

// ---- structured: shrinking d_state ----

// A_log (D, N) -> (D, n_keep): the kept columns, in order.
static void shrink_A_log(const Tensor *in, const uint8_t *keep, Tensor *out) {
    const int D = in->shape[0], N = in->shape[1], n_keep = out->shape[1];
    for (int d = 0; d < D; d++)
        for (int n = 0, j = 0; n < N; n++)
            if (keep[n]) out->data[(size_t)d * n_keep + j++] = in->data[(size_t)d * N + n];
}

// x_proj (R + 2N, D) -> (R + 2 n_keep, D): the δ rows, then the kept B rows, then the kept C rows.
static void shrink_x_proj(const Tensor *in, const uint8_t *keep, int R, int N, Tensor *out) {
    const int D = in->shape[1], n_keep = (out->shape[0] - R) / 2;
    const size_t row = sizeof(float) * D;
    memcpy(out->data, in->data, row * R);
    for (int n = 0, j = 0; n < N; n++)
        if (keep[n]) {
            memcpy(out->data + (size_t)(R + j) * D, in->data + (size_t)(R + n) * D, row);
            memcpy(out->data + (size_t)(R + n_keep + j) * D, in->data + (size_t)(R + N + n) * D, row);
            j++;
        }
}

static bool is_state_param(const MambaModel *model, const Tensor *t) {
    for (int i = 0; i < model->config.n_layer; i++)
        if (t == &model->layers[i].A_log || t == &model->layers[i].x_proj_weight) return true;
    return false;
}

int sparsessm_shrink_state(const MambaModel *in, const uint8_t *keep, int n_keep, MambaModel *out, Error *err) {
    const MambaConfig *c = &in->config;
    const int N = c->d_state;
    if (n_keep < 1 || n_keep > N)
        return error_set(err, "sparsessm: n_keep must be in [1, d_state = %d], got %d", N, n_keep);
    for (int i = 0; i < c->n_layer; i++) {
        int kept = 0;
        for (int n = 0; n < N; n++) kept += keep[(size_t)i * N + n] != 0;
        if (kept != n_keep)
            return error_set(err, "sparsessm: layer %d keeps %d state columns, expected n_keep = %d", i, kept, n_keep);
    }
    MambaConfig config = *c;
    config.d_state = n_keep;
    if (mamba_config_finish(&config, err)) return error_prefix(err, "sparsessm: shrunken config");
    mamba_model_create(out, &config);
    // Same config but d_state: the same parameters in the same order.
    for (int i = 0; i < out->n_params; i++) {
        Tensor *dst = out->params[i].tensor;
        if (is_state_param(out, dst)) continue;
        memcpy(dst->data, in->params[i].tensor->data, sizeof(float) * dst->size);
    }
    for (int i = 0; i < c->n_layer; i++) {
        const uint8_t *keep_i = keep + (size_t)i * N;
        shrink_A_log(&in->layers[i].A_log, keep_i, &out->layers[i].A_log);
        shrink_x_proj(&in->layers[i].x_proj_weight, keep_i, c->dt_rank, N, &out->layers[i].x_proj_weight);
    }
    return 0;
}

// ---- component-sensitivity allocation ----

double sparsessm_sensitivity(const float *H, int cols) {
    if (cols < 1) return 0.0;
    double sum = 0.0;
    for (int j = 0; j < cols; j++) {
        const double h = H[(size_t)j * cols + j];
        sum += h * h;
    }
    return sum / cols;
}

// a before b in the ranking: ascending sensitivity, NaN last, ties by index.
static bool less_sensitive(const double *s, int a, int b) {
    if (isnan(s[a]) != isnan(s[b])) return isnan(s[b]);
    if (!isnan(s[a]) && s[a] != s[b]) return s[a] < s[b];
    return a < b;
}

void sparsessm_allocate_sparsity(const double *sensitivity, int n_layers, double p, double alpha, double *sparsity) {
    if (n_layers < 1) return;
    const double max_sparsity = 0.99;
    p = p < 0.0 ? 0.0 : p > max_sparsity ? max_sparsity : p;
    double a = alpha;
    if (a > p) a = p;
    if (a > max_sparsity - p) a = max_sparsity - p;
    if (!(a > 0.0)) a = 0.0;  // also a NaN alpha
    // order[r] = the layer of rank r, least sensitive first (insertion sort: n_layers is small).
    int *order = xmalloc(sizeof(int) * n_layers);
    for (int r = 0; r < n_layers; r++) {
        int k = r;
        for (; k > 0 && less_sensitive(sensitivity, r, order[k - 1]); k--) order[k] = order[k - 1];
        order[k] = r;
    }
    int k = n_layers / 2;
    if (k > SPARSESSM_RAMP_LAYERS) k = SPARSESSM_RAMP_LAYERS;
    for (int i = 0; i < n_layers; i++) sparsity[i] = p;
    for (int r = 0; r < k; r++) {
        // The offset from p of the r-th layer from either end: a at the end, 0 at the k-th.
        const double offset = k == 1 ? a / 2.0 : a * (double)(k - 1 - r) / (k - 1);
        sparsity[order[r]] = p + offset;                 // least sensitive: pruned more
        sparsity[order[n_layers - 1 - r]] = p - offset;  // most sensitive: pruned less
    }
    free(order);
}
