// The cost of gradient-aware iterative pruning (the target: at most 15% on top of the same
// fine-tuning): the same train_run (model, data, steps, seed) with prune.method none and
// with prune.method gradient, alternated, the medians compared, and the median of each
// repeat's ratio, which a drift in the machine's speed over the repeats does not bias. The
// time compared is the fine-tuning loop: the steps' forward, backward and AdamW
// (train_seconds) plus, for the pruning run, all pruning work (prune_seconds: gradient
// accumulation, scoring, selection, stability check, mask application). Whole-run wall
// times, which also hold set-up, the evaluations and the checkpoint, are printed too.
//
// --updates N times N mask updates alone (no training) on a random model with random
// gradients, part by part: for a 4.5 M-parameter model, --d-model 384 --n-layer 5.
//
//   bench_prune [--d-model 256] [--n-layer 4] [--batch 8] [--seqlen 256] [--steps 100]
//               [--prune-every 50] [--grad-accum 4] [--stability-batches 2] [--alpha 1]
//               [--sparsity 0.5] [--repeats 3] [--data FILE]  (default: selective copying)
//               [--updates N]
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run/trainer.h"
#include "core/timer.h"
#include "prune/iterative.h"

typedef struct BenchOptions {
    int d_model, n_layer, batch, seqlen, steps, prune_every, grad_accum, stability_batches, repeats, updates;
    double alpha, sparsity;
    const char *data;
} BenchOptions;

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int n) {
    double *sorted = xmalloc(sizeof(double) * (size_t)n);
    memcpy(sorted, values, sizeof(double) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(double), compare_doubles);
    double m = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    free(sorted);
    return m;
}

static void set(RunConfig *c, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void set(RunConfig *c, const char *format, ...) {
    char assignment[4200];
    va_list args;
    va_start(args, format);
    vsnprintf(assignment, sizeof assignment, format, args);
    va_end(args);
    Error err;
    if (config_set(c, assignment, &err) != 0) {
        fprintf(stderr, "bench_prune: %s\n", err.message);
        exit(2);
    }
}

static void bench_config(const BenchOptions *o, bool prune, const char *dir, RunConfig *out) {
    RunConfig c;
    config_defaults(&c);
    set(&c, "model.d_model=%d", o->d_model);
    set(&c, "model.n_layer=%d", o->n_layer);
    if (o->data) {
        set(&c, "data.kind=text");
        set(&c, "data.path=%s", o->data);
    } else {
        set(&c, "data.n_memorize=16");
    }
    set(&c, "train.steps=%d", o->steps);
    set(&c, "train.batch_size=%d", o->batch);
    set(&c, "train.seqlen=%d", o->seqlen);
    set(&c, "train.eval_every=0");
    set(&c, "train.eval_batches=1");
    set(&c, "train.log_every=%d", o->steps);
    set(&c, "eval.batches=1");
    set(&c, "optim.lr=1e-3");
    set(&c, "log.progress=false");
    set(&c, "log.dir=%s", dir);
    if (prune) {
        set(&c, "prune.method=gradient");
        set(&c, "prune.alpha=%g", o->alpha);
        set(&c, "prune.final_sparsity=%g", o->sparsity);
        set(&c, "prune.prune_every=%d", o->prune_every);
        set(&c, "prune.grad_accum_batches=%d", o->grad_accum);
        set(&c, "stability.enabled=%s", o->stability_batches > 0 ? "true" : "false");
        if (o->stability_batches > 0) set(&c, "stability.batches=%d", o->stability_batches);
    }
    Error err;
    if (config_check(&c, &err) != 0) {
        fprintf(stderr, "bench_prune: %s\n", err.message);
        exit(2);
    }
    *out = c;
}

static void run_once(const BenchOptions *o, bool prune, const char *dir, TrainSummary *s) {
    RunConfig c;
    bench_config(o, prune, dir, &c);
    Error err;
    if (train_run(&c, dir, NULL, s, &err) != 0) {
        fprintf(stderr, "bench_prune: %s\n", err.message);
        exit(1);
    }
    config_free(&c);
}

// Mask updates alone: a random model, random gradients accumulated before each update.
static void time_updates(const BenchOptions *o) {
    RunConfig c;
    bench_config(o, true, "/tmp", &c);
    Error err;
    DataOptions data_options;
    run_data_options(&c, &data_options);
    Dataset data;
    if (data_open(&data, &data_options, c.train.seqlen, &err) != 0) {
        fprintf(stderr, "bench_prune: %s\n", err.message);
        exit(1);
    }
    MambaConfig model_config;
    config_to_mamba(&c, &model_config);
    model_config.vocab_size = data_vocab_size(&data);
    if (mamba_config_finish(&model_config, &err) != 0) exit(2);
    MambaModel model;
    mamba_model_create(&model, &model_config);
    Rng rng;
    rng_seed(&rng, 1);
    mamba_model_init_random(&model, &rng);
    AdamW optimizer;
    AdamWOptions adamw_options;
    adamw_options_defaults(&adamw_options);
    adamw_init(&optimizer, &adamw_options);
    for (int i = 0; i < model.n_params; i++) adamw_add(&optimizer, model.params[i].tensor, true);
    bool *prunable = xcalloc((size_t)model.n_params, sizeof(bool));
    for (int i = 0; i < model.n_params; i++) prunable[i] = config_param_prunable(&c, model.params[i].name);
    PruneMasks masks;
    prune_masks_create(&masks, &model, prunable);
    free(prunable);
    IterativePruner pruner;
    PruneOptions options;
    PruneStabilityOptions stability;
    config_prune_options(&c, &options);
    config_stability_options(&c, &stability);
    if (iterative_init(&pruner, &options, &stability, &data, &model, &masks, &err) != 0) {
        fprintf(stderr, "bench_prune: %s\n", err.message);
        exit(1);
    }
    Tape tape;
    tape_init(&tape, 64u << 20);
    printf("mask updates of a %.2f M-parameter model (%zu weights under masks), stability check %s:\n",
           model.n_elements / 1e6, masks.total, o->stability_batches > 0 ? "on" : "off");
    printf("%-6s %9s %10s %9s %9s %9s %9s %9s\n", "step", "target", "accumulate", "score", "select", "stability",
           "apply", "total s");
    long t = 0;
    for (int u = 0; u < o->updates; u++) {
        t = sparsity_next_update(&pruner.schedule, t);
        if (t < 0) break;
        PruneTimes before = pruner.times;  // accumulate: the gradients added, then the accumulator emptied
        for (int k = 0; k < o->grad_accum && c.prune.alpha != 0.0; k++) {
            for (int i = 0; i < model.n_params; i++) {
                Tensor *p = model.params[i].tensor;
                for (size_t j = 0; j < p->size; j++) p->grad[j] = 0.01f * rng_normal(&rng);
            }
            iterative_accumulate(&pruner);
        }
        double start = now_seconds();
        cJSON *event;
        if (iterative_update(&pruner, t, &model, &optimizer, &tape, &event, &err) != 0) {
            fprintf(stderr, "bench_prune: %s\n", err.message);
            exit(1);
        }
        cJSON_Delete(event);
        double total = now_seconds() - start + (pruner.times.accumulate - before.accumulate);
        printf("%-6ld %8.1f%% %10.4f %9.4f %9.4f %9.4f %9.4f %9.4f\n", t, 100.0 * prune_masks_sparsity(&masks),
               pruner.times.accumulate - before.accumulate, pruner.times.score - before.score,
               pruner.times.select - before.select, pruner.times.stability - before.stability,
               pruner.times.apply - before.apply, total);
    }
    printf("(the first update also pays for first touches of its buffers)\n");
    tape_free(&tape);
    iterative_free(&pruner);
    prune_masks_free(&masks);
    adamw_free(&optimizer);
    mamba_model_free(&model);
    data_close(&data);
    config_free(&c);
}

static int parse_int(const char *text) { return atoi(text); }

int main(int argc, char **argv) {
    BenchOptions o = {256, 4, 8, 256, 100, 50, 4, 2, 3, 0, 1.0, 0.5, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_prune: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--d-model") == 0) o.d_model = parse_int(v);
        else if (strcmp(a, "--n-layer") == 0) o.n_layer = parse_int(v);
        else if (strcmp(a, "--batch") == 0) o.batch = parse_int(v);
        else if (strcmp(a, "--seqlen") == 0) o.seqlen = parse_int(v);
        else if (strcmp(a, "--steps") == 0) o.steps = parse_int(v);
        else if (strcmp(a, "--prune-every") == 0) o.prune_every = parse_int(v);
        else if (strcmp(a, "--grad-accum") == 0) o.grad_accum = parse_int(v);
        else if (strcmp(a, "--stability-batches") == 0) o.stability_batches = parse_int(v);
        else if (strcmp(a, "--repeats") == 0) o.repeats = parse_int(v);
        else if (strcmp(a, "--alpha") == 0) o.alpha = atof(v);
        else if (strcmp(a, "--sparsity") == 0) o.sparsity = atof(v);
        else if (strcmp(a, "--data") == 0) o.data = v;
        else if (strcmp(a, "--updates") == 0) o.updates = parse_int(v);
        else {
            fprintf(stderr, "bench_prune: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (o.repeats < 1 || o.steps < 2) {
        fprintf(stderr, "bench_prune: --repeats >= 1 and --steps >= 2\n");
        return 2;
    }
    if (o.updates > 0) {
        time_updates(&o);
        return 0;
    }
    char root[] = "/tmp/bench_prune_XXXXXX";
    if (!mkdtemp(root)) return 1;
    printf("bench_prune: d_model %d, %d layers, batch %d x %d, %d steps, %s; pruning: alpha %g to %.0f%%, masks every %d "
           "steps (until step %d), gradients of %d steps, stability check %s (%d batches); %d repeats, alternated\n",
           o.d_model, o.n_layer, o.batch, o.seqlen, o.steps, o.data ? o.data : "selective copying", o.alpha,
           100 * o.sparsity, o.prune_every, o.steps * 3 / 4, o.grad_accum, o.stability_batches > 0 ? "on" : "off",
           o.stability_batches, o.repeats);
    printf("%-8s %-6s %10s %10s %10s %10s %8s\n", "repeat", "run", "loop s", "train s", "prune s", "wall s", "sparsity");
    int n = o.repeats;
    double *dense_loop = xmalloc(sizeof(double) * (size_t)n), *prune_loop = xmalloc(sizeof(double) * (size_t)n);
    double *dense_wall = xmalloc(sizeof(double) * (size_t)n), *prune_wall = xmalloc(sizeof(double) * (size_t)n);
    double *parts[6];
    for (int k = 0; k < 6; k++) parts[k] = xmalloc(sizeof(double) * (size_t)n);
    for (int r = 0; r < n; r++) {
        // Alternate which run goes first, so that drift in the machine's load hits both.
        for (int half = 0; half < 2; half++) {
            bool prune = (r + half) % 2 == 1;
            char dir[4200];
            snprintf(dir, sizeof dir, "%s/%s-%d", root, prune ? "prune" : "dense", r);
            TrainSummary s;
            run_once(&o, prune, dir, &s);
            double loop = s.train_seconds + s.prune_seconds;
            printf("%-8d %-6s %10.2f %10.2f %10.3f %10.2f %8.4f\n", r, prune ? "prune" : "dense", loop, s.train_seconds,
                   s.prune_seconds, s.wall_s, s.sparsity);
            fflush(stdout);
            if (prune) {
                prune_loop[r] = loop;
                prune_wall[r] = s.wall_s;
                double breakdown[6] = {s.prune_breakdown.accumulate, s.prune_breakdown.score, s.prune_breakdown.select,
                                       s.prune_breakdown.stability, s.prune_breakdown.apply, s.prune_seconds};
                for (int k = 0; k < 6; k++) parts[k][r] = breakdown[k];
            } else {
                dense_loop[r] = loop;
                dense_wall[r] = s.wall_s;
            }
        }
    }
    double dl = median(dense_loop, n), pl = median(prune_loop, n), dw = median(dense_wall, n), pw = median(prune_wall, n);
    printf("\nmedians: fine-tuning loop %.2f s dense, %.2f s with pruning: overhead %+.1f%% (target: <= 15%%)\n", dl, pl,
           100.0 * (pl / dl - 1.0));
    printf("         whole run (set-up, evaluations, checkpoint) %.2f s dense, %.2f s with pruning: %+.1f%%\n", dw, pw,
           100.0 * (pw / dw - 1.0));
    // The two runs of a repeat ran back to back: their ratio is the least affected by a
    // machine whose speed drifts over the repeats.
    double *ratios = xmalloc(sizeof(double) * (size_t)n);
    for (int r = 0; r < n; r++) ratios[r] = prune_loop[r] / dense_loop[r];
    printf("         fine-tuning loop, median of the %d back-to-back ratios: overhead %+.1f%%\n", n,
           100.0 * (median(ratios, n) - 1.0));
    free(ratios);
    static const char *const names[6] = {"gradient accumulation", "scoring", "selection", "stability check",
                                         "mask application", "all pruning"};
    printf("pruning time, median per run (share of the dense loop):\n");
    for (int k = 0; k < 6; k++) printf("  %-22s %8.3f s  %5.2f%%\n", names[k], median(parts[k], n), 100.0 * median(parts[k], n) / dl);
    char command[4200];
    snprintf(command, sizeof command, "rm -rf '%s'", root);
    if (system(command) != 0) return 1;
    for (int k = 0; k < 6; k++) free(parts[k]);
    free(dense_loop);
    free(prune_loop);
    free(dense_wall);
    free(prune_wall);
    return 0;
}
