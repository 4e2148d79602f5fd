// slice_cols: a block of columns of a 2-d activation as a new contiguous tensor. This is
// how the model splits in_proj's output into (x, z) and x_proj's into (δ, B, C).
#include <string.h>

#include "autograd/ops.h"

typedef struct SliceSaved {
    int start;
} SliceSaved;

static void slice_cols_backward(Tape *tape, TapeNode *node) {
    Tensor *x = node->inputs[0], *out = node->output;
    int start = ((SliceSaved *)node->saved)->start;
    int T = x->shape[0], C = x->shape[1], width = out->shape[1];
    float *dx = tensor_grad(tape, x);
    const float *dout = out->grad;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *row = dx + (long)t * C + start;
        const float *g = dout + (long)t * width;
        for (int c = 0; c < width; c++) row[c] += g[c];
    }
}

// out (T, width) = x (T, C)[:, start : start + width]
Tensor *op_slice_cols(Tape *tape, Tensor *x, int start, int width) {
    int T = x->shape[0], C = x->shape[1];
    Tensor *out = tensor_new_2d(tape, T, width);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++)
        memcpy(out->data + (long)t * width, x->data + (long)t * C + start, sizeof(float) * (size_t)width);
    TapeNode *node = tape_record(tape, "slice_cols", slice_cols_backward, out, 1, (Tensor *[]){x});
    if (node) {
        SliceSaved *saved = arena_alloc(&tape->arena, sizeof *saved);
        saved->start = start;
        node->saved = saved;
    }
    return out;
}
