// The training loop (see trainer.h). Each step: batch number `step` of the data (a pure
// function of the seed and the index), forward and backward on a fresh tape, global
// gradient clipping, AdamW with the scheduled learning rate. A pruning run also holds its
// masks after every step; the gradient method hands the raw gradients of the steps before
// a mask update to the pruner and recomputes the masks after the steps the schedule names
// (before logging and checkpointing that step, so that a checkpoint holds the new masks).
#include "run/trainer.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autograd/ops.h"
#include "run/evaluate.h"
#include "run/metrics.h"
#include "run/distill.h"
#include "run/model_source.h"
#include "run/progress.h"
#include "run/prune_report.h"
#include "run/text_tokens.h"
#include "core/atomic_file.h"
#include "run/run_limits.h"
#include "run/run_signals.h"
#include "io/run_lock.h"
#include "io/checkpoint.h"
#include "data/data.h"
#include "mamba/model.h"
#include "optim/adamw.h"
#include "optim/schedule.h"
#include "prune/iterative.h"
#include "prune/masks.h"
#include "prune/oneshot.h"

typedef struct Trainer {
    const RunConfig *config;
    RunConfig resolved;          // config with the model's actual sizes (vocab from the data, a
                                 // pretrained folder's sizes, a one-shot method's smaller model):
                                 // what config.yaml and checkpoints store
    Dataset data;
    MambaModel model;
    AdamW optimizer;
    Tape tape;
    int32_t *tokens, *targets;   // one batch, (B, L)
    MetricsLog metrics;
    Progress progress;

    // Pruning (prune.method is not none): the masks, held after every optimizer step, and
    // for the gradient method the iterative pruner that recomputes them.
    bool pruning, iterative;
    PruneOptions prune;          // the config's prune and stability sections, for prune/
    PruneStabilityOptions stability;
    PruneMasks masks;
    IterativePruner pruner;
    size_t pruned;               // weights pruned under the masks now
    Evaluation dense;            // the model before any pruning
    bool dense_evaluated;
    double mask_seconds;         // holding the masks after every optimizer step
    double oneshot_seconds;      // the one-shot pass
    cJSON *oneshot_report;       // the one-shot method's report (owned), NULL until made or read back
    RunLock lock;                // the run folder, held for the whole run
    Distiller distill;           // the dense teacher (run/distill.h), off unless prune.distill_weight > 0
} Trainer;

// The one-shot method's report in the run folder, read back by a resumed run.
#define ONESHOT_REPORT_FILE "oneshot.json"

static DataKind data_kind_of(CfgDataKind kind) {
    switch (kind) {
    case CFG_DATA_SELECTIVE_COPYING: return DATA_SELECTIVE_COPYING;
    case CFG_DATA_ASSOCIATIVE_RECALL: return DATA_ASSOCIATIVE_RECALL;
    case CFG_DATA_TEXT: return DATA_TEXT;
    case CFG_DATA_TOKENS: return DATA_TOKENS;
    case CFG_DATA_LISTOPS: return DATA_LISTOPS;                           // classification (heads.h)
    case CFG_DATA_TEXT_CLASSIFICATION: return DATA_TEXT_CLASSIFICATION;
    }
    return DATA_SELECTIVE_COPYING;
}

// mamba_ssm's _no_weight_decay, plus norms and biases as usual.
static bool wants_weight_decay(const char *name) {
    size_t n = strlen(name);
    bool ends_with_bias = n >= 5 && strcmp(name + n - 5, ".bias") == 0;
    bool is_D = n >= 2 && strcmp(name + n - 2, ".D") == 0;
    return !(strstr(name, "norm") || ends_with_bias || is_D || strstr(name, "A_log"));
}

void run_data_options(const RunConfig *c, DataOptions *o) {
    data_options_defaults(o);
    o->kind = data_kind_of(c->data.kind);
    o->path = c->data.path && c->data.path[0] ? c->data.path : NULL;
    o->val_fraction = (float)c->data.val_fraction;
    // data.vocab is the synthetic tasks' alphabet; files bring their own ids (checked against the model).
    bool synthetic = c->data.kind == CFG_DATA_SELECTIVE_COPYING || c->data.kind == CFG_DATA_ASSOCIATIVE_RECALL;
    o->vocab = synthetic ? c->data.vocab : 0;
    o->n_memorize = c->data.n_memorize;
    o->val_sequences = c->data.val_sequences;
    o->seed = (uint64_t)c->train.seed;
    o->min_len = c->data.min_len;  // classification (heads.h)
    o->max_len = c->data.max_len;
    o->split = c->data.split == CFG_SPLIT_TEST ? DATA_SPLIT_TEST : DATA_SPLIT_VALIDATION;
}

static bool is_oneshot(CfgPruneMethod method) { return prune_method_is_oneshot((PruneMethod)method); }

// What a one-shot method does, after its name: "to 50.0%", "to 2:4", "removing 1 block".
// The shedder and structured SparseSSM shrink the model instead of masking final_sparsity
// of its weights, and N:M sets its own ratio.
static void oneshot_target_text(const RunConfig *c, char *out, size_t size) {
    const int steps = c->prune.shedder_steps;
    if (c->prune.method == CFG_PRUNE_SHEDDER && c->prune.shedder_target == CFG_SHEDDER_SSM)
        snprintf(out, size, "removing the SSM of %d layer%s", steps, steps == 1 ? "" : "s");
    else if (c->prune.method == CFG_PRUNE_SHEDDER)
        snprintf(out, size, "removing %d block%s", steps, steps == 1 ? "" : "s");
    else if (c->prune.method == CFG_PRUNE_SPARSESSM && c->prune.sparsessm_structured)
        snprintf(out, size, "removing %.1f%% of the state columns", 100.0 * c->prune.final_sparsity);
    else if (c->prune.nm_n > 0 && c->prune.nm_m > 0)
        snprintf(out, size, "to %d:%d", c->prune.nm_n, c->prune.nm_m);
    else
        snprintf(out, size, "to %.1f%%", 100.0 * c->prune.final_sparsity);
}

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
static int trainer_open(Trainer *tr, const RunConfig *c, const char *run_dir, const char *resume_path, Error *err) {
    tr->config = c;
    // Keys the config accepts whose behaviour is not built yet: refuse rather than ignore.
    if (c->eval.seqlen != 0 && c->eval.seqlen != c->train.seqlen)
        return error_set(err, "eval.seqlen: evaluating at another length than train.seqlen is not implemented yet");
    if (c->train.threads > 0) {
        omp_set_num_threads(c->train.threads);
        openblas_set_num_threads(c->train.threads);
    }
    matmul_set_backend(c->train.matmul == CFG_MATMUL_ONEDNN ? MATMUL_ONEDNN : MATMUL_OPENBLAS);

    DataOptions data_options;
    run_data_options(c, &data_options);
    char tokens_path[4096];  // data.kind text with a pretrained model: its tokenizer's ids
    if (run_text_tokens(c->model.init, run_dir, &data_options, tokens_path, sizeof tokens_path, err) != 0) return -1;
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

    size_t T = (size_t)c->train.batch_size * (size_t)c->train.seqlen;
    tape_init(&tr->tape, 64u << 20);
    if (distill_init(&tr->distill, c, &tr->model, err) != 0) return -1;
    tr->tokens = xmalloc(sizeof(int32_t) * T);
    tr->targets = xmalloc(sizeof(int32_t) * T);

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
    return make_directories(run_dir, err);
}

// Once the model is final (after a one-shot pass): the optimizer, the resolved config in
// config.yaml, and the iterative pruner.
static int trainer_finish_open(Trainer *tr, const char *run_dir, Error *err) {
    const RunConfig *c = tr->config;
    AdamWOptions adamw_options = {c->optim.beta1, c->optim.beta2, c->optim.eps, c->optim.weight_decay};
    adamw_init(&tr->optimizer, &adamw_options);
    for (int i = 0; i < tr->model.n_params; i++)
        adamw_add(&tr->optimizer, tr->model.params[i].tensor, wants_weight_decay(tr->model.params[i].name));

    config_copy(&tr->resolved, c);
    const MambaConfig *m = &tr->model.config;
    tr->resolved.model.d_model = m->d_model;
    tr->resolved.model.n_layer = m->n_layer;
    tr->resolved.model.vocab_size = m->vocab_size;
    tr->resolved.model.pad_vocab_size_multiple = m->pad_vocab_size_multiple;
    tr->resolved.model.d_state = m->d_state;
    tr->resolved.model.d_conv = m->d_conv;
    tr->resolved.model.expand = m->expand;
    tr->resolved.model.dt_rank = m->dt_rank;
    tr->resolved.model.n_classes = m->n_classes;  // heads.h
    char path[4096];
    snprintf(path, sizeof path, "%s/config.yaml", run_dir);
    char *yaml = config_to_yaml(&tr->resolved);
    int rc = atomic_write_file(path, yaml, strlen(yaml), err);
    free(yaml);
    if (rc != 0) return -1;
    if (tr->iterative) return iterative_init(&tr->pruner, &tr->prune, &tr->stability, &tr->data, &tr->model, &tr->masks, err);
    return 0;
}

static void trainer_close(Trainer *tr) {
    cJSON_Delete(tr->oneshot_report);
    run_lock_release(&tr->lock);
    if (tr->resolved.model.init) config_free(&tr->resolved);
    metrics_close(&tr->metrics);
    if (tr->iterative) iterative_free(&tr->pruner);
    if (tr->masks.tensors) prune_masks_free(&tr->masks);
    free(tr->tokens);
    free(tr->targets);
    tape_free(&tr->tape);
    distill_free(&tr->distill);
    adamw_free(&tr->optimizer);
    mamba_model_free(&tr->model);
    data_close(&tr->data);
}

static Evaluation evaluate(Trainer *tr, int max_batches) {
    return evaluate_model(&tr->model, &tr->data, &tr->tape, tr->config->train.batch_size, tr->config->train.seqlen,
                          max_batches, tr->tokens, tr->targets, false);
}

// The final evaluation's settings, also used for the dense model before pruning.
static int final_eval_batches(const RunConfig *c) { return c->eval.at_end ? c->eval.batches : c->train.eval_batches; }

// The validation figures of e, added to o.
static cJSON *add_evaluation(cJSON *o, Evaluation e) {
    cJSON_AddNumberToObject(o, "val_loss", e.nll);
    cJSON_AddNumberToObject(o, "val_perplexity", e.perplexity);
    cJSON_AddNumberToObject(o, "val_accuracy", e.accuracy);
    cJSON_AddNumberToObject(o, "val_tokens", (double)e.tokens);
    return o;
}

// A metrics line of an evaluation after `step` steps.
static cJSON *evaluation_json(long step, Evaluation e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", (double)step);
    return add_evaluation(o, e);
}

// The model keys that must agree between a config and the checkpoint it resumes, and the
// pruning method.
// A one-shot run's model was built from the checkpoint, so only the method is compared
// (sizes false).
static int check_same_model(const RunConfig *now, const RunConfig *saved, bool sizes, const char *path, Error *err) {
    char differences[1024] = "";
    size_t used = 0;
#define SAME_INT(key)                                                                                   \
    if (sizes && now->model.key != saved->model.key)                                                            \
        used += (size_t)snprintf(differences + used, used < sizeof differences ? sizeof differences - used : 0, \
                                 "%smodel.%s: checkpoint %d, config %d", used ? "; " : "", #key,          \
                                 saved->model.key, now->model.key);
    SAME_INT(d_model)
    SAME_INT(n_layer)
    SAME_INT(vocab_size)
    SAME_INT(pad_vocab_size_multiple)
    SAME_INT(d_state)
    SAME_INT(d_conv)
    SAME_INT(expand)
    SAME_INT(dt_rank)
#undef SAME_INT
    if (now->prune.method != saved->prune.method)
        used += (size_t)snprintf(differences + used, used < sizeof differences ? sizeof differences - used : 0,
                                 "%sprune.method: checkpoint %s, config %s", used ? "; " : "",
                                 prune_method_names[saved->prune.method], prune_method_names[now->prune.method]);
    if (used) return error_set(err, "%s: the config does not match the checkpoint it resumes: %s", path, differences);
    return 0;
}

// Keeps the metrics lines of steps up to `step` (not the summary of a finished run), so
// that a resumed run's log reads as if it had never stopped.
static int truncate_metrics(const char *path, long step, Error *err) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;  // nothing logged yet
    size_t capacity = 1 << 16, used = 0;
    char *kept = xmalloc(capacity);
    char *line = NULL;
    size_t line_capacity = 0;
    ssize_t n;
    while ((n = getline(&line, &line_capacity, f)) > 0) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *line_step = o ? cJSON_GetObjectItemCaseSensitive(o, "step") : NULL;
        bool keep = o && cJSON_IsNumber(line_step) && line_step->valuedouble <= (double)step &&
                    !cJSON_GetObjectItemCaseSensitive(o, "summary") && line[n - 1] == '\n';
        cJSON_Delete(o);
        if (!keep) continue;
        if (used + (size_t)n > capacity) {
            while (used + (size_t)n > capacity) capacity *= 2;
            kept = xrealloc(kept, capacity);
        }
        memcpy(kept + used, line, (size_t)n);
        used += (size_t)n;
    }
    free(line);
    fclose(f);
    int rc = atomic_write_file(path, kept, used, err);
    free(kept);
    return rc;
}

// Where a run stands between two steps: what a checkpoint stores beyond the tensors.
typedef struct RunPosition {
    long step;
    double interval_loss, last_loss, train_seconds;
    int interval_steps;
} RunPosition;

static int save_checkpoint(Trainer *tr, const char *run_dir, const RunPosition *at, Error *err) {
    const RunConfig *c = tr->config;
    CheckpointState state = {.step = at->step, .data_cursor = at->step};
    rng_seed(&state.rng, (uint64_t)c->train.seed);
    typedef struct { const char *name; double value; } Value;
    const Value run_values[] = {
        {"interval_loss", at->interval_loss}, {"interval_steps", at->interval_steps},
        {"last_loss", at->last_loss}, {"train_seconds", at->train_seconds},
        {"lr", lr_at(at->step, c->train.steps, c->optim.warmup_steps, c->optim.lr, c->optim.lr_min)},
    };
    // A pruning run's dense reference (that model is gone once pruned) and its pruning time.
    const Value prune_values[] = {
        {"dense_evaluated", tr->dense_evaluated}, {"dense_val_loss", tr->dense.nll},
        {"dense_val_perplexity", tr->dense.perplexity}, {"dense_val_accuracy", tr->dense.accuracy},
        {"dense_val_tokens", (double)tr->dense.tokens}, {"mask_seconds", tr->mask_seconds},
        {"oneshot_seconds", tr->oneshot_seconds},
    };
    for (size_t i = 0; i < sizeof run_values / sizeof run_values[0]; i++)
        if (checkpoint_state_add(&state, run_values[i].name, run_values[i].value, err) != 0) return -1;
    for (size_t i = 0; tr->pruning && i < sizeof prune_values / sizeof prune_values[0]; i++)
        if (checkpoint_state_add(&state, prune_values[i].name, prune_values[i].value, err) != 0) return -1;
    if (tr->iterative && iterative_checkpoint_save(&tr->pruner, &state, err) != 0) return -1;
    CheckpointMask *masks = xmalloc(sizeof(CheckpointMask) * (size_t)(tr->masks.n > 0 ? tr->masks.n : 1));
    prune_masks_checkpoint_views(&tr->masks, masks);
    char path[4096];
    int rc = checkpoint_path_for_step(path, sizeof path, run_dir, at->step, err);
    if (rc == 0) {
        char *yaml = config_to_yaml(&tr->resolved);
        rc = checkpoint_save(path, tr->model.params, tr->model.n_params, &tr->optimizer, masks, tr->masks.n, &state,
                             yaml, err);
        free(yaml);
    }
    free(masks);
    if (rc != 0) return -1;
    return checkpoint_prune_old(run_dir, c->checkpoint.keep, err);
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

static int resume_from(Trainer *tr, const char *path, RunPosition *at, Error *err) {
    const RunConfig *c = tr->config;
    char *yaml;
    if (checkpoint_read_config(path, &yaml, err) != 0) return -1;
    RunConfig saved;
    int rc = config_load_string(&saved, yaml, path, err);
    free(yaml);
    if (rc == 0) rc = check_same_model(&tr->resolved, &saved, !is_oneshot(c->prune.method), path, err);
    config_free(&saved);
    if (rc != 0) return -1;

    CheckpointState state;
    memset(&state, 0, sizeof state);
    if (tr->iterative) iterative_checkpoint_prepare_load(&tr->pruner, &state);
    CheckpointMask *masks = NULL;
    if (tr->pruning) {
        masks = xmalloc(sizeof(CheckpointMask) * (size_t)tr->masks.n);
        prune_masks_checkpoint_views(&tr->masks, masks);
    }
    rc = checkpoint_load(path, tr->model.params, tr->model.n_params, &tr->optimizer, masks, tr->masks.n, &state, err);
    free(masks);
    if (rc != 0) return -1;
    // hardening: the run's counters must agree (one optimizer step and one batch per step).
    if (state.data_cursor != state.step)
        return error_set(err, "%s: /state/data_cursor is %ld but /state/step is %ld (they advance together)", path,
                         state.data_cursor, state.step);
    if (tr->optimizer.step != state.step)
        return error_set(err, "%s: /optim/step is %ld but /state/step is %ld (one optimizer step per step)", path,
                         (long)tr->optimizer.step, state.step);
    if (state.step > c->train.steps)
        return error_set(err, "%s: the checkpoint is at step %ld, past train.steps = %d", path, state.step,
                         c->train.steps);
    // Batches are a pure function of the seed and the step, so the saved generator is the
    // seed's own state: anything else is a checkpoint of another run, or damaged.
    Rng seeded;
    rng_seed(&seeded, (uint64_t)c->train.seed);
    if (memcmp(seeded.s, state.rng.s, sizeof seeded.s) != 0)
        return error_set(err, "%s: /state/rng is not the state of train.seed = %d: a checkpoint of another run, or "
                              "damaged", path, c->train.seed);
    *at = (RunPosition){
        .step = state.step,
        .interval_loss = checkpoint_state_value(&state, "interval_loss", 0),
        .interval_steps = (int)checkpoint_state_value(&state, "interval_steps", 0),
        .last_loss = checkpoint_state_value(&state, "last_loss", 0),
        .train_seconds = checkpoint_state_value(&state, "train_seconds", 0),
    };
    if (tr->pruning) {
        tr->dense_evaluated = checkpoint_state_value(&state, "dense_evaluated", 0) != 0;
        tr->dense = (Evaluation){
            .nll = checkpoint_state_value(&state, "dense_val_loss", 0),
            .perplexity = checkpoint_state_value(&state, "dense_val_perplexity", 0),
            .accuracy = checkpoint_state_value(&state, "dense_val_accuracy", 0),
            .tokens = (long)checkpoint_state_value(&state, "dense_val_tokens", 0),
        };
        tr->mask_seconds = checkpoint_state_value(&state, "mask_seconds", 0);
        tr->oneshot_seconds = checkpoint_state_value(&state, "oneshot_seconds", 0);
        tr->pruned = prune_masks_pruned(&tr->masks);
    }
    if (tr->iterative && iterative_checkpoint_restore(&tr->pruner, &state, path, err) != 0) return -1;
    progress_message(&tr->progress, "resuming from %s (step %ld)", path, state.step);
    return 0;
}

// ---- pruning ----

static double sparsity_now(const Trainer *tr) {
    return tr->masks.total ? (double)tr->pruned / (double)tr->masks.total : 0.0;
}

// The model before any pruning, evaluated as at the end of the run.
static void evaluate_dense(Trainer *tr, long step) {
    tr->dense = evaluate(tr, final_eval_batches(tr->config));
    tr->dense_evaluated = true;
    cJSON *o = evaluation_json(step, tr->dense);
    cJSON_AddBoolToObject(o, "dense", 1);
    metrics_write(&tr->metrics, o);
    progress_message(&tr->progress, "dense model at step %ld: validation loss %.4f, perplexity %.3f, accuracy %.4f",
                     step, tr->dense.nll, tr->dense.perplexity, tr->dense.accuracy);
}

// Pruned weights stay exactly zero, and so do their AdamW moments.
static void hold_masks(Trainer *tr) {
    if (!tr->pruning || tr->pruned == 0) return;
    double start = now_seconds();
    prune_masks_apply(&tr->masks, &tr->optimizer);
    tr->mask_seconds += now_seconds() - start;
}

// The one-shot pass, once, before training: the dense evaluation, then the method, whose
// own report goes to run_dir/oneshot.json for the final report.
static int run_oneshot(Trainer *tr, const char *run_dir, Error *err) {
    evaluate_dense(tr, 0);
    char target[128];
    oneshot_target_text(tr->config, target, sizeof target);
    progress_message(&tr->progress, "one-shot pruning: %s %s", prune_method_names[tr->config->prune.method], target);
    cJSON *report = cJSON_CreateObject();
    double start = now_seconds();
    int rc = oneshot_prune(&tr->prune, &tr->data, &tr->model, &tr->masks, report, err);
    tr->oneshot_seconds = now_seconds() - start;
    if (rc == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/" ONESHOT_REPORT_FILE, run_dir);
        char *text = cJSON_Print(report);
        rc = atomic_write_file(path, text, strlen(text), err);
        free(text);
    }
    tr->oneshot_report = report;
    return rc;
}

// Gradients for an update at step 0, before any training step has made some: the first
// grad_accum_batches training batches (the ones steps 0, 1, ... will see), forward and backward.
static void measure_gradients(Trainer *tr) {
    const int B = tr->config->train.batch_size, L = tr->config->train.seqlen;
    double start = now_seconds(), accumulated = tr->pruner.times.accumulate;
    for (int k = 0; k < tr->config->prune.grad_accum_batches; k++) {
        data_train_batch(&tr->data, k, B, L, tr->tokens, tr->targets);
        tape_reset(&tr->tape);
        mamba_model_zero_grad(&tr->model);
        Tensor *loss = distill_loss(&tr->distill, &tr->tape, &tr->model, tr->tokens, tr->targets, B, L);
        tape_backward(&tr->tape, loss);
        iterative_accumulate(&tr->pruner);
    }
    tape_reset(&tr->tape);
    mamba_model_zero_grad(&tr->model);
    tr->pruner.times.accumulate = accumulated + (now_seconds() - start);  // the passes and their accumulation
}

// The mask update after t steps, when the schedule has one there. Returns the seconds spent
// evaluating the dense model (not training time).
static int prune_update(Trainer *tr, long t, double *eval_seconds, Error *err) {
    *eval_seconds = 0;
    if (!tr->iterative || !sparsity_updates_at(&tr->pruner.schedule, t)) return 0;
    // The dense reference is the model as the pruning phase begins (at t0, before any
    // fine-tuning inside the phase), or, with s_0 = 0 and updates that prune nothing yet,
    // no later than the first update that prunes.
    if (!tr->dense_evaluated && (t >= tr->pruner.schedule.start || iterative_would_prune(&tr->pruner, t))) {
        double start = now_seconds();
        evaluate_dense(tr, t);
        *eval_seconds = now_seconds() - start;
    }
    if (iterative_needs_gradient(&tr->pruner, t)) measure_gradients(tr);
    cJSON *event;
    if (iterative_update(&tr->pruner, t, &tr->model, &tr->optimizer, &tr->tape, &event, err) != 0) return -1;
    if (event) {
        tr->pruned = prune_masks_pruned(&tr->masks);
        metrics_write(&tr->metrics, event);
    }
    return 0;
}

// report.json: see run/prune_report.h.
static cJSON *build_report(Trainer *tr, Evaluation final, const TrainSummary *s, const char *run_dir) {
    const RunConfig *c = tr->config;
    cJSON *report = cJSON_CreateObject();
    cJSON *run = cJSON_AddObjectToObject(report, "run");
    cJSON_AddStringToObject(run, "method", prune_method_names[c->prune.method]);
    cJSON_AddStringToObject(run, "strategy", prune_strategy_names[c->prune.strategy]);
    cJSON_AddStringToObject(run, "schedule", prune_schedule_names[c->prune.schedule]);
    cJSON_AddNumberToObject(run, "alpha", c->prune.alpha);
    cJSON_AddStringToObject(run, "grad_stat", prune_grad_stat_names[c->prune.grad_stat]);
    cJSON_AddStringToObject(run, "score_norm", prune_score_norm_names[c->prune.score_norm]);
    cJSON_AddNumberToObject(run, "a_log_sparsity", c->prune.a_log_sparsity);
    cJSON_AddNumberToObject(run, "final_sparsity", c->prune.final_sparsity);
    cJSON_AddNumberToObject(run, "start_step", c->prune.start_step);
    cJSON_AddNumberToObject(run, "end_step", config_prune_end_step(c));
    cJSON_AddNumberToObject(run, "prune_every", c->prune.prune_every);
    cJSON_AddNumberToObject(run, "grad_accum_batches", c->prune.grad_accum_batches);
    cJSON_AddNumberToObject(run, "steps", c->train.steps);

    cJSON *quality = cJSON_AddObjectToObject(report, "quality");
    cJSON_AddItemToObject(quality, "dense", add_evaluation(cJSON_CreateObject(), tr->dense));
    cJSON_AddItemToObject(quality, "pruned", add_evaluation(cJSON_CreateObject(), final));
    cJSON_AddNumberToObject(quality, "perplexity_ratio", tr->dense.perplexity > 0 ? final.perplexity / tr->dense.perplexity : 0.0);

    cJSON_AddItemToObject(report, "sparsity", prune_sparsity_report(&tr->model, &tr->masks));
    if (tr->iterative) {
        cJSON_AddItemToObject(report, "stability", iterative_stability_totals(&tr->pruner));
    } else {
        cJSON *stability = cJSON_AddObjectToObject(report, "stability");
        cJSON_AddBoolToObject(stability, "enabled", 0);
    }

    cJSON *time = cJSON_AddObjectToObject(report, "time");
    cJSON_AddNumberToObject(time, "train_seconds", s->train_seconds);
    cJSON_AddNumberToObject(time, "prune_seconds", s->prune_seconds);
    cJSON_AddNumberToObject(time, "prune_fraction", s->train_seconds > 0 ? s->prune_seconds / s->train_seconds : 0.0);
    cJSON_AddNumberToObject(time, "accumulate", s->prune_breakdown.accumulate);
    cJSON_AddNumberToObject(time, "score", s->prune_breakdown.score);
    cJSON_AddNumberToObject(time, "select", s->prune_breakdown.select);
    cJSON_AddNumberToObject(time, "stability", s->prune_breakdown.stability);
    cJSON_AddNumberToObject(time, "apply", s->prune_breakdown.apply);
    cJSON_AddNumberToObject(time, "oneshot", s->prune_breakdown.oneshot);

    if (is_oneshot(c->prune.method)) {
        char target[128], path[4096];
        oneshot_target_text(c, target, sizeof target);
        cJSON_AddStringToObject(run, "target", target);
        snprintf(path, sizeof path, "%s/" ONESHOT_REPORT_FILE, run_dir);
        cJSON *oneshot = tr->oneshot_report ? cJSON_Duplicate(tr->oneshot_report, 1) : NULL;
        FILE *f = oneshot ? NULL : fopen(path, "r");  // a resumed run: from the run folder
        if (f) {
            char *text = NULL;
            size_t size = 0;
            ssize_t n = getdelim(&text, &size, '\0', f);
            if (n > 0) oneshot = cJSON_Parse(text);
            free(text);
            fclose(f);
        }
        cJSON_AddItemToObject(report, "oneshot", oneshot ? oneshot : cJSON_CreateObject());
    }
    return report;
}

int train_run(const RunConfig *c, const char *run_dir, const char *resume, TrainSummary *summary, Error *err) {
    double run_start = now_seconds();
    Trainer tr;
    memset(&tr, 0, sizeof tr);
    const int B = c->train.batch_size, L = c->train.seqlen;
    const long steps = c->train.steps;
    RunPosition at = {0};
    progress_init(&tr.progress, stderr, c->log.progress, 0, steps);
    // hardening: one process per run folder; stale temporary files of dead runs removed.
    tr.lock.fd = -1;
    int removed = 0;
    if (make_directories(run_dir, err) != 0 || run_lock_acquire(&tr.lock, run_dir, &removed, err) != 0) return -1;
    if (removed > 0)
        progress_message(&tr.progress, "%s: removed %d temporary file%s left by runs that no longer run", run_dir,
                         removed, removed == 1 ? "" : "s");
    char resume_path[4096];
    bool resuming = resolve_resume(run_dir, resume, resume_path, sizeof resume_path);
    if (resume && !resuming)
        progress_message(&tr.progress, "--resume latest: no checkpoint in %s yet; starting from step 0", run_dir);

    char metrics_path[4096];
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics.jsonl", run_dir);
    int rc = trainer_open(&tr, c, run_dir, resuming ? resume_path : NULL, err);
    if (rc == 0 && !resuming && c->log.jsonl) {
        remove(metrics_path);  // a fresh run starts a fresh log
        rc = metrics_open(&tr.metrics, metrics_path, err);
    }
    bool oneshot_now = rc == 0 && !resuming && is_oneshot(c->prune.method);
    if (oneshot_now) rc = run_oneshot(&tr, run_dir, err);
    if (rc == 0) rc = trainer_finish_open(&tr, run_dir, err);
    if (rc == 0 && resuming) rc = resume_from(&tr, resume_path, &at, err);
    if (rc == 0 && resuming && c->log.jsonl) {
        rc = truncate_metrics(metrics_path, at.step, err);
        if (rc == 0) rc = metrics_open(&tr.metrics, metrics_path, err);
    }
    if (rc == 0 && oneshot_now) {
        // The pruned model is step 0: a resumed run starts from here, not from the dense model.
        tr.pruned = prune_masks_pruned(&tr.masks);
        prune_masks_apply(&tr.masks, &tr.optimizer);
        RunPosition zero = {0};
        rc = save_checkpoint(&tr, run_dir, &zero, err);
    }
    if (rc != 0) {
        trainer_close(&tr);
        return -1;
    }
    progress_init(&tr.progress, stderr, c->log.progress, at.step, steps);
    progress_message(&tr.progress, "training %.2f M parameters (d_model %d, %d layers, vocab %d) on %s, %ld steps of %d x %d tokens -> %s",
                     tr.model.n_elements / 1e6, tr.model.config.d_model, tr.model.config.n_layer,
                     tr.model.config.vocab_padded, tr.data.path ? tr.data.path : data_kind_name(tr.data.kind), steps, B,
                     L, run_dir);
    if (tr.iterative) {
        const SparsitySchedule *s = &tr.pruner.schedule;
        progress_message(&tr.progress,
                         "gradient pruning of %zu weights in %d tensors: %s, %s schedule %.1f%% -> %.1f%% from step %ld "
                         "to %ld, masks every %ld steps, alpha %g, stability check %s",
                         tr.masks.total, tr.masks.n, prune_strategy_names[c->prune.strategy], prune_schedule_names[s->shape],
                         100.0 * s->initial, 100.0 * s->final, s->start, s->end, s->every, c->prune.alpha,
                         c->stability.enabled ? "on" : "off");
        if (s->end > steps)
            progress_message(&tr.progress, "note: prune.end_step %ld is past train.steps %ld: the final sparsity is not reached",
                             s->end, steps);
    }

    double interval_start = now_seconds(), train_seconds = at.train_seconds;
    double interval_loss = at.interval_loss, last_loss = at.last_loss;
    int interval_steps = at.interval_steps;
    char extra[128] = "";
    if (!resuming) {
        double eval_seconds;
        rc = prune_update(&tr, 0, &eval_seconds, err);
        interval_start += eval_seconds;
    }
    for (long step = at.step; step < steps && rc == 0; step++) {
        double step_start = now_seconds();
        data_train_batch(&tr.data, step, B, L, tr.tokens, tr.targets);
        tape_reset(&tr.tape);
        mamba_model_zero_grad(&tr.model);
        Tensor *loss = distill_loss(&tr.distill, &tr.tape, &tr.model, tr.tokens, tr.targets, B, L);
        float loss_value = loss->data[0];
        if (!isfinite(loss_value)) {
            rc = error_set(err, "step %ld: the loss is %f; stopping (try a lower optim.lr or optim.grad_clip)", step,
                           loss_value);
            break;
        }
        tape_backward(&tr.tape, loss);
        double step_seconds = now_seconds() - step_start;
        // The raw gradients, before clipping, of the steps just before a mask update.
        if (tr.iterative && iterative_wants_gradient(&tr.pruner, step)) iterative_accumulate(&tr.pruner);
        double optimizer_start = now_seconds();
        double grad_norm = adamw_clip_grad_norm(&tr.optimizer, c->optim.grad_clip);
        if (!isfinite(grad_norm)) {
            rc = error_set(err, "step %ld: the gradient norm is %f; stopping (try a lower optim.lr)", step, grad_norm);
            break;
        }
        double lr = lr_at(step, steps, c->optim.warmup_steps, c->optim.lr, c->optim.lr_min);
        adamw_step(&tr.optimizer, lr);
        train_seconds += step_seconds + (now_seconds() - optimizer_start);
        hold_masks(&tr);
        interval_loss += loss_value;
        interval_steps++;

        long done = step + 1;
        double eval_seconds;
        if ((rc = prune_update(&tr, done, &eval_seconds, err)) != 0) break;
        interval_start += eval_seconds;  // evaluation time is not training throughput
        bool log_now = done % c->train.log_every == 0 || done == steps;
        if (log_now) {
            double now = now_seconds();
            double tokens_per_s = (double)interval_steps * B * L / (now - interval_start);
            last_loss = interval_loss / interval_steps;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "step", (double)done);
            cJSON_AddNumberToObject(o, "loss", last_loss);
            cJSON_AddNumberToObject(o, "lr", lr);
            cJSON_AddNumberToObject(o, "grad_norm", grad_norm);
            cJSON_AddNumberToObject(o, "sparsity", sparsity_now(&tr));
            cJSON_AddNumberToObject(o, "tokens_per_s", tokens_per_s);
            cJSON_AddNumberToObject(o, "elapsed_s", now - run_start);
            metrics_write(&tr.metrics, o);
            progress_update(&tr.progress, done, (float)last_loss, (float)lr, (float)sparsity_now(&tr), tokens_per_s,
                            extra[0] ? extra : NULL);
            interval_loss = 0.0;
            interval_steps = 0;
            interval_start = now_seconds();
        }
        if (c->train.eval_every > 0 && done % c->train.eval_every == 0 && done != steps) {
            Evaluation e = evaluate(&tr, c->train.eval_batches);
            snprintf(extra, sizeof extra, "val loss %.4f acc %.3f", e.nll, e.accuracy);
            metrics_write(&tr.metrics, evaluation_json(done, e));
            interval_start = now_seconds();  // evaluation time is not training throughput
        }
        // hardening: a failed metrics write (full disk) stops the run before the next checkpoint.
        if ((rc = metrics_check(&tr.metrics, err)) != 0) break;
        bool saved = false;
        if (c->checkpoint.every > 0 && done % c->checkpoint.every == 0 && done != steps) {
            RunPosition now = {done, interval_loss, last_loss, train_seconds, interval_steps};
            if ((rc = save_checkpoint(&tr, run_dir, &now, err)) != 0) break;
            interval_start = now_seconds();
            saved = true;
        }
        // hardening: SIGINT/SIGTERM stop the run here, after a whole step, with a checkpoint of it.
        if (run_signals_pending() && done != steps) {
            RunPosition now = {done, interval_loss, last_loss, train_seconds, interval_steps};
            if (!saved && (rc = save_checkpoint(&tr, run_dir, &now, err)) != 0) break;
            progress_finish(&tr.progress);
            rc = error_set(err, "stopped by %s after step %ld of %ld; wrote the checkpoint of step %ld in %s (continue "
                           "with --resume latest)", run_signals_pending() == SIGINT ? "SIGINT" : "SIGTERM", done,
                           steps, done, run_dir);
            break;
        }
    }
    progress_finish(&tr.progress);
    if (rc == 0) rc = metrics_check(&tr.metrics, err);
    if (rc == 0) {
        RunPosition end = {steps, interval_loss, last_loss, train_seconds, interval_steps};
        rc = save_checkpoint(&tr, run_dir, &end, err);
    }
    if (rc == 0) {
        Evaluation e = evaluate(&tr, final_eval_batches(c));
        if (!tr.dense_evaluated) tr.dense = e;  // never pruned: the final model is the dense one
        PruneTimes times = {0};
        if (tr.iterative) times = tr.pruner.times;
        TrainSummary s = {
            .steps = steps,
            .train_loss = last_loss,
            .val_loss = e.nll,
            .val_perplexity = e.perplexity,
            .val_accuracy = e.accuracy,
            .val_tokens = e.tokens,
            .dense_val_loss = tr.dense.nll,
            .dense_val_perplexity = tr.dense.perplexity,
            .dense_val_accuracy = tr.dense.accuracy,
            .sparsity = sparsity_now(&tr),
            .tokens_per_s = train_seconds > 0 ? (double)steps * B * L / train_seconds : 0.0,
            .wall_s = now_seconds() - run_start,
            .train_seconds = train_seconds,
            .prune_seconds = prune_times_total(&times) + tr.mask_seconds + tr.oneshot_seconds,
            .prune_breakdown = {times.accumulate, times.score, times.select, times.stability,
                                times.apply + tr.mask_seconds, tr.oneshot_seconds},
            .parameters = (long)tr.model.n_elements,
        };
        cJSON *o = evaluation_json(steps, e);
        cJSON_AddBoolToObject(o, "summary", 1);
        cJSON_AddNumberToObject(o, "dense_val_loss", s.dense_val_loss);
        cJSON_AddNumberToObject(o, "dense_val_perplexity", s.dense_val_perplexity);
        cJSON_AddNumberToObject(o, "dense_val_accuracy", s.dense_val_accuracy);
        cJSON_AddNumberToObject(o, "sparsity", s.sparsity);
        cJSON_AddNumberToObject(o, "train_loss", s.train_loss);
        cJSON_AddNumberToObject(o, "tokens_per_s", s.tokens_per_s);
        cJSON_AddNumberToObject(o, "wall_s", s.wall_s);
        cJSON_AddNumberToObject(o, "train_seconds", s.train_seconds);
        cJSON_AddNumberToObject(o, "prune_seconds", s.prune_seconds);
        cJSON_AddNumberToObject(o, "parameters", (double)s.parameters);
        metrics_write(&tr.metrics, o);
        rc = metrics_check(&tr.metrics, err);
        if (rc == 0 && tr.pruning) {
            cJSON *report = build_report(&tr, e, &s, run_dir);
            rc = prune_report_write(report, run_dir, err);
            if (rc == 0) prune_report_brief(report, stderr);
            cJSON_Delete(report);
        }
        if (summary) *summary = s;
    }
    trainer_close(&tr);
    return rc;
}
