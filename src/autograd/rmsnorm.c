// rmsnorm: out = x * rsqrt(mean(x^2) + eps) * w, over the last dimension.
#include <math.h>

#include "autograd/ops.h"

// out, x: (T, C); w: (C); rstd: (T), saved for the backward.
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int T, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *xt = x + (long)t * C;
        float *ot = out + (long)t * C;
        float sum_sq = 0.0f;
        for (int c = 0; c < C; c++) sum_sq += xt[c] * xt[c];
        float r = 1.0f / sqrtf(sum_sq / (float)C + eps);
        for (int c = 0; c < C; c++) ot[c] = xt[c] * r * w[c];
        rstd[t] = r;
    }
}

// With n = x * rstd: dx = rstd * (dn - n * mean(dn * n)) where dn = dout * w;
// dw = sum over rows of dout * n.
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                      const float *rstd, int T, int C) {
    if (dx) {
#pragma omp parallel for schedule(static)
        for (int t = 0; t < T; t++) {
            const float *xt = x + (long)t * C, *gt = dout + (long)t * C;
            float *dxt = dx + (long)t * C;
            float r = rstd[t];
            float dot = 0.0f;  // sum of dn * x
            for (int c = 0; c < C; c++) dot += gt[c] * w[c] * xt[c];
            float k = dot * r * r / (float)C;
            for (int c = 0; c < C; c++) dxt[c] += r * (gt[c] * w[c] - xt[c] * k);
        }
    }
    if (dw) {
        // Rows in order, columns in parallel: the sum's order never depends on threads.
#pragma omp parallel for schedule(static)
        for (int c0 = 0; c0 < C; c0 += 64) {
            int c1 = c0 + 64 < C ? c0 + 64 : C;
            for (int t = 0; t < T; t++) {
                const float *xt = x + (long)t * C, *gt = dout + (long)t * C;
                float r = rstd[t];
                for (int c = c0; c < c1; c++) dw[c] += gt[c] * xt[c] * r;
            }
        }
    }
}

typedef struct RmsnormSaved {
    float *rstd;
} RmsnormSaved;

static void rmsnorm_node_backward(Tape *tape, TapeNode *node) {
    Tensor *x = node->inputs[0], *w = node->inputs[1];
    RmsnormSaved *saved = node->saved;
    int C = x->shape[x->ndim - 1], T = (int)(x->size / (size_t)C);
    rmsnorm_backward(x->requires_grad ? tensor_grad(tape, x) : NULL, w->requires_grad ? tensor_grad(tape, w) : NULL,
                     node->output->grad, x->data, w->data, saved->rstd, T, C);
}

Tensor *op_rmsnorm(Tape *tape, Tensor *x, Tensor *w, float eps) {
    int C = x->shape[x->ndim - 1], T = (int)(x->size / (size_t)C);
    Tensor *out = tensor_new(tape, x->ndim, x->shape);
    float *rstd = arena_alloc(&tape->arena, sizeof(float) * (size_t)T);
    rmsnorm_forward(out->data, rstd, x->data, w->data, T, C, eps);
    TapeNode *node = tape_record(tape, "rmsnorm", rmsnorm_node_backward, out, 2, (Tensor *[]){x, w});
    if (node) {
        RmsnormSaved *saved = arena_alloc(&tape->arena, sizeof *saved);
        saved->rstd = rstd;
        node->saved = saved;
    }
    return out;
}
