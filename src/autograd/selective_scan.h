// The fused selective scan of Mamba-1 (docs/DESIGN.md#model, steps 4-6) and its hand-written backward.
//
// For each sequence b and channel d, with Δ_t = softplus(dt_t + dt_bias) and A = -exp(A_log):
//   h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t x_t B_t,   h_{-1} = 0   (h_t has N states)
//   y_t = <h_t, C_t> + D x_t
// The forward never holds the (B, L, D, N) states: it keeps only the state at the end
// of every chunk of `chunk` tokens; the backward walks each chunk in reverse, first
// recomputing that chunk's states from the checkpoint before it.
#ifndef MP_AUTOGRAD_SELECTIVE_SCAN_H
#define MP_AUTOGRAD_SELECTIVE_SCAN_H

typedef struct SelectiveScanShape {
    int batch;                // B
    int seqlen;               // L
    int d_inner;              // D
    int d_state;              // N
    int chunk;                // tokens between saved states
} SelectiveScanShape;

// Floats needed for the chunk checkpoints: B * ceil(L / chunk) * D * N.
long selective_scan_checkpoint_floats(const SelectiveScanShape *shape);

// y, x, dt: (B, L, D); B_ssm, C_ssm: (B, L, N); dt_bias, D_skip: (D); A_log: (D, N).
// checkpoints: selective_scan_checkpoint_floats() floats, or NULL when no backward follows.
void selective_scan_forward(const SelectiveScanShape *shape, float *y, float *checkpoints,
                            const float *x, const float *dt, const float *dt_bias, const float *A_log,
                            const float *B_ssm, const float *C_ssm, const float *D_skip);

// Adds the gradients into d_x, d_dt, d_dt_bias, d_A_log, d_B, d_C, d_D_skip (each may be
// NULL when that input needs none). dy is (B, L, D); the inputs and checkpoints are the
// forward's.
void selective_scan_backward(const SelectiveScanShape *shape, const float *dy, const float *checkpoints,
                             const float *x, const float *dt, const float *dt_bias, const float *A_log,
                             const float *B_ssm, const float *C_ssm, const float *D_skip,
                             float *d_x, float *d_dt, float *d_dt_bias, float *d_A_log,
                             float *d_B, float *d_C, float *d_D_skip);

#endif
