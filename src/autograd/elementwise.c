// Elementwise ops on tensors of one shape: add, mul, silu, softplus, exp; and silu_gate,
// the block's y * silu(z) on z read in place.
// Each loop is independent per element, so OpenMP's static split cannot change results.
#include <assert.h>
#include <stdbool.h>

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

// ---- silu_gate: out = y * silu(x[:, start : start + D]), D = y's width ----
// Row by row, so that z is read in place; each element gets the bits of op_mul(y,
// op_silu(z)) on a copy z of those columns (tests/test_ops_grad.c checks it).

// out = a * silu(z), or out += a * silu(z), over one row: the sigmoids of a block to the
// stack first, as silu_array does (it says why), then the products.
static void times_silu_row(float *out, const float *a, const float *z, int D, bool add) {
    float s[SILU_BLOCK];
    for (int i0 = 0; i0 < D; i0 += SILU_BLOCK) {
        const int m = D - i0 < SILU_BLOCK ? D - i0 : SILU_BLOCK;
#pragma omp simd
        for (int i = 0; i < m; i++) s[i] = sigmoidf(z[i0 + i]);
        if (add) {
#pragma omp simd
            for (int i = 0; i < m; i++) out[i0 + i] += a[i0 + i] * (z[i0 + i] * s[i]);
        } else {
#pragma omp simd
            for (int i = 0; i < m; i++) out[i0 + i] = a[i0 + i] * (z[i0 + i] * s[i]);
        }
    }
}

static void silu_gate_backward(Tape *tape, TapeNode *node) {
    Tensor *y = node->inputs[0], *x = node->inputs[1];
    const int start = *(const int *)node->saved, T = y->shape[0], D = y->shape[1], ldx = x->shape[1];
    const float *dout = node->output->grad;
    float *dy = y->requires_grad ? tensor_grad(tape, y) : NULL;
    float *dx = x->requires_grad ? tensor_grad(tape, x) : NULL;
    // dy and dz in two passes: in one loop (blocked or not) they ran 4x slower on the Intel
    // device machine, while this AMD machine ran both forms alike. dz takes its sigmoid
    // inline, as silu_backward does: from the stack it rounds differently in 8% of the
    // elements.
#pragma omp parallel
    {
        if (dy) {
#pragma omp for schedule(static) nowait
            for (int t = 0; t < T; t++)
                times_silu_row(dy + (long)t * D, dout + (long)t * D, x->data + (long)t * ldx + start, D, true);
        }
        if (dx) {
#pragma omp for schedule(static)
            for (int t = 0; t < T; t++) {
                const float *g = dout + (long)t * D, *yt = y->data + (long)t * D, *z = x->data + (long)t * ldx + start;
                float *dz = dx + (long)t * ldx + start;
#pragma omp simd
                for (int i = 0; i < D; i++) {
                    const float ds = g[i] * yt[i], sg = sigmoidf(z[i]);
                    dz[i] += ds * sg * (1.0f + z[i] * (1.0f - sg));
                }
            }
        }
    }
}

Tensor *op_silu_gate(Tape *tape, Tensor *y, Tensor *x, int start) {
    const int T = y->shape[0], D = y->shape[1], ldx = x->shape[1];
    assert(x->shape[0] == T && start >= 0 && start + D <= ldx);
    Tensor *out = tensor_like(tape, y);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++)
        times_silu_row(out->data + (long)t * D, y->data + (long)t * D, x->data + (long)t * ldx + start, D, false);
    TapeNode *node = tape_record(tape, "silu_gate", silu_gate_backward, out, 2, (Tensor *[]){y, x});
    if (node) {
        int *saved = arena_alloc(&tape->arena, sizeof *saved);
        *saved = start;
        node->saved = saved;
    }
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
