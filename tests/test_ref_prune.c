// SparseGPT and Wanda (linear_prune.h) against an independent PyTorch implementation of
// the papers' algorithms (tools/ref_prune.py, which wrote fixtures/ref_prune.txt): one
// layer with correlated calibration inputs, unstructured 50% and 2:4, SparseGPT in blocks
// of 16 columns. Masks must agree (except at exact ties), pruned weights within 1e-4
// relative, and the reconstruction errors ||WX - W'X|| within 1e-4 relative.
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "ref_fixture.h"
#include "prune/linear_prune.h"

// ||W X^T - W' X^T||_F for W, W' (rows, cols) and X (T, cols).
static double recon_error(const double *W, const float *Wp, const double *X, int rows, int cols, int T) {
    double sum = 0.0;
    for (int r = 0; r < rows; r++)
        for (int t = 0; t < T; t++) {
            double d = 0.0;
            for (int j = 0; j < cols; j++) d += (W[(size_t)r * cols + j] - Wp[(size_t)r * cols + j]) * X[(size_t)t * cols + j];
            sum += d * d;
        }
    return sqrt(sum);
}

static void compare(const Fixture *f, const char *method, const char *tag) {
    const Array *W = find(f, "weight"), *X = find(f, "inputs");
    char name[96];
    snprintf(name, sizeof name, "%s_%s_weight", method, tag);
    const Array *ref_w = find(f, name);
    snprintf(name, sizeof name, "%s_%s_keep", method, tag);
    const Array *ref_keep = find(f, name);
    snprintf(name, sizeof name, "%s_%s_recon", method, tag);
    const Array *ref_recon = find(f, name);
    if (!ref_w || !ref_keep || !ref_recon) {
        check(0, "%s %s: in the fixture", method, tag);
        return;
    }
    int rows = W->rows, cols = W->cols, T = X->rows;
    size_t n = (size_t)rows * cols;
    float *data = malloc(n * sizeof(float));
    uint8_t *keep = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = (float)W->v[i], keep[i] = 1;
    float *Xf = malloc((size_t)T * cols * sizeof(float));
    for (size_t i = 0; i < (size_t)T * cols; i++) Xf[i] = (float)X->v[i];
    PruneTarget target = {.sparsity = 0.5};
    if (strcmp(tag, "nm24") == 0) target = (PruneTarget){.nm_n = 2, .nm_m = 4};
    WeightView v = {"layer", data, keep, rows, cols};
    LinearStats stats;
    linear_stats_init(&stats, cols, true);
    linear_stats_add(&stats, Xf, T);
    Error err;
    int rc;
    if (strcmp(method, "wanda") == 0) {
        rc = wanda_prune(&v, stats.sq, &target, &err);
    } else {
        float *H = malloc((size_t)cols * cols * sizeof(float));
        linear_stats_hessian(&stats, H);
        SparsegptOptions options = {0.01, 16};
        rc = sparsegpt_prune(&v, H, &options, &target, NULL, &err);
        free(H);
    }
    check(rc == 0, "%s %s: runs (%s)", method, tag, rc ? err.message : "");
    size_t mask_diff = 0;
    double max_rel = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref_w->v[i]));
    for (size_t i = 0; i < n; i++) {
        mask_diff += keep[i] != (uint8_t)ref_keep->v[i];
        max_rel = fmax(max_rel, fabs(data[i] - ref_w->v[i]) / scale);
    }
    check(mask_diff == 0, "%s %s: masks agree with the reference (%zu of %zu differ)", method, tag, mask_diff, n);
    check(max_rel < 1e-4, "%s %s: pruned weights within 1e-4 of the reference (max |diff| / max |w| = %.2e)", method,
          tag, max_rel);
    double recon = recon_error(W->v, data, X->v, rows, cols, T);
    check(fabs(recon - ref_recon->v[0]) <= 1e-4 * ref_recon->v[0], "%s %s: ||WX - W'X|| %.6g, reference %.6g", method,
          tag, recon, ref_recon->v[0]);
    linear_stats_free(&stats);
    free(data), free(keep), free(Xf);
}

int main(void) {
    Fixture f;
    if (load_fixture("fixtures/ref_prune.txt", &f) || !find(&f, "weight") || !find(&f, "inputs")) {
        check(0, "load fixtures/ref_prune.txt (run from tests/)");
        return check_summary("test_ref_prune");
    }
    const char *methods[] = {"sparsegpt", "wanda"}, *tags[] = {"unstructured", "nm24"};
    for (int m = 0; m < 2; m++)
        for (int t = 0; t < 2; t++) compare(&f, methods[m], tags[t]);
    // The point of SparseGPT: a lower reconstruction error than Wanda's at the same sparsity.
    check(find(&f, "sparsegpt_unstructured_recon")->v[0] < find(&f, "wanda_unstructured_recon")->v[0],
          "reference: SparseGPT's reconstruction error below Wanda's (unstructured)");
    free_fixture(&f);
    return check_summary("test_ref_prune");
}
