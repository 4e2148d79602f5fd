// The pruning kernels of src/prune/linear_prune.c on small layers, each against a direct
// computation: magnitude and Wanda prune exactly the right count and the right entries;
// N:M patterns are exact in every group; SparseGPT's OBS updates give the least-squares
// optimum where that is known in closed form (a pruned prefix of the columns), its
// reconstruction error beats magnitude's and Wanda's on the same calibration inputs, and
// its lazy block updates do not change the result; bad targets fail naming the key.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "prune/linear_prune.h"

typedef struct Layer {
    int rows, cols, T;
    float *W;                 // (rows, cols)
    float *X;                 // (T, cols) calibration inputs
    float *H;                 // (cols, cols) (2/T) XᵀX
    double *sq;               // (cols)
} Layer;

// Random W, and inputs X = Z M with correlated columns (so that H is far from diagonal).
static void layer_create(Layer *l, int rows, int cols, int T, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    *l = (Layer){.rows = rows, .cols = cols, .T = T};
    l->W = malloc(sizeof(float) * rows * cols);
    l->X = calloc((size_t)T * cols, sizeof(float));
    l->H = malloc(sizeof(float) * cols * cols);
    float *Z = malloc(sizeof(float) * T * cols), *M = malloc(sizeof(float) * cols * cols);
    for (int i = 0; i < rows * cols; i++) l->W[i] = rng_normal(&rng);
    for (int i = 0; i < T * cols; i++) Z[i] = rng_normal(&rng);
    for (int i = 0; i < cols * cols; i++) M[i] = (i % (cols + 1) == 0 ? 1.0f : 0.0f) + 0.4f * rng_normal(&rng);
    for (int j = 0; j < cols; j++) {  // column scales differ, as activations do
        float scale = 0.2f + 2.0f * rng_uniform(&rng);
        for (int t = 0; t < T; t++) {
            float v = 0;
            for (int k = 0; k < cols; k++) v += Z[t * cols + k] * M[k * cols + j];
            l->X[t * cols + j] = scale * v;
        }
    }
    LinearStats stats;
    linear_stats_init(&stats, cols, true);
    linear_stats_add(&stats, l->X, T / 2);  // in two batches, as the driver adds them
    linear_stats_add(&stats, l->X + (size_t)(T / 2) * cols, T - T / 2);
    linear_stats_hessian(&stats, l->H);
    l->sq = malloc(sizeof(double) * cols);
    memcpy(l->sq, stats.sq, sizeof(double) * cols);
    linear_stats_free(&stats);
    free(Z), free(M);
}

static void layer_free(Layer *l) { free(l->W), free(l->X), free(l->H), free(l->sq); }

typedef struct Pruned {
    float *W;
    uint8_t *keep;
    WeightView view;
} Pruned;

static Pruned pruned_copy(const Layer *l, const char *name) {
    Pruned p;
    p.W = malloc(sizeof(float) * l->rows * l->cols);
    p.keep = malloc((size_t)l->rows * l->cols);
    memcpy(p.W, l->W, sizeof(float) * l->rows * l->cols);
    memset(p.keep, 1, (size_t)l->rows * l->cols);
    p.view = (WeightView){name, p.W, p.keep, l->rows, l->cols};
    return p;
}

static void pruned_free(Pruned *p) { free(p->W), free(p->keep); }

static size_t count_pruned(const Pruned *p) {
    size_t n = 0;
    for (int i = 0; i < p->view.rows * p->view.cols; i++) n += p->keep[i] == 0;
    return n;
}

static bool pruned_are_zero(const Pruned *p) {
    for (int i = 0; i < p->view.rows * p->view.cols; i++)
        if (!p->keep[i] && p->W[i] != 0.0f) return false;
    return true;
}

// ||W X - Ŵ X||² over the calibration tokens, directly.
static double reconstruction_error(const Layer *l, const float *W_hat) {
    double total = 0;
    for (int t = 0; t < l->T; t++)
        for (int r = 0; r < l->rows; r++) {
            double diff = 0;
            for (int j = 0; j < l->cols; j++) diff += ((double)l->W[r * l->cols + j] - W_hat[r * l->cols + j]) * l->X[t * l->cols + j];
            total += diff * diff;
        }
    return total;
}

// Every group of m has exactly n pruned, and the pruned weights are 0.
static bool nm_exact(const Pruned *p, int n, int m) {
    for (int r = 0; r < p->view.rows; r++)
        for (int g = 0; g < p->view.cols; g += m) {
            int zeros = 0;
            for (int j = g; j < g + m; j++) zeros += !p->keep[r * p->view.cols + j];
            if (zeros != n) return false;
        }
    return pruned_are_zero(p);
}

static void test_targets(void) {
    Error err;
    check(prune_count(0.5, 7) == 4 && prune_count(0.3, 10) == 3 && prune_count(0.0, 9) == 0, "prune_count rounds");
    check_error("sparsity 1", prune_target_check(&(PruneTarget){.sparsity = 1.0}, 8, "w", &err), &err,
                "prune.final_sparsity", "[0, 1)", NULL);
    check_error("sparsity -0.1", prune_target_check(&(PruneTarget){.sparsity = -0.1}, 8, "w", &err), &err,
                "prune.final_sparsity", NULL);
    check_error("N:M 4:4", prune_target_check(&(PruneTarget){.nm_n = 4, .nm_m = 4}, 8, "w", &err), &err, "prune.nm_n",
                "4:4", NULL);
    check_error("N:M 2:4 on 6 columns", prune_target_check(&(PruneTarget){.nm_n = 2, .nm_m = 4}, 6, "my.weight", &err),
                &err, "prune.nm_m", "my.weight", "6", NULL);
    check_error("N:M 2:0", prune_target_check(&(PruneTarget){.nm_n = 2, .nm_m = 0}, 8, "w", &err), &err, "prune.nm_n",
                NULL);
    Layer l;
    layer_create(&l, 3, 8, 20, 1);
    Pruned p = pruned_copy(&l, "w");
    check_error("magnitude with sparsity 1", magnitude_prune(&p.view, &(PruneTarget){.sparsity = 1.0}, &err), &err,
                "prune.final_sparsity", NULL);
    check_error("wanda with 4:3", wanda_prune(&p.view, l.sq, &(PruneTarget){.nm_n = 4, .nm_m = 3}, &err),
                &err, "prune.nm_n", NULL);
    check_error("sparsegpt with 2:3 on 8 columns",
                sparsegpt_prune(&p.view, l.H, &(SparsegptOptions){0.01, 128}, &(PruneTarget){.nm_n = 2, .nm_m = 3}, NULL, &err),
                &err, "prune.nm_m", NULL);
    check(count_pruned(&p) == 0, "failed calls prune nothing");
    pruned_free(&p);
    layer_free(&l);
}

static void test_magnitude(void) {
    // Ties: |-1| = |1| at indices 1 and 4; the lower index goes first.
    float W[12] = {0.5f, -1.0f, 3.0f, 0.2f, 1.0f, -2.0f, 4.0f, -0.1f, 2.5f, 0.3f, -5.0f, 1.5f};
    uint8_t keep[12];
    memset(keep, 1, 12);
    keep[11] = 0;  // pruned before: stays pruned and counts
    WeightView v = {"w", W, keep, 3, 4};
    Error err;
    int rc = magnitude_prune(&v, &(PruneTarget){.sparsity = 0.5}, &err);
    // The 6 pruned: index 11 (before), then |w| 0.1, 0.2, 0.3, 0.5, 1.0 (index 1, not 4).
    uint8_t expect[12] = {0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0};
    check(rc == 0 && memcmp(keep, expect, 12) == 0, "magnitude per tensor: the 6 smallest |w|, ties to the lower index");
    bool zero = true;
    for (int i = 0; i < 12; i++) zero = zero && (keep[i] || W[i] == 0.0f);
    check(zero && W[4] == 1.0f && W[2] == 3.0f, "magnitude: pruned weights are 0, kept ones unchanged");

    // Global: one threshold over two tensors of different scales.
    float A[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, B[4] = {10, 0.05f, 20, 0.25f};
    uint8_t ka[6], kb[4];
    memset(ka, 1, 6), memset(kb, 1, 4);
    WeightView both[2] = {{"a", A, ka, 2, 3}, {"b", B, kb, 1, 4}};
    rc = magnitude_prune_global(both, 2, 0.5, &err);
    uint8_t ea[6] = {0, 0, 0, 1, 1, 1}, eb[4] = {1, 0, 1, 0};
    check(rc == 0 && memcmp(ka, ea, 6) == 0 && memcmp(kb, eb, 4) == 0, "magnitude global: the 5 smallest of 10 over both tensors");

    // A random tensor against a sort.
    Layer l;
    layer_create(&l, 7, 10, 4, 2);
    Pruned p = pruned_copy(&l, "w");
    rc = magnitude_prune(&p.view, &(PruneTarget){.sparsity = 0.37}, &err);
    float max_pruned = 0, min_kept = INFINITY;
    for (int i = 0; i < 70; i++) {
        float a = fabsf(l.W[i]);
        if (p.keep[i]) min_kept = fminf(min_kept, a);
        else max_pruned = fmaxf(max_pruned, a);
    }
    check(rc == 0 && count_pruned(&p) == 26 && max_pruned <= min_kept,
          "magnitude random 7x10 at 0.37: %zu pruned (26 = round(25.9)), max pruned |w| %.3f <= min kept %.3f",
          count_pruned(&p), max_pruned, min_kept);
    pruned_free(&p);
    layer_free(&l);
    layer_create(&l, 7, 12, 4, 2);
    p = pruned_copy(&l, "w");
    rc = magnitude_prune(&p.view, &(PruneTarget){.nm_n = 1, .nm_m = 3}, &err);
    bool lowest = true;
    for (int r = 0; r < 7; r++)
        for (int g = 0; g < 12; g += 3)
            for (int j = g; j < g + 3; j++)
                for (int k = g; k < g + 3; k++)
                    if (!p.keep[r * 12 + j] && p.keep[r * 12 + k]) lowest = lowest && fabsf(l.W[r * 12 + j]) <= fabsf(l.W[r * 12 + k]);
    check(rc == 0 && nm_exact(&p, 1, 3) && lowest, "magnitude 1:3: one pruned per group, the smallest");
    pruned_free(&p);
    layer_free(&l);
}

static void test_wanda(void) {
    Layer l;
    layer_create(&l, 5, 9, 40, 3);
    Pruned p = pruned_copy(&l, "w");
    Error err;
    int rc = wanda_prune(&p.view, l.sq, &(PruneTarget){.sparsity = 0.5}, &err);
    // Direct: S_ij = |W_ij| sqrt(Σ_t X_tj²) from X itself; per row, cumulative rounding of 4.5.
    bool right = true;
    size_t expected_total = 0;
    for (int r = 0; r < 5; r++) {
        int pruned = 0;
        double max_pruned = -1, min_kept = INFINITY;
        for (int j = 0; j < 9; j++) {
            double norm = 0;
            for (int t = 0; t < 40; t++) norm += (double)l.X[t * 9 + j] * l.X[t * 9 + j];
            double s = fabs(l.W[r * 9 + j]) * sqrt(norm);
            if (p.keep[r * 9 + j]) min_kept = fmin(min_kept, s);
            else max_pruned = fmax(max_pruned, s), pruned++;
        }
        int expect = (int)(llround(0.5 * 9 * (r + 1)) - llround(0.5 * 9 * r));
        expected_total += expect;
        right = right && pruned == expect && max_pruned <= min_kept;
    }
    check(rc == 0 && right && count_pruned(&p) == 23 && expected_total == 23 && pruned_are_zero(&p),
          "wanda per row: the lowest |W| ||X_j|| of each row, rows of 5/4/5/4/5, 23 = round(22.5) in all");
    pruned_free(&p);
    layer_free(&l);

    layer_create(&l, 6, 16, 40, 4);
    p = pruned_copy(&l, "w");
    rc = wanda_prune(&p.view, l.sq, &(PruneTarget){.nm_n = 2, .nm_m = 4}, &err);
    check(rc == 0 && nm_exact(&p, 2, 4), "wanda 2:4: exactly 2 pruned in every group of 4");
    pruned_free(&p);
    layer_free(&l);
}

// Solves A x = b (n, n) by Gaussian elimination with partial pivoting, in place.
static void solve(double *A, double *b, int n) {
    for (int k = 0; k < n; k++) {
        int best = k;
        for (int i = k + 1; i < n; i++)
            if (fabs(A[i * n + k]) > fabs(A[best * n + k])) best = i;
        for (int j = 0; j < n; j++) {
            double t = A[k * n + j];
            A[k * n + j] = A[best * n + j], A[best * n + j] = t;
        }
        double t = b[k];
        b[k] = b[best], b[best] = t;
        for (int i = k + 1; i < n; i++) {
            double f = A[i * n + k] / A[k * n + k];
            for (int j = k; j < n; j++) A[i * n + j] -= f * A[k * n + j];
            b[i] -= f * b[k];
        }
    }
    for (int k = n - 1; k >= 0; k--) {
        for (int j = k + 1; j < n; j++) b[k] -= A[k * n + j] * b[j];
        b[k] /= A[k * n + k];
    }
}

static void test_sparsegpt(void) {
    Error err;
    // (1) A pruned prefix of the columns: sequential OBS is then the exact least-squares
    // optimum min ||(w - ŵ) X||² with ŵ = 0 on the prefix, i.e. H_RR ŵ_R = (H w)_R on the
    // kept columns R. The prefix weights are made tiny, the others not, so that w² / U_jj²
    // picks exactly the prefix.
    {
        const int rows = 4, cols = 12, prefix = 5;
        Layer l;
        layer_create(&l, rows, cols, 200, 5);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++) {
                float *v = &l.W[r * cols + j];
                *v = j < prefix ? 1e-3f * *v : copysignf(0.5f + fabsf(*v), *v);
            }
        Pruned p = pruned_copy(&l, "w");
        SparsegptResult result;
        int rc = sparsegpt_prune(&p.view, l.H, &(SparsegptOptions){0.0, 128},
                                 &(PruneTarget){.sparsity = (double)prefix / cols}, &result, &err);
        double max_diff = 0, max_w = 0;
        bool prefix_pruned = true;
        const int R = cols - prefix;
        for (int r = 0; r < rows; r++) {
            double A[12 * 12], b[12];
            for (int i = 0; i < R; i++) {
                b[i] = 0;
                for (int j = 0; j < cols; j++) b[i] += (double)l.H[(prefix + i) * cols + j] * l.W[r * cols + j];
                for (int j = 0; j < R; j++) A[i * R + j] = l.H[(prefix + i) * cols + prefix + j];
            }
            solve(A, b, R);
            for (int j = 0; j < cols; j++) {
                double want = j < prefix ? 0.0 : b[j - prefix];
                max_diff = fmax(max_diff, fabs(want - p.W[r * cols + j]));
                max_w = fmax(max_w, fabs(want));
                if (j < prefix) prefix_pruned = prefix_pruned && !p.keep[r * cols + j];
            }
        }
        check(rc == 0 && prefix_pruned && count_pruned(&p) == (size_t)rows * prefix && max_diff < 1e-5 * max_w,
              "sparsegpt prefix: OBS weights = least-squares optimum (max diff %.2e, max |w| %.2f)", max_diff, max_w);
        pruned_free(&p);
        layer_free(&l);
    }
    // (2) Reconstruction error on the calibration inputs: SparseGPT < Wanda and < magnitude.
    for (int b = 0; b < 2; b++) {
        int blocksize = b == 0 ? 128 : 8;
        Layer l;
        layer_create(&l, 16, 32, 256, 6);
        PruneTarget half = {.sparsity = 0.5};
        Pruned mag = pruned_copy(&l, "w"), wanda = pruned_copy(&l, "w"), gpt = pruned_copy(&l, "w");
        int rc = magnitude_prune(&mag.view, &half, &err) | wanda_prune(&wanda.view, l.sq, &half, &err) |
                 sparsegpt_prune(&gpt.view, l.H, &(SparsegptOptions){0.01, blocksize}, &half, NULL, &err);
        double e_mag = reconstruction_error(&l, mag.W), e_wanda = reconstruction_error(&l, wanda.W),
               e_gpt = reconstruction_error(&l, gpt.W);
        check(rc == 0 && count_pruned(&gpt) == 256 && pruned_are_zero(&gpt) && e_gpt < e_wanda && e_gpt < e_mag,
              "blocksize %d: ||WX - ŴX||² sparsegpt %.1f < wanda %.1f, magnitude %.1f; 256 of 512 pruned", blocksize,
              e_gpt, e_wanda, e_mag);
        pruned_free(&mag), pruned_free(&wanda), pruned_free(&gpt);
        layer_free(&l);
    }
    // (3) N:M: exact groups, and the lazy block updates change nothing: blocks of 4 and
    // one block of all columns choose the same masks and weights.
    {
        Layer l;
        layer_create(&l, 8, 24, 100, 7);
        Pruned one = pruned_copy(&l, "w"), small = pruned_copy(&l, "w"), odd = pruned_copy(&l, "w");
        PruneTarget nm = {.nm_n = 2, .nm_m = 4};
        int rc = sparsegpt_prune(&one.view, l.H, &(SparsegptOptions){0.01, 128}, &nm, NULL, &err) |
                 sparsegpt_prune(&small.view, l.H, &(SparsegptOptions){0.01, 4}, &nm, NULL, &err) |
                 sparsegpt_prune(&odd.view, l.H, &(SparsegptOptions){0.01, 7}, &nm, NULL, &err);
        double max_diff = 0;
        for (int i = 0; i < 8 * 24; i++)
            max_diff = fmax(max_diff, fmax(fabs(one.W[i] - small.W[i]), fabs(one.W[i] - odd.W[i])));
        check(rc == 0 && nm_exact(&one, 2, 4) && nm_exact(&odd, 2, 4) && memcmp(one.keep, small.keep, 8 * 24) == 0 &&
                  memcmp(one.keep, odd.keep, 8 * 24) == 0 && max_diff < 1e-5,
              "sparsegpt 2:4: exact groups; blocks of 128, 4 and 7 (-> 4) agree (max diff %.1e)", max_diff);
        double e_gpt = reconstruction_error(&l, one.W);
        Pruned mag = pruned_copy(&l, "w");
        rc = magnitude_prune(&mag.view, &nm, &err);
        check(rc == 0 && e_gpt < reconstruction_error(&l, mag.W), "sparsegpt 2:4 error %.1f < magnitude 2:4 %.1f", e_gpt,
              reconstruction_error(&l, mag.W));
        pruned_free(&one), pruned_free(&small), pruned_free(&odd), pruned_free(&mag);
        layer_free(&l);
    }
    // (4) A dead input (always 0) and a weight pruned before; an indefinite H.
    {
        Layer l;
        layer_create(&l, 6, 10, 50, 8);
        for (int t = 0; t < 50; t++) l.X[t * 10 + 3] = 0;
        LinearStats stats;
        linear_stats_init(&stats, 10, true);
        linear_stats_add(&stats, l.X, 50);
        linear_stats_hessian(&stats, l.H);
        linear_stats_free(&stats);
        Pruned p = pruned_copy(&l, "w");
        p.keep[0] = 0;
        SparsegptResult result;
        int rc = sparsegpt_prune(&p.view, l.H, &(SparsegptOptions){0.01, 128}, &(PruneTarget){.sparsity = 0.3}, &result, &err);
        bool dead_zero = true;
        for (int r = 0; r < 6; r++) dead_zero = dead_zero && p.W[r * 10 + 3] == 0.0f;
        check(rc == 0 && result.dead_columns == 1 && dead_zero && !p.keep[0] && count_pruned(&p) == 18 && result.obs_loss > 0,
              "sparsegpt: a dead input is zeroed, a weight pruned before stays pruned, 18 pruned, loss %.3f", result.obs_loss);
        pruned_free(&p);
        // 5 tokens for 10 inputs: H is singular, and without dampening not positive definite.
        layer_free(&l);
        layer_create(&l, 6, 10, 5, 9);
        p = pruned_copy(&l, "w");
        rc = sparsegpt_prune(&p.view, l.H, &(SparsegptOptions){0.0, 128}, &(PruneTarget){.sparsity = 0.5}, NULL, &err);
        check_error("singular H without dampening", rc, &err, "not positive definite", "prune.percdamp", NULL);
        rc = sparsegpt_prune(&p.view, l.H, &(SparsegptOptions){0.01, 128}, &(PruneTarget){.sparsity = 0.5}, NULL, &err);
        check(rc == 0 && count_pruned(&p) == 30, "singular H with dampening 0.01: pruned");
        pruned_free(&p);
        layer_free(&l);
    }
}

static void test_stats(void) {
    Layer l;
    layer_create(&l, 2, 6, 30, 10);
    double max_diff = 0, max_sq = 0;
    for (int i = 0; i < 6; i++) {
        double sq = 0;
        for (int j = 0; j < 6; j++) {
            double h = 0;
            for (int t = 0; t < 30; t++) h += (double)l.X[t * 6 + i] * l.X[t * 6 + j];
            max_diff = fmax(max_diff, fabs(2.0 * h / 30 - l.H[i * 6 + j]));
            if (i == j) sq = h;
        }
        max_sq = fmax(max_sq, fabs(sq - l.sq[i]));
    }
    check(max_diff < 1e-4 && max_sq < 1e-6, "linear stats: H = (2/n) XᵀX (max diff %.1e), column sums of squares", max_diff);
    layer_free(&l);
}

int main(void) {
    test_targets();
    test_magnitude();
    test_wanda();
    test_sparsegpt();
    test_stats();
    return check_summary("linear pruning kernels");
}
