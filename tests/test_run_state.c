// The run state's one save/load pair (run/run_state.h) and the summary line's one table
// (run/train_summary.h): a round trip through a checkpoint gives every field back; a
// checkpoint that lacks a value, or whose data cursor or generator disagree, is refused
// naming the file and the dataset; a pruning run's values are required only of pruning
// runs. The summary line goes to metrics.jsonl and comes back the same; a summary line
// without one of its keys is an error naming the file, the line and the key.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "run/metrics.h"
#include "run/run_state.h"
#include "run/train_summary.h"
#include "tiny_model.h"

#include "check.h"

static RunState example_state(void) {
    return (RunState){
        .step = 40, .interval_loss = 1.25, .interval_steps = 3, .last_loss = 0.4375, .train_seconds = 12.5,
        .lr = 3e-4, .dense_evaluated = true, .dense = {.nll = 0.75, .perplexity = exp(0.75), .accuracy = 0.625, .tokens = 2048},
        .mask_seconds = 0.125, .oneshot_seconds = 2.5,
    };
}

static bool same_state(const RunState *a, const RunState *b) {
    return a->step == b->step && a->interval_loss == b->interval_loss && a->interval_steps == b->interval_steps &&
           a->last_loss == b->last_loss && a->train_seconds == b->train_seconds && a->lr == b->lr &&
           a->dense_evaluated == b->dense_evaluated && a->dense.nll == b->dense.nll &&
           a->dense.perplexity == b->dense.perplexity && a->dense.accuracy == b->dense.accuracy &&
           a->dense.tokens == b->dense.tokens && a->mask_seconds == b->mask_seconds &&
           a->oneshot_seconds == b->oneshot_seconds;
}

// Saves `state` at path, with the run state's values but the one called `leave_out` (NULL: all).
static int save(const char *path, const MambaModel *model, const RunState *state, bool pruning, const char *leave_out,
                Error *err) {
    CheckpointState full = {0};
    if (run_state_save(state, 7, pruning, &full, err) != 0) return -1;
    CheckpointState kept = full;
    kept.n_values = 0;
    for (int i = 0; i < full.n_values; i++)
        if (!leave_out || strcmp(full.values[i].name, leave_out) != 0) kept.values[kept.n_values++] = full.values[i];
    return checkpoint_save(path, model->params, model->n_params, NULL, NULL, 0, &kept, "", err);
}

static int load(const char *path, MambaModel *model, RunState *state, int seed, bool pruning, Error *err) {
    CheckpointState loaded;
    memset(&loaded, 0, sizeof loaded);
    if (checkpoint_load(path, model->params, model->n_params, NULL, NULL, 0, &loaded, err) != 0) return -1;
    memset(state, 0, sizeof *state);
    return run_state_load(state, &loaded, seed, pruning, path, err);
}

static void test_run_state(MambaModel *model) {
    char path[] = "/tmp/test_run_state_XXXXXX.h5";
    int fd = mkstemps(path, 3);
    close(fd);
    Error err;
    RunState saved = example_state(), back;

    int rc = save(path, model, &saved, true, NULL, &err);
    if (rc == 0) rc = load(path, model, &back, 7, true, &err);
    check(rc == 0 && same_state(&saved, &back), "a pruning run's state comes back field for field: %s",
          rc ? err.message : "ok");

    // Without pruning only the run's values are written and read.
    rc = save(path, model, &saved, false, NULL, &err);
    if (rc == 0) rc = load(path, model, &back, 7, false, &err);
    check(rc == 0 && back.step == 40 && back.last_loss == saved.last_loss && !back.dense_evaluated &&
              back.mask_seconds == 0,
          "a run without pruning: its values back, the pruning values neither written nor read: %s",
          rc ? err.message : "ok");
    rc = load(path, model, &back, 7, true, &err);
    check_error("a pruning run refuses a checkpoint without the pruning values", rc, &err, path,
                "/state/schedule/dense_evaluated is missing", NULL);

    const char *names[] = {"interval_loss", "interval_steps", "last_loss", "train_seconds", "lr", "dense_val_loss",
                           "dense_val_tokens", "oneshot_seconds"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char needle[128], label[128];
        snprintf(needle, sizeof needle, "/state/schedule/%s is missing", names[i]);
        snprintf(label, sizeof label, "a checkpoint without %s is refused", names[i]);
        rc = save(path, model, &saved, true, names[i], &err);
        if (rc == 0) rc = load(path, model, &back, 7, true, &err);
        check_error(label, rc, &err, path, needle, NULL);
    }

    rc = save(path, model, &saved, true, NULL, &err);
    if (rc == 0) rc = load(path, model, &back, 8, true, &err);
    check_error("another seed's checkpoint is refused", rc, &err, path, "/state/rng is not the state of train.seed = 8",
                NULL);
    remove(path);
}

static TrainSummary example_summary(void) {
    return (TrainSummary){
        .steps = 300, .train_loss = 0.1, .val_loss = 0.2, .val_perplexity = exp(0.2), .val_accuracy = 0.9,
        .val_tokens = 4096, .dense_val_loss = 0.15, .dense_val_perplexity = exp(0.15), .dense_val_accuracy = 0.95,
        .sparsity = 0.5, .tokens_per_s = 12345.5, .wall_s = 61.25, .train_seconds = 55.5, .prune_seconds = 1.0 / 3.0,
        .parameters = 241234,
    };
}

static void test_summary(void) {
    char dir[] = "/tmp/test_run_state_XXXXXX";
    check(mkdtemp(dir) != NULL, "a run folder");
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    Error err;
    TrainSummary back;
    check(train_summary_read(dir, &back, &err) == 0, "no metrics.jsonl: not finished");

    MetricsLog log;
    TrainSummary saved = example_summary();
    int rc = metrics_open(&log, path, &err);
    if (rc == 0) {
        cJSON *line = cJSON_CreateObject();
        cJSON_AddNumberToObject(line, "step", 300);
        cJSON_AddNumberToObject(line, "loss", 0.1);
        metrics_write(&log, line);
        metrics_write(&log, train_summary_json(&saved));
        rc = metrics_check(&log, &err);
        metrics_close(&log);
    }
    rc = rc == 0 ? train_summary_read(dir, &back, &err) : -1;
    // cJSON prints 15 significant digits where they read back within its tolerance, so the
    // numbers come back to about 1e-15 relative, the counts exactly.
    bool same = rc == 1 && back.steps == saved.steps && back.val_tokens == saved.val_tokens &&
                back.parameters == saved.parameters;
    const double pairs[][2] = {{back.train_loss, saved.train_loss}, {back.val_loss, saved.val_loss},
                               {back.val_perplexity, saved.val_perplexity}, {back.val_accuracy, saved.val_accuracy},
                               {back.dense_val_loss, saved.dense_val_loss},
                               {back.dense_val_perplexity, saved.dense_val_perplexity},
                               {back.dense_val_accuracy, saved.dense_val_accuracy}, {back.sparsity, saved.sparsity},
                               {back.tokens_per_s, saved.tokens_per_s}, {back.wall_s, saved.wall_s},
                               {back.train_seconds, saved.train_seconds}, {back.prune_seconds, saved.prune_seconds}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        same = same && fabs(pairs[i][0] - pairs[i][1]) <= 1e-14 * fabs(pairs[i][1]);
    check(same, "the summary line comes back as written, every field (to 1e-14 relative; rc %d)", rc);
    check(strcmp(train_summary_key(offsetof(TrainSummary, wall_s)), "wall_s") == 0 &&
              strcmp(train_summary_key(offsetof(TrainSummary, steps)), "step") == 0 &&
              train_summary_key(offsetof(TrainSummary, prune_breakdown)) == NULL,
          "the line's key of a member, none for one not in the line");

    // metrics_truncate keeps the step line and drops the summary: the run is not finished.
    rc = metrics_truncate(path, 300, &err);
    check(rc == 0 && train_summary_read(dir, &back, &err) == 0, "truncated to step 300: no summary left");

    // A summary line without "sparsity".
    FILE *f = fopen(path, "a");
    cJSON *broken = train_summary_json(&saved);
    cJSON_DeleteItemFromObjectCaseSensitive(broken, "sparsity");
    char *text = cJSON_PrintUnformatted(broken);
    fprintf(f, "%s\n", text);
    fclose(f);
    free(text);
    cJSON_Delete(broken);
    rc = train_summary_read(dir, &back, &err);
    check_error("a summary line without a key", rc, &err, path, ":2:", "\"sparsity\"", NULL);
    remove(path);
    rmdir(dir);
}

int main(void) {
    MambaModel model;
    tiny_model_create(&model, 1, 9);
    test_run_state(&model);
    test_summary();
    mamba_model_free(&model);
    return check_summary("run state and summary line");
}
