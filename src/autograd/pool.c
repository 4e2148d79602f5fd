// Ops of the task heads (docs/DESIGN.md): pooling the positions of each sequence into one
// row (mean over a prefix, or the last position of it), a bias added to every row, and
// the mean squared error of predictions against float targets.
#include <string.h>

#include "autograd/ops.h"

typedef struct PoolSaved {
    int *ends;           // (B) copy: row b pools positions [0, ends[b]] of sequence b
    int L;
    bool mean;
} PoolSaved;

void pool_forward(float *out, const float *x, const int *ends, int B, int L, int C, bool mean) {
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * C;
        memset(o, 0, sizeof(float) * (size_t)C);
        int e = ends[b];
        if (e < 0) continue;  // a padding row: zeros
        if (!mean) {
            memcpy(o, x + ((size_t)b * L + e) * C, sizeof(float) * (size_t)C);
            continue;
        }
        for (int t = 0; t <= e; t++) {
            const float *row = x + ((size_t)b * L + t) * C;
            for (int c = 0; c < C; c++) o[c] += row[c];
        }
        float scale = 1.0f / (float)(e + 1);
        for (int c = 0; c < C; c++) o[c] *= scale;
    }
}

// dx[b*L + t] += dout[b] / (e+1) for t <= e (mean), or dx[b*L + e] += dout[b] (last).
static void pool_backward(Tape *tape, TapeNode *node) {
    Tensor *x = node->inputs[0];
    PoolSaved *s = node->saved;
    int C = x->shape[1], B = node->output->shape[0];
    float *dx = tensor_grad(tape, x);
    const float *dout = node->output->grad;
    for (int b = 0; b < B; b++) {
        int e = s->ends[b];
        if (e < 0) continue;
        const float *g = dout + (size_t)b * C;
        int first = s->mean ? 0 : e;
        float scale = s->mean ? 1.0f / (float)(e + 1) : 1.0f;
        for (int t = first; t <= e; t++) {
            float *d = dx + ((size_t)b * s->L + t) * C;
            for (int c = 0; c < C; c++) d[c] += g[c] * scale;
        }
    }
}

Tensor *op_pool(Tape *tape, Tensor *x, const int *ends, int B, int L, bool mean) {
    int C = x->shape[1];
    Tensor *out = tensor_new_2d(tape, B, C);  // (B, C)
    pool_forward(out->data, x->data, ends, B, L, C, mean);
    TapeNode *node = tape_record(tape, "pool", pool_backward, out, 1, (Tensor *[]){x});
    if (node) {
        PoolSaved *s = arena_alloc(&tape->arena, sizeof *s);
        s->ends = arena_alloc(&tape->arena, sizeof(int) * (size_t)B);
        memcpy(s->ends, ends, sizeof(int) * (size_t)B);
        s->L = L;
        s->mean = mean;
        node->saved = s;
    }
    return out;
}

// dx += dout; dbias[c] += sum_t dout[t, c]
static void add_bias_backward(Tape *tape, TapeNode *node) {
    Tensor *x = node->inputs[0], *bias = node->inputs[1];
    int T = x->shape[0], C = x->shape[1];
    const float *dout = node->output->grad;
    if (x->requires_grad) {
        float *dx = tensor_grad(tape, x);
        for (size_t i = 0; i < x->size; i++) dx[i] += dout[i];
    }
    if (bias->requires_grad) {
        float *db = tensor_grad(tape, bias);
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) db[c] += dout[(size_t)t * C + c];
    }
}

Tensor *op_add_bias(Tape *tape, Tensor *x, Tensor *bias) {
    int T = x->shape[0], C = x->shape[1];
    Tensor *out = tensor_new_2d(tape, T, C);  // (T, C)
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) out->data[(size_t)t * C + c] = x->data[(size_t)t * C + c] + bias->data[c];
    tape_record(tape, "add_bias", add_bias_backward, out, 2, (Tensor *[]){x, bias});
    return out;
}

typedef struct MseSaved {
    float *target;       // (n) copy
} MseSaved;

// d(mean (p - y)^2)/dp = 2 (p - y) / n
static void mse_backward(Tape *tape, TapeNode *node) {
    Tensor *pred = node->inputs[0];
    const MseSaved *s = node->saved;
    float *dp = tensor_grad(tape, pred);
    float scale = node->output->grad[0] * 2.0f / (float)pred->size;
    for (size_t i = 0; i < pred->size; i++) dp[i] += scale * (pred->data[i] - s->target[i]);
}

Tensor *op_mse(Tape *tape, Tensor *pred, const float *target) {
    Tensor *out = tensor_new(tape, 1, (int[]){1});
    double sum = 0.0;
    for (size_t i = 0; i < pred->size; i++) {
        double e = (double)pred->data[i] - (double)target[i];
        sum += e * e;
    }
    out->data[0] = pred->size ? (float)(sum / (double)pred->size) : 0.0f;
    TapeNode *node = tape_record(tape, "mse", mse_backward, out, 1, (Tensor *[]){pred});
    if (node) {
        MseSaved *s = arena_alloc(&tape->arena, sizeof *s);
        s->target = arena_alloc(&tape->arena, sizeof(float) * pred->size);
        memcpy(s->target, target, sizeof(float) * pred->size);
        node->saved = s;
    }
    return out;
}
