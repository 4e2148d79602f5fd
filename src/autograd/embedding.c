// embedding: rows of a (V, C) table picked by token ids.
#include <string.h>

#include "autograd/ops.h"

typedef struct EmbeddingSaved {
    const int32_t *tokens;
} EmbeddingSaved;

// dw[tokens[t]] += dout[t], in token order (a token may repeat: no parallel race).
static void embedding_backward(Tape *tape, TapeNode *node) {
    Tensor *w = node->inputs[0];
    EmbeddingSaved *saved = node->saved;
    int T = node->output->shape[0], C = node->output->shape[1];
    float *dw = tensor_grad(tape, w);
    const float *dout = node->output->grad;
    for (int t = 0; t < T; t++) {
        float *row = dw + (long)saved->tokens[t] * C;
        const float *g = dout + (long)t * C;
        for (int c = 0; c < C; c++) row[c] += g[c];
    }
}

// out (T, C) = w (V, C)[tokens (T)]; token ids must be in [0, V) (checked by the callers,
// which see the data).
Tensor *op_embedding(Tape *tape, Tensor *w, const int32_t *tokens, int T) {
    int C = w->shape[1];
    Tensor *out = tensor_new_2d(tape, T, C);
    for (int t = 0; t < T; t++) memcpy(out->data + (long)t * C, w->data + (long)tokens[t] * C, sizeof(float) * (size_t)C);
    TapeNode *node = tape_record(tape, "embedding", embedding_backward, out, 1, (Tensor *[]){w});
    if (node) {
        EmbeddingSaved *saved = arena_alloc(&tape->arena, sizeof *saved);
        int32_t *copy = arena_alloc(&tape->arena, sizeof(int32_t) * (size_t)T);
        memcpy(copy, tokens, sizeof(int32_t) * (size_t)T);
        saved->tokens = copy;
        node->saved = saved;
    }
    return out;
}
