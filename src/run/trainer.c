// The training and pruning session (see trainer.h; docs/DESIGN.md#data-flow-of-one-run).
// train_run reads as the algorithm: set up; per step forward, backward and update
// (train_step), the mask update the schedule names (prune_update), a metrics line
// (log_step), validation (evaluate_step), a checkpoint (checkpoint_step); then finish.
// Batch number `step` is a pure function of the seed and the index. The gradient method
// hands the raw gradients of the steps before a mask update to the pruner and recomputes
// the masks after the steps the schedule names (before logging and checkpointing that
// step, so that a checkpoint holds the new masks). A pruning run holds its masks after
// every optimizer step.
#include "run/trainer.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/ops.h"
#include "core/atomic_file.h"
#include "core/dist.h"
#include "core/input_file.h"
#include "data/data.h"
#include "io/checkpoint.h"
#include "io/run_lock.h"
#include "mamba/model.h"
#include "optim/adamw.h"
#include "optim/schedule.h"
#include "prune/iterative.h"
#include "prune/masks.h"
#include "prune/oneshot.h"
#include "run/data_parallel.h"
#include "run/distill.h"
#include "run/evaluate.h"
#include "run/metrics.h"
#include "run/model_source.h"
#include "run/progress.h"
#include "run/prune_report.h"
#include "run/run_limits.h"
#include "run/run_signals.h"
#include "run/run_state.h"
#include "run/task_batch.h"
#include "run/text_tokens.h"

typedef struct Trainer {
    const RunConfig *config;
    const char *run_dir;
    RunConfig resolved;          // config with the model's actual sizes (vocab from the data, a
                                 // pretrained folder's sizes, a one-shot method's smaller model):
                                 // what config.yaml and checkpoints store
    Dataset data;
    MambaModel model;
    AdamW optimizer;
    Tape tape;
    Tape recompute_tape;         // train.recompute: the scratch tape of each block's recomputation
    TaskBatch batch;             // one batch, (B, L) tokens or series windows
    MetricsLog metrics;
    Progress progress;
    RunLock lock;                // the run folder, held for the whole run

    RunState state;              // what a checkpoint stores beyond the tensors
    bool resumed;                // the run continues from a checkpoint
    double run_start;            // this process, seconds
    double interval_start;       // of the current log interval (evaluation time left out)
    double lr, grad_norm;        // of the last step
    char extra[128];             // the last validation, shown on the progress line

    // Pruning (prune.method is not none): the masks, held after every optimizer step, and
    // for the gradient method the iterative pruner that recomputes them.
    bool pruning, iterative;
    PruneOptions prune;          // the config's prune and stability sections, for prune/
    PruneStabilityOptions stability;
    PruneMasks masks;
    IterativePruner pruner;
    size_t pruned;               // weights pruned under the masks now
    cJSON *oneshot_report;       // the one-shot method's report (owned), NULL until made or read back
    Distiller distill;           // the dense teacher (run/distill.h), off unless prune.distill_weight > 0
} Trainer;

// The one-shot method's report in the run folder, read back by a resumed run.
#define ONESHOT_REPORT_FILE "oneshot.json"

static bool is_oneshot(CfgPruneMethod method) { return prune_method_is_oneshot((PruneMethod)method); }

// mamba_ssm's _no_weight_decay, plus norms and biases as usual.
static bool wants_weight_decay(const char *name) {
    size_t n = strlen(name);
    bool ends_with_bias = n >= 5 && strcmp(name + n - 5, ".bias") == 0;
    bool is_D = n >= 2 && strcmp(name + n - 2, ".D") == 0;
    return !(strstr(name, "norm") || ends_with_bias || is_D || strstr(name, "A_log"));
}

// ---- set-up ----

// The model of the run: from the model section (random, or model.init), or, when a one-shot
// run resumes, from its checkpoint: the one-shot pass is not repeated, and it may have
// left a smaller model than the model section describes.
static int open_model(Trainer *tr, const RunConfig *c, const char *resume_path, Error *err) {
    if (is_oneshot(c->prune.method) && resume_path) return model_load(resume_path, &tr->model, err);
    if (strcmp(c->model.init, "random") == 0) {
        MambaConfig model_config;
        config_to_mamba(c, &model_config);
        if (model_config.vocab_size == 0) model_config.vocab_size = data_vocab_size(&tr->data);
        if (model_config.n_classes == 0) model_config.n_classes = data_n_classes(&tr->data);  // heads.h
        if (model_config.n_features == 0) model_config.n_features = data_n_features(&tr->data);
        if (mamba_config_finish(&model_config, err) != 0) return -1;
        if (run_check_memory(c, &model_config, err) != 0) return -1;  // hardening: refuse before allocating
        mamba_model_create(&tr->model, &model_config);
        Rng init_rng;
        rng_seed(&init_rng, (uint64_t)c->train.seed ^ 0x5eedf00dULL);
        mamba_model_init_random(&tr->model, &init_rng);
        return 0;
    }
    // A pretrained starting point brings its own sizes; the model section's are unused.
    if (model_load(c->model.init, &tr->model, err) != 0) return error_prefix(err, "model.init");
    return 0;
}

static void create_masks(Trainer *tr) {
    bool *prunable = xcalloc((size_t)tr->model.n_params, sizeof(bool));
    for (int i = 0; i < tr->model.n_params; i++) prunable[i] = config_param_prunable(tr->config, tr->model.params[i].name);
    prune_masks_create(&tr->masks, &tr->model, prunable);
    free(prunable);
}

// A run that prunes a model already pruned (model.init, a checkpoint with masks) starts from
// its masks, so that its pruned weights stay pruned and count towards the target; masks
// only grow. A transformers folder has no masks: its zeros are ordinary weights.
static int read_init_masks(Trainer *tr, const char *init, Error *err) {
    struct stat st;
    if (strcmp(init, "random") == 0 || stat(init, &st) != 0 || S_ISDIR(st.st_mode)) return 0;
    int n = tr->masks.n, unlisted = 0;
    CheckpointMask *views = xmalloc(sizeof(CheckpointMask) * (size_t)n);
    bool *found = xcalloc((size_t)n, sizeof(bool));
    prune_masks_checkpoint_views(&tr->masks, views);
    int rc = checkpoint_read_masks_found(init, tr->model.params, tr->model.n_params, views, n, found, &unlisted, err);
    int n_found = 0;
    for (int i = 0; i < n; i++) n_found += found[i];
    free(found);
    free(views);
    if (rc != 0) return -1;
    if (n_found == 0 && unlisted == 0) return 0;
    prune_masks_apply(&tr->masks, NULL);
    size_t pruned = prune_masks_pruned(&tr->masks);
    fprintf(stderr, "model.init %s: its masks on %d of the %d pruned tensors hold %zu weights pruned (%.2f%%) from the start",
            init, n_found, n, pruned, 100.0 * (double)pruned / (double)tr->masks.total);
    if (unlisted > 0) fprintf(stderr, "; %d more masks of it are on tensors this run does not prune, and are not held", unlisted);
    fprintf(stderr, "\n");
    return 0;
}

// Everything that does not depend on the final model: data, model, batches, masks, folder.
// resume_path is the checkpoint the run resumes from, or NULL.
static int open_session(Trainer *tr, const char *resume_path, Error *err) {
    const RunConfig *c = tr->config;
    // Keys the config accepts whose behaviour is not built yet: refuse rather than ignore.
    if (c->eval.seqlen != 0 && c->eval.seqlen != c->train.seqlen)
        return error_set(err, "eval.seqlen: evaluating at another length than train.seqlen is not implemented yet");
    if (data_parallel_check(c, err) != 0) return -1;
    if (c->train.threads > 0) {
        omp_set_num_threads(c->train.threads);
        openblas_set_num_threads(c->train.threads);
    }
    matmul_set_backend(c->train.matmul == CFG_MATMUL_ONEDNN ? MATMUL_ONEDNN : MATMUL_OPENBLAS);

    DataOptions data_options;
    run_data_options(c, &data_options);
    char tokens_path[4096];  // data.kind text with a pretrained model: its tokenizer's ids
    if (run_text_tokens(c->model.init, tr->run_dir, &data_options, tokens_path, sizeof tokens_path, err) != 0) return -1;
    if (data_open(&tr->data, &data_options, c->train.seqlen, err) != 0) return -1;
    if (open_model(tr, c, resume_path, err) != 0) return -1;
    if (run_check_memory(c, &tr->model.config, err) != 0) return -1;  // hardening: a loaded model's batches
    int data_vocab = data_vocab_size(&tr->data);
    if (tr->model.config.vocab_padded < data_vocab)
        return error_set(err, "the model has %d token ids but the data needs %d", tr->model.config.vocab_padded,
                         data_vocab);

    if (tr->model.config.head == MAMBA_HEAD_CLASSIFY && tr->model.config.n_classes < data_n_classes(&tr->data))
        return error_set(err, "model.n_classes: the model has %d classes but the data has labels up to %d",
                         tr->model.config.n_classes, data_n_classes(&tr->data) - 1);  // heads.h

    const MambaConfig *m = &tr->model.config;  // heads.h: a forecaster reads the data's series as it was trained
    if (mamba_head_reads_values(m->head) &&
        (m->n_features != data_n_features(&tr->data) || m->horizon != data_horizon(&tr->data) ||
         (m->head == MAMBA_HEAD_DLINEAR && m->input_len != c->train.seqlen)))
        return error_set(err, "model.n_features, data.horizon: the model forecasts %d steps of %d values%s, but the data "
                         "has %d values per step and data.horizon %d (train.seqlen %d)", m->horizon, m->n_features,
                         m->head == MAMBA_HEAD_DLINEAR ? " from its input length" : "", data_n_features(&tr->data),
                         data_horizon(&tr->data), c->train.seqlen);

    tape_init(&tr->tape, 64u << 20);
    if (c->train.recompute) {
        tape_init(&tr->recompute_tape, 64u << 20);
        tr->tape.recompute = &tr->recompute_tape;
    }
    task_batch_init(&tr->batch, &tr->data, c->train.batch_size, c->train.seqlen);
    if (c->prune.distill_weight > 0 && data_is_series(&tr->data))
        return error_set(err, "prune.distill_weight: distillation of a forecaster is not implemented");
    if (distill_init(&tr->distill, c, &tr->model, err) != 0) return -1;

    config_prune_options(c, &tr->prune);
    config_stability_options(c, &tr->stability);
    tr->pruning = c->prune.method != CFG_PRUNE_NONE;
    tr->iterative = c->prune.method == CFG_PRUNE_GRADIENT;
    if (tr->pruning) {
        create_masks(tr);
        if (tr->masks.n == 0)
            return error_set(err, "prune.include: no parameter of the model matches these patterns (nothing to prune)");
        if (!resume_path && read_init_masks(tr, c->model.init, err) != 0) return error_prefix(err, "model.init");
    }
    return make_directories(tr->run_dir, err);
}

// Once the model is final (after a one-shot pass): the optimizer, the resolved config in
// config.yaml, and the iterative pruner.
static int finish_opening(Trainer *tr, Error *err) {
    const RunConfig *c = tr->config;
    AdamWOptions adamw_options = {c->optim.beta1, c->optim.beta2, c->optim.eps, c->optim.weight_decay};
    adamw_init(&tr->optimizer, &adamw_options);
    for (int i = 0; i < tr->model.n_params; i++)
        adamw_add(&tr->optimizer, tr->model.params[i].tensor, wants_weight_decay(tr->model.params[i].name));

    config_copy(&tr->resolved, c);
    config_set_model_sizes(&tr->resolved, &tr->model.config);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.yaml", tr->run_dir);
    char *yaml = config_to_yaml(&tr->resolved);
    int rc = dist_is_root() ? atomic_write_file(path, yaml, strlen(yaml), err) : 0;  // rank 0 alone writes
    free(yaml);
    if (rc != 0) return -1;
    if (tr->iterative) return iterative_init(&tr->pruner, &tr->prune, &tr->stability, &tr->data, &tr->model, &tr->masks, err);
    return 0;
}

// metrics.jsonl: a fresh run starts a fresh log; a resumed one keeps the lines up to its step.
static int open_metrics(Trainer *tr, Error *err) {
    if (!tr->config->log.jsonl || !dist_is_root()) return 0;  // rank 0 alone writes
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", tr->run_dir);
    if (!tr->resumed) remove(path);
    else if (metrics_truncate(path, tr->state.step, err) != 0) return -1;
    return metrics_open(&tr->metrics, path, err);
}

static void trainer_close(Trainer *tr) {
    cJSON_Delete(tr->oneshot_report);
    run_lock_release(&tr->lock);
    if (tr->resolved.model.init) config_free(&tr->resolved);
    metrics_close(&tr->metrics);
    if (tr->iterative) iterative_free(&tr->pruner);
    if (tr->masks.tensors) prune_masks_free(&tr->masks);
    task_batch_free(&tr->batch);
    tape_free(&tr->tape);
    if (tr->recompute_tape.nodes) tape_free(&tr->recompute_tape);
    distill_free(&tr->distill);
    adamw_free(&tr->optimizer);
    mamba_model_free(&tr->model);
    data_close(&tr->data);
}

// ---- evaluation and pruning ----

static Evaluation evaluate(Trainer *tr, int max_batches) {
    return evaluate_model(&tr->model, &tr->data, &tr->tape, tr->config->train.batch_size, tr->config->train.seqlen,
                          max_batches, tr->batch.tokens, tr->batch.targets, false);
}

// The final evaluation's settings, also used for the dense model before pruning.
static int final_eval_batches(const RunConfig *c) { return c->eval.at_end ? c->eval.batches : c->train.eval_batches; }

static double sparsity_now(const Trainer *tr) {
    return tr->masks.total ? (double)tr->pruned / (double)tr->masks.total : 0.0;
}

// The model before any pruning, evaluated as at the end of the run.
static void evaluate_dense(Trainer *tr, long step) {
    RunState *s = &tr->state;
    s->dense = evaluate(tr, final_eval_batches(tr->config));
    s->dense_evaluated = true;
    cJSON *o = evaluation_json(step, &s->dense);
    cJSON_AddBoolToObject(o, "dense", 1);
    metrics_write(&tr->metrics, o);
    if (s->dense.series)
        progress_message(&tr->progress, "dense model at step %ld: MSE %.4f, MAE %.4f", step, s->dense.mse, s->dense.mae);
    else
        progress_message(&tr->progress, "dense model at step %ld: validation loss %.4f, perplexity %.3f, accuracy %.4f",
                         step, s->dense.nll, s->dense.perplexity, s->dense.accuracy);
}

// Pruned weights stay exactly zero, and so do their AdamW moments.
static void hold_masks(Trainer *tr) {
    if (!tr->pruning || tr->pruned == 0) return;
    double start = now_seconds();
    prune_masks_apply(&tr->masks, &tr->optimizer);
    tr->state.mask_seconds += now_seconds() - start;
}

// The one-shot pass, once, before training: the dense evaluation, then the method, whose
// own report goes to run_dir/oneshot.json for the final report.
static int run_oneshot(Trainer *tr, Error *err) {
    evaluate_dense(tr, 0);
    char target[128];
    prune_report_oneshot_target(tr->config, target, sizeof target);
    progress_message(&tr->progress, "one-shot pruning: %s %s", prune_method_names[tr->config->prune.method], target);
    cJSON *report = cJSON_CreateObject();
    double start = now_seconds();
    int rc = oneshot_prune(&tr->prune, &tr->data, &tr->model, &tr->masks, report, err);
    tr->state.oneshot_seconds = now_seconds() - start;
    if (rc == 0 && dist_is_root()) {
        char path[4096];
        snprintf(path, sizeof path, "%s/" ONESHOT_REPORT_FILE, tr->run_dir);
        char *text = cJSON_Print(report);
        rc = atomic_write_file(path, text, strlen(text), err);
        free(text);
    }
    tr->oneshot_report = report;
    return rc;
}

// A resumed one-shot run: the method's report that the pass wrote (none: an empty one).
static int read_oneshot_report(Trainer *tr, Error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/" ONESHOT_REPORT_FILE, tr->run_dir);
    if (access(path, F_OK) != 0) return 0;
    char *text;
    if (input_file_read(path, "the one-shot report", INPUT_TEXT_MAX_BYTES, &text, NULL, err) != 0) return -1;
    tr->oneshot_report = cJSON_Parse(text);
    free(text);
    if (!tr->oneshot_report) return error_set(err, "%s: not a JSON object (the one-shot report of this run)", path);
    return 0;
}

// Forward and backward of training batch `index`; the loss. Token batches go through
// data_parallel_step (the batch split over the processes of an MPI run); series windows
// run on one process (data_parallel_check refuses more).
static float forward_backward(Trainer *tr, long index) {
    const int B = tr->config->train.batch_size, L = tr->config->train.seqlen;
    tape_reset(&tr->tape);
    mamba_model_zero_grad(&tr->model);
    if (data_is_series(&tr->data)) {
        Tensor *loss = task_batch_train_loss(&tr->batch, &tr->data, index, &tr->tape, &tr->model);
        tape_backward(&tr->tape, loss);
        return loss->data[0];
    }
    data_train_batch(&tr->data, index, B, L, tr->batch.tokens, tr->batch.targets);
    return data_parallel_step(&tr->tape, &tr->distill, &tr->model, tr->batch.tokens, tr->batch.targets, B, L);
}

// Gradients for an update at step 0, before any training step has made some: the first
// grad_accum_batches training batches (the ones steps 0, 1, ... will see), forward and backward.
static void measure_gradients(Trainer *tr) {
    double start = now_seconds(), accumulated = tr->pruner.times.accumulate;
    for (int k = 0; k < tr->config->prune.grad_accum_batches; k++) {
        forward_backward(tr, k);
        iterative_accumulate(&tr->pruner);
    }
    tape_reset(&tr->tape);
    mamba_model_zero_grad(&tr->model);
    tr->pruner.times.accumulate = accumulated + (now_seconds() - start);  // the passes and their accumulation
}

// The mask update after t steps, when the schedule has one there. The time spent evaluating
// the dense model is left out of the log interval's throughput.
static int prune_update(Trainer *tr, long t, Error *err) {
    if (!tr->iterative || !sparsity_updates_at(&tr->pruner.schedule, t)) return 0;
    // The dense reference is the model as the pruning phase begins (at t0, before any
    // fine-tuning inside the phase), or, with s_0 = 0 and updates that prune nothing yet,
    // no later than the first update that prunes.
    if (!tr->state.dense_evaluated && (t >= tr->pruner.schedule.start || iterative_would_prune(&tr->pruner, t))) {
        double start = now_seconds();
        evaluate_dense(tr, t);
        tr->interval_start += now_seconds() - start;
    }
    if (iterative_needs_gradient(&tr->pruner, t)) measure_gradients(tr);
    cJSON *event;
    if (iterative_update(&tr->pruner, t, &tr->model, &tr->optimizer, &tr->tape, &event, err) != 0) return -1;
    data_parallel_share_masks(&tr->masks, &tr->optimizer);  // rank 0's masks and stability corrections
    if (event) {
        tr->pruned = prune_masks_pruned(&tr->masks);
        metrics_write(&tr->metrics, event);
    }
    return 0;
}

// ---- checkpoints ----

// The checkpoint of tr->state.step: tensors, masks, optimizer, the run state (run_state.h)
// and the pruner's, and the resolved config; the oldest beyond checkpoint.keep removed.
static int save_checkpoint(Trainer *tr, Error *err) {
    if (!dist_is_root()) return 0;  // rank 0 alone writes
    const RunConfig *c = tr->config;
    tr->state.lr = lr_at(tr->state.step, c->train.steps, c->optim.warmup_steps, c->optim.lr, c->optim.lr_min);
    CheckpointState state = {0};
    if (run_state_save(&tr->state, c->train.seed, tr->pruning, &state, err) != 0) return -1;
    if (tr->iterative && iterative_checkpoint_save(&tr->pruner, &state, err) != 0) return -1;
    CheckpointMask *masks = xmalloc(sizeof(CheckpointMask) * (size_t)(tr->masks.n > 0 ? tr->masks.n : 1));
    prune_masks_checkpoint_views(&tr->masks, masks);
    char path[4096];
    int rc = checkpoint_path_for_step(path, sizeof path, tr->run_dir, tr->state.step, err);
    if (rc == 0) {
        char *yaml = config_to_yaml(&tr->resolved);
        rc = checkpoint_save(path, tr->model.params, tr->model.n_params, &tr->optimizer, masks, tr->masks.n, &state,
                             yaml, err);
        free(yaml);
    }
    free(masks);
    if (rc != 0) return -1;
    return checkpoint_prune_old(tr->run_dir, c->checkpoint.keep, err);
}

// The checkpoint that `resume` names: a path, or "latest" in run_dir. False when there is
// none to resume from: no --resume, or "latest" finds no checkpoint (a run killed before
// its first one starts again from step 0).
static bool resolve_resume(const char *run_dir, const char *resume, char *path, size_t size) {
    if (!resume) return false;
    if (strcmp(resume, "latest") == 0) {
        Error ignored;
        return checkpoint_find_latest(run_dir, path, size, &ignored) == 0;
    }
    snprintf(path, size, "%s", resume);
    return true;
}

// The inverse of save_checkpoint, after the config has been compared with the saved one.
static int resume_from(Trainer *tr, const char *path, Error *err) {
    const RunConfig *c = tr->config;
    char *yaml;
    if (checkpoint_read_config(path, &yaml, err) != 0) return -1;
    RunConfig saved;
    int rc = config_load_string(&saved, yaml, path, err);
    free(yaml);
    if (rc == 0) rc = config_check_resume(&tr->resolved, &saved, !is_oneshot(c->prune.method), path, err);
    config_free(&saved);
    if (rc != 0) return -1;

    CheckpointState state = {0};
    if (tr->iterative) iterative_checkpoint_prepare_load(&tr->pruner, &state);
    CheckpointMask *masks = NULL;
    if (tr->pruning) {
        masks = xmalloc(sizeof(CheckpointMask) * (size_t)tr->masks.n);
        prune_masks_checkpoint_views(&tr->masks, masks);
    }
    rc = checkpoint_load(path, tr->model.params, tr->model.n_params, &tr->optimizer, masks, tr->masks.n, &state, err);
    free(masks);
    if (rc != 0 || run_state_load(&tr->state, &state, c->train.seed, tr->pruning, path, err) != 0) return -1;
    // hardening: one optimizer step per step, and no further than the run goes.
    if (tr->optimizer.step != state.step)
        return error_set(err, "%s: /optim/step is %ld but /state/step is %ld (one optimizer step per step)", path,
                         (long)tr->optimizer.step, state.step);
    if (state.step > c->train.steps)
        return error_set(err, "%s: the checkpoint is at step %ld, past train.steps = %d", path, state.step,
                         c->train.steps);
    if (tr->pruning) tr->pruned = prune_masks_pruned(&tr->masks);
    if (tr->iterative && iterative_checkpoint_restore(&tr->pruner, &state, path, err) != 0) return -1;
    if (is_oneshot(c->prune.method) && read_oneshot_report(tr, err) != 0) return -1;
    progress_message(&tr->progress, "resuming from %s (step %ld)", path, state.step);
    return 0;
}

// ---- the run ----

static void announce_run(Trainer *tr) {
    const RunConfig *c = tr->config;
    const MambaConfig *m = &tr->model.config;
    const char *source = tr->data.path ? tr->data.path : data_kind_name(tr->data.kind);
    if (mamba_head_reads_values(m->head))  // heads.h
        progress_message(&tr->progress, "training %.2f M parameters (d_model %d, %d layers, %d features, horizon %d) on %s, "
                         "%d steps of %d windows of %d steps -> %s", tr->model.n_elements / 1e6, m->d_model, m->n_layer,
                         m->n_features, m->horizon, source, c->train.steps, c->train.batch_size, c->train.seqlen,
                         tr->run_dir);
    else
        progress_message(&tr->progress, "training %.2f M parameters (d_model %d, %d layers, vocab %d) on %s, %d steps of %d x %d tokens -> %s",
                         tr->model.n_elements / 1e6, m->d_model, m->n_layer, m->vocab_padded, source,
                         c->train.steps, c->train.batch_size, c->train.seqlen, tr->run_dir);
    if (!tr->iterative) return;
    const SparsitySchedule *s = &tr->pruner.schedule;
    progress_message(&tr->progress,
                     "gradient pruning of %zu weights in %d tensors: %s, %s schedule %.1f%% -> %.1f%% from step %ld "
                     "to %ld, masks every %ld steps, alpha %g, stability check %s",
                     tr->masks.total, tr->masks.n, prune_strategy_names[c->prune.strategy], prune_schedule_names[s->shape],
                     100.0 * s->initial, 100.0 * s->final, s->start, s->end, s->every, c->prune.alpha,
                     c->stability.enabled ? "on" : "off");
    if (s->end > c->train.steps)
        progress_message(&tr->progress, "note: prune.end_step %ld is past train.steps %d: the final sparsity is not reached",
                         s->end, c->train.steps);
}

// Lock the folder, open data and model, then either the one-shot pass (a fresh one-shot
// run, its pruned model checkpointed as step 0) or the resumed checkpoint's state.
static int trainer_setup(Trainer *tr, const RunConfig *c, const char *run_dir, const char *resume, Error *err) {
    memset(tr, 0, sizeof *tr);
    tr->run_start = now_seconds();
    tr->config = c;
    tr->run_dir = run_dir;
    tr->lock.fd = -1;
    progress_init(&tr->progress, data_parallel_log_stream(), c->log.progress, 0, c->train.steps);
    // hardening: one process per run folder; stale temporary files of dead runs removed.
    int removed = 0;
    if (dist_is_root() &&
        (make_directories(run_dir, err) != 0 || run_lock_acquire(&tr->lock, run_dir, &removed, err) != 0))
        return -1;
    dist_barrier();  // the other ranks look for checkpoints once rank 0 holds the folder
    if (removed > 0)
        progress_message(&tr->progress, "%s: removed %d temporary file%s left by runs that no longer run", run_dir,
                         removed, removed == 1 ? "" : "s");
    char resume_path[4096];
    tr->resumed = resolve_resume(run_dir, resume, resume_path, sizeof resume_path);
    if (resume && !tr->resumed)
        progress_message(&tr->progress, "--resume latest: no checkpoint in %s yet; starting from step 0", run_dir);

    bool oneshot_now = !tr->resumed && is_oneshot(c->prune.method);
    if (open_session(tr, tr->resumed ? resume_path : NULL, err) != 0) return -1;
    if (!tr->resumed && open_metrics(tr, err) != 0) return -1;
    if (oneshot_now && run_oneshot(tr, err) != 0) return -1;
    if (finish_opening(tr, err) != 0) return -1;
    if (tr->resumed && (resume_from(tr, resume_path, err) != 0 || open_metrics(tr, err) != 0)) return -1;
    if (oneshot_now) {
        // The pruned model is step 0: a resumed run starts from here, not from the dense model.
        data_parallel_share_masks(&tr->masks, &tr->optimizer);
        tr->pruned = prune_masks_pruned(&tr->masks);
        prune_masks_apply(&tr->masks, &tr->optimizer);
        if (save_checkpoint(tr, err) != 0) return -1;
    }
    progress_init(&tr->progress, data_parallel_log_stream(), c->log.progress, tr->state.step, c->train.steps);
    announce_run(tr);
    tr->interval_start = now_seconds();
    return 0;
}

// One training step on batch `step`: forward and backward on a fresh tape, the raw
// gradients to the pruner when its next update wants them, global gradient clipping, AdamW
// with the scheduled learning rate, the masks held.
static int train_step(Trainer *tr, long step, Error *err) {
    const RunConfig *c = tr->config;
    RunState *s = &tr->state;
    double step_start = now_seconds();
    float loss_value = forward_backward(tr, step);
    if (!isfinite(loss_value))
        return error_set(err, "step %ld: the loss is %f; stopping (try a lower optim.lr or optim.grad_clip)", step,
                         loss_value);
    double step_seconds = now_seconds() - step_start;
    // The raw gradients, before clipping, of the steps just before a mask update.
    if (tr->iterative && iterative_wants_gradient(&tr->pruner, step)) iterative_accumulate(&tr->pruner);
    double optimizer_start = now_seconds();
    tr->grad_norm = adamw_clip_grad_norm(&tr->optimizer, c->optim.grad_clip);
    if (!isfinite(tr->grad_norm))
        return error_set(err, "step %ld: the gradient norm is %f; stopping (try a lower optim.lr)", step, tr->grad_norm);
    tr->lr = lr_at(step, c->train.steps, c->optim.warmup_steps, c->optim.lr, c->optim.lr_min);
    adamw_step(&tr->optimizer, tr->lr);
    s->train_seconds += step_seconds + (now_seconds() - optimizer_start);
    hold_masks(tr);
    s->interval_loss += loss_value;
    s->interval_steps++;
    s->step = step + 1;
    return 0;
}

// The metrics line and the progress line after `done` steps: the mean loss of the interval.
static void log_step(Trainer *tr, long done) {
    const RunConfig *c = tr->config;
    RunState *s = &tr->state;
    double now = now_seconds();
    double tokens_per_s = (double)s->interval_steps * c->train.batch_size * c->train.seqlen / (now - tr->interval_start);
    s->last_loss = s->interval_loss / s->interval_steps;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", (double)done);
    cJSON_AddNumberToObject(o, "loss", s->last_loss);
    cJSON_AddNumberToObject(o, "lr", tr->lr);
    cJSON_AddNumberToObject(o, "grad_norm", tr->grad_norm);
    cJSON_AddNumberToObject(o, "sparsity", sparsity_now(tr));
    cJSON_AddNumberToObject(o, "tokens_per_s", tokens_per_s);
    cJSON_AddNumberToObject(o, "elapsed_s", now - tr->run_start);
    metrics_write(&tr->metrics, o);
    progress_update(&tr->progress, done, (float)s->last_loss, (float)tr->lr, (float)sparsity_now(tr), tokens_per_s,
                    tr->extra[0] ? tr->extra : NULL);
    s->interval_loss = 0.0;
    s->interval_steps = 0;
    tr->interval_start = now_seconds();
}

// Validation during training: a metrics line, and the figures on the progress line.
static void evaluate_step(Trainer *tr, long done) {
    Evaluation e = evaluate(tr, tr->config->train.eval_batches);
    if (e.series) snprintf(tr->extra, sizeof tr->extra, "val mse %.4f mae %.4f", e.mse, e.mae);
    else snprintf(tr->extra, sizeof tr->extra, "val loss %.4f acc %.3f", e.nll, e.accuracy);
    metrics_write(&tr->metrics, evaluation_json(done, &e));
    tr->interval_start = now_seconds();  // evaluation time is not training throughput
}

// Whether the run stops after this step for SIGINT or SIGTERM. Under mpirun a signal can
// reach one process only, or the processes in different steps: they agree after every step
// (a sum over the processes of the signals each holds), so that all stop after the same
// step, each taking the agreed signal (SIGTERM if any process holds one) for its exit code.
static bool stop_agreed(void) {
    if (dist_size() == 1) return run_signals_pending() != 0;
    int pending = run_signals_pending();
    double held[2] = {pending == SIGINT, pending == SIGTERM};
    dist_allreduce_sum_double(held, 2);
    if (held[0] + held[1] == 0) return false;
    run_signals_agree(held[1] > 0 ? SIGTERM : SIGINT);
    return true;
}

// The checkpoint every checkpoint.every steps, and the one of a run stopped by a signal
// (the final checkpoint is trainer_finish's).
static int checkpoint_step(Trainer *tr, long done, Error *err) {
    const RunConfig *c = tr->config;
    if (done == c->train.steps) return 0;
    bool saved = false;
    if (c->checkpoint.every > 0 && done % c->checkpoint.every == 0) {
        if (save_checkpoint(tr, err) != 0) return -1;
        tr->interval_start = now_seconds();
        saved = true;
    }
    // hardening: SIGINT/SIGTERM stop the run here, after a whole step, with a checkpoint of it.
    if (!stop_agreed()) return 0;
    if (!saved && save_checkpoint(tr, err) != 0) return -1;
    dist_barrier();  // rank 0 has written the checkpoint before any process ends
    run_signals_mark_stopped();
    progress_finish(&tr->progress);
    return error_set(err, "stopped by %s after step %ld of %d; wrote the checkpoint of step %ld in %s (continue "
                     "with --resume latest)", run_signals_pending() == SIGINT ? "SIGINT" : "SIGTERM", done,
                     c->train.steps, done, tr->run_dir);
}

// The summary of a run whose final evaluation is e.
static TrainSummary summarize(const Trainer *tr, const Evaluation *e) {
    const RunConfig *c = tr->config;
    const RunState *s = &tr->state;
    PruneTimes times = {0};
    if (tr->iterative) times = tr->pruner.times;
    long steps = c->train.steps;
    return (TrainSummary){
        .steps = steps,
        .train_loss = s->last_loss,
        .val_loss = e->nll,
        .val_perplexity = e->perplexity,
        .val_accuracy = e->accuracy,
        .val_tokens = e->tokens,
        .dense_val_loss = s->dense.nll,
        .dense_val_perplexity = s->dense.perplexity,
        .dense_val_accuracy = s->dense.accuracy,
        .series = e->series,  // forecasting: val_loss is the MSE
        .val_mse = e->mse,
        .val_mae = e->mae,
        .val_repeat_last_mse = e->repeat_last_mse,
        .val_repeat_last_mae = e->repeat_last_mae,
        .dense_val_mse = s->dense.mse,
        .dense_val_mae = s->dense.mae,
        .sparsity = sparsity_now(tr),
        .tokens_per_s = s->train_seconds > 0 ? (double)steps * c->train.batch_size * c->train.seqlen / s->train_seconds : 0.0,
        .wall_s = now_seconds() - tr->run_start,
        .train_seconds = s->train_seconds,
        .prune_seconds = prune_times_total(&times) + s->mask_seconds + s->oneshot_seconds,
        .prune_breakdown = {times.accumulate, times.score, times.select, times.stability,
                            times.apply + s->mask_seconds, s->oneshot_seconds},
        .parameters = (long)tr->model.n_elements,
    };
}

// The final checkpoint and evaluation, the summary line, and a pruning run's report.
static int trainer_finish(Trainer *tr, TrainSummary *summary, Error *err) {
    if (metrics_check(&tr->metrics, err) != 0 || save_checkpoint(tr, err) != 0) return -1;
    Evaluation e = evaluate(tr, final_eval_batches(tr->config));
    if (!tr->state.dense_evaluated) tr->state.dense = e;  // never pruned: the final model is the dense one
    TrainSummary s = summarize(tr, &e);
    if (summary) *summary = s;
    metrics_write(&tr->metrics, train_summary_json(&s));
    if (metrics_check(&tr->metrics, err) != 0) return -1;
    if (!tr->pruning) return 0;
    cJSON *report = prune_report_build(tr->config, &tr->state.dense, &e, &s, &tr->model, &tr->masks,
                                       tr->iterative ? &tr->pruner : NULL, tr->oneshot_report);
    int rc = dist_is_root() ? prune_report_write(report, tr->run_dir, err) : 0;
    if (rc == 0) prune_report_brief(report, data_parallel_log_stream());
    cJSON_Delete(report);
    return rc;
}

int train_run(const RunConfig *c, const char *run_dir, const char *resume, TrainSummary *summary, Error *err) {
    Trainer tr;
    int rc = trainer_setup(&tr, c, run_dir, resume, err);
    if (rc == 0 && !tr.resumed) rc = prune_update(&tr, 0, err);  // a schedule that prunes before step 1
    for (long step = tr.state.step; rc == 0 && step < c->train.steps; step++) {
        rc = train_step(&tr, step, err);  // forward, backward, update
        long done = step + 1;
        if (rc == 0) rc = prune_update(&tr, done, err);
        if (rc == 0 && (done % c->train.log_every == 0 || done == c->train.steps)) log_step(&tr, done);
        if (rc == 0 && c->train.eval_every > 0 && done % c->train.eval_every == 0 && done != c->train.steps)
            evaluate_step(&tr, done);
        // hardening: a failed metrics write (full disk) stops the run before the next checkpoint.
        if (rc == 0) rc = metrics_check(&tr.metrics, err);
        if (rc == 0) rc = checkpoint_step(&tr, done, err);
    }
    progress_finish(&tr.progress);
    if (rc == 0) rc = trainer_finish(&tr, summary, err);
    trainer_close(&tr);
    return rc;
}
