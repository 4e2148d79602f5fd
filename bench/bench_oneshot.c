// Wall time of each one-shot method (src/prune/oneshot.c) on a random Mamba LM, once each,
// with the phases of the driver's report: statistics (the calibration forwards and the
// statistics they collect), pruning (the kernels), forward (embedding and propagating the
// pruned blocks' outputs). Every method starts from the same random model.
//
//   bench_oneshot [--d-model 288] [--n-layer 8] [--nsamples 64] [--seqlen 256] [--batch 8]
//                 [--data FILE] [--only METHOD]
// Without --data the calibration windows are the selective copying task (no file needed);
// with it, the text file's bytes. Threads follow OMP_NUM_THREADS.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"       // defines: matmul_set_backend
#include "config/config.h"       // defines: RunConfig, config_prune_options
#include "prune/oneshot.h"      // defines: oneshot_prune

typedef struct BenchOptions {
    int d_model, n_layer, nsamples, seqlen, batch;
    const char *data, *only;
} BenchOptions;

typedef struct Variant {
    const char *label;
    const char *sets[6];        // config_set assignments, NULL-terminated
} Variant;

static double number_at(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItem(o, a);
    if (b) x = cJSON_GetObjectItem(x, b);
    return cJSON_IsNumber(x) ? x->valuedouble : 0.0;
}

static int run_variant(const BenchOptions *o, const Variant *v, const Dataset *data, Error *err) {
    RunConfig c;
    config_defaults(&c);
    char text[160];
    const char *base[] = {"prune.nsamples", "prune.calib_seqlen", "train.batch_size"};
    int values[] = {o->nsamples, o->seqlen, o->batch};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        snprintf(text, sizeof text, "%s=%d", base[i], values[i]);
        rc = config_set(&c, text, err);
    }
    for (int i = 0; v->sets[i] && rc == 0; i++) rc = config_set(&c, v->sets[i], err);
    if (rc) {
        config_free(&c);
        return -1;
    }
    MambaConfig config;
    mamba_config_defaults(&config);
    config.d_model = o->d_model;
    config.n_layer = o->n_layer;
    config.vocab_size = data_vocab_size(data);
    if (mamba_config_finish(&config, err)) {
        config_free(&c);
        return -1;
    }
    MambaModel model;
    mamba_model_create(&model, &config);
    Rng rng;
    rng_seed(&rng, 1);
    mamba_model_init_random(&model, &rng);
    bool *prunable = xmalloc(sizeof(bool) * model.n_params);
    for (int i = 0; i < model.n_params; i++) prunable[i] = config_param_prunable(&c, model.params[i].name);
    PruneMasks masks;
    prune_masks_create(&masks, &model, prunable);
    free(prunable);
    size_t params = model.n_elements;
    cJSON *report = cJSON_CreateObject();
    PruneOptions options;
    config_prune_options(&c, &options);
    rc = oneshot_prune(&options, data, &model, &masks, report, err);
    if (rc == 0) {
        printf("| %-22s | %8.2f | %10.2f | %7.2f | %7.2f | %8.3f | %9zu | %9zu |\n", v->label,
               number_at(report, "seconds", "total"), number_at(report, "seconds", "statistics"),
               number_at(report, "seconds", "pruning"), number_at(report, "seconds", "forward"),
               number_at(report, "sparsity", NULL), params, model.n_elements);
        fflush(stdout);
    }
    cJSON_Delete(report);
    prune_masks_free(&masks);
    mamba_model_free(&model);
    config_free(&c);
    return rc;
}

int main(int argc, char **argv) {
    BenchOptions o = {288, 8, 64, 256, 8, NULL, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!value) {
            fprintf(stderr, "bench_oneshot: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--d-model") == 0) o.d_model = atoi(value);
        else if (strcmp(a, "--n-layer") == 0) o.n_layer = atoi(value);
        else if (strcmp(a, "--nsamples") == 0) o.nsamples = atoi(value);
        else if (strcmp(a, "--seqlen") == 0) o.seqlen = atoi(value);
        else if (strcmp(a, "--batch") == 0) o.batch = atoi(value);
        else if (strcmp(a, "--data") == 0) o.data = value;
        else if (strcmp(a, "--only") == 0) o.only = value;
        else {
            fprintf(stderr, "bench_oneshot: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    matmul_set_backend(MATMUL_ONEDNN);  // the engine's default
    DataOptions data_options;
    data_options_defaults(&data_options);
    if (o.data) {
        data_options.kind = DATA_TEXT;
        data_options.path = o.data;
    }
    Dataset data;
    Error err;
    if (data_open(&data, &data_options, o.seqlen, &err)) {
        fprintf(stderr, "bench_oneshot: %s\n", err.message);
        return 1;
    }
    char steps[64];
    snprintf(steps, sizeof steps, "prune.shedder_steps=%d", o.n_layer / 4 > 0 ? o.n_layer / 4 : 1);
    const Variant variants[] = {
        {"magnitude", {"prune.method=magnitude"}},
        {"magnitude global", {"prune.method=magnitude", "prune.magnitude_scope=global"}},
        {"wanda", {"prune.method=wanda"}},
        {"sparsegpt", {"prune.method=sparsegpt"}},
        {"sparsegpt 2:4", {"prune.method=sparsegpt", "prune.nm_n=2", "prune.nm_m=4", "prune.exclude=[dt_proj]"}},
        {"sparsessm", {"prune.method=sparsessm"}},
        {"sparsessm A_log only", {"prune.method=sparsessm", "prune.include=[A_log]"}},
        {"sparsessm structured", {"prune.method=sparsessm", "prune.sparsessm_structured=true", "prune.include=[A_log]"}},
        {"shedder block", {"prune.method=shedder", steps}},
        {"shedder ssm", {"prune.method=shedder", steps, "prune.shedder_target=ssm"}},
    };
    printf("d_model %d, %d layers, %d windows of %d tokens in batches of %d, %s\n\n", o.d_model, o.n_layer, o.nsamples,
           o.seqlen, o.batch, o.data ? o.data : "selective copying");
    printf("| method                 |  total s | statistics | pruning | forward | sparsity | params    | after     |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        if (o.only && strcmp(o.only, variants[i].label) != 0) continue;
        if (run_variant(&o, &variants[i], &data, &err)) {
            fprintf(stderr, "bench_oneshot: %s: %s\n", variants[i].label, err.message);
            data_close(&data);
            return 1;
        }
    }
    data_close(&data);
    return 0;
}
