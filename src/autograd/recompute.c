// op_recompute: activation recomputation (Chen et al. 2016, "Training Deep Nets with
// Sublinear Memory Cost"). The function runs once without recording, and only its output
// stays on the tape; its backward runs the function again on a scratch tape, this time
// recording, and walks that tape back from the output's gradient. The model wraps each
// residual block in it (train.recompute), so a step holds one block's activations at a time.
//
// The recomputed forward is the same computation on the same values, so it gives the
// same bits, and the scratch tape's nodes run backward in the order the plain tape would:
// parameter gradients are the plain path's to the bit (tests/test_ops_grad.c).
#include <string.h>

#include "autograd/ops.h"

typedef struct RecomputeSaved {
    RecomputeFn fn;
    void *context;
} RecomputeSaved;

static void recompute_backward(Tape *tape, TapeNode *node) {
    Tensor *x = node->inputs[0], *out = node->output;
    RecomputeSaved *saved = node->saved;
    Tape *scratch = tape->recompute;
    tape_reset(scratch);
    Tensor *x_view = tensor_view(scratch, x->data, x->ndim, x->shape);
    x_view->requires_grad = true;
    Tensor *again = saved->fn(scratch, saved->context, x_view);
    tape_backward_from(scratch, again, out->grad);
    if (x->requires_grad && x_view->grad) {
        float *dx = tensor_grad(tape, x);
        const float *g = x_view->grad;
        long n = (long)x->size;
#pragma omp parallel for simd schedule(static) if (n >= 65536)
        for (long i = 0; i < n; i++) dx[i] += g[i];
    }
    tape_reset(scratch);
}

Tensor *op_recompute(Tape *tape, RecomputeFn fn, void *context, Tensor *x) {
    if (!tape->recording || !tape->recompute) return fn(tape, context, x);
    Tape *scratch = tape->recompute;
    tape_reset(scratch);
    scratch->recompute_scratch = true;
    scratch->recording = false;
    Tensor *first = fn(scratch, context, x);
    scratch->recording = true;
    Tensor *out = tensor_new(tape, first->ndim, first->shape);
    memcpy(out->data, first->data, sizeof(float) * out->size);
    tape_reset(scratch);
    // The node's inputs are x alone: the parameters fn reads get their gradients in the backward.
    TapeNode *node = tape_record(tape, "recompute", recompute_backward, out, 1, (Tensor *[]){x});
    if (node) {
        RecomputeSaved *saved = arena_alloc(&tape->arena, sizeof *saved);
        *saved = (RecomputeSaved){fn, context};
        node->saved = saved;
    }
    return out;
}
