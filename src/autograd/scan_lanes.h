// What the selective scan and SparseSSM's A_log score compute alike, per block of channels:
// written once, so that the score's states round exactly as the forward's.
#ifndef MP_AUTOGRAD_SCAN_LANES_H
#define MP_AUTOGRAD_SCAN_LANES_H

#include "core/fastmath.h"

// Channels per block: 16 floats fill one 512-bit register.
#define SCAN_LANES 16

// One token's per-lane inputs: Δ = softplus(dt + dt_bias) and Δ x. Lanes >= width read 0.
static inline __attribute__((always_inline)) void token_delta(float *restrict delta, float *restrict delta_x,
                                                              const float *restrict x_t, const float *restrict dt_t,
                                                              const float *restrict bias, int width) {
#pragma omp simd
    for (int j = 0; j < SCAN_LANES; j++) {
        float xj = j < width ? x_t[j] : 0.0f;
        float dtj = j < width ? dt_t[j] : 0.0f;
        delta[j] = softplusf(dtj + bias[j]);
        delta_x[j] = delta[j] * xj;
    }
}

#endif
