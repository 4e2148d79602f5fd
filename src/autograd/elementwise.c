// Elementwise ops on tensors of one shape: add, mul, silu, softplus, exp.
// Each loop is independent per element, so OpenMP's static split cannot change results.
#include "autograd/ops.h"
#include "core/fastmath.h"

static Tensor *tensor_like(Tape *tape, const Tensor *t) { return tensor_new(tape, t->ndim, t->shape); }

// ---- add: out = a + b ----
static void add_backward(Tape *tape, TapeNode *node) {
    const float *dout = node->output->grad;
    long n = (long)node->output->size;
    for (int k = 0; k < 2; k++) {
        Tensor *in = node->inputs[k];
        if (!in->requires_grad) continue;
        float *d = tensor_grad(tape, in);
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++) d[i] += dout[i];
    }
}

Tensor *op_add(Tape *tape, Tensor *a, Tensor *b) {
    Tensor *out = tensor_like(tape, a);
    long n = (long)a->size;
    const float *pa = a->data, *pb = b->data;
    float *po = out->data;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) po[i] = pa[i] + pb[i];
    tape_record(tape, "add", add_backward, out, 2, (Tensor *[]){a, b});
    return out;
}

// ---- mul: out = a * b ----
static void mul_backward(Tape *tape, TapeNode *node) {
    Tensor *a = node->inputs[0], *b = node->inputs[1];
    const float *dout = node->output->grad;
    long n = (long)node->output->size;
    if (a->requires_grad) {
        float *da = tensor_grad(tape, a);
        const float *pb = b->data;
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++) da[i] += dout[i] * pb[i];
    }
    if (b->requires_grad) {
        float *db = tensor_grad(tape, b);
        const float *pa = a->data;
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++) db[i] += dout[i] * pa[i];
    }
}

Tensor *op_mul(Tape *tape, Tensor *a, Tensor *b) {
    Tensor *out = tensor_like(tape, a);
    long n = (long)a->size;
    const float *pa = a->data, *pb = b->data;
    float *po = out->data;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) po[i] = pa[i] * pb[i];
    tape_record(tape, "mul", mul_backward, out, 2, (Tensor *[]){a, b});
    return out;
}

// ---- silu: out = x * sigmoid(x);  d/dx = s * (1 + x (1 - s)) ----
static void silu_backward(Tape *tape, TapeNode *node) {
    Tensor *x = node->inputs[0];
    const float *dout = node->output->grad, *px = x->data;
    float *dx = tensor_grad(tape, x);
    long n = (long)x->size;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) {
        float s = sigmoidf(px[i]);
        dx[i] += dout[i] * s * (1.0f + px[i] * (1.0f - s));
    }
}

Tensor *op_silu(Tape *tape, Tensor *x) {
    Tensor *out = tensor_like(tape, x);
    long n = (long)x->size;
    const float *px = x->data;
    float *po = out->data;
    // Whole blocks of SILU_BLOCK per iteration (silu_array says why it blocks); each
    // element is still written by one thread, with siluf's bits.
    const long blocks = (n + SILU_BLOCK - 1) / SILU_BLOCK;
#pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        const long i0 = b * SILU_BLOCK;
        silu_array(po + i0, px + i0, n - i0 < SILU_BLOCK ? n - i0 : SILU_BLOCK);
    }
    tape_record(tape, "silu", silu_backward, out, 1, (Tensor *[]){x});
    return out;
}

// ---- softplus: out = log(1 + e^x);  d/dx = sigmoid(x) ----
static void softplus_backward(Tape *tape, TapeNode *node) {
    Tensor *x = node->inputs[0];
    const float *dout = node->output->grad, *px = x->data;
    float *dx = tensor_grad(tape, x);
    long n = (long)x->size;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) dx[i] += dout[i] * sigmoidf(px[i]);
}

Tensor *op_softplus(Tape *tape, Tensor *x) {
    Tensor *out = tensor_like(tape, x);
    long n = (long)x->size;
    const float *px = x->data;
    float *po = out->data;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) po[i] = softplusf(px[i]);
    tape_record(tape, "softplus", softplus_backward, out, 1, (Tensor *[]){x});
    return out;
}

// ---- exp: out = e^x;  d/dx = out ----
static void exp_backward(Tape *tape, TapeNode *node) {
    Tensor *x = node->inputs[0];
    const float *dout = node->output->grad, *po = node->output->data;
    float *dx = tensor_grad(tape, x);
    long n = (long)x->size;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) dx[i] += dout[i] * po[i];
}

Tensor *op_exp(Tape *tape, Tensor *x) {
    Tensor *out = tensor_like(tape, x);
    long n = (long)x->size;
    const float *px = x->data;
    float *po = out->data;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) po[i] = fast_expf(px[i]);
    tape_record(tape, "exp", exp_backward, out, 1, (Tensor *[]){x});
    return out;
}
