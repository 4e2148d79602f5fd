// The fused selective scan of Mamba-1 (SPEC §1 steps 4-6): a forward that keeps only chunk
// checkpoints of the state, and the hand-written backward beside it. Plain C that gcc
// vectorizes over blocks of 16 channels (one AVX-512 register); no intrinsics.
//
// Layout of the work. Lanes are channels d: a block of SCAN_LANES channels of one sequence
// keeps its N states as N vectors h[n][0..15], and B_t[n], C_t[n] are broadcast, so the
// forward's sum over n is a vertical add and needs no horizontal sum. The one sum over
// channels (d_B, d_C of a token are sums over d) is kept in per-lane buffers while all the
// blocks of a work item are walked, and reduced across lanes once per token per item.
//
// Determinism (bitwise, for any thread count). Every float that is summed is summed in an
// order fixed by the shape alone, never by the schedule:
// - forward: each (b, block) pair is independent; y and the checkpoints have one writer.
// - backward: a work item is (b, channel group), a group being a fixed run of blocks. The
//   number of groups depends only on (B, D) (enough items for the cores, see
//   backward_group_count). An item owns d_x, d_dt of its (b, channels) rows, and writes
//   - per-channel sums over its tokens (for d_A_log, d_dt_bias, d_D_skip) into a partial
//     buffer row of its own (b, channels), summed over b afterwards in order b = 0..B-1;
//   - per-token sums over its channels (for d_B, d_C) into a partial buffer row of its own
//     (group, b), summed over groups afterwards in order g = 0..G-1.
//   Inside an item blocks, tokens and lanes are visited in a fixed order. Which thread runs
//   an item does not matter, so the schedule may be dynamic.
// The forward and the backward's recomputation go through the same inline functions with
// explicit fmaf, so recomputed states equal the forward's to the bit, and the chunk size
// changes no result either.
#include "autograd/selective_scan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"     // defines: xmalloc, xcalloc
#include "core/fastmath.h"  // defines: fast_expf, softplusf, sigmoidf

// Channels per block: 16 floats fill one 512-bit register.
#define SCAN_LANES 16
// The backward splits channels into groups until there are at least this many work items.
#define SCAN_MIN_WORK_ITEMS 16

// A chunk outside [1, L] means one chunk of the whole sequence.
static int effective_chunk(const SelectiveScanShape *shape) {
    int chunk = shape->chunk;
    return chunk < 1 || chunk > shape->seqlen ? shape->seqlen : chunk;
}

static int chunk_count(const SelectiveScanShape *shape) {
    if (shape->seqlen <= 0) return 0;
    int chunk = effective_chunk(shape);
    return (shape->seqlen + chunk - 1) / chunk;
}

long selective_scan_checkpoint_floats(const SelectiveScanShape *shape) {
    if (shape->batch <= 0 || shape->seqlen <= 0 || shape->d_inner <= 0 || shape->d_state <= 0) return 0;
    return (long)shape->batch * chunk_count(shape) * shape->d_inner * shape->d_state;
}

// 64-byte aligned floats, so that one block's lanes are one cache line; aborts on OOM like
// xmalloc. Free with free().
static float *alloc_lanes(size_t count) {
    size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory allocating %zu bytes\n", __FILE__, __LINE__, bytes);
        abort();
    }
    return p;
}

// Per-channel constants padded to whole blocks, channel-contiguous. Padding lanes get
// harmless values (A = -1, bias 0, D 0) and zero x / dy, so they add exact zeros.
typedef struct ScanTables {
    int n_blocks;             // ceil(D / SCAN_LANES)
    int d_padded;             // n_blocks * SCAN_LANES
    float *A;                 // (N, d_padded): -exp(A_log[d, n])
    float *dt_bias;           // (d_padded)
    float *D_skip;            // (d_padded)
} ScanTables;

// Allocates one buffer owned by tables->A (freed by tables_free).
static void tables_init(ScanTables *tables, const SelectiveScanShape *shape, const float *dt_bias,
                        const float *A_log, const float *D_skip) {
    const int D = shape->d_inner, N = shape->d_state;
    tables->n_blocks = (D + SCAN_LANES - 1) / SCAN_LANES;
    tables->d_padded = tables->n_blocks * SCAN_LANES;
    const int dp = tables->d_padded;
    tables->A = alloc_lanes((size_t)(N + 2) * dp);
    tables->dt_bias = tables->A + (size_t)N * dp;
    tables->D_skip = tables->dt_bias + dp;
    for (int n = 0; n < N; n++)
        for (int d = 0; d < dp; d++)
            tables->A[(size_t)n * dp + d] = d < D ? -fast_expf(A_log[(size_t)d * N + n]) : -1.0f;
    for (int d = 0; d < dp; d++) {
        tables->dt_bias[d] = d < D ? dt_bias[d] : 0.0f;
        tables->D_skip[d] = d < D ? D_skip[d] : 0.0f;
    }
}

static void tables_free(ScanTables *tables) { free(tables->A); }

// ---- the pieces shared by the forward and the backward's recomputation ----
// Written once and inlined in both, so that both round identically.

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

// h_t[n] = exp(Δ A[n]) h_{t-1}[n] + Δ x B_t[n] for the lanes of one state n.
static inline __attribute__((always_inline)) void state_step(float *h_next, const float *h_prev,
                                                             const float *restrict delta, const float *restrict delta_x,
                                                             const float *restrict A_n, float B_n) {
    #pragma omp simd
    for (int j = 0; j < SCAN_LANES; j++) {
        float decay = fast_expf(delta[j] * A_n[j]);
        h_next[j] = fmaf(decay, h_prev[j], delta_x[j] * B_n);
    }
}

// ---- forward ----

// The inputs and outputs of one call, so that the block kernels take one argument.
typedef struct ScanCall {
    const SelectiveScanShape *shape;
    const ScanTables *tables;
    int chunk, n_chunks;
    const float *x, *dt, *B_ssm, *C_ssm, *dy;          // see selective_scan.h
    float *y, *checkpoints;                            // forward outputs
    float *d_x, *d_dt;                                 // backward outputs owned by one item
} ScanCall;

// Sequence b, channels [d0, d0 + width) of block `block`, all L tokens. h is (N, LANES).
static inline __attribute__((always_inline)) void forward_block(const ScanCall *call, int b, int block, int width,
                                                                float *restrict h) {
    const int L = call->shape->seqlen, D = call->shape->d_inner, N = call->shape->d_state;
    const int dp = call->tables->d_padded, d0 = block * SCAN_LANES;
    const float *A = call->tables->A + d0;        // A[n * dp + j]
    const float *bias = call->tables->dt_bias + d0;
    const float *D_skip = call->tables->D_skip + d0;
    memset(h, 0, sizeof(float) * N * SCAN_LANES);
    for (int t = 0; t < L; t++) {
        const size_t row = (size_t)b * L + t;  // token index in (B, L)
        const float *x_t = call->x + row * D + d0;
        const float *B_t = call->B_ssm + row * N, *C_t = call->C_ssm + row * N;
        float delta[SCAN_LANES], delta_x[SCAN_LANES], y_t[SCAN_LANES];
        token_delta(delta, delta_x, x_t, call->dt + row * D + d0, bias, width);
        #pragma omp simd
        for (int j = 0; j < SCAN_LANES; j++) y_t[j] = D_skip[j] * (j < width ? x_t[j] : 0.0f);
        for (int n = 0; n < N; n++) {
            float *h_n = h + n * SCAN_LANES;
            state_step(h_n, h_n, delta, delta_x, A + (size_t)n * dp, B_t[n]);
            const float C_n = C_t[n];
            #pragma omp simd
            for (int j = 0; j < SCAN_LANES; j++) y_t[j] = fmaf(h_n[j], C_n, y_t[j]);
        }
        float *y_out = call->y + row * D + d0;
        for (int j = 0; j < width; j++) y_out[j] = y_t[j];
        // Save the state that ends each chunk: checkpoints is (B, n_chunks, N, D).
        if (call->checkpoints && ((t + 1) % call->chunk == 0 || t == L - 1)) {
            int c = t / call->chunk;
            float *saved = call->checkpoints + ((size_t)b * call->n_chunks + c) * N * D + d0;
            for (int n = 0; n < N; n++)
                for (int j = 0; j < width; j++) saved[(size_t)n * D + j] = h[n * SCAN_LANES + j];
        }
    }
}

void selective_scan_forward(const SelectiveScanShape *shape, float *y, float *checkpoints,
                            const float *x, const float *dt, const float *dt_bias, const float *A_log,
                            const float *B_ssm, const float *C_ssm, const float *D_skip) {
    const int Bsz = shape->batch, D = shape->d_inner, N = shape->d_state;
    if (Bsz <= 0 || shape->seqlen <= 0 || D <= 0 || N <= 0) return;
    ScanTables tables;
    tables_init(&tables, shape, dt_bias, A_log, D_skip);
    ScanCall call = {.shape = shape, .tables = &tables, .chunk = effective_chunk(shape),
                     .n_chunks = chunk_count(shape), .x = x, .dt = dt, .B_ssm = B_ssm, .C_ssm = C_ssm,
                     .y = y, .checkpoints = checkpoints};
    const int n_blocks = tables.n_blocks;
    const int tail_width = D - (n_blocks - 1) * SCAN_LANES;
#pragma omp parallel
    {
        float *h = alloc_lanes((size_t)N * SCAN_LANES);  // this thread's state, (N, LANES)
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < Bsz; b++)
            for (int block = 0; block < n_blocks; block++) {
                // Full blocks get a kernel specialised for 16 lanes; the last may be partial.
                if (block < n_blocks - 1 || tail_width == SCAN_LANES)
                    forward_block(&call, b, block, SCAN_LANES, h);
                else
                    forward_block(&call, b, block, tail_width, h);
            }
        free(h);
    }
    tables_free(&tables);
}

// ---- backward ----
//
// With g_t = dL/dh_t (all paths) and a_t = exp(Δ_t A):
//   g_t     = dy_t C_t + a_{t+1} g_{t+1}          (the carry a_{t+1} g_{t+1} crosses chunks)
//   dC_t[n] += Σ_d dy_t h_t[n]                     dB_t[n] += Σ_d g_t[n] Δ_t x_t
//   dΔ_t    = Σ_n g_t h_{t-1} a_t A + x_t Σ_n g_t B_t
//   dA      += Σ_t g_t h_{t-1} a_t Δ_t            d_A_log = dA * A
//   dx_t    = D dy_t + Δ_t Σ_n g_t B_t            dD += Σ_t dy_t x_t
//   d_dt_t  = dΔ_t sigmoid(dt_t + dt_bias)        d_dt_bias += Σ_t d_dt_t

// Channel groups for the backward: enough (b, group) items to feed the cores, but as few
// groups as that allows, since each group costs one lane reduction per token. Depends on
// the shape only, which keeps the result independent of the thread count.
static int backward_group_count(int batch, int n_blocks) {
    int groups = (SCAN_MIN_WORK_ITEMS + batch - 1) / batch;
    return groups < n_blocks ? groups : n_blocks;
}

// One thread's scratch for the backward; sizes for chunk C, N states, G blocks per group.
typedef struct BackwardScratch {
    float *states;            // (C + 1, N, LANES): row 0 the chunk's initial state, row i+1 h_{t0+i}
    float *delta;             // (C, LANES): Δ of the chunk's tokens
    float *dB_lanes;          // (C, N, LANES): per-lane parts of d_B over the group's blocks
    float *dC_lanes;          // (C, N, LANES)
    float *carry;             // (G, N, LANES): a_{t} g_{t} flowing into the previous token
    float *dA_sum;            // (G, N, LANES): Σ_t g h_{t-1} a Δ (dL/dA)
    float *dbias_sum;         // (G, LANES): Σ_t d_dt
    float *dD_sum;            // (G, LANES): Σ_t dy x
} BackwardScratch;

static void scratch_init(BackwardScratch *s, int chunk, int N, int blocks_per_group) {
    size_t lane_rows = (size_t)N * SCAN_LANES;
    size_t total = (size_t)(chunk + 1) * lane_rows + (size_t)chunk * SCAN_LANES + 2 * (size_t)chunk * lane_rows +
                   (size_t)blocks_per_group * (2 * lane_rows + 2 * SCAN_LANES);
    float *p = alloc_lanes(total);
    s->states = p, p += (size_t)(chunk + 1) * lane_rows;
    s->delta = p, p += (size_t)chunk * SCAN_LANES;
    s->dB_lanes = p, p += (size_t)chunk * lane_rows;
    s->dC_lanes = p, p += (size_t)chunk * lane_rows;
    s->carry = p, p += (size_t)blocks_per_group * lane_rows;
    s->dA_sum = p, p += (size_t)blocks_per_group * lane_rows;
    s->dbias_sum = p, p += (size_t)blocks_per_group * SCAN_LANES;
    s->dD_sum = p;
}

static void scratch_free(BackwardScratch *s) { free(s->states); }

// Sequence b, one block of channels, tokens [t0, t0 + T) of chunk c: recompute the states
// from the checkpoint before the chunk, then walk the tokens in reverse. slot is the
// block's index within its group (its carry and sums in the scratch).
static inline __attribute__((always_inline)) void backward_block_chunk(const ScanCall *call, BackwardScratch *s, int b,
                                                                       int block, int width, int slot, int c,
                                                                       int t0, int T) {
    const int L = call->shape->seqlen, D = call->shape->d_inner, N = call->shape->d_state;
    const int dp = call->tables->d_padded, d0 = block * SCAN_LANES;
    const float *A = call->tables->A + d0;
    const float *bias = call->tables->dt_bias + d0;
    const float *D_skip = call->tables->D_skip + d0;
    const size_t state_size = (size_t)N * SCAN_LANES;
    float *carry = s->carry + slot * state_size;
    float *dA_sum = s->dA_sum + slot * state_size;
    float *dbias_sum = s->dbias_sum + slot * SCAN_LANES;
    float *dD_sum = s->dD_sum + slot * SCAN_LANES;

    // Initial state: the end of chunk c - 1 (checkpoints is (B, n_chunks, N, D)), or zero.
    if (c == 0) {
        memset(s->states, 0, sizeof(float) * state_size);
    } else {
        const float *saved = call->checkpoints + ((size_t)b * call->n_chunks + c - 1) * N * D + d0;
        for (int n = 0; n < N; n++)
            #pragma omp simd
            for (int j = 0; j < SCAN_LANES; j++)
                s->states[n * SCAN_LANES + j] = j < width ? saved[(size_t)n * D + j] : 0.0f;
    }
    // Recompute: the same token_delta and state_step as the forward.
    for (int i = 0; i < T; i++) {
        const size_t row = (size_t)b * L + t0 + i;
        const float *B_t = call->B_ssm + row * N;
        float *delta = s->delta + i * SCAN_LANES;
        float delta_x[SCAN_LANES];
        token_delta(delta, delta_x, call->x + row * D + d0, call->dt + row * D + d0, bias, width);
        const float *h_prev = s->states + i * state_size;
        float *h_next = s->states + (i + 1) * state_size;
        for (int n = 0; n < N; n++)
            state_step(h_next + n * SCAN_LANES, h_prev + n * SCAN_LANES, delta, delta_x, A + (size_t)n * dp, B_t[n]);
    }
    // Reverse walk.
    for (int i = T - 1; i >= 0; i--) {
        const size_t row = (size_t)b * L + t0 + i;
        const float *x_t = call->x + row * D + d0, *dy_t = call->dy + row * D + d0;
        const float *B_t = call->B_ssm + row * N, *C_t = call->C_ssm + row * N;
        const float *delta = s->delta + i * SCAN_LANES;
        const float *h_prev = s->states + i * state_size, *h_cur = s->states + (i + 1) * state_size;
        float *dB_lanes = s->dB_lanes + i * state_size, *dC_lanes = s->dC_lanes + i * state_size;
        float xv[SCAN_LANES], dyv[SCAN_LANES], delta_x[SCAN_LANES];
        float g_dot_B[SCAN_LANES], d_delta[SCAN_LANES];
        #pragma omp simd
        for (int j = 0; j < SCAN_LANES; j++) {
            xv[j] = j < width ? x_t[j] : 0.0f;
            dyv[j] = j < width ? dy_t[j] : 0.0f;
            delta_x[j] = delta[j] * xv[j];
            g_dot_B[j] = 0.0f;
            d_delta[j] = 0.0f;
        }
        for (int n = 0; n < N; n++) {
            const float B_n = B_t[n], C_n = C_t[n];
            const float *A_n = A + (size_t)n * dp;
            float *carry_n = carry + n * SCAN_LANES, *dA_n = dA_sum + n * SCAN_LANES;
            const float *hp = h_prev + n * SCAN_LANES, *hc = h_cur + n * SCAN_LANES;
            float *dB_n = dB_lanes + n * SCAN_LANES, *dC_n = dC_lanes + n * SCAN_LANES;
            #pragma omp simd
            for (int j = 0; j < SCAN_LANES; j++) {
                float g = fmaf(dyv[j], C_n, carry_n[j]);
                float decay = fast_expf(delta[j] * A_n[j]);
                float g_decay = g * hp[j] * decay;  // dL/d(Δ A) at this state
                dC_n[j] = fmaf(dyv[j], hc[j], dC_n[j]);
                dB_n[j] = fmaf(g, delta_x[j], dB_n[j]);
                d_delta[j] = fmaf(g_decay, A_n[j], d_delta[j]);
                dA_n[j] = fmaf(g_decay, delta[j], dA_n[j]);
                g_dot_B[j] = fmaf(g, B_n, g_dot_B[j]);
                carry_n[j] = decay * g;
            }
        }
        const float *dt_t = call->dt + row * D + d0;
        float d_dt_t[SCAN_LANES], d_x_t[SCAN_LANES];
        #pragma omp simd
        for (int j = 0; j < SCAN_LANES; j++) {
            float dtj = j < width ? dt_t[j] : 0.0f;
            d_delta[j] = fmaf(xv[j], g_dot_B[j], d_delta[j]);
            d_dt_t[j] = d_delta[j] * sigmoidf(dtj + bias[j]);
            d_x_t[j] = fmaf(delta[j], g_dot_B[j], D_skip[j] * dyv[j]);
            dbias_sum[j] += d_dt_t[j];
            dD_sum[j] = fmaf(dyv[j], xv[j], dD_sum[j]);
        }
        if (call->d_x) {
            float *out = call->d_x + row * D + d0;
            for (int j = 0; j < width; j++) out[j] += d_x_t[j];
        }
        if (call->d_dt) {
            float *out = call->d_dt + row * D + d0;
            for (int j = 0; j < width; j++) out[j] += d_dt_t[j];
        }
    }
}

// Partial sums written by the items, reduced in a fixed order after the parallel loop.
typedef struct BackwardPartials {
    int groups;
    float *dA;                // (B, N, d_padded): Σ_t dL/dA of sequence b
    float *dbias;             // (B, d_padded)
    float *dD;                // (B, d_padded)
    float *dB;                // (G, B, L, N): Σ over the group's channels
    float *dC;                // (G, B, L, N)
} BackwardPartials;

// Work item (b, group): all chunks in reverse, and within each chunk the group's blocks
// in order; then the lane sums of the chunk go to the item's rows of the partials.
static void backward_item(const ScanCall *call, BackwardScratch *s, const BackwardPartials *p, int b, int group,
                          int blocks_per_group) {
    const int L = call->shape->seqlen, D = call->shape->d_inner, N = call->shape->d_state;
    const int n_blocks = call->tables->n_blocks, dp = call->tables->d_padded;
    const int tail_width = D - (n_blocks - 1) * SCAN_LANES;
    const int first = group * blocks_per_group;
    const int last = first + blocks_per_group < n_blocks ? first + blocks_per_group : n_blocks;
    const size_t state_size = (size_t)N * SCAN_LANES;
    const int n_slots = last - first;
    memset(s->carry, 0, sizeof(float) * n_slots * state_size);
    memset(s->dA_sum, 0, sizeof(float) * n_slots * state_size);
    memset(s->dbias_sum, 0, sizeof(float) * n_slots * SCAN_LANES);
    memset(s->dD_sum, 0, sizeof(float) * n_slots * SCAN_LANES);
    for (int c = call->n_chunks - 1; c >= 0; c--) {
        const int t0 = c * call->chunk;
        const int T = t0 + call->chunk < L ? call->chunk : L - t0;
        memset(s->dB_lanes, 0, sizeof(float) * T * state_size);
        memset(s->dC_lanes, 0, sizeof(float) * T * state_size);
        for (int block = first; block < last; block++) {
            if (block < n_blocks - 1 || tail_width == SCAN_LANES)
                backward_block_chunk(call, s, b, block, SCAN_LANES, block - first, c, t0, T);
            else
                backward_block_chunk(call, s, b, block, tail_width, block - first, c, t0, T);
        }
        // Sum the lanes (channels) of each token's d_B, d_C parts, in a fixed order.
        float *dB_rows = p->dB + (((size_t)group * call->shape->batch + b) * L + t0) * N;
        float *dC_rows = p->dC + (((size_t)group * call->shape->batch + b) * L + t0) * N;
        for (int i = 0; i < T * N; i++) {
            float sum_B = 0.0f, sum_C = 0.0f;
            for (int j = 0; j < SCAN_LANES; j++) {
                sum_B += s->dB_lanes[(size_t)i * SCAN_LANES + j];
                sum_C += s->dC_lanes[(size_t)i * SCAN_LANES + j];
            }
            dB_rows[i] = sum_B;
            dC_rows[i] = sum_C;
        }
    }
    // Per-channel sums of this sequence: the item's own (b, channels) rows.
    for (int block = first; block < last; block++) {
        const int slot = block - first, d0 = block * SCAN_LANES;
        for (int n = 0; n < N; n++)
            memcpy(p->dA + ((size_t)b * N + n) * dp + d0, s->dA_sum + (slot * state_size + n * SCAN_LANES),
                   sizeof(float) * SCAN_LANES);
        memcpy(p->dbias + (size_t)b * dp + d0, s->dbias_sum + slot * SCAN_LANES, sizeof(float) * SCAN_LANES);
        memcpy(p->dD + (size_t)b * dp + d0, s->dD_sum + slot * SCAN_LANES, sizeof(float) * SCAN_LANES);
    }
}

void selective_scan_backward(const SelectiveScanShape *shape, const float *dy, const float *checkpoints,
                             const float *x, const float *dt, const float *dt_bias, const float *A_log,
                             const float *B_ssm, const float *C_ssm, const float *D_skip,
                             float *d_x, float *d_dt, float *d_dt_bias, float *d_A_log,
                             float *d_B, float *d_C, float *d_D_skip) {
    const int Bsz = shape->batch, L = shape->seqlen, D = shape->d_inner, N = shape->d_state;
    if (Bsz <= 0 || L <= 0 || D <= 0 || N <= 0) return;
    ScanTables tables;
    tables_init(&tables, shape, dt_bias, A_log, D_skip);
    ScanCall call = {.shape = shape, .tables = &tables, .chunk = effective_chunk(shape),
                     .n_chunks = chunk_count(shape), .x = x, .dt = dt, .B_ssm = B_ssm, .C_ssm = C_ssm,
                     .dy = dy, .checkpoints = (float *)checkpoints, .d_x = d_x, .d_dt = d_dt};
    const int n_blocks = tables.n_blocks, dp = tables.d_padded;
    const int groups = backward_group_count(Bsz, n_blocks);
    const int blocks_per_group = (n_blocks + groups - 1) / groups;
    // Blocks per group rounded up may leave the last groups empty; count the real ones.
    const int used_groups = (n_blocks + blocks_per_group - 1) / blocks_per_group;
    const size_t token_rows = (size_t)Bsz * L * N;
    BackwardPartials partials = {.groups = used_groups};
    float *partial_buffer = alloc_lanes((size_t)Bsz * (N + 2) * dp + 2 * used_groups * token_rows);
    partials.dA = partial_buffer;
    partials.dbias = partials.dA + (size_t)Bsz * N * dp;
    partials.dD = partials.dbias + (size_t)Bsz * dp;
    partials.dB = partials.dD + (size_t)Bsz * dp;
    partials.dC = partials.dB + used_groups * token_rows;

#pragma omp parallel
    {
        BackwardScratch scratch;
        scratch_init(&scratch, call.chunk, N, blocks_per_group);
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < Bsz; b++)
            for (int group = 0; group < used_groups; group++)
                backward_item(&call, &scratch, &partials, b, group, blocks_per_group);
        scratch_free(&scratch);

        // Fixed-order reductions: over groups for d_B, d_C; over sequences for the rest.
        if (d_B || d_C) {
#pragma omp for schedule(static)
            for (size_t i = 0; i < token_rows; i++) {
                float sum_B = 0.0f, sum_C = 0.0f;
                for (int g = 0; g < used_groups; g++) {
                    sum_B += partials.dB[g * token_rows + i];
                    sum_C += partials.dC[g * token_rows + i];
                }
                if (d_B) d_B[i] += sum_B;
                if (d_C) d_C[i] += sum_C;
            }
        }
#pragma omp for schedule(static)
        for (int d = 0; d < D; d++) {
            float sum_bias = 0.0f, sum_D = 0.0f;
            for (int b = 0; b < Bsz; b++) {
                sum_bias += partials.dbias[(size_t)b * dp + d];
                sum_D += partials.dD[(size_t)b * dp + d];
            }
            if (d_dt_bias) d_dt_bias[d] += sum_bias;
            if (d_D_skip) d_D_skip[d] += sum_D;
            if (d_A_log) {
                for (int n = 0; n < N; n++) {
                    float sum_A = 0.0f;
                    for (int b = 0; b < Bsz; b++) sum_A += partials.dA[((size_t)b * N + n) * dp + d];
                    // A = -exp(A_log), so dA/dA_log = A.
                    d_A_log[(size_t)d * N + n] += sum_A * tables.A[(size_t)n * dp + d];
                }
            }
        }
    }
    free(partial_buffer);
    tables_free(&tables);
}
