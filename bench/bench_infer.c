// Inference speed, file size and memory of pruned models against the dense one, side by
// side in one run: random models of a real shape (mamba-130m: d_model 768, 24 layers,
// vocab 50280; mamba-370m: 1024, 48), copies with the linear layers magnitude-pruned to
// 50/70/90% and to 2:4, and the structurally smaller ones (d_state 16 -> 8, a quarter of
// the blocks removed). Each model is saved as a packed model file (run/packed_file.h) and
// loaded back from it into the inference model, as `generate` does.
//
// Measured per model, medians over the repeats with the models taking turns in every
// repeat (machine noise hits all alike), ratios to the dense model: prompt tok/s (the
// parallel forward over 1 x prompt-len), decode tok/s at batch 1 and 8 (infer_step), the
// packed file's size and the resident memory of a fresh process that loads the file and
// decodes (this program re-run with --rss-child, VmRSS/VmHWM). Also the dense decode's
// achieved bandwidth (bytes of the model read per token / time per token) against a
// threaded memcpy and a read-only pass over a 1 GiB buffer, measured in the same run.
//
//   bench_infer [--shape 130m|370m|small] [--threads N] [--repeats 5] [--decode-tokens 32]
//               [--prompt-len 512] [--dir DIR] [--keep-files 0|1] [--models KEY,KEY...] [--clock wall|cpu]
//               [--model PATH]...
// --keep-files 1 leaves the built models' packed files in DIR (e.g. for `generate` under perf).
// --models picks the built-in models (dense always): dense, 50, 70, 90, 2:4, dstate8,
// blocks, dense+bf16, 50+int8, 70+bf16, 70+int8, 90+int8 (default all).
// --model adds a checkpoint, transformers folder or packed file (loaded as generate does).
// The models with the opt-in bf16 or int8 embedding/head (sparse/lowp.h) hold it so in the
// file and in memory; their logits are compared with the fp32 head's on the same weights.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/timer.h"            // defines: now_seconds, process_cpu_seconds
#include "infer/infer.h"           // defines: InferModel, infer_prompt, infer_step
#include "mamba/model.h"           // defines: mamba_model_create, mamba_model_init_random
#include "prune/linear_prune.h"    // defines: magnitude_prune
#include "run/generate.h"          // defines: infer_load, process_memory_kb
#include "run/packed_file.h"       // defines: packed_file_save, packed_file_load

enum { MAX_SUBJECTS = 20, MAX_BATCH = 8 };

typedef struct Options {
    const char *shape, *dir, *models;
    const char *paths[MAX_SUBJECTS];
    int n_paths, threads, repeats, decode_tokens, prompt_len;
    int keep_files;                         // 1: leave the built models' files in --dir (for a profiler)
} Options;

typedef struct Subject {
    char label[160];
    char file[4096];
    InferModel model;
    InferState state;
    float *logits;                          // (MAX_BATCH, V)
    double file_bytes, rss_mb, hwm_mb;
    LowpFormat head;                        // the embedding/head's precision (opt-in lower)
    double *prompt_s, *decode1_s, *decode8_s;  // (repeats)
} Subject;

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *values, int count) {
    double *sorted = malloc(sizeof(double) * count);
    memcpy(sorted, values, sizeof(double) * count);
    qsort(sorted, (size_t)count, sizeof(double), compare_doubles);
    double m = count % 2 ? sorted[count / 2] : 0.5 * (sorted[count / 2 - 1] + sorted[count / 2]);
    free(sorted);
    return m;
}

static void die(const char *what, const Error *err) {
    fprintf(stderr, "bench_infer: %s: %s\n", what, err->message);
    exit(2);
}

static void shape_config(const char *shape, MambaConfig *c) {
    mamba_config_defaults(c);
    if (strcmp(shape, "370m") == 0) c->d_model = 1024, c->n_layer = 48, c->vocab_size = 50280;
    else if (strcmp(shape, "small") == 0) c->d_model = 128, c->n_layer = 4, c->vocab_size = 256;
    else c->d_model = 768, c->n_layer = 24, c->vocab_size = 50280;
}

// The random models, one per (n_layer, d_state), each initialised once (the same seed
// every time) and copied for every subject of that shape; freed when all are built.
enum { MAX_SHAPES = 4 };
static MambaModel random_models[MAX_SHAPES];
static int n_random_models;

static void random_model(MambaModel *m, const MambaConfig *base, int n_layer, int d_state) {
    MambaModel *src = NULL;
    for (int i = 0; i < n_random_models && !src; i++)
        if (random_models[i].config.n_layer == n_layer && random_models[i].config.d_state == d_state)
            src = &random_models[i];
    if (!src) {
        if (n_random_models == MAX_SHAPES) die("random models", &(Error){.message = "more than 4 shapes"});
        MambaConfig c = *base;
        c.n_layer = n_layer;
        c.d_state = d_state;
        Error err;
        if (mamba_config_finish(&c, &err) != 0) die("config", &err);
        src = &random_models[n_random_models++];
        mamba_model_create(src, &c);
        Rng rng;
        rng_seed(&rng, 1);
        mamba_model_init_random(src, &rng);
    }
    mamba_model_create(m, &src->config);
    for (int p = 0; p < m->n_params; p++)
        memcpy(m->params[p].tensor->data, src->params[p].tensor->data, sizeof(float) * src->params[p].tensor->size);
}

// Magnitude-prunes the four linear layers of every block (per tensor) to target.
static void prune_linears(MambaModel *m, const PruneTarget *target) {
    for (int i = 0; i < m->config.n_layer; i++) {
        MambaLayer *l = &m->layers[i];
        Tensor *w[] = {&l->in_proj_weight, &l->x_proj_weight, &l->dt_proj_weight, &l->out_proj_weight};
        for (int k = 0; k < 4; k++) {
            int cols = w[k]->shape[w[k]->ndim - 1], rows = (int)(w[k]->size / (size_t)cols);
            uint8_t *keep = xmalloc(w[k]->size);
            memset(keep, 1, w[k]->size);
            WeightView view = {"linear", w[k]->data, keep, rows, cols};
            Error err;
            if (magnitude_prune(&view, target, &err) != 0) die("pruning", &err);
            free(keep);
        }
    }
}

// Builds one subject's model, writes its packed file, frees everything; the timing loads
// it back from the file.
static void make_subject(Subject *s, const Options *o, const MambaConfig *base, const char *label, int n_layer,
                         int d_state, const PruneTarget *target, LowpFormat head) {
    MambaModel m;
    random_model(&m, base, n_layer, d_state);
    if (target) prune_linears(&m, target);
    InferModel im;
    InferOptions io = {.force_dense = false};
    Error err;
    if (infer_model_build(&im, &m, NULL, &io, &err) != 0) die(label, &err);
    mamba_model_free(&m);
    infer_model_set_head(&im, head);
    s->head = head;
    snprintf(s->label, sizeof s->label, "%s", label);
    snprintf(s->file, sizeof s->file, "%s/%s.packed", o->dir, label);
    for (char *p = s->file + strlen(o->dir) + 1; *p; p++)
        if (*p == ' ' || *p == ':' || *p == '/' || *p == '%') *p = '_';
    PackedFileOptions po = {.bf16 = false};
    if (packed_file_save(s->file, &im, &po, &err) != 0) die(label, &err);
    infer_model_free(&im);
}

// The child: load the file, run a short prompt and a few decode steps, print VmRSS VmHWM (kB).
static int rss_child(const char *path, int threads) {
    if (threads > 0) omp_set_num_threads(threads);
    InferModel m;
    Error err;
    if (infer_load(path, false, &m, &err) != 0) die(path, &err);
    InferState st;
    infer_state_create(&st, &m.config, 1);
    float *logits = xmalloc(sizeof(float) * (size_t)m.config.vocab_padded);
    int32_t prompt[16];
    for (int i = 0; i < 16; i++) prompt[i] = i % m.config.vocab_size;
    if (infer_prompt(&m, &st, prompt, 1, 16, logits, false, &err) != 0) die(path, &err);
    for (int t = 0; t < 8; t++)
        if (infer_step(&m, &st, &prompt[t], 1, logits, &err) != 0) die(path, &err);
    long rss, hwm;
    process_memory_kb(&rss, &hwm);
    printf("%ld %ld\n", rss, hwm);
    free(logits);
    infer_state_free(&st);
    infer_model_free(&m);
    return 0;
}

static void measure_rss(Subject *s, int threads) {
    char exe[4096], cmd[8400];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    s->rss_mb = s->hwm_mb = -1;
    if (n <= 0) return;
    exe[n] = '\0';
    snprintf(cmd, sizeof cmd, "'%s' --rss-child '%s' --threads %d", exe, s->file, threads);
    FILE *p = popen(cmd, "r");
    long rss, hwm;
    if (p && fscanf(p, "%ld %ld", &rss, &hwm) == 2) s->rss_mb = rss / 1024.0, s->hwm_mb = hwm / 1024.0;
    if (p) pclose(p);
}

// The clock of the timings: wall time, or with --clock cpu the process's CPU time (all
// threads), for a shared machine where other work takes the cores: with --threads 1 and
// OMP_WAIT_POLICY=passive it counts the work of the one thread, stalls on memory included,
// and not the time others held the core.
static bool use_cpu_clock = false;

static double clock_seconds(void) { return use_cpu_clock ? process_cpu_seconds() : now_seconds(); }

static double time_prompt(Subject *s, const int32_t *tokens, int L) {
    Error err;
    double start = clock_seconds();
    if (infer_prompt(&s->model, &s->state, tokens, 1, L, s->logits, false, &err) != 0) die(s->label, &err);
    return clock_seconds() - start;
}

static double time_decode(Subject *s, const int32_t *tokens, int batch, int steps) {
    Error err;
    infer_state_reset(&s->state, &s->model.config);
    double start = clock_seconds();
    for (int t = 0; t < steps; t++)
        if (infer_step(&s->model, &s->state, tokens + (size_t)t * batch, batch, s->logits, &err) != 0)
            die(s->label, &err);
    return clock_seconds() - start;
}

// Bytes per second of a threaded memcpy of a 1 GiB buffer (bytes copied, i.e. read once and
// written once) and of a threaded read-only sum over it; medians of 5.
static void copy_bandwidth(double *copy_bps, double *read_bps) {
    size_t n = (size_t)1 << 27;  // doubles: 1 GiB
    double *a = xmalloc(sizeof(double) * n), *b = xmalloc(sizeof(double) * n);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = (double)i, b[i] = 0.0;
    double tc[5], tr[5], sink = 0.0;
    for (int r = 0; r < 5; r++) {
        double start = clock_seconds();
#pragma omp parallel
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
            size_t lo = n * t / T, hi = n * (t + 1) / T;
            memcpy(b + lo, a + lo, sizeof(double) * (hi - lo));
        }
        tc[r] = clock_seconds() - start;
        start = clock_seconds();
        double sum = 0.0;
        // simd: lets the sum use several vector accumulators, so that the pass is bound by
        // the memory and not by the latency of one chain of dependent adds.
#pragma omp parallel for simd schedule(static) reduction(+ : sum)
        for (size_t i = 0; i < n; i++) sum += a[i];
        tr[r] = clock_seconds() - start;
        sink += sum + b[r];
    }
    if (sink == 1.2345) printf(" ");
    *copy_bps = sizeof(double) * n / median(tc, 5);
    *read_bps = sizeof(double) * n / median(tr, 5);
    free(a), free(b);
}

// Whether key is in the comma-separated list (NULL: every model).
static bool model_selected(const char *list, const char *key) {
    if (!list) return true;
    size_t n = strlen(key);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, key, n) == 0) return true;
        p += len + (end ? 1 : 0);
    }
    return false;
}

static int parse_int(const char *flag, const char *text, int minimum, int *out) {
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < minimum || v > 1000000) {
        fprintf(stderr, "bench_infer: %s expects an integer >= %d, got '%s'\n", flag, minimum, text);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_options(int argc, char **argv, Options *o) {
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!value) {
            fprintf(stderr, "bench_infer: %s needs a value\n", flag);
            return -1;
        }
        i++;
        int rc = 0;
        if (strcmp(flag, "--shape") == 0) {
            if (strcmp(value, "130m") && strcmp(value, "370m") && strcmp(value, "small")) {
                fprintf(stderr, "bench_infer: --shape expects 130m, 370m or small, got '%s'\n", value);
                return -1;
            }
            o->shape = value;
        } else if (strcmp(flag, "--dir") == 0) o->dir = value;
        else if (strcmp(flag, "--models") == 0) o->models = value;
        else if (strcmp(flag, "--clock") == 0) {
            if (strcmp(value, "wall") && strcmp(value, "cpu")) {
                fprintf(stderr, "bench_infer: --clock expects wall or cpu, got '%s'\n", value);
                return -1;
            }
            use_cpu_clock = strcmp(value, "cpu") == 0;
        }
        else if (strcmp(flag, "--model") == 0 && o->n_paths < 6) o->paths[o->n_paths++] = value;
        else if (strcmp(flag, "--threads") == 0) rc = parse_int(flag, value, 1, &o->threads);
        else if (strcmp(flag, "--repeats") == 0) rc = parse_int(flag, value, 1, &o->repeats);
        else if (strcmp(flag, "--decode-tokens") == 0) rc = parse_int(flag, value, 1, &o->decode_tokens);
        else if (strcmp(flag, "--prompt-len") == 0) rc = parse_int(flag, value, 1, &o->prompt_len);
        else if (strcmp(flag, "--keep-files") == 0) rc = parse_int(flag, value, 0, &o->keep_files);
        else {
            fprintf(stderr, "bench_infer: unknown option '%s' (expected --shape, --threads, --repeats, --decode-tokens, "
                            "--prompt-len, --dir, --keep-files, --models, --clock, --model, at most 6 of it)\n", flag);
            return -1;
        }
        if (rc != 0) return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "--rss-child") == 0)
        return rss_child(argv[2], argc >= 5 ? atoi(argv[4]) : 0);
    Options o = {.shape = "130m", .dir = NULL, .threads = 0, .repeats = 5, .decode_tokens = 32, .prompt_len = 512};
    if (parse_options(argc, argv, &o) != 0) return 2;
    if (o.threads > 0) omp_set_num_threads(o.threads);
    int threads = omp_get_max_threads();
    char dir[4096];
    if (!o.dir) {
        snprintf(dir, sizeof dir, "/tmp/bench_infer.XXXXXX");
        if (!mkdtemp(dir)) {
            perror("bench_infer: mkdtemp");
            return 2;
        }
        o.dir = dir;
    }
    MambaConfig base;
    shape_config(o.shape, &base);
    static Subject subjects[MAX_SUBJECTS];
    int n = 0;
    double build_start = now_seconds();
    PruneTarget u50 = {.sparsity = 0.5}, u70 = {.sparsity = 0.7}, u90 = {.sparsity = 0.9}, nm = {.nm_n = 2, .nm_m = 4};
    int L = base.n_layer;
    // The built-in models, by key (--models picks some; dense always runs: the ratios' base).
    // A model with the opt-in lower-precision head has the weights of the fp32 model
    // named by same_as, whose logits it is compared with below.
    const struct {
        const char *key, *label;
        const PruneTarget *target;
        int n_layer, d_state;
        LowpFormat head;
        const char *same_as;
    } kinds[] = {
        {"dense", "dense", NULL, L, 16, LOWP_F32, NULL},
        {"50", "50% unstructured", &u50, L, 16, LOWP_F32, NULL},
        {"70", "70% unstructured", &u70, L, 16, LOWP_F32, NULL},
        {"90", "90% unstructured", &u90, L, 16, LOWP_F32, NULL},
        {"2:4", "2:4", &nm, L, 16, LOWP_F32, NULL},
        {"dstate8", "d_state 8 (structured)", NULL, L, 8, LOWP_F32, NULL},
        {"blocks", "3/4 of the blocks", NULL, L - L / 4, 16, LOWP_F32, NULL},
        {"dense+bf16", "dense + bf16 head", NULL, L, 16, LOWP_BF16, "dense"},
        {"50+int8", "50% + int8 head", &u50, L, 16, LOWP_INT8, "50"},
        {"70+bf16", "70% + bf16 head", &u70, L, 16, LOWP_BF16, "70"},
        {"70+int8", "70% + int8 head", &u70, L, 16, LOWP_INT8, "70"},
        {"90+int8", "90% + int8 head", &u90, L, 16, LOWP_INT8, "90"},
    };
    const int n_kinds = (int)(sizeof kinds / sizeof kinds[0]);
    int same_as[MAX_SUBJECTS];
    const char *key_of[MAX_SUBJECTS];
    for (int k = 0; k < n_kinds; k++) {
        if (k > 0 && !model_selected(o.models, kinds[k].key)) continue;
        same_as[n] = -1, key_of[n] = kinds[k].key;
        for (int j = 0; j < n && kinds[k].same_as; j++)
            if (strcmp(key_of[j], kinds[k].same_as) == 0) same_as[n] = j;
        make_subject(&subjects[n++], &o, &base, kinds[k].label, kinds[k].n_layer, kinds[k].d_state, kinds[k].target,
                     kinds[k].head);
    }
    const int n_built = n;
    for (int i = 0; i < n_random_models; i++) mamba_model_free(&random_models[i]);
    for (int i = 0; i < o.n_paths; i++, n++) {
        snprintf(subjects[n].label, sizeof subjects[n].label, "%s", o.paths[i]);
        snprintf(subjects[n].file, sizeof subjects[n].file, "%s", o.paths[i]);
    }
    fprintf(stderr, "bench_infer: %d models built and saved in %.1f s (%s)\n", n, now_seconds() - build_start, o.dir);
    for (int i = 0; i < n; i++) {
        Subject *s = &subjects[i];
        struct stat st;
        s->file_bytes = stat(s->file, &st) == 0 && S_ISREG(st.st_mode) ? (double)st.st_size : 0.0;
        measure_rss(s, threads);
        Error err;
        if (infer_load(s->file, false, &s->model, &err) != 0) die(s->file, &err);
        infer_state_create(&s->state, &s->model.config, MAX_BATCH);
        s->logits = xmalloc(sizeof(float) * MAX_BATCH * (size_t)s->model.config.vocab_padded);
        s->prompt_s = xcalloc((size_t)o.repeats, sizeof(double));
        s->decode1_s = xcalloc((size_t)o.repeats, sizeof(double));
        s->decode8_s = xcalloc((size_t)o.repeats, sizeof(double));
    }
    // The same tokens for every model (below the smallest vocabulary).
    int V = subjects[0].model.config.vocab_size;
    for (int i = 1; i < n; i++) V = subjects[i].model.config.vocab_size < V ? subjects[i].model.config.vocab_size : V;
    size_t n_tok = (size_t)(o.prompt_len > MAX_BATCH * o.decode_tokens ? o.prompt_len : MAX_BATCH * o.decode_tokens);
    int32_t *tokens = xmalloc(sizeof(int32_t) * n_tok);
    Rng rng;
    rng_seed(&rng, 7);
    for (size_t i = 0; i < n_tok; i++) tokens[i] = (int32_t)rng_below(&rng, (uint64_t)V);

    double copy_bps, read_bps;
    copy_bandwidth(&copy_bps, &read_bps);
    for (int r = -1; r < o.repeats; r++) {  // repeat -1 warms up and is not counted
        for (int i = 0; i < n; i++) {
            Subject *s = &subjects[i];
            double p = time_prompt(s, tokens, o.prompt_len);
            double d1 = time_decode(s, tokens, 1, o.decode_tokens);
            double d8 = time_decode(s, tokens, MAX_BATCH, o.decode_tokens);
            if (r >= 0) s->prompt_s[r] = p, s->decode1_s[r] = d1, s->decode8_s[r] = d8;
        }
    }

    printf("shape %s (d_model %d, %d layers, vocab %d), %d threads, prompt 1 x %d, decode %d steps, %d repeats; "
           "medians, ratios to dense; %s\n\n", o.shape, base.d_model, base.n_layer, base.vocab_size, threads,
           o.prompt_len, o.decode_tokens, o.repeats,
           use_cpu_clock ? "timed by the process's CPU time (--clock cpu)" : "wall time");
    printf("| model | linears | bytes/token MB | traffic ceiling | file MB | x | RSS MB | x | prompt tok/s | x | "
           "decode b1 tok/s | x | decode b8 tok/s | x |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    double base_bytes = 0, base_file = 0, base_rss = 0, base_p = 0, base_d1 = 0, base_d8 = 0;
    for (int i = 0; i < n; i++) {
        Subject *s = &subjects[i];
        double bytes = (double)infer_model_bytes(&s->model);
        double p = o.prompt_len / median(s->prompt_s, o.repeats);
        double d1 = o.decode_tokens / median(s->decode1_s, o.repeats);
        double d8 = (double)MAX_BATCH * o.decode_tokens / median(s->decode8_s, o.repeats);
        if (i == 0) base_bytes = bytes, base_file = s->file_bytes, base_rss = s->rss_mb, base_p = p, base_d1 = d1, base_d8 = d8;
        // The formats of the linears, e.g. "bitmap 96" or "dense 48, bitmap 48".
        int nl = s->model.config.n_layer * INFER_N_LINEARS, count[PACKED_N_FORMATS] = {0};
        InferTensorInfo *info = xcalloc((size_t)nl, sizeof *info);
        nl = infer_model_tensors(&s->model, info);
        for (int k = 0; k < nl; k++) count[info[k].format]++;
        free(info);
        char formats[128] = "";
        for (int f = 0; f < PACKED_N_FORMATS; f++)
            if (count[f])
                snprintf(formats + strlen(formats), sizeof formats - strlen(formats), "%s%s %d", formats[0] ? ", " : "",
                         packed_format_name((PackedFormat)f), count[f]);
        printf("| %s | %s | %.1f | %.2fx | %.1f | %.3fx | %.1f | %.3fx | %.0f | %.2fx | %.1f | %.2fx | %.1f | %.2fx |\n",
               s->label, formats, bytes / 1e6, base_bytes / bytes, s->file_bytes / 1e6, s->file_bytes / base_file,
               s->rss_mb, s->rss_mb / base_rss, p, p / base_p, d1, d1 / base_d1, d8, d8 / base_d8);
    }
    double dense_bps = base_bytes * base_d1;
    printf("\ndense decode (batch 1) reads %.1f MB per token: %.2f GB/s achieved; memcpy of 1 GiB %.2f GB/s copied "
           "(%.2f GB/s of read + write traffic), read-only pass %.2f GB/s: dense decode = %.0f%% of the memcpy rate, "
           "%.0f%% of the read-only rate\n", base_bytes / 1e6, dense_bps / 1e9, copy_bps / 1e9, 2 * copy_bps / 1e9,
           read_bps / 1e9, 100.0 * dense_bps / copy_bps, 100.0 * dense_bps / read_bps);
    double head = 4.0 * subjects[0].model.config.vocab_padded * subjects[0].model.config.d_model;
    printf("the dense fp32 head alone reads %.1f MB per token (%.0f%% of the dense model's bytes): at 70%% with a bitmap "
           "(1/8 + 4 x 0.3 bytes per weight) the traffic ceiling is %.2fx\n", head / 1e6, 100.0 * head / base_bytes,
           base_bytes / (head + (base_bytes - head) * (0.125 + 1.2) / 4.0));
    // The lower-precision heads against fp32 on the same weights: the prompt's last logits
    // and those of the decode steps after it, greedy tokens fed to both.
    printf("\nthe opt-in lower-precision head against the fp32 head of the same weights (prompt of %d, then %d greedy "
           "steps):\n\n| model | max abs diff / max abs logit | mean abs diff / mean abs logit | same argmax |\n|---|---:|---:|---:|\n",
           o.prompt_len, o.decode_tokens);
    for (int i = 0; i < n_built; i++) {
        if (same_as[i] < 0) continue;
        Subject *a = &subjects[i], *ref = &subjects[same_as[i]];
        double worst = 0, top = 0, sum_diff = 0, sum_abs = 0;
        int same = 0, positions = 0;
        Error err;
        int32_t next = 0;
        for (int t = 0; t <= o.decode_tokens; t++) {
            if (t == 0) {
                if (infer_prompt(&a->model, &a->state, tokens, 1, o.prompt_len, a->logits, false, &err) != 0 ||
                    infer_prompt(&ref->model, &ref->state, tokens, 1, o.prompt_len, ref->logits, false, &err) != 0)
                    die(a->label, &err);
            } else if (infer_step(&a->model, &a->state, &next, 1, a->logits, &err) != 0 ||
                       infer_step(&ref->model, &ref->state, &next, 1, ref->logits, &err) != 0) {
                die(a->label, &err);
            }
            int arg_a = 0, arg_r = 0;
            for (int v = 0; v < ref->model.config.vocab_size; v++) {
                double d = fabs((double)a->logits[v] - ref->logits[v]), r = fabs((double)ref->logits[v]);
                worst = d > worst ? d : worst, top = r > top ? r : top;
                sum_diff += d, sum_abs += r;
                if (a->logits[v] > a->logits[arg_a]) arg_a = v;
                if (ref->logits[v] > ref->logits[arg_r]) arg_r = v;
            }
            same += arg_a == arg_r, positions++;
            next = arg_r;
        }
        printf("| %s | %.2e | %.2e | %d of %d |\n", a->label, worst / top, sum_diff / sum_abs, same, positions);
    }
    for (int i = 0; i < n; i++) {
        Subject *s = &subjects[i];
        if (i < n_built && !o.keep_files) unlink(s->file);
        infer_state_free(&s->state);
        infer_model_free(&s->model);
        free(s->logits), free(s->prompt_s), free(s->decode1_s), free(s->decode8_s);
    }
    if (o.dir == dir && !o.keep_files) rmdir(dir);
    free(tokens);
    return 0;
}
