// AdamW and gradient clipping (see adamw.h). The update mirrors the arithmetic of
// torch.optim.AdamW (single-tensor path) operation by operation, in float32 with the
// scalars computed in double, so that a trajectory matches PyTorch's to rounding.
#include "optim/adamw.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void adamw_options_defaults(AdamWOptions *o) {
    *o = (AdamWOptions){.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
}

void adamw_init(AdamW *opt, const AdamWOptions *o) {
    memset(opt, 0, sizeof *opt);
    opt->options = *o;
}

void adamw_free(AdamW *opt) {
    for (int i = 0; i < opt->n_slots; i++) {
        free(opt->slots[i].m);
        free(opt->slots[i].v);
    }
    free(opt->slots);
    memset(opt, 0, sizeof *opt);
}

int adamw_add(AdamW *opt, Tensor *tensor, bool decay) {
    assert(tensor->data && tensor->grad);
    if (opt->n_slots == opt->capacity) {
        opt->capacity = opt->capacity ? 2 * opt->capacity : 16;
        opt->slots = xrealloc(opt->slots, sizeof(AdamWSlot) * (size_t)opt->capacity);
    }
    AdamWSlot *slot = &opt->slots[opt->n_slots];
    slot->tensor = tensor;
    slot->decay = decay;
    slot->m = xcalloc(tensor->size, sizeof(float));
    slot->v = xcalloc(tensor->size, sizeof(float));
    return opt->n_slots++;
}

AdamWSlot *adamw_find(AdamW *opt, const Tensor *tensor) {
    for (int i = 0; i < opt->n_slots; i++)
        if (opt->slots[i].tensor == tensor) return &opt->slots[i];
    return NULL;
}

void adamw_reset_moments(AdamW *opt) {
    for (int i = 0; i < opt->n_slots; i++) {
        size_t n = opt->slots[i].tensor->size;
        memset(opt->slots[i].m, 0, n * sizeof(float));
        memset(opt->slots[i].v, 0, n * sizeof(float));
    }
}

// The float constants of one update, rounded from double as torch rounds its scalars.
typedef struct UpdateScalars {
    float decay;          // 1 - lr*wd, or 1
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float bias2_sqrt;     // sqrt(1 - beta2^t)
    float eps;
    float step_size;      // lr / (1 - beta1^t)
} UpdateScalars;

// One tensor of n floats: p, m, v updated in place from g. Each element is independent,
// so the loop vectorizes and splits over threads without changing any result.
static void adamw_update(float *restrict p, float *restrict m, float *restrict v, const float *restrict g, size_t n,
                         const UpdateScalars *s) {
    const float decay = s->decay, b1 = s->beta1, c1 = s->one_minus_beta1, b2 = s->beta2, c2 = s->one_minus_beta2;
    const float bias2_sqrt = s->bias2_sqrt, eps = s->eps, step_size = s->step_size;
    long count = (long)n;
#pragma omp parallel for simd schedule(static) if (count >= 65536)
    for (long i = 0; i < count; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        float denom = sqrtf(vi) / bias2_sqrt + eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step_size * (mi / denom);
    }
}

void adamw_step(AdamW *opt, double lr) {
    const AdamWOptions *o = &opt->options;
    long t = ++opt->step;
    UpdateScalars s = {
        .beta1 = (float)o->beta1,
        .one_minus_beta1 = (float)(1.0 - o->beta1),
        .beta2 = (float)o->beta2,
        .one_minus_beta2 = (float)(1.0 - o->beta2),
        .bias2_sqrt = (float)sqrt(1.0 - pow(o->beta2, (double)t)),
        .eps = (float)o->eps,
        .step_size = (float)(lr / (1.0 - pow(o->beta1, (double)t))),
    };
    const float decay = (float)(1.0 - lr * o->weight_decay);
    for (int i = 0; i < opt->n_slots; i++) {
        AdamWSlot *slot = &opt->slots[i];
        s.decay = slot->decay ? decay : 1.0f;
        adamw_update(slot->tensor->data, slot->m, slot->v, slot->tensor->grad, slot->tensor->size, &s);
    }
}

// Sum of squares in double with 8 running sums (a fixed association, so the same bits on
// every run; gcc keeps the 8 lanes in vector registers).
static double sum_of_squares(const float *x, size_t n) {
    double lanes[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) lanes[k] += (double)x[i + k] * (double)x[i + k];
    for (; i < n; i++) lanes[i % 8] += (double)x[i] * (double)x[i];
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// A tensor's sum of squares over consecutive pieces of NORM_PIECE floats, each summed by
// sum_of_squares, the pieces' sums added in order. The pieces depend on the size alone, so
// the threads that sum them change no bit; a tensor of one piece is summed as before.
#define NORM_PIECE ((size_t)1 << 18)

static double tensor_sum_of_squares(const float *x, size_t n) {
    if (n <= NORM_PIECE) return sum_of_squares(x, n);
    const long pieces = (long)((n + NORM_PIECE - 1) / NORM_PIECE);
    double *sums = xmalloc(sizeof(double) * (size_t)pieces);
#pragma omp parallel for schedule(static)
    for (long p = 0; p < pieces; p++) {
        size_t start = (size_t)p * NORM_PIECE;
        sums[p] = sum_of_squares(x + start, n - start < NORM_PIECE ? n - start : NORM_PIECE);
    }
    double total = 0.0;
    for (long p = 0; p < pieces; p++) total += sums[p];
    free(sums);
    return total;
}

double clip_grad_norm(Tensor *const *tensors, int n, double max_norm) {
    double total = 0.0;
    for (int i = 0; i < n; i++) total += tensor_sum_of_squares(tensors[i]->grad, tensors[i]->size);
    double norm = sqrt(total);
    if (!isfinite(norm) || max_norm <= 0.0) return norm;
    double coef = max_norm / (norm + 1e-6);  // torch clamps this at 1: no scaling when >= 1
    if (coef < 1.0) {
        const float scale = (float)coef;
        for (int i = 0; i < n; i++) {
            float *g = tensors[i]->grad;
            long size = (long)tensors[i]->size;
#pragma omp parallel for simd schedule(static) if (size >= 65536)
            for (long j = 0; j < size; j++) g[j] *= scale;
        }
    }
    return norm;
}

double adamw_clip_grad_norm(AdamW *opt, double max_norm) {
    Tensor **list = xmalloc(sizeof(Tensor *) * (size_t)opt->n_slots);
    for (int i = 0; i < opt->n_slots; i++) list[i] = opt->slots[i].tensor;
    double norm = clip_grad_norm(list, opt->n_slots, max_norm);
    free(list);
    return norm;
}
