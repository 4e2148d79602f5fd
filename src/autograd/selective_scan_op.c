// op_selective_scan: the fused scan (selective_scan.c) as a node of the tape. The node
// keeps only the chunk checkpoints of the state; the backward recomputes the rest.
#include "autograd/ops.h"
#include "autograd/selective_scan.h"

// Tokens between saved states: a (B, D, N) state per chunk is small, and a chunk's
// recomputed states (chunk, D_block, N) stay in the L1/L2 cache during the backward.
#define SELECTIVE_SCAN_CHUNK 64

typedef struct ScanSaved {
    SelectiveScanShape shape;
    float *checkpoints;
} ScanSaved;

static float *grad_if_needed(Tape *tape, Tensor *t) { return t->requires_grad ? tensor_grad(tape, t) : NULL; }

static void selective_scan_node_backward(Tape *tape, TapeNode *node) {
    ScanSaved *saved = node->saved;
    Tensor **in = node->inputs;  // x, dt, dt_bias, A_log, B, C, D
    selective_scan_backward(&saved->shape, node->output->grad, saved->checkpoints, in[0]->data, in[1]->data,
                            in[2]->data, in[3]->data, in[4]->data, in[5]->data, in[6]->data,
                            grad_if_needed(tape, in[0]), grad_if_needed(tape, in[1]), grad_if_needed(tape, in[2]),
                            grad_if_needed(tape, in[3]), grad_if_needed(tape, in[4]), grad_if_needed(tape, in[5]),
                            grad_if_needed(tape, in[6]));
}

Tensor *op_selective_scan(Tape *tape, Tensor *x, Tensor *dt, Tensor *dt_bias, Tensor *A_log, Tensor *B_ssm,
                          Tensor *C_ssm, Tensor *D_skip, int B, int L) {
    int D = x->shape[1], N = A_log->shape[1];
    SelectiveScanShape shape = {.batch = B, .seqlen = L, .d_inner = D, .d_state = N, .chunk = SELECTIVE_SCAN_CHUNK};
    Tensor *y = tensor_new_2d(tape, B * L, D);
    Tensor *inputs[7] = {x, dt, dt_bias, A_log, B_ssm, C_ssm, D_skip};
    bool wants_backward = false;
    for (int i = 0; i < 7; i++) wants_backward = wants_backward || inputs[i]->requires_grad;
    wants_backward = wants_backward && tape->recording;
    float *checkpoints = NULL;
    if (wants_backward)
        checkpoints = arena_alloc(&tape->arena, sizeof(float) * (size_t)selective_scan_checkpoint_floats(&shape));
    selective_scan_forward(&shape, y->data, checkpoints, x->data, dt->data, dt_bias->data, A_log->data, B_ssm->data,
                           C_ssm->data, D_skip->data);
    TapeNode *node = tape_record(tape, "selective_scan", selective_scan_node_backward, y, 7, inputs);
    if (node) {
        ScanSaved *saved = arena_alloc(&tape->arena, sizeof *saved);
        *saved = (ScanSaved){shape, checkpoints};
        node->saved = saved;
    }
    return y;
}
