// Per-window normalisation of a forecaster's input series and its inverse on the forecast
// (docs/DESIGN.md#forecasting): RevIN (Kim et al., ICLR 2022) and NLinear's subtraction of
// the last value. The statistics come from the input values, which are data (constants):
// only the optional per-feature affine and the forecast carry gradients.
#include <math.h>
#include <string.h>

#include "autograd/ops.h"

void window_norm_stats(const float *values, int B, int L, int F, bool last, float eps, float *shift, float *scale) {
    for (int b = 0; b < B; b++) {
        const float *v = values + (size_t)b * L * F;
        for (int f = 0; f < F; f++) {
            if (last) {
                shift[b * F + f] = v[(size_t)(L - 1) * F + f];
                scale[b * F + f] = 1.0f;
                continue;
            }
            double sum = 0.0, squares = 0.0;
            for (int t = 0; t < L; t++) sum += v[(size_t)t * F + f];
            double mean = sum / L;
            for (int t = 0; t < L; t++) {
                double e = v[(size_t)t * F + f] - mean;
                squares += e * e;
            }
            shift[b * F + f] = (float)mean;
            scale[b * F + f] = (float)sqrt(squares / L + eps);  // the biased variance, as RevIN
        }
    }
}

typedef struct WindowNormSaved {
    const float *shift, *scale;  // (B*F), the caller's: they live until the backward
    const float *normed;         // norm: (B*L, F) the normalised values before the affine
    int B, L, F;                 // L: time steps of each row block (input length or horizon)
    float eps;                   // denorm: the weight's guard
} WindowNormSaved;

// out = z * w + b with z = (v - shift) / scale constant: dw[f] += sum g z, db[f] += sum g.
static void window_norm_backward(Tape *tape, TapeNode *node) {
    const WindowNormSaved *s = node->saved;
    Tensor *w = node->inputs[0], *bias = node->inputs[1];
    const float *g = node->output->grad, *normed = s->normed;
    float *dw = w->requires_grad ? tensor_grad(tape, w) : NULL;
    float *db = bias->requires_grad ? tensor_grad(tape, bias) : NULL;
    size_t T = (size_t)s->B * s->L;
    for (size_t t = 0; t < T; t++)
        for (int f = 0; f < s->F; f++) {
            size_t i = t * s->F + f;
            if (dw) dw[f] += g[i] * normed[i];
            if (db) db[f] += g[i];
        }
}

Tensor *op_window_norm(Tape *tape, const float *values, const float *shift, const float *scale, Tensor *weight,
                       Tensor *bias, int B, int L, int F) {
    Tensor *out = tensor_new_2d(tape, B * L, F);  // (B*L, F)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < L; t++)
            for (int f = 0; f < F; f++) {
                size_t i = ((size_t)b * L + t) * F + f;
                out->data[i] = (values[i] - shift[b * F + f]) / scale[b * F + f];
            }
    if (!weight) return out;  // no affine: a constant, as the values
    TapeNode *node = tape_record(tape, "window_norm", window_norm_backward, out, 2, (Tensor *[]){weight, bias});
    if (node) {
        WindowNormSaved *s = arena_alloc(&tape->arena, sizeof *s);
        float *normed = arena_alloc(&tape->arena, sizeof(float) * out->size);
        memcpy(normed, out->data, sizeof(float) * out->size);
        *s = (WindowNormSaved){shift, scale, normed, B, L, F, 0.0f};
        node->saved = s;
    }
    for (size_t i = 0; i < out->size; i++) {
        int f = (int)(i % (size_t)F);
        out->data[i] = out->data[i] * weight->data[f] + bias->data[f];
    }
    return out;
}

// out = (p - b) / (w + eps) * scale + shift, per row block b and feature f:
// dp = g scale / (w + eps); db[f] -= sum g scale / (w + eps); dw[f] -= sum g scale (p - b) / (w + eps)^2.
static void window_denorm_backward(Tape *tape, TapeNode *node) {
    const WindowNormSaved *s = node->saved;
    Tensor *pred = node->inputs[0], *w = node->n_inputs > 1 ? node->inputs[1] : NULL,
           *bias = node->n_inputs > 1 ? node->inputs[2] : NULL;
    const float *g = node->output->grad;
    float *dp = pred->requires_grad ? tensor_grad(tape, pred) : NULL;
    float *dw = w && w->requires_grad ? tensor_grad(tape, w) : NULL;
    float *db = bias && bias->requires_grad ? tensor_grad(tape, bias) : NULL;
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->L; h++)
            for (int f = 0; f < s->F; f++) {
                size_t i = ((size_t)b * s->L + h) * s->F + f;
                float denom = w ? w->data[f] + s->eps : 1.0f, gs = g[i] * s->scale[b * s->F + f] / denom;
                if (dp) dp[i] += gs;
                if (db) db[f] -= gs;
                if (dw) dw[f] -= gs * (pred->data[i] - bias->data[f]) / denom;
            }
}

Tensor *op_window_denorm(Tape *tape, Tensor *pred, const float *shift, const float *scale, Tensor *weight,
                         Tensor *bias, int B, int H, int F, float eps) {
    Tensor *out = tensor_new_2d(tape, B, H * F);  // (B, H*F)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int f = 0; f < F; f++) {
                size_t i = ((size_t)b * H + h) * F + f;
                float p = weight ? (pred->data[i] - bias->data[f]) / (weight->data[f] + eps) : pred->data[i];
                out->data[i] = p * scale[b * F + f] + shift[b * F + f];
            }
    TapeNode *node = weight ? tape_record(tape, "window_denorm", window_denorm_backward, out, 3,
                                          (Tensor *[]){pred, weight, bias})
                            : tape_record(tape, "window_denorm", window_denorm_backward, out, 1, (Tensor *[]){pred});
    if (node) {
        WindowNormSaved *s = arena_alloc(&tape->arena, sizeof *s);
        *s = (WindowNormSaved){shift, scale, NULL, B, H, F, eps};
        node->saved = s;
    }
    return out;
}
