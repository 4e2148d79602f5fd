// Training throughput of a random Mamba LM on random tokens: tokens/s and achieved
// GFLOP/s of full steps (forward, backward, AdamW), median over the timed steps, and a
// profile of where a step's time goes, op by op.
//
//   bench_train [--d-model 256] [--n-layer 4] [--batch 8] [--seqlen 256] [--vocab 256]
//               [--steps 10] [--warmup 2] [--matmul openblas|onednn|both] [--no-profile]
//
// In a -DMP_MPI=ON build under `mpirun -np N`, --batch is the global batch: each process
// runs the trainer's data-parallel step (run/data_parallel.h: its batch / N sequences, the
// gradients summed in rank order), a step is timed from a barrier to a barrier, tokens/s
// counts the global batch, and the profile is rank 0's. Every run ends with each
// process's peak resident memory (getrusage's ru_maxrss).
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "autograd/ops.h"
#include "core/dist.h"
#include "core/timer.h"
#include "mamba/model.h"
#include "optim/adamw.h"
#include "run/data_parallel.h"

typedef struct BenchOptions {
    int d_model, n_layer, batch, seqlen, vocab, steps, warmup;
    const char *matmul;
    int profile;
} BenchOptions;

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Multiply-adds of the matmuls of one token, forward only; training is 3x that
// (forward, and two products in the backward).
static double matmul_flops_per_token(const MambaConfig *c) {
    double d = c->d_model, D = c->d_inner, N = c->d_state, R = c->dt_rank, V = c->vocab_padded;
    double per_layer = 2 * D * d + (R + 2 * N) * D + D * R + d * D;
    return 2.0 * (c->n_layer * per_layer + V * d);
}

// Every process's peak resident set so far, printed by rank 0 (the sum in rank order
// gathers one slot per process).
static void print_peak_memory(void) {
    const int P = dist_size();
    double *peak_gb = xcalloc((size_t)P, sizeof(double));
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) == 0) peak_gb[dist_rank()] = (double)usage.ru_maxrss * 1024.0 / 1e9;
    dist_allreduce_sum_double(peak_gb, (size_t)P);
    if (dist_is_root()) {
        printf("  peak RSS (GB) by process:");
        for (int r = 0; r < P; r++) printf(" %.2f", peak_gb[r]);
        printf("\n");
    }
    free(peak_gb);
}

// Under mpirun: the gradient sum of one step alone (every parameter tensor's, as
// data_parallel_step sums them), median of 3, as a part of the step's time.
static void print_gradient_sum_time(const MambaModel *model) {
    double t[3];
    for (int k = 0; k < 3; k++) {
        dist_barrier();
        double start = now_seconds();
        for (int i = 0; i < model->n_params; i++)
            dist_allreduce_sum(model->params[i].tensor->grad, model->params[i].tensor->size);
        dist_barrier();
        t[k] = now_seconds() - start;
    }
    qsort(t, 3, sizeof(double), compare_doubles);
    if (dist_is_root())
        printf("  gradient sum alone (%.0f MB a process): %.1f ms\n", 4.0 * (double)model->n_elements / 1e6, 1e3 * t[1]);
}

static void run(const BenchOptions *o, MatmulBackend backend) {
    matmul_set_backend(backend);
    MambaConfig config;
    mamba_config_defaults(&config);
    config.d_model = o->d_model;
    config.n_layer = o->n_layer;
    config.vocab_size = o->vocab;
    Error err;
    if (mamba_config_finish(&config, &err) != 0) {
        fprintf(stderr, "bench_train: %s\n", err.message);
        exit(2);
    }
    MambaModel model;
    mamba_model_create(&model, &config);
    Rng rng;
    rng_seed(&rng, 1);
    mamba_model_init_random(&model, &rng);
    AdamW optimizer;
    AdamWOptions adamw_options = {0.9, 0.999, 1e-8, 0.1};
    adamw_init(&optimizer, &adamw_options);
    for (int i = 0; i < model.n_params; i++) adamw_add(&optimizer, model.params[i].tensor, true);

    int T = o->batch * o->seqlen;
    int32_t *tokens = xmalloc(sizeof(int32_t) * (size_t)T), *targets = xmalloc(sizeof(int32_t) * (size_t)T);
    for (int i = 0; i < T; i++) tokens[i] = (int32_t)rng_below(&rng, (uint64_t)o->vocab);
    for (int i = 0; i < T; i++) targets[i] = (int32_t)rng_below(&rng, (uint64_t)o->vocab);

    Tape tape;
    tape_init(&tape, 64 << 20);
    TapeProfile profile;
    memset(&profile, 0, sizeof profile);
    double *seconds = xmalloc(sizeof(double) * (size_t)o->steps);
    float loss_value = 0.0f;
    Distiller no_distill = {.on = false};
    for (int step = 0; step < o->warmup + o->steps; step++) {
        int timed = step >= o->warmup;
        tape.profile = timed && o->profile ? &profile : NULL;
        dist_barrier();
        double start = now_seconds();
        mamba_model_zero_grad(&model);
        double zero_end = now_seconds();
        tape_reset(&tape);
        // One process: mamba_forward and tape_backward of the whole batch.
        loss_value = data_parallel_step(&tape, &no_distill, &model, tokens, targets, o->batch, o->seqlen);
        double clip_start = now_seconds();
        adamw_clip_grad_norm(&optimizer, 1.0);  // as the trainer does (optim.grad_clip)
        double optim_start = now_seconds();
        adamw_step(&optimizer, 1e-4f);
        dist_barrier();
        double end = now_seconds();
        if (timed) {
            seconds[step - o->warmup] = end - start;
            // What is not a tape op is booked by hand.
            if (tape.profile) {
                tape_profile_add(&profile, "zero_grad", zero_end - start, 0.0);
                tape_profile_add(&profile, "clip_grad_norm", optim_start - clip_start, 0.0);
                tape_profile_add(&profile, "adamw", end - optim_start, 0.0);
            }
        }
    }
    double sorted[o->steps];
    memcpy(sorted, seconds, sizeof sorted);
    qsort(sorted, (size_t)o->steps, sizeof(double), compare_doubles);
    double median = sorted[o->steps / 2];
    double tokens_per_s = T / median;
    double gflops = 3.0 * matmul_flops_per_token(&config) * T / median / 1e9;
    const bool root = dist_is_root();
    if (root)
        printf("%-8s d_model %d n_layer %d batch %d seqlen %d (%.2f M params), %d process%s x %d threads: median step "
               "%.1f ms (min %.1f, max %.1f), %.0f tokens/s, %.1f GFLOP/s in matmuls, final loss %.4f\n",
               matmul_backend_name(backend), o->d_model, o->n_layer, o->batch, o->seqlen, model.n_elements / 1e6,
               dist_size(), dist_size() == 1 ? "" : "es", omp_get_max_threads(), 1e3 * median, 1e3 * sorted[0],
               1e3 * sorted[o->steps - 1], tokens_per_s, gflops, loss_value);
    if (o->profile && root) {
        double total = 0.0;
        for (int i = 0; i < profile.n_ops; i++) total += profile.ops[i].forward_s + profile.ops[i].backward_s;
        double step_total = 0.0;
        for (int i = 0; i < o->steps; i++) step_total += seconds[i];
        printf("  %-16s %10s %10s %8s   (share of the profiled time; %.1f%% of the steps' time is profiled)\n", "op",
               "fwd ms", "bwd ms", "share", 100.0 * total / step_total);
        for (int i = 0; i < profile.n_ops; i++) {
            double f = 1e3 * profile.ops[i].forward_s / o->steps, b = 1e3 * profile.ops[i].backward_s / o->steps;
            printf("  %-16s %10.2f %10.2f %7.1f%%\n", profile.ops[i].name, f, b,
                   100.0 * (profile.ops[i].forward_s + profile.ops[i].backward_s) / total);
        }
    }
    if (dist_size() > 1) print_gradient_sum_time(&model);
    print_peak_memory();
    free(seconds);
    free(tokens);
    free(targets);
    tape_free(&tape);
    adamw_free(&optimizer);
    mamba_model_free(&model);
}

int main(int argc, char **argv) {
    BenchOptions o = {256, 4, 8, 256, 256, 10, 2, "both", 1};
    Error err;
    if (dist_init(&argc, &argv, &err) != 0) {
        fprintf(stderr, "bench_train: %s\n", err.message);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-profile") == 0) { o.profile = 0; continue; }
        if (!v) { fprintf(stderr, "bench_train: %s needs a value\n", a); dist_abort(2); }
        i++;
        if (strcmp(a, "--d-model") == 0) o.d_model = atoi(v);
        else if (strcmp(a, "--n-layer") == 0) o.n_layer = atoi(v);
        else if (strcmp(a, "--batch") == 0) o.batch = atoi(v);
        else if (strcmp(a, "--seqlen") == 0) o.seqlen = atoi(v);
        else if (strcmp(a, "--vocab") == 0) o.vocab = atoi(v);
        else if (strcmp(a, "--steps") == 0) o.steps = atoi(v);
        else if (strcmp(a, "--warmup") == 0) o.warmup = atoi(v);
        else if (strcmp(a, "--matmul") == 0) o.matmul = v;
        else { fprintf(stderr, "bench_train: unknown option %s\n", a); dist_abort(2); }
    }
    if (o.steps < 1 || o.batch < 1 || o.seqlen < 2) { fprintf(stderr, "bench_train: bad sizes\n"); dist_abort(2); }
    if (o.batch % dist_size() != 0) {
        fprintf(stderr, "bench_train: --batch %d does not split over %d processes\n", o.batch, dist_size());
        dist_abort(2);
    }
    int both = strcmp(o.matmul, "both") == 0;
    // Side by side in one run, alternating, so that machine noise hits both alike.
    if (both || strcmp(o.matmul, "openblas") == 0) run(&o, MATMUL_OPENBLAS);
    if (both || strcmp(o.matmul, "onednn") == 0) run(&o, MATMUL_ONEDNN);
    dist_finalize();
    return 0;
}
