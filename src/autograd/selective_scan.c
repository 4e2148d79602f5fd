// The fused selective scan of Mamba-1 (docs/DESIGN.md#model steps 4-6): a forward that keeps only chunk
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
//
// Memory: besides its outputs the forward holds one (N, 16) state per thread. The backward
// holds per thread, for chunk C and G = 16 blocks per group at most, the recomputed states
// and decays of one block (2 C N 16 floats), the lane sums of d_B, d_C (2 C N 16) and five
// per-token rows of the group (5 G C 16): 290 KB for C = 32, N = 16; and, shared, partial
// sums of B (N + 2) D + 2 G' B L N floats (G' groups).
//
// Speed (bench/bench_scan.c, B 8, L 256, D 512, N 16, two Zen 5 cores): about 2.2 ms forward
// and 4.7 ms backward; chunks of 16 to 128 tokens run alike (256 spills the scratch out of
// L2), so 32 is a good default. fast_expf is most of the cost: one per (b, t, d, n) in the
// forward and one in the recomputation.
#include "autograd/selective_scan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/scan_lanes.h"  // defines: SCAN_LANES, token_delta
#include "core/fastmath.h"        // defines: fast_expf, softplusf, sigmoidf

// The usual d_state, for which the kernels get a specialised copy.
#define SCAN_USUAL_N 16
// The forward computes Δ for this many tokens ahead of their state updates.
#define SCAN_TILE 16
// The backward's reverse walk handles this many states at a time.
#define SCAN_STATES_PER_WALK 4
// The backward splits channels into groups until there are at least this many work items
// (two per core of a 16-core machine: mamba-130m's batch of 4 otherwise left 24 items for
// 16 threads), and groups of at most this many blocks.
#define SCAN_MIN_WORK_ITEMS 32
#define SCAN_MAX_GROUP_BLOCKS 16

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
// Written once and inlined in both, so that both round identically (token_delta, in
// scan_lanes.h, is shared with SparseSSM's score too).

// h_t[n] = exp(Δ A[n]) h_{t-1}[n] + Δ x B_t[n] for the lanes of one state n; the decay
// exp(Δ A[n]) also goes to decay_out unless that is NULL.
static inline __attribute__((always_inline)) void state_step(float *h_next, const float *h_prev,
                                                             float *restrict decay_out, const float *restrict delta,
                                                             const float *restrict delta_x, const float *restrict A_n,
                                                             float B_n) {
#pragma omp simd
    for (int j = 0; j < SCAN_LANES; j++) {
        float decay = fast_expf(delta[j] * A_n[j]);
        if (decay_out) decay_out[j] = decay;
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

// Real channels in a block: 16, except in a partial last block. The kernels take the width
// (and N) as arguments of always-inline functions, and the callers pass constants where
// they can (16 lanes; N = 16, the default d_state), so gcc drops the masks and unrolls.
static int block_width(const ScanCall *call, int block) {
    const int rest = call->shape->d_inner - block * SCAN_LANES;
    return rest < SCAN_LANES ? rest : SCAN_LANES;
}

// Sequence b, channels [d0, d0 + width) of block `block`, all L tokens. h is (N, LANES);
// N is the shape's d_state, passed so that a constant can be inlined (see block_width).
static inline __attribute__((always_inline)) void forward_block(const ScanCall *call, int b, int block, int width,
                                                                int N, float *restrict h) {
    const int L = call->shape->seqlen, D = call->shape->d_inner;
    const int dp = call->tables->d_padded, d0 = block * SCAN_LANES;
    const float *A = call->tables->A + d0;        // A[n * dp + j]
    const float *bias = call->tables->dt_bias + d0;
    const float *D_skip = call->tables->D_skip + d0;
    float delta[SCAN_TILE * SCAN_LANES], delta_x[SCAN_TILE * SCAN_LANES], y_skip[SCAN_TILE * SCAN_LANES];
    memset(h, 0, sizeof(float) * N * SCAN_LANES);
    for (int t0 = 0; t0 < L; t0 += SCAN_TILE) {
        const int T = t0 + SCAN_TILE < L ? SCAN_TILE : L - t0;
        // The tile's per-token inputs in a loop of their own: softplus is long (two divides),
        // and here its latency overlaps across tokens instead of stalling each token's update.
        for (int i = 0; i < T; i++) {
            const size_t row = (size_t)b * L + t0 + i;  // token index in (B, L)
            const float *x_t = call->x + row * D + d0;
            token_delta(delta + i * SCAN_LANES, delta_x + i * SCAN_LANES, x_t, call->dt + row * D + d0, bias, width);
#pragma omp simd
            for (int j = 0; j < SCAN_LANES; j++) y_skip[i * SCAN_LANES + j] = D_skip[j] * (j < width ? x_t[j] : 0.0f);
        }
        for (int i = 0; i < T; i++) {
            const int t = t0 + i;
            const size_t row = (size_t)b * L + t;
            const float *B_t = call->B_ssm + row * N, *C_t = call->C_ssm + row * N;
            float y_t[SCAN_LANES];
            memcpy(y_t, y_skip + i * SCAN_LANES, sizeof y_t);
            for (int n = 0; n < N; n++) {
                float *h_n = h + n * SCAN_LANES;
                state_step(h_n, h_n, NULL, delta + i * SCAN_LANES, delta_x + i * SCAN_LANES, A + (size_t)n * dp, B_t[n]);
                const float C_n = C_t[n];
#pragma omp simd
                for (int j = 0; j < SCAN_LANES; j++) y_t[j] = fmaf(h_n[j], C_n, y_t[j]);
            }
            float *y_out = call->y + row * D + d0;
#pragma omp simd
            for (int j = 0; j < SCAN_LANES; j++)
                if (j < width) y_out[j] = y_t[j];
            // Save the state that ends each chunk: checkpoints is (B, n_chunks, N, D).
            if (call->checkpoints && ((t + 1) % call->chunk == 0 || t == L - 1)) {
                const int c = t / call->chunk;
                float *saved = call->checkpoints + ((size_t)b * call->n_chunks + c) * N * D + d0;
                for (int n = 0; n < N; n++)
#pragma omp simd
                    for (int j = 0; j < SCAN_LANES; j++)
                        if (j < width) saved[(size_t)n * D + j] = h[n * SCAN_LANES + j];
            }
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
#pragma omp parallel
    {
        float *h = alloc_lanes((size_t)N * SCAN_LANES);  // this thread's state, (N, LANES)
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < Bsz; b++)
            for (int block = 0; block < n_blocks; block++) {
                const int width = block_width(&call, block);
                if (width == SCAN_LANES && N == SCAN_USUAL_N)
                    forward_block(&call, b, block, SCAN_LANES, SCAN_USUAL_N, h);
                else if (width == SCAN_LANES)
                    forward_block(&call, b, block, SCAN_LANES, N, h);
                else
                    forward_block(&call, b, block, width, N, h);
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

// Channel groups for the backward: enough (b, group) items to feed the cores, and groups
// small enough for the scratch to stay in L2, but as few groups as that allows, since each
// costs one lane reduction per token. Depends on the shape only, which keeps the result
// independent of the thread count.
static int backward_group_count(int batch, int n_blocks) {
    int groups = (SCAN_MIN_WORK_ITEMS + batch - 1) / batch;
    int groups_for_size = (n_blocks + SCAN_MAX_GROUP_BLOCKS - 1) / SCAN_MAX_GROUP_BLOCKS;
    if (groups < groups_for_size) groups = groups_for_size;
    return groups < n_blocks ? groups : n_blocks;
}

// One thread's scratch for the backward; sizes for chunk C, N states, G blocks per group.
// A row of LANES floats holds one token's values for one block.
typedef struct BackwardScratch {
    // For the block being processed:
    float *states;            // (C + 1, N, LANES): row 0 the chunk's initial state, row i+1 h_{t0+i}
    float *decay;             // (C, N, LANES): exp(Δ A)
    // For every block of the group:
    float *dB_lanes;          // (C, N, LANES): per-lane parts of d_B, summed over the group's blocks
    float *dC_lanes;          // (C, N, LANES)
    float *delta;             // (G, C, LANES): Δ
    float *delta_x;           // (G, C, LANES): Δ x
    float *dy;                // (G, C, LANES): dy, zero in padding lanes
    float *d_delta;           // (G, C, LANES): Σ_n g h_{t-1} a A (dL/dΔ through the decay)
    float *g_dot_B;           // (G, C, LANES): Σ_n g B
    float *carry;             // (G, N, LANES): a_t g_t, flowing into token t - 1
    float *dA_sum;            // (G, N, LANES): Σ_t g h_{t-1} a Δ (dL/dA)
    float *dbias_sum;         // (G, LANES): Σ_t d_dt
    float *dD_sum;            // (G, LANES): Σ_t dy x
} BackwardScratch;

static void scratch_init(BackwardScratch *s, int chunk, int N, int blocks_per_group) {
    const size_t state_size = (size_t)N * SCAN_LANES, C = (size_t)chunk, G = (size_t)blocks_per_group;
    const size_t token_rows = G * C * SCAN_LANES;
    float *p = alloc_lanes((C + 1) * state_size + 3 * C * state_size + 5 * token_rows +
                           G * (2 * state_size + 2 * SCAN_LANES));
    s->states = p, p += (C + 1) * state_size;
    s->decay = p, p += C * state_size;
    s->dB_lanes = p, p += C * state_size;
    s->dC_lanes = p, p += C * state_size;
    s->delta = p, p += token_rows;
    s->delta_x = p, p += token_rows;
    s->dy = p, p += token_rows;
    s->d_delta = p, p += token_rows;
    s->g_dot_B = p, p += token_rows;
    s->carry = p, p += G * state_size;
    s->dA_sum = p, p += G * state_size;
    s->dbias_sum = p, p += G * SCAN_LANES;
    s->dD_sum = p;
}

static void scratch_free(BackwardScratch *s) { free(s->states); }

// The backward's view of one block in one chunk: which tokens and channels, and where in
// the scratch its rows are.
typedef struct BlockChunk {
    int b, block, width;      // sequence, block index, real channels in the block (<= LANES)
    int slot;                 // block index within its group
    int c, t0, T;             // chunk index, its first token and its length
} BlockChunk;

// Per-token inputs of one token of a block: Δ and Δ x exactly as the forward computed
// them, and dy. i is the token's index within the chunk.
static inline __attribute__((always_inline)) void backward_token_inputs(const ScanCall *call, BackwardScratch *s,
                                                                        const BlockChunk *bc, int width, int i) {
    const int D = call->shape->d_inner, d0 = bc->block * SCAN_LANES;
    const size_t row = (size_t)bc->b * call->shape->seqlen + bc->t0 + i;
    const size_t at = ((size_t)bc->slot * call->chunk + i) * SCAN_LANES;
    token_delta(s->delta + at, s->delta_x + at, call->x + row * D + d0, call->dt + row * D + d0,
                call->tables->dt_bias + d0, width);
    const float *dy_t = call->dy + row * D + d0;
#pragma omp simd
    for (int j = 0; j < SCAN_LANES; j++) s->dy[at + j] = j < width ? dy_t[j] : 0.0f;
}

// The states of one block over one chunk: recompute them from the checkpoint before the
// chunk, then walk the tokens in reverse, carrying dL/dh into the previous chunk.
static inline __attribute__((always_inline)) void backward_block_states(const ScanCall *call, BackwardScratch *s,
                                                                        const BlockChunk *bc, int width, int N) {
    const int L = call->shape->seqlen, D = call->shape->d_inner;
    const int dp = call->tables->d_padded, d0 = bc->block * SCAN_LANES, T = bc->T;
    const float *A = call->tables->A + d0;
    const size_t state_size = (size_t)N * SCAN_LANES;
    const size_t row0 = (size_t)bc->b * L + bc->t0;  // first token of the chunk in (B, L)
    const size_t tokens_at = (size_t)bc->slot * call->chunk * SCAN_LANES;
    const float *delta_all = s->delta + tokens_at, *delta_x_all = s->delta_x + tokens_at;
    const float *dy_all = s->dy + tokens_at;
    float *carry = s->carry + bc->slot * state_size, *dA_sum = s->dA_sum + bc->slot * state_size;

    // Initial state: the end of chunk c - 1 (checkpoints is (B, n_chunks, N, D)), or zero.
    if (bc->c == 0) {
        memset(s->states, 0, sizeof(float) * state_size);
    } else {
        const float *saved = call->checkpoints + ((size_t)bc->b * call->n_chunks + bc->c - 1) * N * D + d0;
        for (int n = 0; n < N; n++)
#pragma omp simd
            for (int j = 0; j < SCAN_LANES; j++)
                s->states[n * SCAN_LANES + j] = j < width ? saved[(size_t)n * D + j] : 0.0f;
    }
    // Recompute the states (and keep the decays) with the forward's state_step; with h_t at
    // hand, add this block's part of dC_t[n] = Σ_d dy_t h_t[n].
    for (int i = 0; i < T; i++) {
        const float *B_t = call->B_ssm + (row0 + i) * N;
        const float *h_prev = s->states + i * state_size, *dy = dy_all + i * SCAN_LANES;
        float *h_next = s->states + (i + 1) * state_size, *decay = s->decay + i * state_size;
        float *dC_lanes = s->dC_lanes + i * state_size;
        for (int n = 0; n < N; n++) {
            const size_t at = (size_t)n * SCAN_LANES;
            state_step(h_next + at, h_prev + at, decay + at, delta_all + i * SCAN_LANES, delta_x_all + i * SCAN_LANES,
                       A + (size_t)n * dp, B_t[n]);
#pragma omp simd
            for (int j = 0; j < SCAN_LANES; j++) dC_lanes[at + j] = fmaf(dy[j], h_next[at + j], dC_lanes[at + j]);
        }
    }
    // Reverse walk, SCAN_STATES_PER_WALK states at a time: their carries and dL/dA sums then
    // stay in registers across the tokens, which matters as this loop is bound by stores.
    // The sums over n (d_delta, g_dot_B) still run n = 0..N-1 in order.
    float *d_delta_all = s->d_delta + tokens_at, *g_dot_B_all = s->g_dot_B + tokens_at;
    memset(d_delta_all, 0, sizeof(float) * T * SCAN_LANES);
    memset(g_dot_B_all, 0, sizeof(float) * T * SCAN_LANES);
    for (int n0 = 0; n0 < N; n0 += SCAN_STATES_PER_WALK) {
        const int K = n0 + SCAN_STATES_PER_WALK <= N ? SCAN_STATES_PER_WALK : N - n0;  // states in this walk
        float carry_k[SCAN_STATES_PER_WALK][SCAN_LANES], dA_k[SCAN_STATES_PER_WALK][SCAN_LANES];
        float A_k[SCAN_STATES_PER_WALK][SCAN_LANES];
        for (int k = 0; k < K; k++) {
            memcpy(carry_k[k], carry + (size_t)(n0 + k) * SCAN_LANES, sizeof carry_k[k]);
            memcpy(dA_k[k], dA_sum + (size_t)(n0 + k) * SCAN_LANES, sizeof dA_k[k]);
            memcpy(A_k[k], A + (size_t)(n0 + k) * dp, sizeof A_k[k]);
        }
        for (int i = T - 1; i >= 0; i--) {
            const size_t row = row0 + i, at = (size_t)n0 * SCAN_LANES;
            const float *B_t = call->B_ssm + row * N + n0, *C_t = call->C_ssm + row * N + n0;
            const float *delta = delta_all + i * SCAN_LANES, *delta_x = delta_x_all + i * SCAN_LANES;
            const float *dy = dy_all + i * SCAN_LANES;
            const float *h_prev = s->states + i * state_size + at, *decay = s->decay + i * state_size + at;
            float *dB_lanes = s->dB_lanes + i * state_size + at;
            float *d_delta = d_delta_all + i * SCAN_LANES, *g_dot_B = g_dot_B_all + i * SCAN_LANES;
#pragma omp simd
            for (int j = 0; j < SCAN_LANES; j++) {
                float d_delta_j = d_delta[j], g_dot_B_j = g_dot_B[j];
                for (int k = 0; k < K; k++) {
                    const size_t kj = (size_t)k * SCAN_LANES + j;
                    float g = fmaf(dy[j], C_t[k], carry_k[k][j]);      // dL/dh_t
                    float g_decay = g * h_prev[kj] * decay[kj];         // dL/d(Δ A)
                    dB_lanes[kj] = fmaf(g, delta_x[j], dB_lanes[kj]);
                    d_delta_j = fmaf(g_decay, A_k[k][j], d_delta_j);
                    dA_k[k][j] = fmaf(g_decay, delta[j], dA_k[k][j]);
                    g_dot_B_j = fmaf(g, B_t[k], g_dot_B_j);
                    carry_k[k][j] = decay[kj] * g;
                }
                d_delta[j] = d_delta_j;
                g_dot_B[j] = g_dot_B_j;
            }
        }
        for (int k = 0; k < K; k++) {
            memcpy(carry + (size_t)(n0 + k) * SCAN_LANES, carry_k[k], sizeof carry_k[k]);
            memcpy(dA_sum + (size_t)(n0 + k) * SCAN_LANES, dA_k[k], sizeof dA_k[k]);
        }
    }
}

// Gradients of one token of a block from its d_delta and g_dot_B: d_x, d_dt, and the
// per-channel sums (taken in reverse token order, the same order for any chunk size).
static inline __attribute__((always_inline)) void backward_token_outputs(const ScanCall *call, BackwardScratch *s,
                                                                         const BlockChunk *bc, int width, int i) {
    const int D = call->shape->d_inner, d0 = bc->block * SCAN_LANES;
    const size_t row = (size_t)bc->b * call->shape->seqlen + bc->t0 + i;
    const size_t at = ((size_t)bc->slot * call->chunk + i) * SCAN_LANES;
    const float *bias = call->tables->dt_bias + d0, *D_skip = call->tables->D_skip + d0;
    const float *x_t = call->x + row * D + d0, *dt_t = call->dt + row * D + d0;
    const float *delta = s->delta + at, *dy = s->dy + at, *d_delta = s->d_delta + at, *g_dot_B = s->g_dot_B + at;
    float *dbias_sum = s->dbias_sum + bc->slot * SCAN_LANES, *dD_sum = s->dD_sum + bc->slot * SCAN_LANES;
    float d_dt_t[SCAN_LANES], d_x_t[SCAN_LANES];
#pragma omp simd
    for (int j = 0; j < SCAN_LANES; j++) {
        float xj = j < width ? x_t[j] : 0.0f;
        float dtj = j < width ? dt_t[j] : 0.0f;
        d_dt_t[j] = fmaf(xj, g_dot_B[j], d_delta[j]) * sigmoidf(dtj + bias[j]);
        d_x_t[j] = fmaf(delta[j], g_dot_B[j], D_skip[j] * dy[j]);
        dbias_sum[j] += d_dt_t[j];
        dD_sum[j] = fmaf(dy[j], xj, dD_sum[j]);
    }
    if (call->d_x) {
        float *out = call->d_x + row * D + d0;
#pragma omp simd
        for (int j = 0; j < SCAN_LANES; j++)
            if (j < width) out[j] += d_x_t[j];
    }
    if (call->d_dt) {
        float *out = call->d_dt + row * D + d0;
#pragma omp simd
        for (int j = 0; j < SCAN_LANES; j++)
            if (j < width) out[j] += d_dt_t[j];
    }
}

// Partial sums written by the items, reduced in a fixed order after the parallel loop.
typedef struct BackwardPartials {
    float *dA;                // (B, N, d_padded): Σ_t dL/dA of sequence b
    float *dbias;             // (B, d_padded)
    float *dD;                // (B, d_padded)
    float *dB;                // (G, B, L, N): Σ over the group's channels
    float *dC;                // (G, B, L, N)
} BackwardPartials;

// The kernels with constant arguments where possible (see block_width).
static void token_inputs(const ScanCall *call, BackwardScratch *s, const BlockChunk *bc, int i) {
    if (bc->width == SCAN_LANES)
        backward_token_inputs(call, s, bc, SCAN_LANES, i);
    else
        backward_token_inputs(call, s, bc, bc->width, i);
}

static void block_states(const ScanCall *call, BackwardScratch *s, const BlockChunk *bc) {
    const int N = call->shape->d_state;
    if (bc->width == SCAN_LANES && N == SCAN_USUAL_N)
        backward_block_states(call, s, bc, SCAN_LANES, SCAN_USUAL_N);
    else if (bc->width == SCAN_LANES)
        backward_block_states(call, s, bc, SCAN_LANES, N);
    else
        backward_block_states(call, s, bc, bc->width, N);
}

static void token_outputs(const ScanCall *call, BackwardScratch *s, const BlockChunk *bc, int i) {
    if (bc->width == SCAN_LANES)
        backward_token_outputs(call, s, bc, SCAN_LANES, i);
    else
        backward_token_outputs(call, s, bc, bc->width, i);
}

// out[r] = Σ_j lanes[r][j] over the 16 lanes of each row, as a fixed pairwise tree;
// lanes is (rows, LANES).
_Static_assert(SCAN_LANES == 16, "sum_lanes is written for 16 lanes");
static void sum_lanes(float *restrict out, const float *restrict lanes, size_t rows) {
    for (size_t r = 0; r < rows; r++) {
        const float *v = lanes + r * SCAN_LANES;
        float half[8], quarter[4];
        for (int j = 0; j < 8; j++) half[j] = v[j] + v[j + 8];
        for (int j = 0; j < 4; j++) quarter[j] = half[j] + half[j + 4];
        out[r] = (quarter[0] + quarter[2]) + (quarter[1] + quarter[3]);
    }
}

// Work item (b, group): all chunks in reverse. For each chunk, the per-token inputs of all
// the group's blocks token by token (x, dt, dy are read in runs of the group's channels
// rather than one 64-byte piece per row), then the states block by block, then the
// per-token outputs token by token (d_x, d_dt updated in runs likewise); finally the
// chunk's lane sums go to the item's rows of the partials.
static void backward_item(const ScanCall *call, BackwardScratch *s, const BackwardPartials *p, int b, int group,
                          int blocks_per_group) {
    const int L = call->shape->seqlen, N = call->shape->d_state;
    const int n_blocks = call->tables->n_blocks, dp = call->tables->d_padded;
    const int first = group * blocks_per_group;
    const int last = first + blocks_per_group < n_blocks ? first + blocks_per_group : n_blocks;
    const int n_slots = last - first;
    const size_t state_size = (size_t)N * SCAN_LANES;
    memset(s->carry, 0, sizeof(float) * n_slots * state_size);
    memset(s->dA_sum, 0, sizeof(float) * n_slots * state_size);
    memset(s->dbias_sum, 0, sizeof(float) * n_slots * SCAN_LANES);
    memset(s->dD_sum, 0, sizeof(float) * n_slots * SCAN_LANES);
    for (int c = call->n_chunks - 1; c >= 0; c--) {
        BlockChunk bc = {.b = b, .c = c, .t0 = c * call->chunk};
        bc.T = bc.t0 + call->chunk < L ? call->chunk : L - bc.t0;
        for (int i = 0; i < bc.T; i++)
            for (bc.block = first; bc.block < last; bc.block++) {
                bc.slot = bc.block - first, bc.width = block_width(call, bc.block);
                token_inputs(call, s, &bc, i);
            }
        memset(s->dB_lanes, 0, sizeof(float) * bc.T * state_size);
        memset(s->dC_lanes, 0, sizeof(float) * bc.T * state_size);
        for (bc.block = first; bc.block < last; bc.block++) {
            bc.slot = bc.block - first, bc.width = block_width(call, bc.block);
            block_states(call, s, &bc);
        }
        for (int i = bc.T - 1; i >= 0; i--)
            for (bc.block = first; bc.block < last; bc.block++) {
                bc.slot = bc.block - first, bc.width = block_width(call, bc.block);
                token_outputs(call, s, &bc, i);
            }
        // Sum the lanes (channels) of each token's d_B, d_C parts.
        const size_t first_row = ((size_t)group * call->shape->batch + b) * L + bc.t0;
        sum_lanes(p->dB + first_row * N, s->dB_lanes, (size_t)bc.T * N);
        sum_lanes(p->dC + first_row * N, s->dC_lanes, (size_t)bc.T * N);
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
    BackwardPartials partials;
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
