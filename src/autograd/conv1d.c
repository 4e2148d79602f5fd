// Causal depthwise conv1d with bias, over each of B sequences of length L.
// Work is split over blocks of channels: every output and every weight gradient is then
// computed by one thread in a fixed order, whatever the number of threads.
#include "autograd/ops.h"

#define CONV_CHANNEL_BLOCK 64

// out, x: (B*L, C); w: (C, K); bias: (C).
// out[b,t,c] = bias[c] + sum_k w[c,k] * x[b, t-K+1+k, c]   (x = 0 before t = 0)
void conv1d_causal_forward(float *out, const float *x, const float *w, const float *bias, int B, int L, int C, int K) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int c0 = 0; c0 < C; c0 += CONV_CHANNEL_BLOCK) {
            int c1 = c0 + CONV_CHANNEL_BLOCK < C ? c0 + CONV_CHANNEL_BLOCK : C;
            for (int t = 0; t < L; t++) {
                float *ot = out + ((long)b * L + t) * C;
                for (int c = c0; c < c1; c++) ot[c] = bias ? bias[c] : 0.0f;
                for (int k = 0; k < K; k++) {
                    int src = t - K + 1 + k;
                    if (src < 0) continue;
                    const float *xs = x + ((long)b * L + src) * C;
                    for (int c = c0; c < c1; c++) ot[c] += w[c * K + k] * xs[c];
                }
            }
        }
    }
}

void conv1d_causal_backward(float *dx, float *dw, float *dbias, const float *dout, const float *x, const float *w,
                            int B, int L, int C, int K) {
    // dx[b, s, c] += sum_k w[c,k] * dout[b, s+K-1-k, c]
    if (dx) {
#pragma omp parallel for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int c0 = 0; c0 < C; c0 += CONV_CHANNEL_BLOCK) {
                int c1 = c0 + CONV_CHANNEL_BLOCK < C ? c0 + CONV_CHANNEL_BLOCK : C;
                for (int t = 0; t < L; t++) {
                    const float *gt = dout + ((long)b * L + t) * C;
                    for (int k = 0; k < K; k++) {
                        int src = t - K + 1 + k;
                        if (src < 0) continue;
                        float *dxs = dx + ((long)b * L + src) * C;
                        for (int c = c0; c < c1; c++) dxs[c] += w[c * K + k] * gt[c];
                    }
                }
            }
        }
    }
    // dw[c,k] += sum_{b,t} dout[b,t,c] x[b,t-K+1+k,c]; dbias[c] += sum_{b,t} dout[b,t,c]
    if (dw || dbias) {
#pragma omp parallel for schedule(static)
        for (int c0 = 0; c0 < C; c0 += CONV_CHANNEL_BLOCK) {
            int c1 = c0 + CONV_CHANNEL_BLOCK < C ? c0 + CONV_CHANNEL_BLOCK : C;
            for (int b = 0; b < B; b++) {
                for (int t = 0; t < L; t++) {
                    const float *gt = dout + ((long)b * L + t) * C;
                    if (dbias)
                        for (int c = c0; c < c1; c++) dbias[c] += gt[c];
                    if (!dw) continue;
                    for (int k = 0; k < K; k++) {
                        int src = t - K + 1 + k;
                        if (src < 0) continue;
                        const float *xs = x + ((long)b * L + src) * C;
                        for (int c = c0; c < c1; c++) dw[c * K + k] += gt[c] * xs[c];
                    }
                }
            }
        }
    }
}

typedef struct ConvSaved {
    int B, L;
} ConvSaved;

static void conv1d_node_backward(Tape *tape, TapeNode *node) {
    Tensor *x = node->inputs[0], *w = node->inputs[1];
    Tensor *bias = node->n_inputs > 2 ? node->inputs[2] : NULL;
    ConvSaved *saved = node->saved;
    int C = x->shape[1], K = (int)(w->size / (size_t)C);
    conv1d_causal_backward(x->requires_grad ? tensor_grad(tape, x) : NULL,
                           w->requires_grad ? tensor_grad(tape, w) : NULL,
                           bias && bias->requires_grad ? tensor_grad(tape, bias) : NULL, node->output->grad, x->data,
                           w->data, saved->B, saved->L, C, K);
}

// x (B*L, C); w (C, K) or (C, 1, K); bias (C) or NULL.
Tensor *op_conv1d_causal(Tape *tape, Tensor *x, Tensor *w, Tensor *bias, int B, int L) {
    int C = x->shape[1], K = (int)(w->size / (size_t)C);
    Tensor *out = tensor_new_2d(tape, B * L, C);
    conv1d_causal_forward(out->data, x->data, w->data, bias ? bias->data : NULL, B, L, C, K);
    TapeNode *node = tape_record(tape, "conv1d", conv1d_node_backward, out, bias ? 3 : 2, (Tensor *[]){x, w, bias});
    if (node) {
        ConvSaved *saved = arena_alloc(&tape->arena, sizeof *saved);
        *saved = (ConvSaved){B, L};
        node->saved = saved;
    }
    return out;
}
