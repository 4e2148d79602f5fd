// Tensors and the tape: the core of the reverse-mode autograd engine.
//
// A Tensor is float32, row-major, at most 4-d. Activations and their gradients live in
// the tape's arena and die at tape_reset(); parameters own their data and gradient
// buffers for the whole run. Ops (ops.h) compute their forward at once and, when the
// tape is recording and an input wants a gradient, append a node whose backward adds
// into the inputs' gradients. tape_backward() walks the nodes in reverse.
#ifndef MP_AUTOGRAD_TENSOR_H
#define MP_AUTOGRAD_TENSOR_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"

#define TENSOR_MAX_DIMS 4

typedef struct Tensor {
    float *data;
    float *grad;              // same shape as data; NULL until something writes a gradient
    int ndim;
    int shape[TENSOR_MAX_DIMS];
    size_t size;              // product of shape
    bool requires_grad;
    bool parameter;           // owns its buffers (tensor_init_param): a leaf, so no backward
                              // function reads its gradient during the walk
} Tensor;

typedef struct Tape Tape;
typedef struct TapeNode TapeNode;
typedef void (*BackwardFn)(Tape *tape, TapeNode *node);

#define TAPE_MAX_INPUTS 8

struct TapeNode {
    const char *name;         // the op, e.g. "matmul" (profiles group by it)
    BackwardFn backward;
    Tensor *output;
    Tensor *inputs[TAPE_MAX_INPUTS];
    int n_inputs;
    void *saved;              // op-specific values kept for the backward, in the arena
};

// Optional timing of every op, forward and backward, grouped by op name (bench/).
// An op's forward time is the time since the previous op was recorded: ops compute
// their forward and then record themselves, with nothing else in between.
#define TAPE_PROFILE_MAX_OPS 32

typedef struct TapeProfile {
    struct {
        const char *name;
        double forward_s, backward_s;
        long calls;
    } ops[TAPE_PROFILE_MAX_OPS];
    int n_ops;
    double last_mark;
} TapeProfile;

// Adds time to the op called name (by pointer identity of the name string).
void tape_profile_add(TapeProfile *profile, const char *name, double forward_s, double backward_s);

// Work a backward function hands to the end of the walk: a piece that writes memory no
// other piece and no later node touches (a parameter's gradient). tape_backward_from runs
// the pieces after the last node, all in one parallel region, the threads taking them
// largest cost first (so that no long piece starts last); each piece runs on one
// thread, so the results do not depend on who runs what.
typedef void (*DeferredFn)(const void *args);
typedef struct DeferredWork {
    const char *name;         // the op, for the profile
    DeferredFn run;
    const void *args;         // in the arena
    double cost;              // any unit, the same for all pieces (the matmul's: multiply-adds)
} DeferredWork;

struct Tape {
    Arena arena;              // activations, gradients and saved values of one step
    TapeNode *nodes;
    int n_nodes, capacity;
    bool recording;           // false for inference: ops then record nothing
    TapeProfile *profile;     // NULL unless profiling
    Tape *recompute;          // NULL, or the scratch tape of op_recompute (ops.h) (not owned)
    bool recompute_scratch;   // this is such a scratch tape: a walk covers one block
    DeferredWork *deferred;   // owned; pending until the walk's end
    int n_deferred, deferred_capacity;
};

void tape_init(Tape *tape, size_t arena_bytes);
void tape_free(Tape *tape);
// Forgets all nodes and frees every activation of the step.
void tape_reset(Tape *tape);
// Seeds d(loss)/d(loss) = 1 and runs every node's backward in reverse order.
// loss must be a one-element tensor produced on this tape.
void tape_backward(Tape *tape, Tensor *loss);
// The same with d(total)/d(loss) = seed_value: the gradient of seed_value * loss, e.g. a
// process's share of a loss averaged over several processes.
void tape_backward_seeded(Tape *tape, Tensor *loss, float seed_value);
// Adds dout (out's shape) to out's gradient and runs every node's backward in reverse.
void tape_backward_from(Tape *tape, Tensor *out, const float *dout);

// Appends a node if the tape records and any input requires a gradient; the output
// then requires a gradient too. Returns the node (to attach saved values) or NULL.
TapeNode *tape_record(Tape *tape, const char *name, BackwardFn backward, Tensor *output, int n_inputs,
                      Tensor **inputs);

// Queues work for the end of the walk in progress (see DeferredWork).
void tape_defer(Tape *tape, const char *name, DeferredFn run, const void *args, double cost);

// A new activation in the tape's arena; data uninitialised.
Tensor *tensor_new(Tape *tape, int ndim, const int *shape);
Tensor *tensor_new_2d(Tape *tape, int rows, int cols);
// Wraps caller-owned memory (no copy) as a tensor in the arena, e.g. a parameter.
Tensor *tensor_view(Tape *tape, float *data, int ndim, const int *shape);

// The gradient buffer of t, allocated zeroed in the arena on first use. Backward
// functions add into it.
float *tensor_grad(Tape *tape, Tensor *t);

// Sets n floats to 0, split over the OpenMP threads from FLOATS_ZERO_PARALLEL_MIN floats on.
#define FLOATS_ZERO_PARALLEL_MIN ((size_t)1 << 16)
void floats_zero(float *p, size_t n);

// Parameters: data and gradient owned by the tensor (malloc), for the whole run.
void tensor_init_param(Tensor *t, int ndim, const int *shape);
void tensor_free_param(Tensor *t);

size_t shape_size(int ndim, const int *shape);

#endif
