// A one-shot method followed by fine-tuning, through train_run: the dense model is evaluated,
// the one-shot pass runs once before the optimizer exists and may replace the model with a
// smaller one, the result is checkpointed as step 0, fine-tuning holds the masks, and a run
// resumed from any of its checkpoints builds the (smaller) model from the checkpoint, never
// repeats the pass, and ends bit-identical to the straight run.
//
// The one-shot driver is replaced here, at link time, by a stand-in: this file defines
// oneshot_prune, so the library's prune/oneshot.c is not linked into this test. The stand-in
// drops the last layer (a structural result, as shedder's) and prunes each masked tensor by
// magnitude to prune.final_sparsity.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run/model_source.h"
#include "run/trainer.h"
#include "io/checkpoint.h"
#include "prune/oneshot.h"
#include "prune/sparsity_schedule.h"

#include "check.h"

static int oneshot_calls = 0;

static int by_magnitude(const void *a, const void *b) {
    float x = fabsf(**(const float *const *)a), y = fabsf(**(const float *const *)b);
    if (x != y) return x < y ? -1 : 1;
    return (*(const float *const *)a > *(const float *const *)b) - (*(const float *const *)a < *(const float *const *)b);
}

int oneshot_prune(const PruneOptions *o, const Dataset *data, MambaModel *model, PruneMasks *masks, cJSON *report,
                  Error *err) {
    (void)data;
    oneshot_calls++;
    // A MambaModel cannot be copied by value (its parameter table points into the struct):
    // keep the weights aside, and create the smaller model in place.
    MambaConfig smaller = model->config;
    smaller.n_layer--;
    if (mamba_config_finish(&smaller, err) != 0) return -1;
    int n_old = model->n_params;
    char (*names)[96] = xmalloc(sizeof *names * (size_t)n_old);
    float **weights = xmalloc(sizeof(float *) * (size_t)n_old);
    for (int i = 0; i < n_old; i++) {
        const Tensor *t = model->params[i].tensor;
        memcpy(names[i], model->params[i].name, sizeof names[i]);
        weights[i] = xmalloc(sizeof(float) * t->size);
        memcpy(weights[i], t->data, sizeof(float) * t->size);
    }
    prune_masks_free(masks);  // it points into the old model
    mamba_model_free(model);
    mamba_model_create(model, &smaller);
    for (int i = 0; i < n_old; i++) {
        Tensor *t = mamba_model_find(model, names[i]);
        if (t) memcpy(t->data, weights[i], sizeof(float) * t->size);
        free(weights[i]);
    }
    free(weights);
    free(names);
    bool *prunable = xcalloc((size_t)model->n_params, sizeof(bool));
    for (int i = 0; i < model->n_params; i++) prunable[i] = prune_param_prunable(o, model->params[i].name);
    prune_masks_create(masks, model, prunable);
    free(prunable);
    for (int i = 0; i < masks->n; i++) {
        MaskedTensor *m = &masks->tensors[i];
        float **order = xmalloc(sizeof(float *) * m->tensor->size);
        for (size_t j = 0; j < m->tensor->size; j++) order[j] = &m->tensor->data[j];
        qsort(order, m->tensor->size, sizeof(float *), by_magnitude);
        size_t count = sparsity_count(o->final_sparsity, m->tensor->size);
        for (size_t k = 0; k < count; k++) m->keep[order[k] - m->tensor->data] = 0;
        free(order);
    }
    prune_masks_apply(masks, NULL);
    cJSON_AddBoolToObject(report, "stand_in", 1);
    return 0;
}

static const char *const CONFIG =
    "model: {d_model: 16, n_layer: 2}\n"
    "data: {kind: selective_copying, vocab: 8, n_memorize: 4, val_sequences: 16}\n"
    "train: {steps: 10, batch_size: 4, seqlen: 24, seed: 5, eval_every: 0, eval_batches: 2, log_every: 5}\n"
    "optim: {lr: 3.0e-3, lr_min: 1.0e-4}\n"
    "prune: {method: magnitude, final_sparsity: 0.6}\n"
    "checkpoint: {every: 5, keep: 10}\n"
    "log: {progress: false}\n";

// The parameters, moments and masks of a checkpoint, as one model with its optimizer.
typedef struct Loaded {
    MambaModel model;
    AdamW optimizer;
    PruneMasks masks;
    bool ok;
} Loaded;

static void load(Loaded *l, const RunConfig *c, const char *dir, long step) {
    memset(l, 0, sizeof *l);
    char path[4096];
    Error err;
    checkpoint_path_for_step(path, sizeof path, dir, step, &err);
    if (model_load(path, &l->model, &err) != 0) {
        printf("       %s\n", err.message);
        return;
    }
    AdamWOptions options;
    adamw_options_defaults(&options);
    adamw_init(&l->optimizer, &options);
    for (int i = 0; i < l->model.n_params; i++) adamw_add(&l->optimizer, l->model.params[i].tensor, true);
    bool *prunable = xcalloc((size_t)l->model.n_params, sizeof(bool));
    for (int i = 0; i < l->model.n_params; i++) prunable[i] = config_param_prunable(c, l->model.params[i].name);
    prune_masks_create(&l->masks, &l->model, prunable);
    free(prunable);
    CheckpointMask *views = xmalloc(sizeof(CheckpointMask) * (size_t)l->masks.n);
    prune_masks_checkpoint_views(&l->masks, views);
    l->ok = checkpoint_load(path, l->model.params, l->model.n_params, &l->optimizer, views, l->masks.n, NULL, &err) == 0;
    if (!l->ok) printf("       %s\n", err.message);
    free(views);
}

static void unload(Loaded *l) {
    prune_masks_free(&l->masks);
    adamw_free(&l->optimizer);
    mamba_model_free(&l->model);
}

static bool same_tensors(const Loaded *a, const Loaded *b) {
    if (!a->ok || !b->ok || a->model.n_params != b->model.n_params) return false;
    for (int i = 0; i < a->model.n_params; i++) {
        const Tensor *x = a->model.params[i].tensor, *y = b->model.params[i].tensor;
        if (x->size != y->size || memcmp(x->data, y->data, sizeof(float) * x->size) != 0) return false;
        const AdamWSlot *sx = &a->optimizer.slots[i], *sy = &b->optimizer.slots[i];
        if (memcmp(sx->m, sy->m, sizeof(float) * x->size) != 0 || memcmp(sx->v, sy->v, sizeof(float) * x->size) != 0)
            return false;
    }
    for (int i = 0; i < a->masks.n; i++)
        if (memcmp(a->masks.tensors[i].keep, b->masks.tensors[i].keep, a->masks.tensors[i].tensor->size) != 0) return false;
    return true;
}

static bool held(const Loaded *l, double sparsity) {
    if (!l->ok) return false;
    for (int i = 0; i < l->masks.n; i++) {
        const MaskedTensor *m = &l->masks.tensors[i];
        AdamWSlot *slot = adamw_find((AdamW *)&l->optimizer, m->tensor);
        size_t zeros = 0;
        for (size_t j = 0; j < m->tensor->size; j++) {
            if (m->keep[j]) continue;
            zeros++;
            if (m->tensor->data[j] != 0.0f || slot->m[j] != 0.0f || slot->v[j] != 0.0f) return false;
        }
        if (zeros != sparsity_count(sparsity, m->tensor->size)) return false;
    }
    return true;
}

// Copies one checkpoint of from into a fresh folder, to resume there.
static void copy_checkpoint(const char *from, long step, const char *to) {
    char command[9000];
    snprintf(command, sizeof command, "mkdir -p '%s' && cp '%s'/ckpt-%08ld.h5 '%s'/", to, from, step, to);
    if (system(command) != 0) printf("       %s failed\n", command);
}

int main(void) {
    char root[] = "/tmp/test_prune_oneshot_train_XXXXXX";
    if (!mkdtemp(root)) return 1;
    char straight[4096], from5[4096], from0[4096];
    snprintf(straight, sizeof straight, "%s/straight", root);
    snprintf(from5, sizeof from5, "%s/from5", root);
    snprintf(from0, sizeof from0, "%s/from0", root);
    RunConfig c;
    Error err;
    int rc = config_load_string(&c, CONFIG, "test config", &err);
    if (rc == 0) rc = config_check(&c, &err);
    TrainSummary a;
    if (rc == 0) rc = train_run(&c, straight, NULL, &a, &err);
    check(rc == 0 && oneshot_calls == 1, "one-shot + fine-tuning run: %s (%d one-shot pass)", rc ? err.message : "ok",
          oneshot_calls);
    if (rc != 0) return check_summary("one-shot pruning then fine-tuning");

    Loaded zero, five, ten;
    load(&zero, &c, straight, 0);
    load(&five, &c, straight, 5);
    load(&ten, &c, straight, 10);
    check(zero.ok && zero.model.config.n_layer == 1, "step 0 is checkpointed: the one-shot result, 1 layer (%d)",
          zero.model.config.n_layer);
    check(held(&zero, 0.6) && held(&five, 0.6) && held(&ten, 0.6),
          "masks held at steps 0, 5, 10: 60%% of each tensor, weights and moments 0");
    check(fabs(a.sparsity - 0.6) < 0.01 && a.dense_val_loss > 0 && a.prune_breakdown.oneshot > 0 &&
              a.prune_seconds >= a.prune_breakdown.oneshot && a.parameters == (long)zero.model.n_elements,
          "summary: sparsity %.4f, dense loss %.4f (before the pass), one-shot %.4f s, %ld parameters", a.sparsity,
          a.dense_val_loss, a.prune_breakdown.oneshot, a.parameters);

    char path[4200];
    snprintf(path, sizeof path, "%s/report.json", straight);
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t size = 0;
    if (f && getdelim(&text, &size, '\0', f) < 0) text[0] = '\0';
    if (f) fclose(f);
    check(text && strstr(text, "\"stand_in\":\ttrue") && strstr(text, "\"method\":\t\"magnitude\""),
          "report.json holds the method's own report");
    free(text);

    // Resumed from step 5 and from step 0: the pass is not repeated, the model comes from
    // the checkpoint (1 layer, though the config says 2), and the end is the same.
    TrainSummary b;
    copy_checkpoint(straight, 5, from5);
    rc = train_run(&c, from5, "latest", &b, &err);
    Loaded resumed;
    load(&resumed, &c, from5, 10);
    check(rc == 0 && oneshot_calls == 1 && same_tensors(&ten, &resumed),
          "resumed from step 5: no second pass, parameters, moments and masks bit-identical at step 10 (%s)",
          rc ? err.message : "ok");
    check(b.dense_val_loss == a.dense_val_loss && b.val_loss == a.val_loss,
          "resumed from step 5: the same dense and final validation loss");
    unload(&resumed);
    copy_checkpoint(straight, 0, from0);
    rc = train_run(&c, from0, "latest", &b, &err);
    load(&resumed, &c, from0, 10);
    check(rc == 0 && oneshot_calls == 1 && same_tensors(&ten, &resumed),
          "resumed from step 0: no second pass, bit-identical at step 10 (%s)", rc ? err.message : "ok");
    unload(&resumed);

    // train.steps 0: prune, checkpoint, evaluate; no fine-tuning.
    char no_steps[4096];
    snprintf(no_steps, sizeof no_steps, "%s/no_steps", root);
    config_set(&c, "train.steps=0", &err);
    rc = train_run(&c, no_steps, NULL, &b, &err);
    check(rc == 0 && oneshot_calls == 2 && fabs(b.sparsity - 0.6) < 0.01 && b.steps == 0,
          "train.steps 0: the one-shot result alone (%s)", rc ? err.message : "ok");

    unload(&zero);
    unload(&five);
    unload(&ten);
    config_free(&c);
    char command[4200];
    snprintf(command, sizeof command, "rm -rf '%s'", root);
    if (system(command) != 0) return 1;
    return check_summary("one-shot pruning then fine-tuning");
}
