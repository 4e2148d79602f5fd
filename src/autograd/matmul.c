// matmul: the Linear layer without bias, out = x @ w^T, on OpenBLAS or oneDNN.
// Which library runs sgemm is chosen once per process (bench/bench_train.c measures
// both); everything else in the engine calls sgemm() and does not care.
#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>

#include "autograd/ops.h"
#include "core/error.h"  // defines: xcalloc

static MatmulBackend matmul_backend = MATMUL_ONEDNN;

void matmul_set_backend(MatmulBackend backend) { matmul_backend = backend; }
MatmulBackend matmul_get_backend(void) { return matmul_backend; }
const char *matmul_backend_name(MatmulBackend backend) {
    return backend == MATMUL_ONEDNN ? "onednn" : "openblas";
}

// The tile of C (rows and columns) for a product of this shape: the largest of 512, 256,
// 128 and 64 that gives at least SGEMM_MIN_TILES tiles (else 64). From the shape alone,
// so a product is cut the same way at any thread count.
enum { SGEMM_MIN_TILES = 48 };

static int sgemm_tile(int M, int N) {
    for (int t = 512; t > 64; t /= 2)
        if ((long)((M + t - 1) / t) * ((N + t - 1) / t) >= SGEMM_MIN_TILES) return t;
    return 64;
}

// Whether sgemm cuts a product into tiles: a large C (the LM head's forward and weight
// gradient at mamba-130m's shapes, 39-51 M elements), at every thread count. Measured on
// 16 cores (README "Threads"): tiles took the head's forward from 68 to 46 ms and its
// weight gradient from 72 to 60 ms; the layers' products (C of 0.1-3 M) were as fast or
// faster in oneDNN's own threading. On one thread the tiles cost the head's products
// 2-15% (about 3% of a step), which buys the same bits at any thread count: a tile does
// not round as the whole product does (oneDNN blocks the inner dimension by the call's
// shape: for the head's weight gradient 32 M of 39 M elements differ), while oneDNN's
// threading of one product cuts only C and gives its one-thread bits (tests/test_matmul.c).
enum { SGEMM_TILES_FROM = 1 << 22 };

static bool sgemm_tiles_pay(int M, int N) { return (long)M * N >= SGEMM_TILES_FROM; }

// oneDNN's sgemm cut into tiles of C that the threads take in turn, each tile one
// single-threaded dnnl_sgemm (oneDNN runs sequentially inside a parallel region): its own
// threading of one product reached 1.08 TFLOP/s on 16 cores where 16 processes of one
// thread summed 1.92 (bench/scaling_ceiling.sh). The cut and each tile's shape depend on
// the shape alone, so C has the same bits at any thread count (inside a parallel region
// the loop runs on the calling thread).
static void sgemm_tiled(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
    const int tile = sgemm_tile(M, N), tiles_m = (M + tile - 1) / tile, tiles_n = (N + tile - 1) / tile;
#pragma omp parallel for schedule(dynamic)
    for (int q = 0; q < tiles_m * tiles_n; q++) {
        const int i0 = q / tiles_n * tile, j0 = q % tiles_n * tile;
        const int m = M - i0 < tile ? M - i0 : tile, n = N - j0 < tile ? N - j0 : tile;
        // Row i0 of op(A) and column j0 of op(B), row-major.
        const float *a = trans_a ? A + i0 : A + (size_t)i0 * lda;
        const float *b = trans_b ? B + (size_t)j0 * ldb : B + j0;
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, K, alpha, a, lda, b, ldb, beta,
                   C + (size_t)i0 * ldc + j0, ldc);
    }
}

void sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    if (matmul_backend == MATMUL_ONEDNN) {
        if (sgemm_tiles_pay(M, N))
            sgemm_tiled(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        else
            dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    } else {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                    M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

void matmul_warm_up(void) {
    enum { SIDE = 64 };  // smaller products (4 x 4 x 4) take another path and leave the cost
    float *a = xcalloc(3 * SIDE * SIDE, sizeof(float));
    sgemm(0, 1, SIDE, SIDE, SIDE, 1.0f, a, SIDE, a + SIDE * SIDE, SIDE, 0.0f, a + 2 * SIDE * SIDE, SIDE);
    free(a);
}

// out (T, N) = x (T, K) @ w (N, K)^T
void matmul_forward(float *out, const float *x, const float *w, int T, int K, int N) {
    sgemm(0, 1, T, N, K, 1.0f, x, K, w, K, 0.0f, out, N);
}

// dx (T, K) += dout (T, N) @ w (N, K);  dw (N, K) += dout^T (N, T) @ x (T, K)
void matmul_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, int T, int K, int N) {
    if (dx) sgemm(0, 0, T, K, N, 1.0f, dout, N, w, K, 1.0f, dx, K);
    if (dw) sgemm(1, 0, N, K, T, 1.0f, dout, N, x, K, 1.0f, dw, K);
}

// ---- the layers' weight gradients, deferred to the end of the backward ----
//
// A weight gradient is off the backward's critical path: nothing reads a parameter's
// gradient before the walk ends. On 4 threads or more the walk queues the weight
// gradients of the layers (dw below SGEMM_TILES_FROM elements) and runs them at its end,
// each whole as one single-threaded sgemm, the largest first, all in one parallel region
// (docs/DESIGN.md#deferred-weight-gradients): 24 layers x 4 products keep 16 cores busy,
// where one product at a time under oneDNN's own threading reached 1.0-1.2 TFLOP/s (README
// "Threads"). A whole product has the same bits on one thread as under oneDNN's threading,
// so deferring changes no bit. Not in a recomputed block's walk (op_recompute): its four
// products would leave most threads idle; oneDNN threads each of them instead.
typedef struct WeightGrad {
    const float *dout, *x;
    float *dw;
    int T, K, N;
} WeightGrad;

static bool weight_grad_defers(const Tape *tape, const Tensor *w, int K, int N) {
    return w->parameter && !tape->recompute_scratch && matmul_backend == MATMUL_ONEDNN && !omp_in_parallel() &&
           omp_get_max_threads() >= 4 && (long)N * K < SGEMM_TILES_FROM;
}

// Inside the parallel region oneDNN runs the product on this thread alone.
static void weight_grad_deferred(const void *args) {
    const WeightGrad *g = args;
    dnnl_sgemm('T', 'N', g->N, g->K, g->T, 1.0f, g->dout, g->N, g->x, g->K, 1.0f, g->dw, g->K);
}

// ---- an input gradient with a long inner dimension, summed over slices of it ----
//
// The LM head's input gradient, dx (T, K) += dout (T, N) w (N, K), has a small C (T x
// d_model, 0.8 M at 130m's shapes) and the whole vocabulary as its inner dimension, and
// oneDNN's threading of it reached 1.1 TFLOP/s on 16 cores (README "Threads"). It is cut
// instead into slices of the inner dimension, each slice one single-threaded product into
// its own buffer, the threads taking slices in turn, and the slices' products added in
// order. The slices depend on the shape alone, so dx has the same bits at any thread
// count. Not for C of 2^22 elements or more (sgemm's tiles serve those).
enum { INNER_SLICE_MIN = 3200, INNER_SLICES_MAX = 32 };

static bool input_grad_slices_pay(int T, int K, int N) {
    return matmul_backend == MATMUL_ONEDNN && N >= 4 * INNER_SLICE_MIN && (long)T * K < SGEMM_TILES_FROM;
}

static void input_grad_sliced(Tape *tape, float *dx, const float *dout, const float *w, int T, int K, int N) {
    int slice = (N + INNER_SLICES_MAX - 1) / INNER_SLICES_MAX;
    if (slice < INNER_SLICE_MIN) slice = INNER_SLICE_MIN;
    const int n_slices = (N + slice - 1) / slice;
    const size_t c = (size_t)T * K;
    float *parts = arena_alloc(&tape->arena, sizeof(float) * c * (size_t)n_slices);
#pragma omp parallel
    {
#pragma omp for schedule(dynamic, 1)
        for (int q = 0; q < n_slices; q++) {
            const int n0 = q * slice, n = N - n0 < slice ? N - n0 : slice;
            dnnl_sgemm('N', 'N', T, K, n, 1.0f, dout + n0, N, w + (size_t)n0 * K, K, 0.0f, parts + c * (size_t)q, K);
        }
#pragma omp for simd schedule(static)
        for (size_t i = 0; i < c; i++) {
            float sum = parts[i];
            for (int q = 1; q < n_slices; q++) sum += parts[c * (size_t)q + i];
            dx[i] += sum;
        }
    }
}

static void matmul_node_backward(Tape *tape, TapeNode *node) {
    Tensor *x = node->inputs[0], *w = node->inputs[1], *out = node->output;
    int T = x->shape[0], K = x->shape[1], N = out->shape[1];
    float *dw = w->requires_grad ? tensor_grad(tape, w) : NULL;
    if (dw && T > 0 && weight_grad_defers(tape, w, K, N)) {
        WeightGrad *g = arena_alloc(&tape->arena, sizeof *g);
        *g = (WeightGrad){out->grad, x->data, dw, T, K, N};
        tape_defer(tape, node->name, weight_grad_deferred, g, (double)T * K * N);
        dw = NULL;
    }
    float *dx = x->requires_grad ? tensor_grad(tape, x) : NULL;
    if (dx && T > 0 && input_grad_slices_pay(T, K, N)) {
        input_grad_sliced(tape, dx, out->grad, w->data, T, K, N);
        dx = NULL;
    }
    matmul_backward(dx, dw, out->grad, x->data, w->data, T, K, N);
}

Tensor *op_matmul(Tape *tape, Tensor *x, Tensor *w) {
    // w may be stored with extra unit dims, e.g. a conv weight (D, 1, K): use its element count.
    int T = x->shape[0], K = x->shape[x->ndim - 1];
    int N = (int)(w->size / (size_t)K);
    Tensor *out = tensor_new_2d(tape, T, N);
    matmul_forward(out->data, x->data, w->data, T, K, N);
    tape_record(tape, "matmul", matmul_node_backward, out, 2, (Tensor *[]){x, w});
    return out;
}
