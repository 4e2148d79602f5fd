// The pruning kernels of one weight tensor (docs/DESIGN.md#one-shot-methods): magnitude, Wanda and SparseGPT,
// unstructured or N:M, and the calibration statistics of a linear layer's input that they
// read (the Gram matrix XᵀX and the squared column norms). They know nothing of models,
// data or layers: the one-shot driver (oneshot.c) feeds them.
//
// Conventions shared by every kernel:
// - A weight is (rows, cols) row-major: a linear layer's (out, in); N:M groups are nm_m
//   consecutive input columns of a row.
// - keep is the tensor's mask (1 = kept). On entry a 0 is a weight pruned before: it stays
//   pruned and counts towards the target (it ranks below every kept weight). On return
//   keep holds the new mask and every pruned weight is exactly 0.
// - Unstructured targets prune exactly prune_count(sparsity, rows * cols) weights of the
//   tensor. Per-row methods spread them over the rows by cumulative rounding (row r prunes
//   prune_count(s, (r+1) cols) - prune_count(s, r cols)), so each row is within one of
//   the others and the tensor total is still exact. Ties are broken by index: of two
//   equal scores the lower index is pruned first. N:M prunes exactly nm_n per group.
#ifndef MP_PRUNE_LINEAR_PRUNE_H
#define MP_PRUNE_LINEAR_PRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

// What to prune of one tensor.
typedef struct PruneTarget {
    double sparsity;          // unstructured: the fraction pruned, in [0, 1) (prune.final_sparsity)
    int nm_n, nm_m;           // N:M when either is > 0: nm_n pruned in every group of nm_m
                              // consecutive columns (sparsity is then not read)
} PruneTarget;

// One weight tensor and its mask (neither owned).
typedef struct WeightView {
    const char *name;         // for messages, e.g. the parameter's name
    float *data;              // (rows, cols)
    uint8_t *keep;            // (rows, cols), 1 = kept
    int rows, cols;
} WeightView;

bool prune_target_is_nm(const PruneTarget *target);
// Checks a target for a tensor of `cols` columns. The messages name the key at fault
// (prune.final_sparsity, prune.nm_n, prune.nm_m) and the tensor.
int prune_target_check(const PruneTarget *target, int cols, const char *name, Error *err);
// round(sparsity * n): the number of weights that an unstructured target prunes of n.
size_t prune_count(double sparsity, size_t n);

// ---- calibration statistics of one linear layer's input X (T, cols) ----

typedef struct LinearStats {
    int cols;
    long tokens;              // rows of X seen
    double *sq;               // (cols) Σ_t X_tj², always
    float *gram;              // (cols, cols) Σ_t X_tᵀ X_t, upper triangle only; NULL unless asked for
} LinearStats;

void linear_stats_init(LinearStats *stats, int cols, bool gram);
void linear_stats_free(LinearStats *stats);
// Adds the T rows of X (T, cols): cblas_ssyrk into the Gram matrix.
void linear_stats_add(LinearStats *stats, const float *X, int T);
// H = (2/n) Σ XᵀX over the n tokens seen, as a full symmetric (cols, cols) matrix (docs/DESIGN.md#one-shot-methods;
// every token weighs the same). Needs the Gram matrix.
void linear_stats_hessian(const LinearStats *stats, float *H);

// ---- the kernels ----

// Magnitude: the smallest |w| of the tensor (unstructured), or of every N:M group.
int magnitude_prune(const WeightView *w, const PruneTarget *target, Error *err);
// Magnitude with one threshold over n tensors together: exactly
// prune_count(sparsity, Σ sizes) weights, the smallest |w| of all (ties: earlier tensor,
// then lower index, first). The views' rows and cols only give their sizes.
int magnitude_prune_global(const WeightView *tensors, int n, double sparsity, Error *err);

// Wanda: S_ij = |W_ij| ||X_j||₂ (col_sq[j] = Σ_t X_tj²), the lowest of each output row
// (unstructured), or of every N:M group.
int wanda_prune(const WeightView *w, const double *col_sq, const PruneTarget *target, Error *err);

typedef struct SparsegptOptions {
    double percdamp;          // dampening: percdamp * mean(diag H) is added to diag H
    int blocksize;            // columns per block (lazy batched updates); with N:M rounded down
                              // to a multiple of nm_m (at least nm_m) so that no group spans two blocks
} SparsegptOptions;

typedef struct SparsegptResult {
    double obs_loss;          // Σ over pruned weights of (w - 0)² / (2 U_jj²), SparseGPT's error estimate
    int dead_columns;         // inputs with H_jj = 0 (never nonzero): H_jj set to 1, W[:, j] zeroed
} SparsegptResult;

// SparseGPT (Frantar & Alistarh 2023) on H = (2/n) Σ XᵀX (cols, cols, full symmetric):
// dead inputs (H_jj = 0) get H_jj = 1 and W[:, j] = 0 as in the reference; then
// H += percdamp * mean(diag H) I; U is the upper Cholesky factor of H⁻¹ (Uᵀ U = H⁻¹).
// Columns are walked in blocks: at the start of a block the mask of the block is chosen
// by w² / U_jj² (unstructured: the block's share of the count, lowest over all rows of
// the block, like the reference; N:M: per group, when the walk reaches the group, from
// the updated weights), then each column is pruned in turn with the OBS update
// W[r, j+1:] -= (w_rj - q_rj) / U_jj * U[j, j+1:] inside the block and a batched update
// of the later columns at its end. Fails when H + damping is not positive definite.
// result may be NULL.
int sparsegpt_prune(const WeightView *w, const float *H, const SparsegptOptions *options, const PruneTarget *target,
                    SparsegptResult *result, Error *err);

#endif
