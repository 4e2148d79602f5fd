// SparseSSM (docs/DESIGN.md#one-shot-methods): one-shot pruning of the SSM's A_log with a time-weighted OBS score,
// its N:M and structured (whole state column) variants, and the component-sensitivity
// sparsity allocation used for the linear layers that SparseGPT prunes alongside.
//
// This module only computes: scores from a layer's scan inputs, masks from scores, the
// shrunken model of the structured variant, and per-layer sparsities. Calibration data,
// the layer-by-layer driver and SparseGPT itself live elsewhere.
#ifndef MP_PRUNE_SPARSESSM_H
#define MP_PRUNE_SPARSESSM_H

#include <stdint.h>

#include "autograd/selective_scan.h"  // defines: SelectiveScanShape
#include "core/error.h"
#include "mamba/model.h"              // defines: MambaModel

// ---- time weights ----

typedef enum SparsessmWeighting {
    SPARSESSM_HARMONIC,       // w_t ∝ 1/(t+1), the default of docs/DESIGN.md#one-shot-methods
    SPARSESSM_UNIFORM,        // w_t ∝ 1
    SPARSESSM_GEOMETRIC,      // w_t ∝ gamma^t, 0 < gamma <= 1
    SPARSESSM_WINDOW,         // w_t ∝ 1 for t < ceil(L/4), 0 after
} SparsessmWeighting;

// Writes the L weights w[0..L) of `kind`, normalised to sum 1 (computed in double, stored
// as float). gamma is read only for SPARSESSM_GEOMETRIC. Fails for L < 1, a gamma outside
// (0, 1] (geometric only) or an unknown kind.
int sparsessm_time_weights(SparsessmWeighting kind, double gamma, int L, float *w, Error *err);

// ---- scores of A_log ----

// One layer, one batch of calibration sequences. Shapes as in selective_scan.h:
//   x, dt: (B, L, D)  x is the scan's input (after conv + silu); dt is dt_proj's output
//                     BEFORE the bias and softplus
//   dt_bias: (D)  A_log: (D, N)  B_ssm: (B, L, N)  time_weights: (L)  scores: (D, N)
// With Δ = softplus(dt + dt_bias), A = -exp(A_log), Ā_t = exp(Δ_t A) and the scan's states
// h_t = Ā_t h_{t-1} + Δ_t x_t B_t (h_{-1} = 0), ADDS into scores
//   scores[d, n] += Σ_b Σ_t w_t Ā_{b,t,d,n}² h_{b,t-1,d,n}²
// (the per-step OBS score M_t = Ā_t² ⊙ h_{t-1}², weighted over time). The states are the
// forward scan's, rounded the same way; only the sum is in double. The caller divides by
// the number of sequences at the end, so that every sample weighs the same. Never holds
// (B, L, D, N): one (N, 16) state per thread. Parallel over blocks of 16 channels with the
// sequences walked in order inside a block, so the result is the same to the bit for any
// number of threads. shape->chunk is not used.
void sparsessm_accumulate_alog_scores(const SelectiveScanShape *shape, const float *x, const float *dt,
                                      const float *dt_bias, const float *A_log, const float *B_ssm,
                                      const float *time_weights, double *scores);

// ---- masks over A_log ----
//
// Masks are (D, N) bytes, 1 = kept, 0 = pruned; higher scores are more important. Ties are
// broken by index everywhere: of two equal scores, the entry (or column) with the lower
// index is pruned first. A NaN score is an error.

// Prunes exactly round(sparsity * D * N) lowest-scored entries of the layer; sparsity in [0, 1).
int sparsessm_mask_unstructured(const double *scores, int D, int N, double sparsity, uint8_t *mask, Error *err);

// Semi-structured n:m along the state axis: in each row d, every group of m consecutive
// states keeps its n highest. Needs 0 < n < m and N % m == 0.
int sparsessm_mask_nm(const double *scores, int D, int N, int n, int m, uint8_t *mask, Error *err);

// Structured: the score of state column n is Σ_d scores[d, n]; drops the round(sparsity * N)
// lowest columns, but keeps at least one. keep[n] = 1 for a kept column. Returns the number
// kept (>= 1), or -1 on error (sparsity outside [0, 1), D or N < 1, a NaN score).
int sparsessm_choose_state_columns(const double *scores, int D, int N, double sparsity, uint8_t *keep, Error *err);

// Builds `out` (created here with mamba_model_create; the caller frees it, and on failure
// there is nothing to free) equal to `in` but with d_state = n_keep. keep is (n_layer, N):
// layer i keeps the state columns n with keep[i*N + n] != 0, exactly n_keep of them in
// every layer (the columns may differ between layers), in their original order. The A_log
// columns and the matching B rows (x_proj rows R..R+N) and C rows (x_proj rows R+N..R+2N)
// are kept; every other parameter is copied. Since the state dimensions of the scan are
// independent, out computes what `in` computes with the dropped C rows (or the dropped B
// rows) zeroed.
int sparsessm_shrink_state(const MambaModel *in, const uint8_t *keep, int n_keep, MambaModel *out, Error *err);

// ---- component-sensitivity allocation for the linear layers ----

// The extreme layers that get a ramp of sparsities: at most this many at each end.
#define SPARSESSM_RAMP_LAYERS 24

// The sensitivity of one linear layer from its Hessian H = (2/n) Σ X Xᵀ (cols x cols,
// row-major): Σ_j H_jj² / cols, in double.
double sparsessm_sensitivity(const float *H, int cols);

// Per-layer sparsities for one kind of component (all the in_proj's, or all the
// out_proj's), from their sensitivities. Layers are ranked by sensitivity (ascending; ties
// by layer index, lower first; NaN counts as most sensitive). With k = min(24, n_layers / 2)
// (rounded down) and a = the effective alpha (below):
//   - the k least sensitive layers, from the least: p + a, ..., p (linearly, k values);
//   - the k most sensitive, from the most: p - a, ..., p (likewise);
//   - every other layer: p. For k = 1 the two extremes get p + a/2 and p - a/2.
// The two ramps mirror each other, so the mean over layers is exactly p (up to rounding).
// To keep that true and every value inside [0, 0.99], alpha is reduced to
// a = max(0, min(alpha, p, 0.99 - p)); a p outside [0, 0.99] is clamped to it first (then
// the mean is the clamped p). One layer (k = 0) simply gets p.
void sparsessm_allocate_sparsity(const double *sensitivity, int n_layers, double p, double alpha, double *sparsity);

#endif
