// The cost of the stability check (docs/DESIGN.md#stability-check): one stability_measure and one stability_correct
// on a freshly initialised d_model 256, 4-layer model with 2 calibration batches of 8 x 256
// tokens, for an update that prunes 20% more of every tensor by magnitude (few violations)
// and one that prunes 20% at random (many: small-Δ channels lose large-|A| entries).
// Usage: bench_stability [d_model] [n_layer]
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/timer.h"
#include "prune/stability.h"

enum { BATCH = 8, SEQ = 256, N_BATCHES = 2 };

static int compare_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

static void run(MambaModel *model, Tape *tape, const StabilityOptions *options, bool random_scores) {
    bool *prunable = calloc((size_t)model->n_params, sizeof(bool));
    for (int i = 0; i < model->n_params; i++)
        prunable[i] = prune_component_of(model->params[i].name, NULL) != PRUNE_OTHER;
    PruneMasks masks;
    prune_masks_create(&masks, model, prunable);
    free(prunable);
    Rng rng;
    rng_seed(&rng, 7);
    uint8_t **keep = malloc(sizeof(uint8_t *) * (size_t)masks.n);
    float **scores = malloc(sizeof(float *) * (size_t)masks.n);
    int *group = calloc((size_t)masks.n, sizeof(int));
    for (int i = 0; i < masks.n; i++) {
        const Tensor *t = masks.tensors[i].tensor;
        scores[i] = malloc(sizeof(float) * t->size);
        for (size_t j = 0; j < t->size; j++) scores[i][j] = random_scores ? rng_uniform(&rng) : fabsf(t->data[j]);
        float *sorted = malloc(sizeof(float) * t->size);
        memcpy(sorted, scores[i], sizeof(float) * t->size);
        qsort(sorted, t->size, sizeof(float), compare_float);
        float threshold = sorted[t->size / 5];
        keep[i] = malloc(t->size);
        for (size_t j = 0; j < t->size; j++) keep[i][j] = scores[i][j] > threshold;
        free(sorted);
    }
    StabilityReport report;
    Error err;
    double start = now_seconds();
    int rc = stability_correct(model, tape, &masks, keep, (const float *const *)scores, group, options, &report, &err);
    double elapsed = now_seconds() - start;
    if (rc != 0) {
        fprintf(stderr, "stability_correct: %s\n", err.message);
    } else {
        cJSON *json = stability_report_json(&report);
        char *text = cJSON_PrintUnformatted(json);
        printf("%-14s stability_correct %.3f s  %s\n", random_scores ? "random 20%" : "magnitude 20%", elapsed, text);
        free(text);
        cJSON_Delete(json);
        stability_report_free(&report);
    }
    for (int i = 0; i < masks.n; i++) {
        free(keep[i]);
        free(scores[i]);
    }
    free(keep);
    free(scores);
    free(group);
    prune_masks_free(&masks);
}

int main(int argc, char **argv) {
    MambaConfig config;
    mamba_config_defaults(&config);
    config.d_model = argc > 1 ? atoi(argv[1]) : 256;
    config.n_layer = argc > 2 ? atoi(argv[2]) : 4;
    config.vocab_size = 256;
    Error err;
    if (mamba_config_finish(&config, &err) != 0) {
        fprintf(stderr, "config: %s\n", err.message);
        return 1;
    }
    MambaModel model;
    mamba_model_create(&model, &config);
    Rng rng;
    rng_seed(&rng, 1);
    mamba_model_init_random(&model, &rng);
    int32_t *tokens = malloc(sizeof(int32_t) * N_BATCHES * BATCH * SEQ);
    for (int k = 0; k < N_BATCHES * BATCH * SEQ; k++) tokens[k] = (int32_t)rng_below(&rng, 256);
    StabilityOptions options = {
        .epsilon = 0.01, .batch_size = BATCH, .seqlen = SEQ, .n_batches = N_BATCHES, .tokens = tokens};
    Tape tape;
    tape_init(&tape, 64u << 20);
    printf("d_model %d, %d layers, D %d, N %d, R %d; %d batches of %d x %d\n", config.d_model, config.n_layer,
           config.d_inner, config.d_state, config.dt_rank, N_BATCHES, BATCH, SEQ);
    float *m = malloc(sizeof(float) * (size_t)config.n_layer * config.d_inner * config.d_state);
    // The first call pays for the arena's growth and the thread pool's start.
    for (int k = 0; k < 2; k++) {
        double start = now_seconds();
        if (stability_measure(&model, &tape, &options, m, &err) != 0) fprintf(stderr, "measure: %s\n", err.message);
        printf("stability_measure %.3f s%s\n", now_seconds() - start, k == 0 ? " (first call)" : "");
    }
    run(&model, &tape, &options, false);
    run(&model, &tape, &options, true);
    free(m);
    tape_free(&tape);
    free(tokens);
    mamba_model_free(&model);
    return 0;
}
