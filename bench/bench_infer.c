// Inference speed of one or more models side by side (docs/DESIGN.md#evaluation "Speed"): prompt tokens/s
// (the parallel forward over a (batch, seqlen) prompt, logits only, nothing recorded) and
// decode tokens/s (mamba_step, one token at a time with the recurrent state), median over
// the repeats. The models take turns within every repeat, so that machine noise hits all
// alike; ratios are to the first model. Prints a Markdown table.
//
//   bench_infer [--model PATH]... [--sparsity S]... [--batch 1] [--seqlen 256]
//               [--decode-tokens 64] [--repeats 5] [--threads N]
// PATH is a checkpoint or a transformers folder. Without --model it builds two random
// models: d_model 288 with 8 layers, and 6 layers with d_state 8 (a structurally pruned
// stand-in). Each --sparsity S adds a copy of the first model whose mixer weights are
// magnitude-pruned to S per tensor (an unstructured stand-in: the dense kernels do the
// same work for it). Threads: --threads, else OMP_NUM_THREADS.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"          // defines: matmul_get_backend, matmul_backend_name
#include "run/model_source.h"      // defines: model_load
#include "core/timer.h"            // defines: now_seconds
#include "mamba/model.h"           // defines: mamba_forward, mamba_step
#include "prune/linear_prune.h"    // defines: magnitude_prune

enum { MAX_MODELS = 16 };

typedef struct BenchOptions {
    const char *paths[MAX_MODELS];
    int n_paths;
    double sparsities[MAX_MODELS];
    int n_sparsities;
    int batch, seqlen, decode_tokens, repeats, threads;
} BenchOptions;

// One model under test and what was measured of it.
typedef struct Subject {
    char label[160];
    MambaModel model;
    Tape tape;
    MambaState state;
    float *logits;                 // (vocab_padded) of the decode step
    int32_t *prompt;               // (batch, seqlen)
    int32_t *decode;               // (decode_tokens)
    double *prompt_s, *decode_s;   // (repeats) seconds
} Subject;

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *values, int count) {
    double sorted[count];
    memcpy(sorted, values, sizeof sorted);
    qsort(sorted, (size_t)count, sizeof(double), compare_doubles);
    return count % 2 ? sorted[count / 2] : 0.5 * (sorted[count / 2 - 1] + sorted[count / 2]);
}

// The mixer's weight tensors of layer i: what pruning zeroes (docs/DESIGN.md#iterative-pruning's default prunable set).
static int mixer_weights(MambaLayer *l, Tensor **out) {
    Tensor *all[] = {&l->in_proj_weight, &l->conv1d_weight, &l->x_proj_weight,
                     &l->dt_proj_weight, &l->A_log,         &l->out_proj_weight};
    memcpy(out, all, sizeof all);
    return (int)(sizeof all / sizeof all[0]);
}

static double mixer_zero_fraction(MambaModel *model) {
    size_t zeros = 0, total = 0;
    for (int i = 0; i < model->config.n_layer; i++) {
        Tensor *w[6];
        int n = mixer_weights(&model->layers[i], w);
        for (int k = 0; k < n; k++) {
            for (size_t j = 0; j < w[k]->size; j++) zeros += w[k]->data[j] == 0.0f;
            total += w[k]->size;
        }
    }
    return total ? (double)zeros / (double)total : 0.0;
}

static void random_model(MambaModel *model, int n_layer, int d_state) {
    MambaConfig config;
    mamba_config_defaults(&config);
    config.d_model = 288;
    config.n_layer = n_layer;
    config.vocab_size = 256;
    config.d_state = d_state;
    Error err;
    if (mamba_config_finish(&config, &err) != 0) {
        fprintf(stderr, "bench_infer: %s\n", err.message);
        exit(2);
    }
    mamba_model_create(model, &config);
    Rng rng;
    rng_seed(&rng, 1);
    mamba_model_init_random(model, &rng);
}

// A copy of source with every mixer weight tensor magnitude-pruned to sparsity.
static void pruned_copy(MambaModel *copy, MambaModel *source, double sparsity) {
    mamba_model_create(copy, &source->config);
    for (int i = 0; i < source->n_params; i++)
        memcpy(copy->params[i].tensor->data, source->params[i].tensor->data,
               sizeof(float) * source->params[i].tensor->size);
    PruneTarget target = {.sparsity = sparsity};
    for (int i = 0; i < copy->config.n_layer; i++) {
        Tensor *w[6];
        int n = mixer_weights(&copy->layers[i], w);
        for (int k = 0; k < n; k++) {
            int cols = w[k]->shape[w[k]->ndim - 1], rows = (int)(w[k]->size / (size_t)cols);
            uint8_t *keep = xmalloc(w[k]->size);
            memset(keep, 1, w[k]->size);
            WeightView view = {"mixer weight", w[k]->data, keep, rows, cols};
            Error err;
            if (magnitude_prune(&view, &target, &err) != 0) {
                fprintf(stderr, "bench_infer: --sparsity %g: %s\n", sparsity, err.message);
                exit(2);
            }
            free(keep);
        }
    }
}

static void subject_prepare(Subject *s, const BenchOptions *o) {
    const MambaConfig *c = &s->model.config;
    tape_init(&s->tape, 64u << 20);
    s->tape.recording = false;
    mamba_state_create(&s->state, c);
    s->logits = xmalloc(sizeof(float) * (size_t)c->vocab_padded);
    // The same tokens for every model of the same vocabulary.
    Rng rng;
    rng_seed(&rng, 7);
    size_t T = (size_t)o->batch * (size_t)o->seqlen;
    s->prompt = xmalloc(sizeof(int32_t) * T);
    s->decode = xmalloc(sizeof(int32_t) * (size_t)o->decode_tokens);
    for (size_t i = 0; i < T; i++) s->prompt[i] = (int32_t)rng_below(&rng, (uint64_t)c->vocab_size);
    for (int i = 0; i < o->decode_tokens; i++) s->decode[i] = (int32_t)rng_below(&rng, (uint64_t)c->vocab_size);
    s->prompt_s = xcalloc((size_t)o->repeats, sizeof(double));
    s->decode_s = xcalloc((size_t)o->repeats, sizeof(double));
}

static void subject_free(Subject *s) {
    tape_free(&s->tape);
    mamba_state_free(&s->state);
    mamba_model_free(&s->model);
    free(s->logits), free(s->prompt), free(s->decode);
    free(s->prompt_s), free(s->decode_s);
}

static double time_prompt(Subject *s, const BenchOptions *o) {
    double start = now_seconds();
    tape_reset(&s->tape);
    Tensor *logits;
    mamba_forward(&s->tape, &s->model, s->prompt, NULL, o->batch, o->seqlen, &logits);
    return now_seconds() - start;
}

// One sequence of decode_tokens steps from an empty state.
static double time_decode(Subject *s, const BenchOptions *o) {
    double start = now_seconds();
    mamba_state_reset(&s->state, &s->model.config);
    for (int t = 0; t < o->decode_tokens; t++) mamba_step(&s->model, &s->state, s->decode[t], s->logits);
    return now_seconds() - start;
}

static void print_table(Subject *subjects, int n, const BenchOptions *o) {
    printf("batch %d, seqlen %d, decode %d tokens, %d repeats, %d threads, matmul %s; medians\n\n", o->batch,
           o->seqlen, o->decode_tokens, o->repeats, omp_get_max_threads(), matmul_backend_name(matmul_get_backend()));
    printf("| model | params | mixer zeros | layers | d_state | prompt tok/s | vs first | decode tok/s | vs first |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    double prompt_first = 0.0, decode_first = 0.0;
    for (int i = 0; i < n; i++) {
        Subject *s = &subjects[i];
        const MambaConfig *c = &s->model.config;
        double prompt = (double)o->batch * o->seqlen / median(s->prompt_s, o->repeats);
        double decode = o->decode_tokens / median(s->decode_s, o->repeats);
        if (i == 0) prompt_first = prompt, decode_first = decode;
        printf("| %s | %.2f M | %.1f%% | %d | %d | %.0f | %.2fx | %.1f | %.2fx |\n", s->label, s->model.n_elements / 1e6,
               100.0 * mixer_zero_fraction(&s->model), c->n_layer, c->d_state, prompt, prompt / prompt_first, decode,
               decode / decode_first);
    }
}

// An integer in [minimum, 10000000] for a flag.
static int parse_count(const char *flag, const char *text, int minimum, int *out) {
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < minimum || v > 10000000) {
        fprintf(stderr, "bench_infer: %s expects an integer of at least %d, got '%s'\n", flag, minimum, text);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_options(int argc, char **argv, BenchOptions *o) {
    struct {
        const char *flag;
        int *value;
        int minimum;
    } counts[] = {{"--batch", &o->batch, 1},     {"--seqlen", &o->seqlen, 1}, {"--decode-tokens", &o->decode_tokens, 1},
                  {"--repeats", &o->repeats, 1}, {"--threads", &o->threads, 1}};
    const int n_counts = (int)(sizeof counts / sizeof counts[0]);
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_infer: %s needs a value\n", flag);
            return -1;
        }
        const char *value = argv[++i];
        int known = 0;
        for (int f = 0; f < n_counts && !known; f++) {
            if (strcmp(flag, counts[f].flag) != 0) continue;
            known = 1;
            if (parse_count(flag, value, counts[f].minimum, counts[f].value) != 0) return -1;
        }
        if (known) continue;
        if (strcmp(flag, "--model") == 0 || strcmp(flag, "--sparsity") == 0) {
            if (o->n_paths + o->n_sparsities + 2 >= MAX_MODELS) {
                fprintf(stderr, "bench_infer: at most %d models\n", MAX_MODELS - 2);
                return -1;
            }
            if (flag[2] == 'm') {
                o->paths[o->n_paths++] = value;
                continue;
            }
            char *end;
            double s = strtod(value, &end);
            if (*value == '\0' || *end != '\0' || !(s >= 0.0 && s < 1.0)) {
                fprintf(stderr, "bench_infer: --sparsity expects a fraction in [0, 1), got '%s'\n", value);
                return -1;
            }
            o->sparsities[o->n_sparsities++] = s;
            continue;
        }
        fprintf(stderr, "bench_infer: unknown option '%s' (expected --model, --sparsity, --batch, --seqlen, "
                        "--decode-tokens, --repeats, --threads)\n", flag);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    BenchOptions o = {.batch = 1, .seqlen = 256, .decode_tokens = 64, .repeats = 5, .threads = 0};
    if (parse_options(argc, argv, &o) != 0) return 2;
    if (o.threads > 0) omp_set_num_threads(o.threads);

    Subject subjects[MAX_MODELS];
    memset(subjects, 0, sizeof subjects);
    int n = 0;
    for (int i = 0; i < o.n_paths; i++, n++) {
        Error err;
        if (model_load(o.paths[i], &subjects[n].model, &err) != 0) {
            fprintf(stderr, "bench_infer: %s\n", err.message);
            return 2;
        }
        snprintf(subjects[n].label, sizeof subjects[n].label, "%s", o.paths[i]);
    }
    if (o.n_paths == 0) {
        random_model(&subjects[n].model, 8, 16);
        snprintf(subjects[n++].label, sizeof subjects[0].label, "random d288 L8 N16");
        random_model(&subjects[n].model, 6, 8);
        snprintf(subjects[n++].label, sizeof subjects[0].label, "random d288 L6 N8 (structured stand-in)");
    }
    for (int i = 0; i < o.n_sparsities; i++, n++) {
        pruned_copy(&subjects[n].model, &subjects[0].model, o.sparsities[i]);
        snprintf(subjects[n].label, sizeof subjects[n].label, "%.100s, magnitude %.0f%%", subjects[0].label,
                 100.0 * o.sparsities[i]);
    }
    for (int i = 0; i < n; i++) subject_prepare(&subjects[i], &o);

    // Repeat -1 warms up (arena growth, caches, thread pools) and is not counted.
    for (int r = -1; r < o.repeats; r++) {
        for (int i = 0; i < n; i++) {
            Subject *s = &subjects[i];
            double prompt = time_prompt(s, &o);
            double decode = time_decode(s, &o);
            if (r >= 0) s->prompt_s[r] = prompt, s->decode_s[r] = decode;
        }
    }
    print_table(subjects, n, &o);
    for (int i = 0; i < n; i++) subject_free(&subjects[i]);
    return 0;
}
