// Speed of the fused selective scan (src/autograd/selective_scan.c): forward (with
// checkpoints) and backward, median ms over the timed runs, in Gelem/s of (b, t, d, n)
// state updates and GB/s of the tensors each pass must read and write.
//
//   bench_scan [--batch 8] [--seqlen 256] [--d-inner 512] [--d-state 16] [--chunk C]
//              [--runs 20] [--warmup 3]
// Without --chunk it times chunks 64, 16, 32 and 128; threads follow OMP_NUM_THREADS.
// Buffers are 64-byte aligned like the tape arena's; the timing is wall-clock.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/selective_scan.h"  // defines: selective_scan_forward, selective_scan_backward
#include "core/error.h"               // defines: xmalloc, xcalloc
#include "core/rng.h"                 // defines: Rng, rng_seed, rng_normal, rng_uniform

typedef struct BenchOptions {
    int batch, seqlen, d_inner, d_state, chunk, runs, warmup;
} BenchOptions;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int count) {
    qsort(values, (size_t)count, sizeof(double), compare_doubles);
    return count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

// 64-byte aligned like the tape's arena (a block of 16 channels is then one cache line;
// malloc's 16-byte alignment would split every row of a block over two lines). Zeroed.
static float *aligned_floats(size_t count) {
    size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (!p) {
        fprintf(stderr, "bench_scan: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    memset(p, 0, bytes);
    return p;
}

static float *random_floats(Rng *rng, size_t count, float mean, float scale) {
    float *p = aligned_floats(count);
    for (size_t i = 0; i < count; i++) p[i] = mean + scale * rng_normal(rng);
    return p;
}

static void bench_chunk(const BenchOptions *o, int chunk) {
    SelectiveScanShape shape = {o->batch, o->seqlen, o->d_inner, o->d_state, chunk};
    const size_t B = o->batch, L = o->seqlen, D = o->d_inner, N = o->d_state;
    const size_t tok_d = B * L * D, tok_n = B * L * N;
    Rng rng;
    rng_seed(&rng, 1);
    // Δ around softplus(-4) ~ 0.018, A = -(1..N): the regime of an initialised model.
    float *x = random_floats(&rng, tok_d, 0.0f, 1.0f), *dt = random_floats(&rng, tok_d, 0.0f, 0.5f);
    float *dt_bias = random_floats(&rng, D, -4.0f, 0.5f), *D_skip = random_floats(&rng, D, 1.0f, 0.0f);
    float *Bm = random_floats(&rng, tok_n, 0.0f, 1.0f), *Cm = random_floats(&rng, tok_n, 0.0f, 1.0f);
    float *dy = random_floats(&rng, tok_d, 0.0f, 1.0f);
    float *A_log = aligned_floats(D * N);
    for (size_t d = 0; d < D; d++)
        for (size_t n = 0; n < N; n++) A_log[d * N + n] = logf((float)(n + 1));
    const long checkpoint_floats = selective_scan_checkpoint_floats(&shape);
    float *y = aligned_floats(tok_d), *checkpoints = aligned_floats((size_t)checkpoint_floats);
    float *d_x = aligned_floats(tok_d), *d_dt = aligned_floats(tok_d);
    float *d_B = aligned_floats(tok_n), *d_C = aligned_floats(tok_n);
    float *d_dt_bias = aligned_floats(D), *d_D = aligned_floats(D), *d_A_log = aligned_floats(D * N);

    double *forward_s = xmalloc(sizeof(double) * o->runs), *backward_s = xmalloc(sizeof(double) * o->runs);
    for (int i = -o->warmup; i < o->runs; i++) {
        double t0 = now_seconds();
        selective_scan_forward(&shape, y, checkpoints, x, dt, dt_bias, A_log, Bm, Cm, D_skip);
        double t1 = now_seconds();
        selective_scan_backward(&shape, dy, checkpoints, x, dt, dt_bias, A_log, Bm, Cm, D_skip, d_x, d_dt,
                                d_dt_bias, d_A_log, d_B, d_C, d_D);
        double t2 = now_seconds();
        if (i >= 0) forward_s[i] = t1 - t0, backward_s[i] = t2 - t1;
    }
    double fwd = median(forward_s, o->runs), bwd = median(backward_s, o->runs);
    // Bytes each pass must move at least: forward reads x, dt, B, C, writes y and the
    // checkpoints; backward reads dy, x, dt, B, C, the checkpoints, and updates d_x, d_dt, d_B, d_C.
    double elems = (double)B * L * D * N;
    double fwd_bytes = 4.0 * (3.0 * tok_d + 2.0 * tok_n + checkpoint_floats);
    double bwd_bytes = 4.0 * (7.0 * tok_d + 6.0 * tok_n + checkpoint_floats);
    printf("B=%zu L=%zu D=%zu N=%zu chunk=%-4d threads=%d  forward %7.3f ms (%5.2f Gelem/s, %5.2f GB/s)"
           "  backward %7.3f ms (%5.2f Gelem/s, %5.2f GB/s)  total %7.3f ms\n",
           B, L, D, N, chunk, omp_get_max_threads(), 1e3 * fwd, elems / fwd * 1e-9, fwd_bytes / fwd * 1e-9,
           1e3 * bwd, elems / bwd * 1e-9, bwd_bytes / bwd * 1e-9, 1e3 * (fwd + bwd));
    free(forward_s), free(backward_s);
    free(x), free(dt), free(dt_bias), free(D_skip), free(Bm), free(Cm), free(dy), free(A_log);
    free(y), free(checkpoints), free(d_x), free(d_dt), free(d_B), free(d_C), free(d_dt_bias), free(d_D), free(d_A_log);
}

// An integer in [minimum, 1000000] for a flag.
static int parse_count(const char *flag, const char *text, int minimum, int *out) {
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < minimum || v > 1000000) {
        fprintf(stderr, "bench_scan: %s expects an integer of at least %d, got '%s'\n", flag, minimum, text);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv) {
    BenchOptions o = {.batch = 8, .seqlen = 256, .d_inner = 512, .d_state = 16, .chunk = 0, .runs = 20, .warmup = 3};
    struct {
        const char *flag;
        int *value;
        int minimum;
    } flags[] = {{"--batch", &o.batch, 1},  {"--seqlen", &o.seqlen, 1}, {"--d-inner", &o.d_inner, 1},
                 {"--d-state", &o.d_state, 1}, {"--chunk", &o.chunk, 1}, {"--runs", &o.runs, 1},
                 {"--warmup", &o.warmup, 0}};
    const int n_flags = (int)(sizeof flags / sizeof flags[0]);
    for (int i = 1; i < argc; i++) {
        int known = 0;
        for (int f = 0; f < n_flags && !known; f++) {
            if (strcmp(argv[i], flags[f].flag) != 0) continue;
            known = 1;
            if (i + 1 >= argc) {
                fprintf(stderr, "bench_scan: %s needs a value\n", argv[i]);
                return 2;
            }
            if (parse_count(argv[i], argv[i + 1], flags[f].minimum, flags[f].value) != 0) return 2;
            i++;
        }
        if (!known) {
            fprintf(stderr, "bench_scan: unknown option '%s' (expected --batch, --seqlen, --d-inner, --d-state, "
                            "--chunk, --runs, --warmup)\n", argv[i]);
            return 2;
        }
    }
    if (o.chunk > 0) {
        bench_chunk(&o, o.chunk);
    } else {
        const int chunks[] = {64, 16, 32, 128};
        for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) bench_chunk(&o, chunks[i]);
    }
    return 0;
}
