// AdamW and gradient clipping (see adamw.h). The update mirrors the arithmetic of
// torch.optim.AdamW (single-tensor path) operation by operation, in float32 with the
// scalars computed in double, so that a trajectory matches PyTorch's to rounding.
#include "optim/adamw.h"

#include <assert.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/share.h"  // share_of_thread, share_in_array

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
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float bias2_sqrt;     // sqrt(1 - beta2^t)
    float eps;
    float step_size;      // lr / (1 - beta1^t)
} UpdateScalars;

// Elements [lo, hi) of one tensor: p, m, v updated in place from g. Each element is
// independent, so how the elements are split over threads changes no result.
static void adamw_update(float *restrict p, float *restrict m, float *restrict v, const float *restrict g, size_t lo,
                         size_t hi, const UpdateScalars *s, float decay) {
    const float b1 = s->beta1, c1 = s->one_minus_beta1, b2 = s->beta2, c2 = s->one_minus_beta2;
    const float bias2_sqrt = s->bias2_sqrt, eps = s->eps, step_size = s->step_size;
#pragma omp simd
    for (size_t i = lo; i < hi; i++) {
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
    size_t total = 0;
    for (int i = 0; i < opt->n_slots; i++) total += opt->slots[i].tensor->size;
#pragma omp parallel if (total >= SHARE_MIN_PARALLEL)
    {
        size_t lo, hi, offset = 0, begin, end;
        share_of_thread(total, &lo, &hi);
        for (int i = 0; i < opt->n_slots && offset < hi; offset += opt->slots[i++].tensor->size) {
            const AdamWSlot *slot = &opt->slots[i];
            if (share_in_array(lo, hi, offset, slot->tensor->size, &begin, &end))
                adamw_update(slot->tensor->data, slot->m, slot->v, slot->tensor->grad, begin, end, &s,
                             slot->decay ? decay : 1.0f);
        }
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
// sum_of_squares, the pieces' sums added in order, the tensors' sums in tensor order. The
// pieces depend on the sizes alone, so the threads that sum them change no bit; all the
// tensors' pieces are one parallel loop.
#define NORM_PIECE ((size_t)1 << 18)

typedef struct NormPiece {
    int tensor;
    size_t start;
    double sum;
} NormPiece;

static double total_sum_of_squares(Tensor *const *tensors, int n) {
    long n_pieces = 0;
    for (int i = 0; i < n; i++) n_pieces += (long)((tensors[i]->size + NORM_PIECE - 1) / NORM_PIECE);
    NormPiece *pieces = xmalloc(sizeof *pieces * (size_t)(n_pieces > 0 ? n_pieces : 1));
    long p = 0;
    for (int i = 0; i < n; i++)
        for (size_t start = 0; start < tensors[i]->size; start += NORM_PIECE) pieces[p++] = (NormPiece){i, start, 0.0};
#pragma omp parallel for schedule(dynamic, 4) if (n_pieces > 1)
    for (long q = 0; q < n_pieces; q++) {
        const Tensor *t = tensors[pieces[q].tensor];
        const size_t start = pieces[q].start, left = t->size - start;
        pieces[q].sum = sum_of_squares(t->grad + start, left < NORM_PIECE ? left : NORM_PIECE);
    }
    double total = 0.0;
    for (long q = 0; q < n_pieces;) {
        const int i = pieces[q].tensor;
        double tensor_total = 0.0;
        for (; q < n_pieces && pieces[q].tensor == i; q++) tensor_total += pieces[q].sum;
        total += tensor_total;
    }
    free(pieces);
    return total;
}

double clip_grad_norm(Tensor *const *tensors, int n, double max_norm) {
    double norm = sqrt(total_sum_of_squares(tensors, n));
    if (!isfinite(norm) || max_norm <= 0.0) return norm;
    double coef = max_norm / (norm + 1e-6);  // torch clamps this at 1: no scaling when >= 1
    if (coef < 1.0) {
        const float scale = (float)coef;
        size_t total = 0;
        for (int i = 0; i < n; i++) total += tensors[i]->size;
#pragma omp parallel if (total >= SHARE_MIN_PARALLEL)
        {
            size_t lo, hi, offset = 0, begin, end;
            share_of_thread(total, &lo, &hi);
            for (int i = 0; i < n && offset < hi; offset += tensors[i++]->size) {
                if (!share_in_array(lo, hi, offset, tensors[i]->size, &begin, &end)) continue;
                float *g = tensors[i]->grad;
#pragma omp simd
                for (size_t j = begin; j < end; j++) g[j] *= scale;
            }
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
