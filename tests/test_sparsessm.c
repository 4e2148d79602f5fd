// SparseSSM (src/prune/sparsessm.h), each piece against a direct computation: the A_log
// scores against a double-precision loop that holds every state, for every time weighting;
// the time weights; the masks' counts, ties and N:M groups; the shrunken model's logits
// against the original with the dropped B and C rows zeroed, before and after a round
// trip through a transformers folder; and the sensitivity-ramped sparsities.
#define _GNU_SOURCE  // nftw, mkdtemp
#include <ftw.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "io/hf_folder.h"
#include "prune/sparsessm.h"

#include "check.h"
#include "tiny_model.h"

static void fill_normal(float *v, size_t n, Rng *rng, float mean, float scale) {
    for (size_t i = 0; i < n; i++) v[i] = mean + scale * rng_normal(rng);
}

static double max_of(const double *v, int n) {
    double m = -INFINITY;
    for (int i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

// ---------------------------------------------------------------------------------------
// Time weights

static void test_time_weights(void) {
    const char *names[] = {"harmonic", "uniform", "geometric", "window"};
    const int lengths[] = {1, 7, 9, 100};
    float w[100];
    Error err = {{0}};
    for (int kind = 0; kind < 4; kind++)
        for (int i = 0; i < 4; i++) {
            int L = lengths[i];
            int rc = sparsessm_time_weights((SparsessmWeighting)kind, 0.8, L, w, &err);
            double sum = 0.0;
            for (int t = 0; t < L; t++) sum += w[t];
            check(rc == 0 && fabs(sum - 1.0) < 1e-6, "%s weights, L %d: sum %.8f", names[kind], L, sum);
        }

    sparsessm_time_weights(SPARSESSM_HARMONIC, 0.0, 9, w, &err);
    double worst = 0.0;
    for (int t = 0; t < 9; t++) worst = fmax(worst, fabs(w[t] / w[0] - 1.0 / (t + 1)));
    check(worst < 1e-6, "harmonic: w_t / w_0 = 1/(t+1) (max err %.1e)", worst);

    sparsessm_time_weights(SPARSESSM_UNIFORM, 0.0, 9, w, &err);
    worst = 0.0;
    for (int t = 0; t < 9; t++) worst = fmax(worst, fabs(w[t] - 1.0 / 9));
    check(worst < 1e-7, "uniform: every w_t = 1/9 (max err %.1e)", worst);

    sparsessm_time_weights(SPARSESSM_GEOMETRIC, 0.5, 9, w, &err);
    worst = 0.0;
    for (int t = 0; t + 1 < 9; t++) worst = fmax(worst, fabs(w[t + 1] / w[t] - 0.5));
    check(worst < 1e-6, "geometric 0.5: w_{t+1} / w_t = 0.5 (max err %.1e)", worst);
    float flat[9];
    sparsessm_time_weights(SPARSESSM_GEOMETRIC, 1.0, 9, flat, &err);
    sparsessm_time_weights(SPARSESSM_UNIFORM, 0.0, 9, w, &err);
    check(memcmp(flat, w, sizeof flat) == 0, "geometric with gamma 1 is uniform");

    // ceil(L/4) leading tokens: L 7 -> 2, L 8 -> 2, L 9 -> 3, L 1 -> 1.
    const int window_L[] = {7, 8, 9, 1}, window_k[] = {2, 2, 3, 1};
    for (int i = 0; i < 4; i++) {
        int L = window_L[i], k = window_k[i];
        sparsessm_time_weights(SPARSESSM_WINDOW, 0.0, L, w, &err);
        int ok = 1;
        for (int t = 0; t < L; t++) ok &= t < k ? fabsf(w[t] - 1.0f / k) < 1e-7f : w[t] == 0.0f;
        check(ok, "window, L %d: the first %d weights 1/%d, then exact zeros", L, k, k);
    }

    const double bad_gamma[] = {0.0, -0.5, 1.5, NAN};
    for (int i = 0; i < 4; i++) {
        int rc = sparsessm_time_weights(SPARSESSM_GEOMETRIC, bad_gamma[i], 5, w, &err);
        char label[64];
        snprintf(label, sizeof label, "geometric with gamma %g fails", bad_gamma[i]);
        check_error(label, rc, &err, "0 < gamma <= 1", NULL);
    }
    check(sparsessm_time_weights(SPARSESSM_HARMONIC, 7.0, 5, w, &err) == 0, "gamma is ignored unless geometric");
    check_error("L 0 fails", sparsessm_time_weights(SPARSESSM_UNIFORM, 0.0, 0, w, &err), &err, "length >= 1", "got 0",
                NULL);
    check_error("unknown weighting fails", sparsessm_time_weights((SparsessmWeighting)42, 0.0, 5, w, &err), &err,
                "unknown time weighting 42", NULL);
}

// ---------------------------------------------------------------------------------------
// A_log scores

// The definition, in double, holding every state h[b, t, d, n] (t = -1 .. L-1).
static void naive_scores(const SelectiveScanShape *s, const float *x, const float *dt, const float *dt_bias,
                         const float *A_log, const float *B_ssm, const float *w, double *scores) {
    const int Bsz = s->batch, L = s->seqlen, D = s->d_inner, N = s->d_state;
    double *h = calloc((size_t)Bsz * (L + 1) * D * N, sizeof(double));  // h[b][t+1][d][n]
#define H(b, t, d, n) h[((((size_t)(b) * (L + 1)) + (t) + 1) * D + (d)) * N + (n)]
    for (int b = 0; b < Bsz; b++)
        for (int t = 0; t < L; t++)
            for (int d = 0; d < D; d++) {
                size_t row = (size_t)b * L + t;
                double delta = log1p(exp((double)dt[row * D + d] + dt_bias[d]));
                for (int n = 0; n < N; n++) {
                    double Abar = exp(delta * -exp((double)A_log[d * N + n]));
                    H(b, t, d, n) = Abar * H(b, t - 1, d, n) + delta * x[row * D + d] * B_ssm[row * N + n];
                    scores[d * N + n] += w[t] * Abar * Abar * H(b, t - 1, d, n) * H(b, t - 1, d, n);
                }
            }
#undef H
    free(h);
}

// Random scan inputs of one shape; A_log near log(1..N), dt_bias large enough that the
// states carry across tokens.
typedef struct ScanInputs {
    float *x, *dt, *dt_bias, *A_log, *B_ssm;
} ScanInputs;

static ScanInputs scan_inputs_create(const SelectiveScanShape *s, uint64_t seed) {
    const size_t BLD = (size_t)s->batch * s->seqlen * s->d_inner, BLN = (size_t)s->batch * s->seqlen * s->d_state;
    ScanInputs in = {malloc(sizeof(float) * BLD), malloc(sizeof(float) * BLD), malloc(sizeof(float) * s->d_inner),
                     malloc(sizeof(float) * s->d_inner * s->d_state), malloc(sizeof(float) * BLN)};
    Rng rng;
    rng_seed(&rng, seed);
    fill_normal(in.x, BLD, &rng, 0.0f, 1.0f);
    fill_normal(in.dt, BLD, &rng, 0.0f, 0.5f);
    fill_normal(in.dt_bias, s->d_inner, &rng, -1.0f, 0.5f);
    for (int d = 0; d < s->d_inner; d++)
        for (int n = 0; n < s->d_state; n++)
            in.A_log[d * s->d_state + n] = logf((float)(n + 1)) + 0.3f * rng_normal(&rng);
    fill_normal(in.B_ssm, BLN, &rng, 0.0f, 1.0f);
    return in;
}

static void scan_inputs_free(ScanInputs *in) {
    free(in->x), free(in->dt), free(in->dt_bias), free(in->A_log), free(in->B_ssm);
}

// Compares the kernel with the naive loop for every weighting; the kernel also adds into
// scores that start at 1.
static void check_scores_against_naive(const SelectiveScanShape *s, uint64_t seed) {
    const char *names[] = {"harmonic", "uniform", "geometric", "window"};
    const int DN = s->d_inner * s->d_state;
    ScanInputs in = scan_inputs_create(s, seed);
    float *w = malloc(sizeof(float) * s->seqlen);
    double *got = malloc(sizeof(double) * DN), *want = malloc(sizeof(double) * DN);
    Error err;
    for (int kind = 0; kind < 4; kind++) {
        sparsessm_time_weights((SparsessmWeighting)kind, 0.7, s->seqlen, w, &err);
        for (int k = 0; k < DN; k++) got[k] = 1.0, want[k] = 0.0;
        sparsessm_accumulate_alog_scores(s, in.x, in.dt, in.dt_bias, in.A_log, in.B_ssm, w, got);
        naive_scores(s, in.x, in.dt, in.dt_bias, in.A_log, in.B_ssm, w, want);
        double worst = 0.0;
        for (int k = 0; k < DN; k++) worst = fmax(worst, fabs((got[k] - 1.0) - want[k]) / fmax(want[k], 1e-6));
        check(worst < 1e-5 && max_of(want, DN) > 1e-3,
              "scores, %s weights, B %d L %d D %d N %d: relative error vs the naive loop %.1e (largest score %.3g)",
              names[kind], s->batch, s->seqlen, s->d_inner, s->d_state, worst, max_of(want, DN));
    }
    free(w), free(got), free(want);
    scan_inputs_free(&in);
}

static void test_scores(void) {
    SelectiveScanShape tiny = {.batch = 2, .seqlen = 7, .d_inner = 3, .d_state = 4};
    check_scores_against_naive(&tiny, 1);
    // Several blocks of 16 channels, the last one partial.
    SelectiveScanShape wider = {.batch = 3, .seqlen = 20, .d_inner = 37, .d_state = 5};
    check_scores_against_naive(&wider, 2);

    // Bit for bit the same on 1 and 3 threads.
    const int DN = wider.d_inner * wider.d_state;
    ScanInputs in = scan_inputs_create(&wider, 3);
    float w[20];
    Error err;
    sparsessm_time_weights(SPARSESSM_HARMONIC, 0.0, wider.seqlen, w, &err);
    double *one = calloc(DN, sizeof(double)), *three = calloc(DN, sizeof(double));
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    sparsessm_accumulate_alog_scores(&wider, in.x, in.dt, in.dt_bias, in.A_log, in.B_ssm, w, one);
    omp_set_num_threads(3);
    sparsessm_accumulate_alog_scores(&wider, in.x, in.dt, in.dt_bias, in.A_log, in.B_ssm, w, three);
    omp_set_num_threads(threads);
    check(memcmp(one, three, sizeof(double) * DN) == 0, "scores are bit-identical on 1 and 3 threads");
    free(one), free(three);
    scan_inputs_free(&in);
}

// ---------------------------------------------------------------------------------------
// Masks

static int count_zeros(const uint8_t *mask, int n) {
    int zeros = 0;
    for (int i = 0; i < n; i++) zeros += mask[i] == 0;
    return zeros;
}

static void test_mask_unstructured(void) {
    enum { D = 5, N = 6 };
    double scores[D * N];
    uint8_t mask[D * N];
    Rng rng;
    rng_seed(&rng, 4);
    for (int k = 0; k < D * N; k++) scores[k] = rng_uniform_double(&rng);
    Error err = {{0}};
    const double sparsities[] = {0.0, 0.3, 0.5, 0.25, 0.9};
    const int expected[] = {0, 9, 15, 8, 27};  // round(s * 30), 7.5 rounding up
    for (int i = 0; i < 5; i++) {
        int rc = sparsessm_mask_unstructured(scores, D, N, sparsities[i], mask, &err);
        double max_pruned = -INFINITY, min_kept = INFINITY;
        for (int k = 0; k < D * N; k++)
            if (mask[k]) min_kept = fmin(min_kept, scores[k]);
            else max_pruned = fmax(max_pruned, scores[k]);
        int zeros = count_zeros(mask, D * N);
        check(rc == 0 && zeros == expected[i] && max_pruned < min_kept,
              "unstructured %.2f: %d of 30 pruned (want %d), all below the kept", sparsities[i], zeros, expected[i]);
    }

    // Ties: the lower index goes first.
    double tied[8] = {3, 1, 1, 1, 0, 1, 2, 1};
    uint8_t tied_mask[8];
    sparsessm_mask_unstructured(tied, 2, 4, 0.5, tied_mask, &err);  // prune 4: index 4, then 1, 2, 3
    const uint8_t want[8] = {1, 0, 0, 0, 0, 1, 1, 1};
    check(memcmp(tied_mask, want, 8) == 0, "unstructured ties: the lowest score, then equal scores by index");

    const double bad[] = {1.0, -0.1, 1.5, NAN};
    for (int i = 0; i < 4; i++) {
        char label[64];
        snprintf(label, sizeof label, "unstructured sparsity %g fails", bad[i]);
        check_error(label, sparsessm_mask_unstructured(scores, D, N, bad[i], mask, &err), &err,
                    "sparsity must be in [0, 1)", NULL);
    }
    scores[13] = NAN;
    check_error("a NaN score fails", sparsessm_mask_unstructured(scores, D, N, 0.5, mask, &err), &err,
                "(2, 1) is NaN", NULL);
}

static void test_mask_nm(void) {
    enum { D = 3, N = 8 };
    double scores[D * N];
    uint8_t mask[D * N];
    Rng rng;
    rng_seed(&rng, 5);
    for (int k = 0; k < D * N; k++) scores[k] = rng_uniform_double(&rng);
    Error err = {{0}};
    const int nm[][2] = {{2, 4}, {1, 4}, {3, 4}, {1, 2}, {4, 8}};
    for (int c = 0; c < 5; c++) {
        int n = nm[c][0], m = nm[c][1];
        int rc = sparsessm_mask_nm(scores, D, N, n, m, mask, &err);
        int ok = rc == 0;
        for (int d = 0; d < D; d++)
            for (int g = 0; g < N; g += m) {
                int kept = 0;
                double max_pruned = -INFINITY, min_kept = INFINITY;
                for (int k = d * N + g; k < d * N + g + m; k++)
                    if (mask[k]) kept++, min_kept = fmin(min_kept, scores[k]);
                    else max_pruned = fmax(max_pruned, scores[k]);
                ok &= kept == n && max_pruned < min_kept;
            }
        check(ok, "%d:%d: every group of %d states keeps its %d highest", n, m, m, n);
    }

    double equal[8] = {0};
    sparsessm_mask_nm(equal, 1, 8, 2, 4, mask, &err);
    const uint8_t want[8] = {0, 0, 1, 1, 0, 0, 1, 1};
    check(memcmp(mask, want, 8) == 0, "2:4 ties: the lower indices are pruned");

    check_error("2:2 fails", sparsessm_mask_nm(scores, D, N, 2, 2, mask, &err), &err, "0 < n < m", "2:2", NULL);
    check_error("3:2 fails", sparsessm_mask_nm(scores, D, N, 3, 2, mask, &err), &err, "0 < n < m", NULL);
    check_error("0:4 fails", sparsessm_mask_nm(scores, D, N, 0, 4, mask, &err), &err, "0 < n < m", NULL);
    check_error("N 6 with m 4 fails", sparsessm_mask_nm(scores, 4, 6, 2, 4, mask, &err), &err, "d_state 6",
                "multiple of m = 4", NULL);
}

static void test_state_columns(void) {
    enum { D = 4, N = 6 };
    // Column sums 10, 4, 7, 4, 12, 1 (ties between columns 1 and 3).
    const double column[N] = {10, 4, 7, 4, 12, 1};
    double scores[D * N];
    for (int d = 0; d < D; d++)
        for (int n = 0; n < N; n++) scores[d * N + n] = column[n] * (d + 1) / 10.0;  // Σ_d (d+1)/10 = 1
    uint8_t keep[N];
    Error err = {{0}};
    int kept = sparsessm_choose_state_columns(scores, D, N, 0.5, keep, &err);
    const uint8_t want[N] = {1, 0, 1, 0, 1, 0};
    check(kept == 3 && memcmp(keep, want, N) == 0, "drop round(0.5*6) = 3 lowest columns: 5, 1, 3 (kept %d)", kept);
    kept = sparsessm_choose_state_columns(scores, D, N, 0.25, keep, &err);  // round(1.5) = 2: columns 5, then 1
    const uint8_t want_tie[N] = {1, 0, 1, 1, 1, 0};
    check(kept == 4 && memcmp(keep, want_tie, N) == 0, "column ties: column 1 goes before column 3 (kept %d)", kept);
    kept = sparsessm_choose_state_columns(scores, D, N, 0.0, keep, &err);
    check(kept == N && count_zeros(keep, N) == 0, "sparsity 0 keeps every column");
    kept = sparsessm_choose_state_columns(scores, D, N, 0.99, keep, &err);
    check(kept == 1 && keep[4] == 1, "sparsity 0.99 still keeps one column, the best (kept %d)", kept);
    check_error("column sparsity 1 fails", sparsessm_choose_state_columns(scores, D, N, 1.0, keep, &err), &err,
                "sparsity must be in [0, 1)", NULL);
}

// ---------------------------------------------------------------------------------------
// Shrinking d_state

enum { FWD_BATCH = 2, FWD_SEQ = 9 };

// Logits (B*L, V) of a model, copied out of the tape.
static float *model_logits(MambaModel *model, const int32_t *tokens, size_t *count) {
    Tape tape;
    tape_init(&tape, 1 << 20);
    tape.recording = false;
    Tensor *logits;
    mamba_forward(&tape, model, tokens, NULL, FWD_BATCH, FWD_SEQ, &logits);
    float *copy = malloc(sizeof(float) * logits->size);
    memcpy(copy, logits->data, sizeof(float) * logits->size);
    *count = logits->size;
    tape_free(&tape);
    return copy;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void check_shrink(const uint8_t *keep, int n_keep, const char *what) {
    enum { LAYERS = 2, SEED = 7 };
    MambaModel in, zeroed, out;
    tiny_model_create(&in, LAYERS, SEED);
    tiny_model_create(&zeroed, LAYERS, SEED);
    const MambaConfig *c = &in.config;
    const int N = c->d_state, D = c->d_inner, R = c->dt_rank;
    // The reference: the same model with the dropped states' B and C rows zeroed.
    for (int i = 0; i < LAYERS; i++)
        for (int n = 0; n < N; n++)
            if (!keep[i * N + n]) {
                float *x_proj = zeroed.layers[i].x_proj_weight.data;
                memset(x_proj + (size_t)(R + n) * D, 0, sizeof(float) * D);
                memset(x_proj + (size_t)(R + N + n) * D, 0, sizeof(float) * D);
            }
    Error err = {{0}};
    int rc = sparsessm_shrink_state(&in, keep, n_keep, &out, &err);
    check(rc == 0, "%s: shrink_state %s", what, rc ? err.message : "");
    if (rc) {
        mamba_model_free(&in), mamba_model_free(&zeroed);
        return;
    }

    int shapes_ok = out.config.d_state == n_keep && in.config.d_state == N;
    int values_ok = 1;
    for (int i = 0; i < LAYERS; i++) {
        const Tensor *A = &out.layers[i].A_log, *xp = &out.layers[i].x_proj_weight;
        shapes_ok &= A->shape[0] == D && A->shape[1] == n_keep && xp->shape[0] == R + 2 * n_keep && xp->shape[1] == D;
        for (int n = 0, j = 0; n < N; n++) {
            if (!keep[i * N + n]) continue;
            for (int d = 0; d < D; d++) {
                values_ok &= A->data[d * n_keep + j] == in.layers[i].A_log.data[d * N + n];
                values_ok &= xp->data[(R + j) * D + d] == in.layers[i].x_proj_weight.data[(R + n) * D + d];
                values_ok &= xp->data[(R + n_keep + j) * D + d] == in.layers[i].x_proj_weight.data[(R + N + n) * D + d];
            }
            j++;
        }
        for (int k = 0; k < R * D; k++) values_ok &= xp->data[k] == in.layers[i].x_proj_weight.data[k];
    }
    size_t dropped = (size_t)LAYERS * (N - n_keep) * 3 * D;  // A_log column + B row + C row
    shapes_ok &= out.n_elements + dropped == in.n_elements;
    check(shapes_ok, "%s: d_state %d -> %d, A_log (%d, %d), x_proj (%d, %d), %zu fewer floats", what, N, n_keep, D,
          n_keep, R + 2 * n_keep, D, dropped);
    check(values_ok, "%s: A_log columns, delta rows and B, C rows are the kept ones, in order", what);

    int32_t tokens[FWD_BATCH * FWD_SEQ];
    Rng rng;
    rng_seed(&rng, 8);
    for (int k = 0; k < FWD_BATCH * FWD_SEQ; k++) tokens[k] = (int32_t)rng_below(&rng, c->vocab_size);
    size_t count, count_ref, count_in;
    float *logits = model_logits(&out, tokens, &count);
    float *logits_ref = model_logits(&zeroed, tokens, &count_ref);
    float *logits_in = model_logits(&in, tokens, &count_in);
    double diff = max_abs_diff(logits, logits_ref, count);
    double diff_in = max_abs_diff(logits_in, logits_ref, count);
    check(count == count_ref && diff < 1e-5, "%s: logits equal the original's with dropped B and C rows zeroed (%.1e)",
          what, diff);
    if (n_keep < N)
        check(diff_in > 1e-3, "%s: ... which differ from the unpruned model's (%.1e), so the check can fail", what,
              diff_in);

    // Through a transformers folder and back: the file says d_state = n_keep.
    char dir[] = "/tmp/test_sparsessm_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    MambaConfig loaded_config;
    MambaModel loaded;
    rc = hf_folder_save(dir, &out.config, out.params, out.n_params, &err);
    if (rc == 0) rc = hf_folder_read_config(dir, &loaded_config, &err);
    if (rc == 0) {
        mamba_model_create(&loaded, &loaded_config);
        rc = hf_folder_load_params(dir, loaded.params, loaded.n_params, &err);
        if (rc == 0) {
            size_t count_loaded;
            float *logits_loaded = model_logits(&loaded, tokens, &count_loaded);
            check(loaded_config.d_state == n_keep && count_loaded == count &&
                      memcmp(logits_loaded, logits, sizeof(float) * count) == 0,
                  "%s: saved and reloaded (d_state %d), the same logits to the bit", what, loaded_config.d_state);
            free(logits_loaded);
        }
        mamba_model_free(&loaded);
    }
    check(rc == 0, "%s: transformers folder round trip %s", what, rc ? err.message : "");
    nftw(dir, remove_entry, 4, FTW_DEPTH | FTW_PHYS);

    free(logits), free(logits_ref), free(logits_in);
    mamba_model_free(&out), mamba_model_free(&in), mamba_model_free(&zeroed);
}

static void test_shrink_state(void) {
    // tiny_model: 2 layers, N = 4. Each layer keeps its own columns.
    const uint8_t keep3[] = {1, 0, 1, 1, /* layer 1 */ 0, 1, 1, 1};
    check_shrink(keep3, 3, "keep 3 of 4");
    const uint8_t keep2[] = {0, 1, 0, 1, /* layer 1 */ 1, 0, 1, 0};
    check_shrink(keep2, 2, "keep 2 of 4");
    const uint8_t keep4[] = {1, 1, 1, 1, 1, 1, 1, 1};
    check_shrink(keep4, 4, "keep all 4");

    MambaModel in, out;
    tiny_model_create(&in, 2, 9);
    Error err = {{0}};
    check_error("a layer keeping the wrong count fails", sparsessm_shrink_state(&in, keep3, 2, &out, &err), &err,
                "layer 0 keeps 3 state columns", "n_keep = 2", NULL);
    const uint8_t uneven[] = {1, 1, 0, 0, 1, 1, 1, 0};
    check_error("layers keeping different counts fail", sparsessm_shrink_state(&in, uneven, 2, &out, &err), &err,
                "layer 1 keeps 3", NULL);
    check_error("n_keep 0 fails", sparsessm_shrink_state(&in, keep2, 0, &out, &err), &err, "n_keep must be in [1, d_state = 4]",
                NULL);
    check_error("n_keep 5 fails", sparsessm_shrink_state(&in, keep2, 5, &out, &err), &err, "got 5", NULL);
    mamba_model_free(&in);
}

// ---------------------------------------------------------------------------------------
// Sensitivity allocation

static double mean_of(const double *v, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += v[i];
    return sum / n;
}

static void test_allocation(void) {
    const float H[9] = {1, 5, 5, 5, 2, 5, 5, 5, 3};
    double s = sparsessm_sensitivity(H, 3);
    check(fabs(s - 14.0 / 3.0) < 1e-12, "sensitivity of diag (1, 2, 3): 14/3, got %.6f", s);

    // 6 layers, k = 3: ascending sensitivity 1, 4, 2 | 5, 0, 3.
    const double sens6[6] = {5, 1, 3, 6, 2, 4};
    double sp[64];
    sparsessm_allocate_sparsity(sens6, 6, 0.5, 0.1, sp);
    const double want6[6] = {0.45, 0.6, 0.5, 0.4, 0.55, 0.5};
    double worst = 0.0;
    for (int i = 0; i < 6; i++) worst = fmax(worst, fabs(sp[i] - want6[i]));
    check(worst < 1e-12, "6 layers, p 0.5, alpha 0.1: 0.45 0.6 0.5 0.4 0.55 0.5 (max err %.1e)", worst);

    // 60 layers: k = 24 at each end, 12 in the middle get p; monotone; mean p.
    double sens60[60];
    Rng rng;
    rng_seed(&rng, 10);
    for (int i = 0; i < 60; i++) sens60[i] = rng_uniform_double(&rng);
    sparsessm_allocate_sparsity(sens60, 60, 0.5, 0.2, sp);
    int monotone = 1, at_p = 0;
    for (int i = 0; i < 60; i++) {
        at_p += fabs(sp[i] - 0.5) < 1e-12;
        for (int j = 0; j < 60; j++) monotone &= !(sens60[i] < sens60[j]) || sp[i] >= sp[j];
    }
    double lo = 1.0, hi = 0.0;
    for (int i = 0; i < 60; i++) lo = fmin(lo, sp[i]), hi = fmax(hi, sp[i]);
    // 12 in the middle plus the inner end of each ramp.
    check(at_p == 14, "60 layers: 14 layers at p (12 beyond the 24 at each end + 2 ramp ends), got %d", at_p);
    check(monotone, "60 layers: less sensitive layers are never pruned less");
    check(fabs(lo - 0.3) < 1e-12 && fabs(hi - 0.7) < 1e-12 && fabs(mean_of(sp, 60) - 0.5) < 1e-12,
          "60 layers: from 0.7 to 0.3, mean %.12f", mean_of(sp, 60));

    // 7 layers: k = 3; the middle one gets p.
    const double sens7[7] = {7, 6, 5, 4, 3, 2, 1};
    sparsessm_allocate_sparsity(sens7, 7, 0.4, 0.1, sp);
    const double want7[7] = {0.3, 0.35, 0.4, 0.4, 0.4, 0.45, 0.5};
    worst = 0.0;
    for (int i = 0; i < 7; i++) worst = fmax(worst, fabs(sp[i] - want7[i]));
    check(worst < 1e-12, "7 layers, p 0.4, alpha 0.1, descending sensitivity: 0.3 .. 0.5 (max err %.1e)", worst);

    // Clamps: alpha shrinks so that the ramp stays in [0, 0.99] and the mean stays p.
    sparsessm_allocate_sparsity(sens60, 60, 0.05, 0.2, sp);
    lo = 1.0, hi = 0.0;
    for (int i = 0; i < 60; i++) lo = fmin(lo, sp[i]), hi = fmax(hi, sp[i]);
    check(fabs(lo) < 1e-12 && fabs(hi - 0.1) < 1e-12 && fabs(mean_of(sp, 60) - 0.05) < 1e-12,
          "p 0.05, alpha 0.2: alpha becomes 0.05, range [%.3f, %.3f], mean %.4f", lo, hi, mean_of(sp, 60));
    sparsessm_allocate_sparsity(sens60, 60, 0.95, 0.2, sp);
    lo = 1.0, hi = 0.0;
    for (int i = 0; i < 60; i++) lo = fmin(lo, sp[i]), hi = fmax(hi, sp[i]);
    check(fabs(lo - 0.91) < 1e-12 && fabs(hi - 0.99) < 1e-12 && fabs(mean_of(sp, 60) - 0.95) < 1e-12,
          "p 0.95, alpha 0.2: alpha becomes 0.04, range [%.3f, %.3f], mean %.4f", lo, hi, mean_of(sp, 60));
    sparsessm_allocate_sparsity(sens60, 60, 1.5, 0.2, sp);
    lo = 1.0, hi = 0.0;
    for (int i = 0; i < 60; i++) lo = fmin(lo, sp[i]), hi = fmax(hi, sp[i]);
    check(lo == 0.99 && hi == 0.99, "p 1.5 is clamped to 0.99 everywhere");
    sparsessm_allocate_sparsity(sens60, 60, 0.5, -0.1, sp);
    lo = 1.0, hi = 0.0;
    for (int i = 0; i < 60; i++) lo = fmin(lo, sp[i]), hi = fmax(hi, sp[i]);
    check(lo == 0.5 && hi == 0.5, "a negative alpha counts as 0");

    // Small counts: one layer gets p; two get p + alpha/2 and p - alpha/2; ties by index.
    sparsessm_allocate_sparsity(sens6, 1, 0.5, 0.1, sp);
    check(sp[0] == 0.5, "1 layer: p");
    const double two[2] = {3, 1};
    sparsessm_allocate_sparsity(two, 2, 0.5, 0.1, sp);
    check(fabs(sp[0] - 0.45) < 1e-12 && fabs(sp[1] - 0.55) < 1e-12, "2 layers: 0.45 (more sensitive), 0.55");
    const double tied[4] = {2, 2, 2, 2};
    sparsessm_allocate_sparsity(tied, 4, 0.5, 0.1, sp);
    check(fabs(sp[0] - 0.6) < 1e-12 && fabs(sp[1] - 0.5) < 1e-12 && fabs(sp[2] - 0.5) < 1e-12 &&
              fabs(sp[3] - 0.4) < 1e-12,
          "equal sensitivities rank by index: 0.6 0.5 0.5 0.4");
}

int main(void) {
    test_time_weights();
    test_scores();
    test_mask_unstructured();
    test_mask_nm();
    test_state_columns();
    test_shrink_state();
    test_allocation();
    return check_summary("sparsessm");
}
