// Checks the fused selective scan (src/autograd/selective_scan.c) against a naive
// double-precision reference that materialises every state: the forward, the backward by
// central finite differences and by an analytic double backward, and bitwise determinism.
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/selective_scan.h"  // defines: selective_scan_forward, selective_scan_backward
#include "core/error.h"               // defines: xmalloc, xcalloc
#include "core/rng.h"                 // defines: Rng, rng_seed, rng_normal, rng_uniform_double

static int failures = 0;

static void check(bool ok, const char *what, double value, double tolerance) {
    printf("%s %s: %.3g (tolerance %.3g)\n", ok ? "OK" : "NOT OK", what, value, tolerance);
    if (!ok) failures++;
}

static void check_exact(bool ok, const char *what) {
    printf("%s %s\n", ok ? "OK" : "NOT OK", what);
    if (!ok) failures++;
}

// ---- the inputs of one problem, as floats (the kernel's) ----

enum { IN_X, IN_DT, IN_DT_BIAS, IN_A_LOG, IN_B, IN_C, IN_D_SKIP, N_INPUTS };
static const char *input_names[N_INPUTS] = {"x", "dt", "dt_bias", "A_log", "B", "C", "D_skip"};

typedef struct Problem {
    SelectiveScanShape shape;
    float *in[N_INPUTS];      // x, dt (B,L,D); dt_bias (D); A_log (D,N); B, C (B,L,N); D_skip (D)
    size_t size[N_INPUTS];
    float *r;                 // (B, L, D): the loss is Σ y ⊙ r, so dy = r
} Problem;

static void problem_init(Problem *p, SelectiveScanShape shape, uint64_t seed) {
    const size_t B = shape.batch, L = shape.seqlen, D = shape.d_inner, N = shape.d_state;
    p->shape = shape;
    size_t sizes[N_INPUTS] = {B * L * D, B * L * D, D, D * N, B * L * N, B * L * N, D};
    Rng rng;
    rng_seed(&rng, seed);
    for (int k = 0; k < N_INPUTS; k++) {
        p->size[k] = sizes[k];
        p->in[k] = xmalloc(sizes[k] * sizeof(float));
    }
    // Δ near softplus^-1 of [1e-3, 1e-1] as at initialisation: a log-uniform per-channel
    // bias, and a per-token dt that moves it by a little.
    for (size_t d = 0; d < D; d++) {
        double dt0 = exp(log(1e-3) + rng_uniform_double(&rng) * (log(1e-1) - log(1e-3)));
        p->in[IN_DT_BIAS][d] = (float)(dt0 + log(-expm1(-dt0)));
        p->in[IN_D_SKIP][d] = 1.0f + 0.2f * rng_normal(&rng);
        // A_log = log(1..N) as at initialisation, moved a little so that no two channels
        // share a value (a mix-up of channels must show).
        for (size_t n = 0; n < N; n++)
            p->in[IN_A_LOG][d * N + n] = (float)log((double)(n + 1)) + 0.05f * rng_normal(&rng);
    }
    for (size_t i = 0; i < B * L * D; i++) {
        p->in[IN_X][i] = rng_normal(&rng);
        p->in[IN_DT][i] = 0.5f * rng_normal(&rng);
    }
    for (size_t i = 0; i < B * L * N; i++) {
        p->in[IN_B][i] = rng_normal(&rng);
        p->in[IN_C][i] = rng_normal(&rng);
    }
    p->r = xmalloc(B * L * D * sizeof(float));
    for (size_t i = 0; i < B * L * D; i++) p->r[i] = rng_normal(&rng);
}

static void problem_free(Problem *p) {
    for (int k = 0; k < N_INPUTS; k++) free(p->in[k]);
    free(p->r);
}

// ---- naive double reference: all states (B, L, D, N) in memory ----

typedef struct Reference {
    double *in[N_INPUTS];
} Reference;

static void reference_init(Reference *ref, const Problem *p) {
    for (int k = 0; k < N_INPUTS; k++) {
        ref->in[k] = xmalloc(p->size[k] * sizeof(double));
        for (size_t i = 0; i < p->size[k]; i++) ref->in[k][i] = p->in[k][i];
    }
}

static void reference_free(Reference *ref) {
    for (int k = 0; k < N_INPUTS; k++) free(ref->in[k]);
}

static double softplus(double v) { return v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)); }

// y (B,L,D); states (B,L,D,N) if not NULL.
static void reference_forward(const SelectiveScanShape *s, const Reference *ref, double *y, double *states) {
    const int B = s->batch, L = s->seqlen, D = s->d_inner, N = s->d_state;
    const double *x = ref->in[IN_X], *dt = ref->in[IN_DT], *Bm = ref->in[IN_B], *Cm = ref->in[IN_C];
    double *h = xcalloc((size_t)N, sizeof(double));
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++) {
            memset(h, 0, sizeof(double) * N);
            for (int t = 0; t < L; t++) {
                size_t row = (size_t)b * L + t;
                double delta = softplus(dt[row * D + d] + ref->in[IN_DT_BIAS][d]);
                double xv = x[row * D + d];
                double out = ref->in[IN_D_SKIP][d] * xv;
                for (int n = 0; n < N; n++) {
                    double A = -exp(ref->in[IN_A_LOG][(size_t)d * N + n]);
                    h[n] = exp(delta * A) * h[n] + delta * xv * Bm[row * N + n];
                    out += h[n] * Cm[row * N + n];
                    if (states) states[(row * D + d) * N + n] = h[n];
                }
                y[row * D + d] = out;
            }
        }
    free(h);
}

static double reference_loss(const SelectiveScanShape *s, const Reference *ref, const float *r) {
    size_t count = (size_t)s->batch * s->seqlen * s->d_inner;
    double *y = xmalloc(count * sizeof(double));
    reference_forward(s, ref, y, NULL);
    double loss = 0;
    for (size_t i = 0; i < count; i++) loss += y[i] * r[i];
    free(y);
    return loss;
}

// Analytic backward in double from the materialised states; grad[k] like ref->in[k], zeroed here.
static void reference_backward(const SelectiveScanShape *s, const Reference *ref, const float *dy, double **grad,
                               const size_t *sizes) {
    const int B = s->batch, L = s->seqlen, D = s->d_inner, N = s->d_state;
    const double *x = ref->in[IN_X], *dt = ref->in[IN_DT], *Bm = ref->in[IN_B], *Cm = ref->in[IN_C];
    for (int k = 0; k < N_INPUTS; k++) memset(grad[k], 0, sizeof(double) * sizes[k]);
    double *y = xmalloc(sizeof(double) * B * L * D);
    double *states = xmalloc(sizeof(double) * B * L * D * N);
    double *g_next = xmalloc(sizeof(double) * N);  // dL/dh_{t} flowing from t+1, already times a_{t+1}
    reference_forward(s, ref, y, states);
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++) {
            memset(g_next, 0, sizeof(double) * N);
            for (int t = L - 1; t >= 0; t--) {
                size_t row = (size_t)b * L + t;
                double z = dt[row * D + d] + ref->in[IN_DT_BIAS][d];
                double delta = softplus(z), xv = x[row * D + d], g_out = dy[row * D + d];
                double d_delta = 0, d_xv = ref->in[IN_D_SKIP][d] * g_out;
                grad[IN_D_SKIP][d] += g_out * xv;
                for (int n = 0; n < N; n++) {
                    double A = -exp(ref->in[IN_A_LOG][(size_t)d * N + n]);
                    double decay = exp(delta * A);
                    double h = states[(row * D + d) * N + n];
                    double h_prev = t > 0 ? states[((row - 1) * D + d) * N + n] : 0.0;
                    double g = g_out * Cm[row * N + n] + g_next[n];
                    grad[IN_C][row * N + n] += g_out * h;
                    grad[IN_B][row * N + n] += g * delta * xv;
                    d_delta += g * h_prev * decay * A + g * xv * Bm[row * N + n];
                    d_xv += g * delta * Bm[row * N + n];
                    grad[IN_A_LOG][(size_t)d * N + n] += g * h_prev * decay * delta * A;
                    g_next[n] = g * decay;
                }
                double d_z = d_delta / (1.0 + exp(-z));
                grad[IN_DT][row * D + d] += d_z;
                grad[IN_DT_BIAS][d] += d_z;
                grad[IN_X][row * D + d] += d_xv;
            }
        }
    free(y);
    free(states);
    free(g_next);
}

// ---- helpers around the kernel ----

// Runs the kernel forward (with checkpoints) and backward with dy = r; grad[k] zeroed first.
static void kernel_gradients(const Problem *p, const SelectiveScanShape *shape, float *y, float **grad) {
    float *checkpoints = xmalloc(sizeof(float) * selective_scan_checkpoint_floats(shape));
    float *const *in = p->in;
    selective_scan_forward(shape, y, checkpoints, in[IN_X], in[IN_DT], in[IN_DT_BIAS], in[IN_A_LOG], in[IN_B],
                           in[IN_C], in[IN_D_SKIP]);
    for (int k = 0; k < N_INPUTS; k++) memset(grad[k], 0, sizeof(float) * p->size[k]);
    selective_scan_backward(shape, p->r, checkpoints, in[IN_X], in[IN_DT], in[IN_DT_BIAS], in[IN_A_LOG], in[IN_B],
                            in[IN_C], in[IN_D_SKIP], grad[IN_X], grad[IN_DT], grad[IN_DT_BIAS], grad[IN_A_LOG],
                            grad[IN_B], grad[IN_C], grad[IN_D_SKIP]);
    free(checkpoints);
}

static float **alloc_grads(const Problem *p) {
    float **grad = xmalloc(sizeof(float *) * N_INPUTS);
    for (int k = 0; k < N_INPUTS; k++) grad[k] = xcalloc(p->size[k], sizeof(float));
    return grad;
}

static void free_grads(float **grad) {
    for (int k = 0; k < N_INPUTS; k++) free(grad[k]);
    free(grad);
}

// max |a - b| / max |b|
static double relative_error_fd(const float *a, const double *b, size_t n) {
    double diff = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs(a[i] - b[i]));
        scale = fmax(scale, fabs(b[i]));
    }
    return diff / scale;
}

static double relative_error_dd(const double *a, const double *b, size_t n) {
    double diff = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs(a[i] - b[i]));
        scale = fmax(scale, fabs(b[i]));
    }
    return diff / scale;
}

static bool same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static void describe(char *buf, size_t cap, const SelectiveScanShape *s) {
    snprintf(buf, cap, "B=%d L=%d D=%d N=%d chunk=%d", s->batch, s->seqlen, s->d_inner, s->d_state, s->chunk);
}

// ---- (a) forward against the reference ----

static void test_forward(SelectiveScanShape shape, uint64_t seed) {
    Problem p;
    problem_init(&p, shape, seed);
    Reference ref;
    reference_init(&ref, &p);
    size_t count = p.size[IN_X];
    double *y_ref = xmalloc(count * sizeof(double));
    float *y = xmalloc(count * sizeof(float));
    float *checkpoints = xmalloc(sizeof(float) * selective_scan_checkpoint_floats(&shape));
    reference_forward(&shape, &ref, y_ref, NULL);
    selective_scan_forward(&shape, y, checkpoints, p.in[IN_X], p.in[IN_DT], p.in[IN_DT_BIAS], p.in[IN_A_LOG],
                           p.in[IN_B], p.in[IN_C], p.in[IN_D_SKIP]);
    char what[160], shape_text[96];
    describe(shape_text, sizeof shape_text, &shape);
    snprintf(what, sizeof what, "forward y vs double reference, %s, max rel err", shape_text);
    double err = relative_error_fd(y, y_ref, count);
    check(err < 1e-5, what, err, 1e-5);
    // The last checkpoint of each sequence is its final state; compare it too.
    const int B = shape.batch, L = shape.seqlen, D = shape.d_inner, N = shape.d_state;
    const int n_chunks = (int)(selective_scan_checkpoint_floats(&shape) / ((long)B * D * N));
    double *states = xmalloc(sizeof(double) * B * L * D * N);
    reference_forward(&shape, &ref, y_ref, states);
    double diff = 0, scale = 1e-30;
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++)
            for (int d = 0; d < D; d++) {
                double want = states[((((size_t)b * L + L - 1) * D) + d) * N + n];
                double got = checkpoints[(((size_t)b * n_chunks + n_chunks - 1) * N + n) * D + d];
                diff = fmax(diff, fabs(got - want));
                scale = fmax(scale, fabs(want));
            }
    snprintf(what, sizeof what, "final-state checkpoint vs reference, %s, max rel err", shape_text);
    check(diff / scale < 1e-5, what, diff / scale, 1e-5);
    free(states);
    free(y_ref);
    free(y);
    free(checkpoints);
    reference_free(&ref);
    problem_free(&p);
}

// ---- (b) backward against central finite differences of the double reference ----

static void test_backward_fd(SelectiveScanShape shape, uint64_t seed) {
    Problem p;
    problem_init(&p, shape, seed);
    Reference ref;
    reference_init(&ref, &p);
    float **grad = alloc_grads(&p);
    float *y = xmalloc(sizeof(float) * p.size[IN_X]);
    kernel_gradients(&p, &shape, y, grad);
    double *analytic[N_INPUTS];
    for (int k = 0; k < N_INPUTS; k++) analytic[k] = xmalloc(sizeof(double) * p.size[k]);
    reference_backward(&shape, &ref, p.r, analytic, p.size);
    char shape_text[96], what[200];
    describe(shape_text, sizeof shape_text, &shape);
    for (int k = 0; k < N_INPUTS; k++) {
        double *fd = xmalloc(sizeof(double) * p.size[k]);
        for (size_t i = 0; i < p.size[k]; i++) {
            double saved = ref.in[k][i];
            double step = 1e-5 * fmax(1.0, fabs(saved));
            ref.in[k][i] = saved + step;
            double up = reference_loss(&shape, &ref, p.r);
            ref.in[k][i] = saved - step;
            double down = reference_loss(&shape, &ref, p.r);
            ref.in[k][i] = saved;
            fd[i] = (up - down) / (2 * step);
        }
        double err_kernel = relative_error_fd(grad[k], fd, p.size[k]);
        snprintf(what, sizeof what, "d_%s kernel vs finite differences, %s, max rel err", input_names[k], shape_text);
        check(err_kernel < 1e-5, what, err_kernel, 1e-5);
        double err_ref = relative_error_dd(analytic[k], fd, p.size[k]);
        snprintf(what, sizeof what, "d_%s double reference backward vs finite differences, max rel err",
                 input_names[k]);
        check(err_ref < 1e-7, what, err_ref, 1e-7);
        free(fd);
    }
    for (int k = 0; k < N_INPUTS; k++) free(analytic[k]);
    free(y);
    free_grads(grad);
    reference_free(&ref);
    problem_free(&p);
}

// ---- (c) backward against the analytic double backward, on larger shapes ----

static void test_backward_analytic(SelectiveScanShape shape, uint64_t seed) {
    Problem p;
    problem_init(&p, shape, seed);
    Reference ref;
    reference_init(&ref, &p);
    float **grad = alloc_grads(&p);
    float *y = xmalloc(sizeof(float) * p.size[IN_X]);
    kernel_gradients(&p, &shape, y, grad);
    double *analytic[N_INPUTS];
    for (int k = 0; k < N_INPUTS; k++) analytic[k] = xmalloc(sizeof(double) * p.size[k]);
    reference_backward(&shape, &ref, p.r, analytic, p.size);
    char shape_text[96], what[200];
    describe(shape_text, sizeof shape_text, &shape);
    for (int k = 0; k < N_INPUTS; k++) {
        double err = relative_error_fd(grad[k], analytic[k], p.size[k]);
        snprintf(what, sizeof what, "d_%s kernel vs double backward, %s, max rel err", input_names[k], shape_text);
        check(err < 1e-5, what, err, 1e-5);
    }
    for (int k = 0; k < N_INPUTS; k++) free(analytic[k]);
    free(y);
    free_grads(grad);
    reference_free(&ref);
    problem_free(&p);
}

// ---- (d) determinism, accumulation and optional outputs ----

static bool same_gradients(const Problem *p, float **a, float **b) {
    for (int k = 0; k < N_INPUTS; k++)
        if (!same_bits(a[k], b[k], p->size[k])) return false;
    return true;
}

static void test_determinism(SelectiveScanShape shape, uint64_t seed) {
    Problem p;
    problem_init(&p, shape, seed);
    const size_t count = p.size[IN_X];
    char shape_text[96], what[240];
    describe(shape_text, sizeof shape_text, &shape);
    float **base = alloc_grads(&p), **other = alloc_grads(&p);
    float *y_base = xmalloc(sizeof(float) * count), *y_other = xmalloc(sizeof(float) * count);
    omp_set_num_threads(2);
    kernel_gradients(&p, &shape, y_base, base);

    // Chunk sizes change neither y nor any gradient.
    const int chunks[] = {1, 3, 16, shape.seqlen, shape.seqlen + 5};
    bool y_same = true, grads_same = true;
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        SelectiveScanShape s = shape;
        s.chunk = chunks[i];
        kernel_gradients(&p, &s, y_other, other);
        y_same = y_same && same_bits(y_base, y_other, count);
        grads_same = grads_same && same_gradients(&p, base, other);
    }
    snprintf(what, sizeof what, "y bitwise equal for chunk 1, 3, 16, L, L+5 (%s)", shape_text);
    check_exact(y_same, what);
    snprintf(what, sizeof what, "all gradients bitwise equal for chunk 1, 3, 16, L, L+5 (%s)", shape_text);
    check_exact(grads_same, what);

    // No checkpoints: same y.
    selective_scan_forward(&shape, y_other, NULL, p.in[IN_X], p.in[IN_DT], p.in[IN_DT_BIAS], p.in[IN_A_LOG],
                           p.in[IN_B], p.in[IN_C], p.in[IN_D_SKIP]);
    check_exact(same_bits(y_base, y_other, count), "y bitwise equal without checkpoints");

    // Two runs, and 1, 2, 3 threads.
    kernel_gradients(&p, &shape, y_other, other);
    check_exact(same_bits(y_base, y_other, count) && same_gradients(&p, base, other),
                "second run bitwise equal (y and gradients)");
    for (int threads = 1; threads <= 3; threads += 2) {
        omp_set_num_threads(threads);
        kernel_gradients(&p, &shape, y_other, other);
        snprintf(what, sizeof what, "%d thread(s) bitwise equal to 2 threads (y and gradients)", threads);
        check_exact(same_bits(y_base, y_other, count) && same_gradients(&p, base, other), what);
    }
    omp_set_num_threads(2);

    // The backward adds: a second backward into the same buffers doubles them exactly.
    float *checkpoints = xmalloc(sizeof(float) * selective_scan_checkpoint_floats(&shape));
    selective_scan_forward(&shape, y_other, checkpoints, p.in[IN_X], p.in[IN_DT], p.in[IN_DT_BIAS],
                           p.in[IN_A_LOG], p.in[IN_B], p.in[IN_C], p.in[IN_D_SKIP]);
    for (int k = 0; k < N_INPUTS; k++) memcpy(other[k], base[k], sizeof(float) * p.size[k]);
    selective_scan_backward(&shape, p.r, checkpoints, p.in[IN_X], p.in[IN_DT], p.in[IN_DT_BIAS], p.in[IN_A_LOG],
                            p.in[IN_B], p.in[IN_C], p.in[IN_D_SKIP], other[IN_X], other[IN_DT], other[IN_DT_BIAS],
                            other[IN_A_LOG], other[IN_B], other[IN_C], other[IN_D_SKIP]);
    bool doubled = true;
    for (int k = 0; k < N_INPUTS; k++)
        for (size_t i = 0; i < p.size[k]; i++) doubled = doubled && other[k][i] == 2.0f * base[k][i];
    check_exact(doubled, "backward adds into its outputs (second call doubles them exactly)");

    // Each output alone (the others NULL) equals the full call.
    bool alone_same = true;
    for (int k = 0; k < N_INPUTS; k++) {
        float *only[N_INPUTS] = {0};
        memset(other[k], 0, sizeof(float) * p.size[k]);
        only[k] = other[k];
        selective_scan_backward(&shape, p.r, checkpoints, p.in[IN_X], p.in[IN_DT], p.in[IN_DT_BIAS],
                                p.in[IN_A_LOG], p.in[IN_B], p.in[IN_C], p.in[IN_D_SKIP], only[IN_X], only[IN_DT],
                                only[IN_DT_BIAS], only[IN_A_LOG], only[IN_B], only[IN_C], only[IN_D_SKIP]);
        alone_same = alone_same && same_bits(other[k], base[k], p.size[k]);
    }
    check_exact(alone_same, "each gradient requested alone (others NULL) equals the full call");

    free(checkpoints);
    free(y_base);
    free(y_other);
    free_grads(base);
    free_grads(other);
    problem_free(&p);
}

int main(void) {
    // (a) forward: L not a multiple of chunk, chunk 1, N != 16, D not a multiple of 16.
    test_forward((SelectiveScanShape){.batch = 2, .seqlen = 13, .d_inner = 20, .d_state = 5, .chunk = 4}, 1);
    test_forward((SelectiveScanShape){.batch = 1, .seqlen = 7, .d_inner = 16, .d_state = 16, .chunk = 1}, 2);
    test_forward((SelectiveScanShape){.batch = 3, .seqlen = 70, .d_inner = 37, .d_state = 16, .chunk = 16}, 3);
    test_forward((SelectiveScanShape){.batch = 2, .seqlen = 40, .d_inner = 48, .d_state = 3, .chunk = 64}, 4);
    test_forward((SelectiveScanShape){.batch = 1, .seqlen = 5, .d_inner = 5, .d_state = 1, .chunk = 2}, 5);
    // One token; and chunk 0, which means one chunk of the whole sequence.
    test_forward((SelectiveScanShape){.batch = 2, .seqlen = 1, .d_inner = 1, .d_state = 1, .chunk = 1}, 13);
    test_forward((SelectiveScanShape){.batch = 2, .seqlen = 9, .d_inner = 33, .d_state = 2, .chunk = 0}, 14);
    // (b) backward against finite differences, every input.
    test_backward_fd((SelectiveScanShape){.batch = 2, .seqlen = 11, .d_inner = 19, .d_state = 5, .chunk = 4}, 6);
    test_backward_fd((SelectiveScanShape){.batch = 1, .seqlen = 9, .d_inner = 16, .d_state = 16, .chunk = 1}, 7);
    test_backward_fd((SelectiveScanShape){.batch = 3, .seqlen = 1, .d_inner = 3, .d_state = 2, .chunk = 0}, 15);
    // (c) backward against the analytic double backward, larger and training-like shapes.
    test_backward_analytic((SelectiveScanShape){.batch = 3, .seqlen = 100, .d_inner = 40, .d_state = 16, .chunk = 16}, 8);
    test_backward_analytic((SelectiveScanShape){.batch = 2, .seqlen = 256, .d_inner = 64, .d_state = 16, .chunk = 64}, 9);
    test_backward_analytic((SelectiveScanShape){.batch = 1, .seqlen = 57, .d_inner = 100, .d_state = 7, .chunk = 10}, 10);
    // (d) determinism: several items and groups per sequence, a partial last block.
    test_determinism((SelectiveScanShape){.batch = 3, .seqlen = 45, .d_inner = 72, .d_state = 16, .chunk = 8}, 11);
    test_determinism((SelectiveScanShape){.batch = 1, .seqlen = 20, .d_inner = 300, .d_state = 4, .chunk = 6}, 12);
    if (failures) printf("%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
