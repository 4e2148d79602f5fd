// Tests of sgemm (autograd/matmul.c): against a plain double-precision product for every
// transpose pair, beta 0 and 1, leading dimensions wider than the matrix, at 1 and 4-6
// threads, on both libraries; shapes small and large, the large ones (C of at least 2^22
// elements) taking oneDNN's tiled path, cut with ragged edges; and with oneDNN the same
// bits of C at 1, 4, 5 and 6 threads. The matmul op's backward on a tape, whose weight
// gradient is deferred to the walk's end on 4 threads or more, and whose input gradient
// with a long inner dimension is summed over slices of it: the same bits at every thread
// count.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"    // defines: sgemm, matmul_set_backend, op_matmul
#include "core/rng.h"        // defines: rng_seed, rng_uniform

#include "check.h"

typedef struct Case {
    int M, N, K;
} Case;

// C = alpha op(A) op(B) + beta C in double, row-major; scale gets each element's sum of
// the magnitudes of its terms (what rounding errors are relative to, even where C cancels).
static void reference(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      int ldb, float beta, const float *C0, float *C, double *scale, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0, s_abs = 0.0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
                s_abs += fabs(a * b);
            }
            C[(size_t)i * ldc + j] = (float)(alpha * s + beta * C0[(size_t)i * ldc + j]);
            scale[(size_t)i * ldc + j] = fabs(alpha) * s_abs + fabs(beta * C0[(size_t)i * ldc + j]);
        }
}

static void fill(float *x, size_t n, Rng *rng) {
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * rng_uniform(rng) - 1.0f;
}

// The matmul op's backward on a tape: a parameter's weight gradient, which on 4 threads
// or more is deferred to the end of the walk and run as 256 x 768 tiles (ragged here: 300
// x 800 is 2 x 2 tiles), and the input gradient, against the double product, added to
// what the gradients held before; and the same bits of both at 4, 5 and 6 threads. An
// activation as the weight (not a parameter) takes the immediate path at any count.
// The matmul op's backward on a tape at 1, 4, 5 and 6 threads: the same bits of dw and dx,
// and (if against_double; the products of the largest shape take too long in double)
// both within 1e-5 of a double-precision product.
static void test_op_backward(Rng *rng, int T, int K, int N, bool against_double) {
    const int threads[] = {1, 4, 5, 6};
    float *x0 = malloc(sizeof(float) * T * K), *w0 = malloc(sizeof(float) * N * K);
    float *dout = malloc(sizeof(float) * T * N), *dw0 = malloc(sizeof(float) * N * K);
    float *dw_want = malloc(sizeof(float) * N * K), *dx_want = malloc(sizeof(float) * T * K);
    double *dw_scale = malloc(sizeof(double) * N * K), *dx_scale = malloc(sizeof(double) * T * K);
    float *zeros = calloc((size_t)T * K, sizeof(float));
    fill(x0, (size_t)T * K, rng), fill(w0, (size_t)N * K, rng), fill(dout, (size_t)T * N, rng);
    fill(dw0, (size_t)N * K, rng);
    if (against_double) {
        reference(1, 0, N, K, T, 1.0f, dout, N, x0, K, 1.0f, dw0, dw_want, dw_scale, K);
        reference(0, 0, T, K, N, 1.0f, dout, N, w0, K, 0.0f, zeros, dx_want, dx_scale, K);
    }
    for (int as_parameter = 1; as_parameter >= 0; as_parameter--) {
        float *dw_got[4], *dx_got[4];
        for (int t = 0; t < 4; t++) {
            omp_set_num_threads(threads[t]);
            Tape tape;
            tape_init(&tape, 1 << 20);
            Tensor w;
            const int w_shape[2] = {N, K};
            tensor_init_param(&w, 2, w_shape);
            w.parameter = as_parameter;
            memcpy(w.data, w0, sizeof(float) * N * K);
            memcpy(w.grad, dw0, sizeof(float) * N * K);
            Tensor *x = tensor_new_2d(&tape, T, K);
            memcpy(x->data, x0, sizeof(float) * T * K);
            x->requires_grad = true;
            Tensor *out = op_matmul(&tape, x, &w);
            tape_backward_from(&tape, out, dout);
            dw_got[t] = malloc(sizeof(float) * N * K), dx_got[t] = malloc(sizeof(float) * T * K);
            memcpy(dw_got[t], w.grad, sizeof(float) * N * K);
            memcpy(dx_got[t], x->grad, sizeof(float) * T * K);
            tape_reset(&tape);
            tape_free(&tape);
            tensor_free_param(&w);
            if (!against_double) continue;
            double worst_w = 0.0, worst_x = 0.0;
            for (int i = 0; i < N * K; i++) {
                double e = fabs((double)dw_got[t][i] - dw_want[i]) / (dw_scale[i] + 1e-30);
                if (e > worst_w) worst_w = e;
            }
            for (int i = 0; i < T * K; i++) {
                double e = fabs((double)dx_got[t][i] - dx_want[i]) / (dx_scale[i] + 1e-30);
                if (e > worst_x) worst_x = e;
            }
            check(worst_w < 1e-5 && worst_x < 1e-5,
                  "matmul op backward (T %d, K %d, N %d), weight a %s, %d threads: dw (accumulated) and dx against "
                  "double, worst %.2g and %.2g of the terms' magnitude",
                  T, K, N, as_parameter ? "parameter" : "plain tensor", threads[t], worst_w, worst_x);
        }
        bool same = true;
        for (int t = 1; t < 4; t++)
            same = same && memcmp(dw_got[0], dw_got[t], sizeof(float) * N * K) == 0 &&
                   memcmp(dx_got[0], dx_got[t], sizeof(float) * T * K) == 0;
        check(same, "matmul op backward (T %d, K %d, N %d), weight a %s: dw and dx have the same bits at 1, 4, 5, 6 "
              "threads", T, K, N, as_parameter ? "parameter" : "plain tensor");
        for (int t = 0; t < 4; t++) free(dw_got[t]), free(dx_got[t]);
    }
    omp_set_num_threads(2);
    free(x0), free(w0), free(dout), free(dw0), free(dw_want), free(dx_want), free(dw_scale), free(dx_scale);
    free(zeros);
}

int main(void) {
    // Small (oneDNN's own threading) and large: 512-tiles with ragged edges (1030 x 4100).
    const Case cases[] = {{5, 7, 3}, {130, 75, 33}, {1030, 4100, 5}};
    const int threads[] = {1, 4, 5, 6};
    Rng rng;
    rng_seed(&rng, 11);
    for (int backend = 0; backend < 2; backend++) {
        matmul_set_backend(backend == 0 ? MATMUL_ONEDNN : MATMUL_OPENBLAS);
        const char *name = matmul_backend_name(backend == 0 ? MATMUL_ONEDNN : MATMUL_OPENBLAS);
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            const int M = cases[c].M, N = cases[c].N, K = cases[c].K, pad = 3;
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++)
                    for (int beta_one = 0; beta_one < 2; beta_one++) {
                        const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
                        const size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
                        const size_t nc = (size_t)M * ldc;
                        float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
                        float *C0 = malloc(sizeof(float) * nc), *want = malloc(sizeof(float) * nc);
                        double *scale = malloc(sizeof(double) * nc);
                        float *got[4];
                        fill(A, na, &rng), fill(B, nb, &rng), fill(C0, nc, &rng);
                        const float alpha = 0.75f, beta = beta_one ? 1.0f : 0.0f;
                        reference(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, want, scale, ldc);
                        for (int t = 0; t < 4; t++) {
                            got[t] = malloc(sizeof(float) * nc);
                            memcpy(got[t], C0, sizeof(float) * nc);
                            omp_set_num_threads(threads[t]);
                            sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, got[t], ldc);
                        }
                        omp_set_num_threads(2);
                        double worst = 0.0, worst_threads = 0.0;
                        int pad_kept = 1, same_bits = 1;
                        for (int i = 0; i < M; i++)
                            for (int j = 0; j < ldc; j++) {
                                const size_t at = (size_t)i * ldc + j;
                                if (j >= N) {
                                    pad_kept &= got[0][at] == C0[at];  // columns past N untouched
                                    continue;
                                }
                                for (int t = 0; t < 4; t++) {
                                    double e = fabs((double)got[t][at] - want[at]) / (1e-30 + scale[at]);
                                    if (t == 0) worst = e > worst ? e : worst;
                                    else worst_threads = e > worst_threads ? e : worst_threads;
                                }
                                for (int t = 1; t < 4; t++) same_bits &= memcmp(&got[0][at], &got[t][at], 4) == 0;
                            }
                        check(worst < 1e-5 && worst_threads < 1e-5 && pad_kept,
                              "%s sgemm %c%c M %d N %d K %d beta %g: max err %.2e (1 thread), %.2e (4-6) of the "
                              "terms' magnitude%s",
                              name, ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, beta, worst, worst_threads,
                              pad_kept ? "" : ", wrote past column N");
                        if (backend == 0)  // oneDNN: tiles from 2^22 elements of C, else its own threading
                            check(same_bits, "%s sgemm %c%c M %d N %d K %d beta %g: same bits at 1, 4, 5, 6 threads",
                                  name, ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, beta);
                        for (int t = 0; t < 4; t++) free(got[t]);
                        free(A), free(B), free(C0), free(want), free(scale);
                    }
        }
    }
    matmul_set_backend(MATMUL_ONEDNN);
    test_op_backward(&rng, 37, 800, 300, true);    // a layer's dw: deferred on 4+ threads, whole
    test_op_backward(&rng, 40, 1024, 4100, true);  // the head's dw (at least 2^22): tiles at every thread count
    // A layer's dw whose rows in tiles of 256 would round differently here (oneDNN blocks
    // the inner dimension by the call's shape): deferred, it must stay one whole product.
    test_op_backward(&rng, 1024, 768, 1536, false);
    // The head's dx: an inner dimension of 13000 (the vocabulary) in 5 slices, the last ragged.
    test_op_backward(&rng, 64, 96, 13000, true);
    return check_summary("test_matmul");
}
