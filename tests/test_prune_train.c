// Gradient pruning in a real (short) training run, through train_run as the train command
// calls it: a tiny Mamba on selective copying, masks recomputed every 5 steps with the
// stability check on. Every checkpoint must hold masks under which the weights and both
// AdamW moments are exactly 0, at exactly the schedule's count; the run ends at exactly
// round(0.5 * prunable) pruned weights, with sparsity in every metrics line, update lines
// with their stability report, the summary's keys, and report.json / report.md.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run/model_source.h"
#include "run/trainer.h"
#include "io/checkpoint.h"
#include "prune/masks.h"
#include "prune/sparsity_schedule.h"

#include "check.h"

static const char *const CONFIG =
    "model: {d_model: 16, n_layer: 2}\n"
    "data: {kind: selective_copying, vocab: 8, n_memorize: 4, val_sequences: 16}\n"
    "train: {steps: 30, batch_size: 4, seqlen: 24, seed: 3, eval_every: 0, eval_batches: 2, log_every: 5}\n"
    "optim: {lr: 3.0e-3, lr_min: 1.0e-4, warmup_steps: 0}\n"
    "prune: {method: gradient, final_sparsity: 0.5, end_step: 20, prune_every: 5, grad_accum_batches: 2}\n"
    "stability: {enabled: true, batches: 2}\n"
    "checkpoint: {every: 5, keep: 10}\n"
    "log: {progress: false}\n";

static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *text = NULL;
    size_t size = 0;
    if (getdelim(&text, &size, '\0', f) < 0) {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

// Loads the checkpoint of step t and checks its masks: weights and moments under them are
// 0, and the count is the schedule's. Returns the pruned count (or -1).
static long check_checkpoint(const RunConfig *c, const char *dir, long t) {
    char path[4096];
    Error err;
    checkpoint_path_for_step(path, sizeof path, dir, t, &err);
    MambaModel model;
    if (model_load(path, &model, &err) != 0) {
        check(false, "step %ld: %s", t, err.message);
        return -1;
    }
    AdamW optimizer;
    AdamWOptions options;
    adamw_options_defaults(&options);
    adamw_init(&optimizer, &options);
    for (int i = 0; i < model.n_params; i++) adamw_add(&optimizer, model.params[i].tensor, true);
    bool *prunable = xcalloc((size_t)model.n_params, sizeof(bool));
    for (int i = 0; i < model.n_params; i++) prunable[i] = config_param_prunable(c, model.params[i].name);
    PruneMasks masks;
    prune_masks_create(&masks, &model, prunable);
    CheckpointMask *views = malloc(sizeof(CheckpointMask) * (size_t)masks.n);
    prune_masks_checkpoint_views(&masks, views);
    long pruned = -1;
    if (checkpoint_load(path, model.params, model.n_params, &optimizer, views, masks.n, NULL, &err) != 0) {
        check(false, "step %ld: %s", t, err.message);
    } else {
        bool zero = true;
        for (int i = 0; i < masks.n; i++) {
            const MaskedTensor *m = &masks.tensors[i];
            AdamWSlot *slot = adamw_find(&optimizer, m->tensor);
            for (size_t j = 0; j < m->tensor->size; j++)
                if (!m->keep[j]) zero = zero && m->tensor->data[j] == 0.0f && slot->m[j] == 0.0f && slot->v[j] == 0.0f;
        }
        SparsitySchedule schedule;
        PruneOptions options;
        config_prune_options(c, &options);
        sparsity_schedule_from_options(&schedule, &options);
        size_t want = sparsity_count(sparsity_at(&schedule, sparsity_previous_update(&schedule, t)), masks.total);
        pruned = (long)prune_masks_pruned(&masks);
        check(zero && (size_t)pruned == want,
              "checkpoint at step %2ld: %ld of %zu pruned (schedule: %zu), weights and moments under the masks 0", t,
              pruned, masks.total, want);
    }
    free(views);
    prune_masks_free(&masks);
    free(prunable);
    adamw_free(&optimizer);
    mamba_model_free(&model);
    return pruned;
}

int main(void) {
    char dir[] = "/tmp/test_prune_train_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    RunConfig c;
    Error err;
    int rc = config_load_string(&c, CONFIG, "test config", &err);
    if (rc == 0) rc = config_check(&c, &err);
    TrainSummary summary;
    if (rc == 0) rc = train_run(&c, dir, NULL, &summary, &err);
    check(rc == 0, "a gradient-pruning run: %s", rc ? err.message : "ok");
    if (rc != 0) return check_summary("gradient pruning in training");

    for (long t = 5; t <= 30; t += 5) check_checkpoint(&c, dir, t);
    long prunable_total = 0;
    {
        MambaModel model;
        char path[4096];
        checkpoint_path_for_step(path, sizeof path, dir, 30, &err);
        model_load(path, &model, &err);
        for (int i = 0; i < model.n_params; i++)
            if (config_param_prunable(&c, model.params[i].name)) prunable_total += (long)model.params[i].tensor->size;
        mamba_model_free(&model);
    }
    long target = lround(0.5 * (double)prunable_total);
    check(fabs(summary.sparsity - (double)target / (double)prunable_total) < 1e-15,
          "summary: sparsity %.6f = round(0.5 * %ld) / %ld", summary.sparsity, prunable_total, prunable_total);
    check(summary.dense_val_loss > 0 && summary.val_loss > 0 && summary.train_seconds > 0 && summary.prune_seconds > 0 &&
              summary.prune_breakdown.stability > 0 && summary.parameters > 0,
          "summary: dense and pruned losses, train and prune seconds (%.3f, %.3f)", summary.train_seconds,
          summary.prune_seconds);

    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *metrics = read_file(path);
    int step_lines = 0, with_sparsity = 0, updates = 0, with_stability = 0, dense = 0;
    cJSON *last = NULL;
    for (char *line = metrics ? strtok(metrics, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (!o) continue;
        if (cJSON_GetObjectItemCaseSensitive(o, "loss")) {
            step_lines++;
            with_sparsity += cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "sparsity"));
        }
        if (cJSON_GetObjectItemCaseSensitive(o, "prune_update")) {
            updates++;
            with_stability += cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "stability"));
        }
        dense += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "dense"));
        cJSON_Delete(last);
        last = o;
    }
    check(step_lines == 6 && with_sparsity == 6, "%d of %d step lines carry sparsity", with_sparsity, step_lines);
    // Updates after 5, 10, 15 and 20 steps (at 0 the target is 0).
    check(updates == 4 && with_stability == 4, "%d mask updates logged, %d with a stability report", updates,
          with_stability);
    check(dense == 1, "one evaluation of the dense model before the first update");
    static const char *const keys[] = {"summary",      "val_loss",       "val_perplexity", "val_accuracy",
                                       "dense_val_loss", "dense_val_perplexity", "dense_val_accuracy", "sparsity",
                                       "train_loss",   "tokens_per_s",   "wall_s",         "train_seconds",
                                       "prune_seconds", "parameters"};
    bool all_keys = last != NULL;
    for (size_t i = 0; all_keys && i < sizeof keys / sizeof keys[0]; i++)
        all_keys = cJSON_GetObjectItemCaseSensitive(last, keys[i]) != NULL;
    check(all_keys, "the summary line has all %zu keys", sizeof keys / sizeof keys[0]);
    cJSON_Delete(last);
    free(metrics);

    snprintf(path, sizeof path, "%s/report.json", dir);
    char *text = read_file(path);
    cJSON *report = text ? cJSON_Parse(text) : NULL;
    const cJSON *sparsity = cJSON_GetObjectItemCaseSensitive(report, "sparsity");
    const cJSON *stability = cJSON_GetObjectItemCaseSensitive(report, "stability");
    const cJSON *time = cJSON_GetObjectItemCaseSensitive(report, "time");
    check(cJSON_GetObjectItemCaseSensitive(sparsity, "pruned") &&
              cJSON_GetObjectItemCaseSensitive(sparsity, "pruned")->valuedouble == (double)target &&
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(sparsity, "layers")) == 2,
          "report.json: %ld pruned, per component and layer", target);
    check(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(stability, "enabled")) &&
              cJSON_GetObjectItemCaseSensitive(stability, "updates")->valuedouble == 4 &&
              cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(stability, "layers")) == 2,
          "report.json: stability totals over the 4 updates, per layer");
    check(cJSON_GetObjectItemCaseSensitive(time, "prune_seconds") &&
              fabs(cJSON_GetObjectItemCaseSensitive(time, "prune_seconds")->valuedouble - summary.prune_seconds) < 1e-9,
          "report.json: the time spent pruning");
    cJSON_Delete(report);
    free(text);
    snprintf(path, sizeof path, "%s/report.md", dir);
    text = read_file(path);
    check(text && strstr(text, "## Quality") && strstr(text, "## Sparsity") && strstr(text, "## Stability") &&
              strstr(text, "## Time") && strstr(text, "| dense |") && strstr(text, "| pruned |"),
          "report.md: quality, sparsity, stability and time");
    free(text);

    config_free(&c);
    char command[4200];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0) return 1;
    return check_summary("gradient pruning in training");
}
