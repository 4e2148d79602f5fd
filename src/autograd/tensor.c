// Tensors, the tape and the reverse walk (see tensor.h).
#include "autograd/tensor.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/timer.h"

size_t shape_size(int ndim, const int *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

void tape_init(Tape *tape, size_t arena_bytes) {
    arena_init(&tape->arena, arena_bytes);
    tape->capacity = 256;
    tape->nodes = xmalloc(sizeof(TapeNode) * (size_t)tape->capacity);
    tape->n_nodes = 0;
    tape->recording = true;
    tape->profile = NULL;
    tape->recompute = NULL;
    tape->recompute_scratch = false;
    tape->deferred = NULL;
    tape->n_deferred = tape->deferred_capacity = 0;
}

void tape_free(Tape *tape) {
    arena_free(&tape->arena);
    free(tape->nodes);
    free(tape->deferred);
    memset(tape, 0, sizeof *tape);
}

void tape_reset(Tape *tape) {
    assert(tape->n_deferred == 0);  // a walk always runs its deferred work before it returns
    arena_reset(&tape->arena);
    tape->n_nodes = 0;
    if (tape->profile) tape->profile->last_mark = now_seconds();
}

void tape_profile_add(TapeProfile *profile, const char *name, double forward_s, double backward_s) {
    int i = 0;
    while (i < profile->n_ops && profile->ops[i].name != name) i++;
    if (i == profile->n_ops) {
        if (i == TAPE_PROFILE_MAX_OPS) return;
        profile->n_ops++;
        profile->ops[i].name = name;
    }
    profile->ops[i].forward_s += forward_s;
    profile->ops[i].backward_s += backward_s;
    if (forward_s > 0.0) profile->ops[i].calls++;
}

TapeNode *tape_record(Tape *tape, const char *name, BackwardFn backward, Tensor *output, int n_inputs,
                      Tensor **inputs) {
    assert(n_inputs <= TAPE_MAX_INPUTS);
    if (tape->profile) {
        double now = now_seconds();
        tape_profile_add(tape->profile, name, now - tape->profile->last_mark, 0.0);
        tape->profile->last_mark = now;
    }
    if (!tape->recording) return NULL;
    bool any = false;
    for (int i = 0; i < n_inputs; i++) any = any || (inputs[i] && inputs[i]->requires_grad);
    if (!any) return NULL;
    if (tape->n_nodes == tape->capacity) {
        tape->capacity *= 2;
        tape->nodes = xrealloc(tape->nodes, sizeof(TapeNode) * (size_t)tape->capacity);
    }
    TapeNode *node = &tape->nodes[tape->n_nodes++];
    node->name = name;
    node->backward = backward;
    node->output = output;
    node->n_inputs = n_inputs;
    for (int i = 0; i < n_inputs; i++) node->inputs[i] = inputs[i];
    node->saved = NULL;
    output->requires_grad = true;
    return node;
}

void tape_defer(Tape *tape, const char *name, DeferredFn run, const void *args, double cost) {
    if (tape->n_deferred == tape->deferred_capacity) {
        tape->deferred_capacity = tape->deferred_capacity ? 2 * tape->deferred_capacity : 64;
        tape->deferred = xrealloc(tape->deferred, sizeof(DeferredWork) * (size_t)tape->deferred_capacity);
    }
    tape->deferred[tape->n_deferred++] = (DeferredWork){name, run, args, cost};
}

static int by_cost_descending(const void *a, const void *b) {
    const DeferredWork *x = a, *y = b;
    return (x->cost < y->cost) - (x->cost > y->cost);
}

// Every deferred piece in one parallel region, the largest first, so that no long piece
// starts last while the other threads wait (Graham's LPT rule: within 4/3 of the best
// order). The pieces write disjoint memory, so their order changes no bit.
static void run_deferred(Tape *tape) {
    if (tape->n_deferred == 0) return;
    double start = tape->profile ? now_seconds() : 0.0;
    DeferredWork *works = tape->deferred;
    const int n = tape->n_deferred;
    qsort(works, (size_t)n, sizeof *works, by_cost_descending);
#pragma omp parallel for schedule(dynamic, 1)
    for (int w = 0; w < n; w++) works[w].run(works[w].args);
    if (tape->profile) tape_profile_add(tape->profile, works[0].name, 0.0, now_seconds() - start);
    tape->n_deferred = 0;
}

void tape_backward(Tape *tape, Tensor *loss) { tape_backward_seeded(tape, loss, 1.0f); }

void tape_backward_seeded(Tape *tape, Tensor *loss, float seed_value) {
    assert(loss->size == 1);
    tape_backward_from(tape, loss, &seed_value);
}

void tape_backward_from(Tape *tape, Tensor *out, const float *dout) {
    float *seed = tensor_grad(tape, out);
    for (size_t i = 0; i < out->size; i++) seed[i] += dout[i];
    for (int i = tape->n_nodes - 1; i >= 0; i--) {
        TapeNode *node = &tape->nodes[i];
        // An output nobody used downstream has no gradient: nothing flows back from it.
        if (!node->output->grad) continue;
        if (tape->profile) {
            double start = now_seconds();
            node->backward(tape, node);
            tape_profile_add(tape->profile, node->name, 0.0, now_seconds() - start);
        } else {
            node->backward(tape, node);
        }
    }
    run_deferred(tape);
}

Tensor *tensor_new(Tape *tape, int ndim, const int *shape) {
    Tensor *t = arena_alloc(&tape->arena, sizeof *t);
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int) * (size_t)ndim);
    t->size = shape_size(ndim, shape);
    t->data = arena_alloc(&tape->arena, sizeof(float) * t->size);
    return t;
}

Tensor *tensor_new_2d(Tape *tape, int rows, int cols) {
    int shape[2] = {rows, cols};
    return tensor_new(tape, 2, shape);
}

Tensor *tensor_view(Tape *tape, float *data, int ndim, const int *shape) {
    Tensor *t = arena_alloc(&tape->arena, sizeof *t);
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int) * (size_t)ndim);
    t->size = shape_size(ndim, shape);
    t->data = data;
    return t;
}

void floats_zero(float *p, size_t n) {
    // One thread's memset runs at a fraction of the memory bandwidth: a (T, 50k) logits
    // gradient alone is 200 MB. Zeros are zeros whichever thread writes them.
    if (n < FLOATS_ZERO_PARALLEL_MIN) {
        memset(p, 0, sizeof(float) * n);
        return;
    }
    const long chunks = (long)((n + FLOATS_ZERO_PARALLEL_MIN - 1) / FLOATS_ZERO_PARALLEL_MIN);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < chunks; c++) {
        size_t start = (size_t)c * FLOATS_ZERO_PARALLEL_MIN;
        size_t count = n - start < FLOATS_ZERO_PARALLEL_MIN ? n - start : FLOATS_ZERO_PARALLEL_MIN;
        memset(p + start, 0, sizeof(float) * count);
    }
}

float *tensor_grad(Tape *tape, Tensor *t) {
    if (!t->grad) {
        t->grad = arena_alloc(&tape->arena, sizeof(float) * t->size);
        floats_zero(t->grad, t->size);
    }
    return t->grad;
}

void tensor_init_param(Tensor *t, int ndim, const int *shape) {
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int) * (size_t)ndim);
    t->size = shape_size(ndim, shape);
    t->data = xcalloc(t->size, sizeof(float));
    t->grad = xcalloc(t->size, sizeof(float));
    t->requires_grad = true;
    t->parameter = true;
}

void tensor_free_param(Tensor *t) {
    free(t->data);
    free(t->grad);
    memset(t, 0, sizeof *t);
}
