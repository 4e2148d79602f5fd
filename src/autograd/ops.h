// The differentiable ops. Each op_* computes its forward now and records its backward on
// the tape; the *_forward / *_backward functions beside them are the raw kernels, also
// used outside the tape (pruning statistics, inference). Shapes use T for the number of
// tokens (batch * seqlen), rows of a 2-d activation.
#ifndef MP_AUTOGRAD_OPS_H
#define MP_AUTOGRAD_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "autograd/tensor.h"

// ---- matmul: out (T, N) = x (T, K) @ w (N, K)^T, a Linear layer without bias ----
typedef enum MatmulBackend { MATMUL_OPENBLAS, MATMUL_ONEDNN } MatmulBackend;
// Chosen once at start-up; oneDNN (the faster here, bench/bench_train.c) unless told otherwise.
void matmul_set_backend(MatmulBackend backend);
MatmulBackend matmul_get_backend(void);
const char *matmul_backend_name(MatmulBackend backend);
// One small product (64 x 64 x 64), so that oneDNN generates its kernels before anything is
// timed: its first product in a process costs about 35 ms more (2 cores here), whatever
// the product's size.
void matmul_warm_up(void);
// C (M, N) = alpha * op(A) op(B) + beta * C, row-major, op = transpose when trans_* != 0.
void sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc);
void matmul_forward(float *out, const float *x, const float *w, int T, int K, int N);
void matmul_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, int T, int K, int N);
Tensor *op_matmul(Tape *tape, Tensor *x, Tensor *w);

// ---- recompute: out = fn(x), keeping only out on the tape (recompute.c) ----
// With tape->recompute set (a scratch tape) and the tape recording, fn runs without
// recording and runs again, recording on the scratch tape, in the backward; otherwise
// fn(tape, context, x) as is. fn must read no tensor with a gradient but x and parameters
// (which own their gradients), and context must live until the backward.
typedef Tensor *(*RecomputeFn)(Tape *tape, void *context, Tensor *x);
Tensor *op_recompute(Tape *tape, RecomputeFn fn, void *context, Tensor *x);

// ---- elementwise (same shapes) ----
Tensor *op_add(Tape *tape, Tensor *a, Tensor *b);
Tensor *op_mul(Tape *tape, Tensor *a, Tensor *b);
Tensor *op_silu(Tape *tape, Tensor *x);
// out (T, D) = y (T, D) * silu(x[:, start : start + D]) of x (T, C): the block's gate on the z
// half of in_proj's output, read in place; the same bits as op_mul(y, op_silu(z)) of a
// copy, with neither the copy nor silu(z) on the tape.
Tensor *op_silu_gate(Tape *tape, Tensor *y, Tensor *x, int start);
Tensor *op_softplus(Tape *tape, Tensor *x);
Tensor *op_exp(Tape *tape, Tensor *x);

// ---- rmsnorm: out (T, C) = x * rsqrt(mean(x^2) + eps) * w (C) ----
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int T, int C, float eps);
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                      const float *rstd, int T, int C);
Tensor *op_rmsnorm(Tape *tape, Tensor *x, Tensor *w, float eps);

// ---- embedding: out (T, C) = w[tokens[t]] with w (V, C) ----
Tensor *op_embedding(Tape *tape, Tensor *w, const int32_t *tokens, int T);

// ---- causal depthwise conv1d over each of B sequences of length L ----
// x (B*L, C), w (C, K), bias (C): out[t,c] = bias[c] + sum_k w[c,k] x[t-K+1+k, c],
// with zeros before each sequence's start.
// The kernels read (and dx adds into) rows ldx floats apart: x may be a block of columns.
void conv1d_causal_forward(float *out, const float *x, int ldx, const float *w, const float *bias, int B, int L,
                           int C, int K);
void conv1d_causal_backward(float *dx, float *dw, float *dbias, const float *dout, const float *x, int ldx,
                            const float *w, int B, int L, int C, int K);
Tensor *op_conv1d_causal(Tape *tape, Tensor *x, Tensor *w, Tensor *bias, int B, int L);
// The same on columns [start, start + C) of x (B*L, ldx), C = w's first dim; out (B*L, C).
// The block reads in_proj's x half so, without a copy (and its gradient goes straight into
// the columns of in_proj's output gradient).
Tensor *op_conv1d_causal_cols(Tape *tape, Tensor *x, int start, Tensor *w, Tensor *bias, int B, int L);

// ---- columns [start, start + width) of x (T, C), as a new contiguous tensor (split) ----
Tensor *op_slice_cols(Tape *tape, Tensor *x, int start, int width);

// ---- fused selective scan (selective_scan.h); x, dt (B*L, D), B_ssm, C_ssm (B*L, N) ----
Tensor *op_selective_scan(Tape *tape, Tensor *x, Tensor *dt, Tensor *dt_bias, Tensor *A_log, Tensor *B_ssm,
                          Tensor *C_ssm, Tensor *D_skip, int B, int L);

// ---- mean cross-entropy of logits (T, V) against targets; targets < 0 are ignored ----
// Returns a 1-element tensor; 0 when every target is ignored.
Tensor *op_cross_entropy(Tape *tape, Tensor *logits, const int32_t *targets, int T);

// ---- distillation (docs/DESIGN.md#distillation) ----
// temperature² · mean over the rows with target >= 0 (every row when targets is NULL) of
// KL(softmax(teacher / temperature) || softmax(logits / temperature)); teacher_logits (T, V)
// are constants. Returns a 1-element tensor; 0 when no row counts.
Tensor *op_kl_distill(Tape *tape, Tensor *logits, const float *teacher_logits, const int32_t *targets, int T,
                      float temperature);
// wa · a + wb · b of two 1-element tensors.
Tensor *op_mix_scalars(Tape *tape, Tensor *a, Tensor *b, float wa, float wb);

// ---- pooling of the positions of B sequences of length L (the classification head) ----
// x (B*L, C) -> out (B, C): row b is the mean of positions [0, ends[b]] of sequence b
// (mean), or position ends[b] alone (last); a row with ends[b] < 0 is zeros.
void pool_forward(float *out, const float *x, const int *ends, int B, int L, int C, bool mean);
Tensor *op_pool(Tape *tape, Tensor *x, const int *ends, int B, int L, bool mean);

// ---- out (T, C) = x (T, C) + bias (C) on every row ----
Tensor *op_add_bias(Tape *tape, Tensor *x, Tensor *bias);

// ---- mean squared error of pred (any shape) against target (pred->size floats) ----
// Returns a 1-element tensor: mean over every element of (pred - target)^2.
Tensor *op_mse(Tape *tape, Tensor *pred, const float *target);

// ---- per-window normalisation of a forecaster's series (window_norm.c) ----
// For each of B windows of values (B, L, F) and each feature f: shift = the mean over the
// L steps and scale = sqrt(their biased variance + eps) (RevIN), or (last) shift = the
// value at step L-1 and scale = 1 (NLinear). shift, scale: (B*F).
void window_norm_stats(const float *values, int B, int L, int F, bool last, float eps, float *shift, float *scale);
// out (B*L, F) = (values - shift) / scale, then * weight[f] + bias[f] when weight (F) and
// bias (F) are given (RevIN's affine; without them out is a constant). The values are data:
// no gradient flows to them or through the statistics.
Tensor *op_window_norm(Tape *tape, const float *values, const float *shift, const float *scale, Tensor *weight,
                       Tensor *bias, int B, int L, int F);
// The inverse on a forecast pred (B, H*F) laid out (B, H, F): out = ((pred - bias[f]) /
// (weight[f] + eps) when weight is given, else pred) * scale + shift. shift and scale must
// live until the backward.
Tensor *op_window_denorm(Tape *tape, Tensor *pred, const float *shift, const float *scale, Tensor *weight,
                         Tensor *bias, int B, int H, int F, float eps);

#endif
