// The set-up shared by the one-shot driver's tests: a config, synthetic data, a tiny model
// and its masks, and a run of oneshot_prune.
#ifndef MP_TESTS_ONESHOT_SETUP_H
#define MP_TESTS_ONESHOT_SETUP_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "prune/oneshot.h"
#include "tiny_model.h"

enum { NSAMPLES = 6, SEQLEN = 16 };

typedef struct Setup {
    RunConfig c;
    Dataset data;
    MambaModel model;
    PruneMasks masks;
} Setup;

// The config (defaults, the method, 6 windows of 16 tokens in batches of 4, then sets),
// selective copying data, a tiny model of n_layer blocks and its masks by prune.include.
static __attribute__((unused)) void setup_create(Setup *s, int n_layer, const char *method, const char *const *sets) {
    config_defaults(&s->c);
    Error err;
    char assignment[160];
    snprintf(assignment, sizeof assignment, "prune.method=%s", method);
    const char *base[] = {assignment, "prune.nsamples=6", "prune.calib_seqlen=16", "train.batch_size=4", NULL};
    for (int i = 0; base[i]; i++)
        if (config_set(&s->c, base[i], &err)) printf("config_set %s: %s\n", base[i], err.message);
    for (int i = 0; sets && sets[i]; i++)
        if (config_set(&s->c, sets[i], &err)) printf("config_set %s: %s\n", sets[i], err.message);
    DataOptions o;
    data_options_defaults(&o);
    o.kind = DATA_SELECTIVE_COPYING;
    o.vocab = 8;  // 10 ids <= the tiny model's 11
    o.n_memorize = 4;
    o.seed = 99;
    if (data_open(&s->data, &o, SEQLEN, &err)) printf("data_open: %s\n", err.message);
    tiny_model_create(&s->model, n_layer, 7);
    bool prunable[128];
    for (int i = 0; i < s->model.n_params; i++) prunable[i] = config_param_prunable(&s->c, s->model.params[i].name);
    prune_masks_create(&s->masks, &s->model, prunable);
}

static __attribute__((unused)) void setup_free(Setup *s) {
    prune_masks_free(&s->masks);
    mamba_model_free(&s->model);
    data_close(&s->data);
    config_free(&s->c);
}

static __attribute__((unused)) int run(Setup *s, cJSON **report_out, Error *err) {
    cJSON *report = cJSON_CreateObject();
    PruneOptions options;
    config_prune_options(&s->c, &options);
    int rc = oneshot_prune(&options, &s->data, &s->model, &s->masks, report, err);
    if (report_out) *report_out = report;
    else cJSON_Delete(report);
    return rc;
}

static __attribute__((unused)) bool same_weights(const MambaModel *a, const MambaModel *b) {
    for (int i = 0; i < a->n_params; i++)
        if (memcmp(a->params[i].tensor->data, b->params[i].tensor->data, a->params[i].tensor->size * sizeof(float)))
            return false;
    return true;
}

#endif
