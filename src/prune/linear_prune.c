// The pruning kernels of one weight tensor (see linear_prune.h): selection of the lowest
// scores, magnitude, Wanda, SparseGPT (with its Cholesky factor of H⁻¹), and the
// calibration statistics. Plain C with cblas; the O(n³) factorisations are in double.
#include "prune/linear_prune.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool prune_target_is_nm(const PruneTarget *target) { return target->nm_n > 0 || target->nm_m > 0; }

int prune_target_check(const PruneTarget *t, int cols, const char *name, Error *err) {
    if (prune_target_is_nm(t)) {
        if (t->nm_n <= 0 || t->nm_m <= 0)
            return error_set(err, "prune.nm_n, prune.nm_m: N:M sparsity needs both > 0, got %d:%d (%s)", t->nm_n,
                             t->nm_m, name);
        if (t->nm_n >= t->nm_m)
            return error_set(err, "prune.nm_n: must be < prune.nm_m (nm_n of every nm_m weights pruned), got %d:%d (%s)",
                             t->nm_n, t->nm_m, name);
        if (cols % t->nm_m != 0)
            return error_set(err, "prune.nm_m: %s has rows of %d columns, not a multiple of nm_m = %d "
                                  "(leave it out with prune.exclude)",
                             name, cols, t->nm_m);
        return 0;
    }
    if (!(t->sparsity >= 0.0 && t->sparsity < 1.0))
        return error_set(err, "prune.final_sparsity: must be in [0, 1), got %g (%s)", t->sparsity, name);
    return 0;
}

size_t prune_count(double sparsity, size_t n) { return (size_t)llround(sparsity * (double)n); }

// ---- selection of the lowest scores ----

// The k-th smallest (0-based) of a[0..n), reordering a: quickselect with a three-way
// partition, so that many equal values (zeros, already pruned weights) stay linear.
static double kth_smallest(double *a, size_t n, size_t k) {
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        double x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
        double pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t lt = lo, i = lo, gt = hi;  // [lo, lt) < pivot, [lt, i) == pivot, [gt, hi) > pivot
        while (i < gt) {
            double v = a[i];
            if (v < pivot) {
                a[i++] = a[lt];
                a[lt++] = v;
            } else if (v > pivot) {
                a[i] = a[--gt];
                a[gt] = v;
            } else {
                i++;
            }
        }
        if (k < lt) hi = lt;
        else if (k >= gt) lo = gt;
        else return pivot;
    }
    return a[lo];
}

// Prunes (keep = 0) the k lowest of scores[0..n) (NaN-free), ties to the lower index.
// scratch holds n doubles.
static void prune_lowest(const double *scores, size_t n, size_t k, uint8_t *keep, double *scratch) {
    if (k == 0) return;
    memcpy(scratch, scores, n * sizeof(double));
    double threshold = kth_smallest(scratch, n, k - 1);
    size_t below = 0;
    for (size_t i = 0; i < n; i++) below += scores[i] < threshold;
    size_t ties = k - below;  // entries equal to the threshold still to prune, lowest index first
    for (size_t i = 0; i < n; i++) {
        if (scores[i] < threshold) keep[i] = 0;
        else if (scores[i] == threshold && ties > 0) keep[i] = 0, ties--;
    }
}

// Prunes the nm_n lowest of each group of nm_m consecutive scores of a row (ties to the lower index).
static void prune_lowest_nm(const double *scores, int cols, int nm_n, int nm_m, uint8_t *keep) {
    for (int g = 0; g < cols; g += nm_m) {
        for (int p = 0; p < nm_n; p++) {
            int lowest = -1;
            for (int j = g; j < g + nm_m; j++)
                if (keep[j] && (lowest < 0 || scores[j] < scores[lowest])) lowest = j;
            // Entries pruned before count towards the group's nm_n.
            int already = 0;
            for (int j = g; j < g + nm_m; j++) already += !keep[j];
            if (already >= nm_n || lowest < 0) break;
            keep[lowest] = 0;
        }
    }
}

static int check_scores(const double *scores, size_t n, const char *name, Error *err) {
    for (size_t i = 0; i < n; i++)
        if (isnan(scores[i])) return error_set(err, "%s: a pruning score is NaN (index %zu): non-finite weights or statistics", name, i);
    return 0;
}

static void zero_pruned(const WeightView *w) {
    size_t n = (size_t)w->rows * (size_t)w->cols;
    for (size_t i = 0; i < n; i++)
        if (!w->keep[i]) w->data[i] = 0.0f;
}

// Selects from scores (rows, cols) by the target: per tensor, per row (cumulative
// rounding) or N:M; weights pruned before must already score -INFINITY.
static int select_by_target(const WeightView *w, const double *scores, const PruneTarget *t, bool per_row, Error *err) {
    size_t n = (size_t)w->rows * (size_t)w->cols;
    if (check_scores(scores, n, w->name, err)) return -1;
    if (prune_target_is_nm(t)) {
        for (int r = 0; r < w->rows; r++)
            prune_lowest_nm(scores + (size_t)r * w->cols, w->cols, t->nm_n, t->nm_m, w->keep + (size_t)r * w->cols);
    } else if (per_row) {
        double *scratch = xmalloc((size_t)w->cols * sizeof(double));
        for (int r = 0; r < w->rows; r++) {
            size_t k = prune_count(t->sparsity, (size_t)(r + 1) * w->cols) - prune_count(t->sparsity, (size_t)r * w->cols);
            prune_lowest(scores + (size_t)r * w->cols, (size_t)w->cols, k, w->keep + (size_t)r * w->cols, scratch);
        }
        free(scratch);
    } else {
        double *scratch = xmalloc(n * sizeof(double));
        prune_lowest(scores, n, prune_count(t->sparsity, n), w->keep, scratch);
        free(scratch);
    }
    zero_pruned(w);
    return 0;
}

// ---- magnitude ----

int magnitude_prune(const WeightView *w, const PruneTarget *target, Error *err) {
    if (prune_target_check(target, w->cols, w->name, err)) return -1;
    size_t n = (size_t)w->rows * (size_t)w->cols;
    double *scores = xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) scores[i] = w->keep[i] ? fabs((double)w->data[i]) : -INFINITY;
    int rc = select_by_target(w, scores, target, false, err);
    free(scores);
    return rc;
}

int magnitude_prune_global(const WeightView *tensors, int n_tensors, double sparsity, Error *err) {
    PruneTarget target = {.sparsity = sparsity};
    size_t total = 0;
    for (int i = 0; i < n_tensors; i++) {
        if (prune_target_check(&target, tensors[i].cols, tensors[i].name, err)) return -1;
        total += (size_t)tensors[i].rows * (size_t)tensors[i].cols;
    }
    // All the scores, and all the masks, as one concatenated tensor.
    double *scores = xmalloc(total * sizeof(double));
    uint8_t *keep = xmalloc(total);
    size_t at = 0;
    for (int i = 0; i < n_tensors; i++) {
        const WeightView *w = &tensors[i];
        size_t size = (size_t)w->rows * (size_t)w->cols;
        for (size_t j = 0; j < size; j++) scores[at + j] = w->keep[j] ? fabs((double)w->data[j]) : -INFINITY;
        memcpy(keep + at, w->keep, size);
        at += size;
    }
    int rc = check_scores(scores, total, "prune.magnitude_scope: global", err);
    if (rc == 0) {
        double *scratch = xmalloc(total * sizeof(double));
        prune_lowest(scores, total, prune_count(sparsity, total), keep, scratch);
        free(scratch);
        at = 0;
        for (int i = 0; i < n_tensors; i++) {
            size_t size = (size_t)tensors[i].rows * (size_t)tensors[i].cols;
            memcpy(tensors[i].keep, keep + at, size);
            zero_pruned(&tensors[i]);
            at += size;
        }
    }
    free(scores);
    free(keep);
    return rc;
}

// ---- wanda ----

int wanda_prune(const WeightView *w, const double *col_sq, const PruneTarget *target, Error *err) {
    if (prune_target_check(target, w->cols, w->name, err)) return -1;
    double *scores = xmalloc((size_t)w->rows * (size_t)w->cols * sizeof(double));
    for (int r = 0; r < w->rows; r++)
        for (int j = 0; j < w->cols; j++) {
            size_t i = (size_t)r * w->cols + j;
            scores[i] = w->keep[i] ? fabs((double)w->data[i]) * sqrt(col_sq[j]) : -INFINITY;
        }
    int rc = select_by_target(w, scores, target, true, err);
    free(scores);
    return rc;
}

// ---- calibration statistics ----

void linear_stats_init(LinearStats *s, int cols, bool gram) {
    s->cols = cols;
    s->tokens = 0;
    s->sq = xcalloc((size_t)cols, sizeof(double));
    s->gram = gram ? xcalloc((size_t)cols * cols, sizeof(float)) : NULL;
}

void linear_stats_free(LinearStats *s) {
    free(s->sq);
    free(s->gram);
    memset(s, 0, sizeof *s);
}

void linear_stats_add(LinearStats *s, const float *X, int T) {
    int n = s->cols;
    for (int t = 0; t < T; t++) {
        const float *x = X + (size_t)t * n;
        for (int j = 0; j < n; j++) s->sq[j] += (double)x[j] * x[j];
    }
    // gram (n, n) += Xᵀ X, upper triangle.
    if (s->gram) cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, n, T, 1.0f, X, n, 1.0f, s->gram, n);
    s->tokens += T;
}

void linear_stats_hessian(const LinearStats *s, float *H) {
    int n = s->cols;
    float scale = s->tokens > 0 ? 2.0f / (float)s->tokens : 0.0f;
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++) H[(size_t)i * n + j] = H[(size_t)j * n + i] = scale * s->gram[(size_t)i * n + j];
}

// ---- sparsegpt ----

// In place: the lower Cholesky factor L of a symmetric positive definite A (n, n),
// A = L Lᵀ; the strict upper triangle is zeroed. Returns -1 when a pivot is not positive.
// Serial on purpose: n³/6 multiply-adds are 20 ms at n = 576, and a parallel region per
// column costs more than that on a busy machine.
static int cholesky_lower(double *A, int n) {
    for (int j = 0; j < n; j++) {
        double *row_j = A + (size_t)j * n;
        double s = row_j[j];
        for (int k = 0; k < j; k++) s -= row_j[k] * row_j[k];
        if (!(s > 0.0) || !isfinite(s)) return -1;
        double pivot = sqrt(s);
        row_j[j] = pivot;
        for (int i = j + 1; i < n; i++) {
            double *row_i = A + (size_t)i * n;
            double v = row_i[j];
            for (int k = 0; k < j; k++) v -= row_i[k] * row_j[k];
            row_i[j] = v / pivot;
        }
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) A[(size_t)i * n + j] = 0.0;
    return 0;
}

// U (n, n) upper triangular with Uᵀ U = A⁻¹, for A symmetric positive definite (what
// torch.linalg.cholesky(torch.cholesky_inverse(...), upper=True) gives the reference).
// With J the reversal of the indices: JAJ = L Lᵀ (lower Cholesky), so A = V Vᵀ with
// V = JLJ upper, A⁻¹ = (V⁻¹)ᵀ V⁻¹ and U = V⁻¹ = J L⁻¹ J: one factorisation and one
// triangular inverse. A is overwritten. Returns -1 when A is not positive definite.
static int inverse_cholesky_upper(double *A, int n, double *U) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) U[(size_t)i * n + j] = A[(size_t)(n - 1 - i) * n + (n - 1 - j)];
    if (cholesky_lower(U, n)) return -1;
    // A := L⁻¹: solve L X = I.
    for (size_t i = 0; i < (size_t)n * n; i++) A[i] = 0.0;
    for (int i = 0; i < n; i++) A[(size_t)i * n + i] = 1.0;
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n, n, 1.0, U, n, A, n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) U[(size_t)i * n + j] = A[(size_t)(n - 1 - i) * n + (n - 1 - j)];
    return 0;
}

int sparsegpt_prune(const WeightView *w, const float *H_in, const SparsegptOptions *o, const PruneTarget *t,
                    SparsegptResult *result, Error *err) {
    if (prune_target_check(t, w->cols, w->name, err)) return -1;
    if (o->blocksize < 1) return error_set(err, "prune.blocksize: must be >= 1, got %d", o->blocksize);
    if (!(o->percdamp >= 0.0)) return error_set(err, "prune.percdamp: must be >= 0, got %g", o->percdamp);
    const int rows = w->rows, n = w->cols;
    const bool nm = prune_target_is_nm(t);
    int blocksize = o->blocksize;
    if (nm) blocksize = blocksize < t->nm_m ? t->nm_m : blocksize - blocksize % t->nm_m;

    double *H = xmalloc((size_t)n * n * sizeof(double));
    double *W = xmalloc((size_t)rows * n * sizeof(double));
    for (size_t i = 0; i < (size_t)n * n; i++) H[i] = H_in[i];
    for (size_t i = 0; i < (size_t)rows * n; i++) W[i] = w->data[i];
    SparsegptResult r = {0};
    double mean_diag = 0.0;
    for (int j = 0; j < n; j++) {
        double *h = &H[(size_t)j * n + j];
        if (*h == 0.0) {  // an input that is always 0: its weights do nothing
            *h = 1.0;
            for (int i = 0; i < rows; i++) W[(size_t)i * n + j] = 0.0;
            r.dead_columns++;
        }
        mean_diag += *h / n;
    }
    for (int j = 0; j < n; j++) H[(size_t)j * n + j] += o->percdamp * mean_diag;
    double *U = xmalloc((size_t)n * n * sizeof(double));
    if (inverse_cholesky_upper(H, n, U)) {
        free(H), free(W), free(U);
        return error_set(err, "sparsegpt: %s: the calibration Hessian (plus %g * mean diagonal) is not positive definite; "
                              "raise prune.percdamp or prune.nsamples",
                         w->name, o->percdamp);
    }
    free(H);

    uint8_t *keep = w->keep;
    double *scores = xmalloc((size_t)rows * blocksize * sizeof(double));
    double *scratch = xmalloc((size_t)rows * blocksize * sizeof(double));
    uint8_t *block_keep = xmalloc((size_t)rows * blocksize);
    double *E = xmalloc((size_t)rows * blocksize * sizeof(double));  // (rows, count) (w - q) / U_jj
    double loss = 0.0;
    int rc = 0;
    for (int i1 = 0; i1 < n && rc == 0; i1 += blocksize) {
        int i2 = i1 + blocksize < n ? i1 + blocksize : n, count = i2 - i1;
        for (int r0 = 0; r0 < rows; r0++)
            memcpy(block_keep + (size_t)r0 * count, keep + (size_t)r0 * n + i1, (size_t)count);
        if (!nm) {
            // The block's share of the tensor's count, lowest w² / U_jj² over all its rows.
            for (int r0 = 0; r0 < rows; r0++)
                for (int c = 0; c < count; c++) {
                    double u = U[(size_t)(i1 + c) * n + i1 + c], v = W[(size_t)r0 * n + i1 + c];
                    scores[(size_t)r0 * count + c] = block_keep[(size_t)r0 * count + c] ? v * v / (u * u) : -INFINITY;
                }
            size_t k = prune_count(t->sparsity, (size_t)rows * i2) - prune_count(t->sparsity, (size_t)rows * i1);
            if ((rc = check_scores(scores, (size_t)rows * count, w->name, err))) break;
            prune_lowest(scores, (size_t)rows * count, k, block_keep, scratch);
        }
        // Rows are independent inside a block: prune column by column, OBS-updating the rest of the block.
#pragma omp parallel for schedule(static) reduction(+ : loss) if ((long)rows * count * count > 100000)
        for (int r0 = 0; r0 < rows; r0++) {
            double *wr = W + (size_t)r0 * n, *er = E + (size_t)r0 * count;
            uint8_t *kr = block_keep + (size_t)r0 * count;
            double group_scores[64];
            for (int c = 0; c < count; c++) {
                int j = i1 + c;
                if (nm && c % t->nm_m == 0) {
                    // The mask of this group, from the weights as updated so far.
                    double *gs = t->nm_m <= 64 ? group_scores : xmalloc((size_t)t->nm_m * sizeof(double));
                    for (int g = 0; g < t->nm_m; g++) {
                        double u = U[(size_t)(j + g) * n + j + g], v = wr[j + g];
                        gs[g] = v * v / (u * u);
                    }
                    prune_lowest_nm(gs, t->nm_m, t->nm_n, t->nm_m, kr + c);
                    if (gs != group_scores) free(gs);
                }
                double d = U[(size_t)j * n + j];
                double q = kr[c] ? wr[j] : 0.0;
                double e = (wr[j] - q) / d;
                loss += e * e / 2.0;
                wr[j] = q;
                const double *u_row = U + (size_t)j * n;
                for (int c2 = c + 1; c2 < count; c2++) wr[i1 + c2] -= e * u_row[i1 + c2];
                er[c] = e;
            }
        }
        // The lazy batch update of every later column: W[:, i2:] -= E U[i1:i2, i2:].
        if (i2 < n)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, n - i2, count, -1.0, E, count,
                        U + (size_t)i1 * n + i2, n, 1.0, W + i2, n);
        for (int r0 = 0; r0 < rows; r0++)
            memcpy(keep + (size_t)r0 * n + i1, block_keep + (size_t)r0 * count, (size_t)count);
    }
    if (rc == 0) {
        for (size_t i = 0; i < (size_t)rows * n; i++) w->data[i] = keep[i] ? (float)W[i] : 0.0f;
        r.obs_loss = loss;
        if (result) *result = r;
    }
    free(scores), free(scratch), free(block_keep), free(E), free(U), free(W);
    return rc;
}
