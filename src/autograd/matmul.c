// matmul: the Linear layer without bias, out = x @ w^T, on OpenBLAS or oneDNN.
// Which library runs sgemm is chosen once per process (bench/bench_train.c measures
// both); everything else in the engine calls sgemm() and does not care.
#include <cblas.h>
#include <dnnl.h>

#include "autograd/ops.h"

static MatmulBackend matmul_backend = MATMUL_ONEDNN;

void matmul_set_backend(MatmulBackend backend) { matmul_backend = backend; }
MatmulBackend matmul_get_backend(void) { return matmul_backend; }
const char *matmul_backend_name(MatmulBackend backend) {
    return backend == MATMUL_ONEDNN ? "onednn" : "openblas";
}

void sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    if (matmul_backend == MATMUL_ONEDNN) {
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    } else {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                    M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
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

static void matmul_node_backward(Tape *tape, TapeNode *node) {
    Tensor *x = node->inputs[0], *w = node->inputs[1], *out = node->output;
    int T = x->shape[0], K = x->shape[1], N = out->shape[1];
    matmul_backward(x->requires_grad ? tensor_grad(tape, x) : NULL, w->requires_grad ? tensor_grad(tape, w) : NULL,
                    out->grad, x->data, w->data, T, K, N);
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
