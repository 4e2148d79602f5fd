// Causal depthwise conv1d with bias, over each of B sequences of length L.
// Work is split over blocks of channels: every output and every weight gradient is then
// computed by one thread in a fixed order, whatever the number of threads.
// The input may be a block of columns of a wider activation (x's rows ldx floats apart):
// the block reads its x straight from in_proj's output, with no copy of it.
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "core/error.h"

#define CONV_CHANNEL_BLOCK 64

// The weight transposed to (K, C), so that the loops over channels read it contiguously
// and vectorize. The caller frees it.
static float *transpose_weight(const float *w, int C, int K) {
    float *wt = xmalloc(sizeof(float) * (size_t)C * (size_t)K);
    for (int c = 0; c < C; c++)
        for (int k = 0; k < K; k++) wt[(long)k * C + c] = w[(long)c * K + k];
    return wt;
}

// out: (B*L, C); x: B*L rows of C floats, ldx apart; w: (C, K); bias: (C).
// out[b,t,c] = bias[c] + sum_k w[c,k] * x[b, t-K+1+k, c]   (x = 0 before t = 0)
void conv1d_causal_forward(float *out, const float *x, int ldx, const float *w, const float *bias, int B, int L,
                           int C, int K) {
    float *wt = transpose_weight(w, C, K);
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
                    const float *xs = x + ((long)b * L + src) * ldx, *wk = wt + (long)k * C;
                    for (int c = c0; c < c1; c++) ot[c] += wk[c] * xs[c];
                }
            }
        }
    }
    free(wt);
}

void conv1d_causal_backward(float *dx, float *dw, float *dbias, const float *dout, const float *x, int ldx,
                            const float *w, int B, int L, int C, int K) {
    float *wt = transpose_weight(w, C, K);
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
                        float *dxs = dx + ((long)b * L + src) * ldx;
                        const float *wk = wt + (long)k * C;
                        for (int c = c0; c < c1; c++) dxs[c] += wk[c] * gt[c];
                    }
                }
            }
        }
    }
    // dw[c,k] += sum_{b,t} dout[b,t,c] x[b,t-K+1+k,c]; dbias[c] += sum_{b,t} dout[b,t,c].
    // Accumulated per channel block in a (K+1, block) buffer, then added to dw and dbias.
    if (dw || dbias) {
#pragma omp parallel for schedule(static)
        for (int c0 = 0; c0 < C; c0 += CONV_CHANNEL_BLOCK) {
            int c1 = c0 + CONV_CHANNEL_BLOCK < C ? c0 + CONV_CHANNEL_BLOCK : C, width = c1 - c0;
            float acc[(K + 1) * CONV_CHANNEL_BLOCK];
            memset(acc, 0, sizeof(float) * (size_t)(K + 1) * CONV_CHANNEL_BLOCK);
            float *acc_bias = acc + (long)K * CONV_CHANNEL_BLOCK;
            for (int b = 0; b < B; b++) {
                for (int t = 0; t < L; t++) {
                    const float *gt = dout + ((long)b * L + t) * C + c0;
                    for (int c = 0; c < width; c++) acc_bias[c] += gt[c];
                    for (int k = 0; k < K; k++) {
                        int src = t - K + 1 + k;
                        if (src < 0) continue;
                        const float *xs = x + ((long)b * L + src) * ldx + c0;
                        float *ak = acc + (long)k * CONV_CHANNEL_BLOCK;
                        for (int c = 0; c < width; c++) ak[c] += gt[c] * xs[c];
                    }
                }
            }
            for (int c = 0; c < width; c++) {
                if (dbias) dbias[c0 + c] += acc_bias[c];
                if (dw)
                    for (int k = 0; k < K; k++) dw[(long)(c0 + c) * K + k] += acc[(long)k * CONV_CHANNEL_BLOCK + c];
            }
        }
    }
    free(wt);
}

typedef struct ConvSaved {
    int B, L, start;
} ConvSaved;

static void conv1d_node_backward(Tape *tape, TapeNode *node) {
    Tensor *x = node->inputs[0], *w = node->inputs[1];
    Tensor *bias = node->n_inputs > 2 ? node->inputs[2] : NULL;
    ConvSaved *saved = node->saved;
    int ldx = x->shape[1], C = node->output->shape[1], K = (int)(w->size / (size_t)C);
    conv1d_causal_backward(x->requires_grad ? tensor_grad(tape, x) + saved->start : NULL,
                           w->requires_grad ? tensor_grad(tape, w) : NULL,
                           bias && bias->requires_grad ? tensor_grad(tape, bias) : NULL, node->output->grad,
                           x->data + saved->start, ldx, w->data, saved->B, saved->L, C, K);
}

// x (B*L, ldx), its columns [start, start + C) the input; w (C, K) or (C, 1, K); bias (C) or NULL.
Tensor *op_conv1d_causal_cols(Tape *tape, Tensor *x, int start, Tensor *w, Tensor *bias, int B, int L) {
    int ldx = x->shape[1], C = w->shape[0], K = (int)(w->size / (size_t)C);
    assert(start >= 0 && start + C <= ldx);
    Tensor *out = tensor_new_2d(tape, B * L, C);
    conv1d_causal_forward(out->data, x->data + start, ldx, w->data, bias ? bias->data : NULL, B, L, C, K);
    TapeNode *node = tape_record(tape, "conv1d", conv1d_node_backward, out, bias ? 3 : 2, (Tensor *[]){x, w, bias});
    if (node) {
        ConvSaved *saved = arena_alloc(&tape->arena, sizeof *saved);
        *saved = (ConvSaved){B, L, start};
        node->saved = saved;
    }
    return out;
}

Tensor *op_conv1d_causal(Tape *tape, Tensor *x, Tensor *w, Tensor *bias, int B, int L) {
    return op_conv1d_causal_cols(tape, x, 0, w, bias, B, L);
}
