// The training loop (see trainer.h). Each step: batch number `step` of the data (a pure
// function of the seed and the index), forward and backward on a fresh tape, global
// gradient clipping, AdamW with the scheduled learning rate.
#include "cli/trainer.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autograd/ops.h"
#include "cli/evaluate.h"
#include "cli/metrics.h"
#include "cli/model_source.h"
#include "cli/progress.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "data/data.h"
#include "mamba/model.h"
#include "optim/adamw.h"
#include "optim/schedule.h"

typedef struct Trainer {
    const RunConfig *config;
    RunConfig resolved;          // config with the model's actual sizes (vocab from the data, a
                                 // pretrained folder's sizes): what config.yaml and checkpoints store
    Dataset data;
    MambaModel model;
    AdamW optimizer;
    Tape tape;
    int32_t *tokens, *targets;   // one batch, (B, L)
    MetricsLog metrics;
    Progress progress;
} Trainer;

static int write_text_file(const char *path, const char *text, Error *err) {
    FILE *f = fopen(path, "w");
    if (!f) return error_set(err, "%s: cannot open for writing: %s", path, strerror(errno));
    fputs(text, f);
    if (fclose(f) != 0) return error_set(err, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

static DataKind data_kind_of(CfgDataKind kind) {
    switch (kind) {
    case CFG_DATA_SELECTIVE_COPYING: return DATA_SELECTIVE_COPYING;
    case CFG_DATA_ASSOCIATIVE_RECALL: return DATA_ASSOCIATIVE_RECALL;
    case CFG_DATA_TEXT: return DATA_TEXT;
    case CFG_DATA_TOKENS: return DATA_TOKENS;
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
}

static int trainer_open(Trainer *tr, const RunConfig *c, const char *run_dir, Error *err) {
    memset(tr, 0, sizeof *tr);
    tr->config = c;
    // Keys the config accepts whose behaviour is not built yet: refuse rather than ignore.
    if (c->prune.method != CFG_PRUNE_NONE)
        return error_set(err, "prune.method: pruning is not implemented yet; use prune.method: none");
    if (c->eval.seqlen != 0 && c->eval.seqlen != c->train.seqlen)
        return error_set(err, "eval.seqlen: evaluating at another length than train.seqlen is not implemented yet");
    if (c->train.threads > 0) {
        omp_set_num_threads(c->train.threads);
        openblas_set_num_threads(c->train.threads);
    }
    matmul_set_backend(c->train.matmul == CFG_MATMUL_ONEDNN ? MATMUL_ONEDNN : MATMUL_OPENBLAS);

    DataOptions data_options;
    run_data_options(c, &data_options);
    if (data_open(&tr->data, &data_options, c->train.seqlen, err) != 0) return -1;

    int data_vocab = data_vocab_size(&tr->data);
    if (strcmp(c->model.init, "random") == 0) {
        MambaConfig model_config;
        config_to_mamba(c, &model_config);
        if (model_config.vocab_size == 0) model_config.vocab_size = data_vocab;
        if (mamba_config_finish(&model_config, err) != 0) return -1;
        mamba_model_create(&tr->model, &model_config);
        Rng init_rng;
        rng_seed(&init_rng, (uint64_t)c->train.seed ^ 0x5eedf00dULL);
        mamba_model_init_random(&tr->model, &init_rng);
    } else {
        // A pretrained starting point brings its own sizes; the model section's are unused.
        if (model_load(c->model.init, &tr->model, err) != 0) return error_prefix(err, "model.init");
    }
    if (tr->model.config.vocab_padded < data_vocab)
        return error_set(err, "the model has %d token ids but the data needs %d", tr->model.config.vocab_padded,
                         data_vocab);

    AdamWOptions adamw_options = {c->optim.beta1, c->optim.beta2, c->optim.eps, c->optim.weight_decay};
    adamw_init(&tr->optimizer, &adamw_options);
    for (int i = 0; i < tr->model.n_params; i++)
        adamw_add(&tr->optimizer, tr->model.params[i].tensor, wants_weight_decay(tr->model.params[i].name));

    size_t T = (size_t)c->train.batch_size * (size_t)c->train.seqlen;
    tape_init(&tr->tape, 64u << 20);
    tr->tokens = xmalloc(sizeof(int32_t) * T);
    tr->targets = xmalloc(sizeof(int32_t) * T);

    if (make_directories(run_dir, err) != 0) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.yaml", run_dir);
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
    char *yaml = config_to_yaml(&tr->resolved);
    int rc = write_text_file(path, yaml, err);
    free(yaml);
    if (rc != 0) return -1;
    return 0;
}

static void trainer_close(Trainer *tr) {
    if (tr->resolved.model.init) config_free(&tr->resolved);
    metrics_close(&tr->metrics);
    free(tr->tokens);
    free(tr->targets);
    tape_free(&tr->tape);
    adamw_free(&tr->optimizer);
    mamba_model_free(&tr->model);
    data_close(&tr->data);
}

static Evaluation evaluate(Trainer *tr, int max_batches) {
    return evaluate_model(&tr->model, &tr->data, &tr->tape, tr->config->train.batch_size, tr->config->train.seqlen,
                          max_batches, tr->tokens, tr->targets, false);
}

static cJSON *evaluation_json(long step, Evaluation e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", (double)step);
    cJSON_AddNumberToObject(o, "val_loss", e.nll);
    cJSON_AddNumberToObject(o, "val_perplexity", e.perplexity);
    cJSON_AddNumberToObject(o, "val_accuracy", e.accuracy);
    cJSON_AddNumberToObject(o, "val_tokens", (double)e.tokens);
    return o;
}

// The model keys that must agree between a config and the checkpoint it resumes.
static int check_same_model(const RunConfig *now, const RunConfig *saved, const char *path, Error *err) {
    char differences[1024] = "";
    size_t used = 0;
#define SAME_INT(key)                                                                                   \
    if (now->model.key != saved->model.key)                                                            \
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
    CheckpointState state = {.step = at->step, .data_cursor = at->step};
    rng_seed(&state.rng, (uint64_t)tr->config->train.seed);
    const struct { const char *name; double value; } values[] = {
        {"interval_loss", at->interval_loss}, {"interval_steps", at->interval_steps},
        {"last_loss", at->last_loss}, {"train_seconds", at->train_seconds},
        {"lr", lr_at(at->step, tr->config->train.steps, tr->config->optim.warmup_steps, tr->config->optim.lr,
                     tr->config->optim.lr_min)},
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        snprintf(state.values[i].name, sizeof state.values[i].name, "%s", values[i].name);
        state.values[i].value = values[i].value;
    }
    state.n_values = (int)(sizeof values / sizeof values[0]);
    char path[4096];
    if (checkpoint_path_for_step(path, sizeof path, run_dir, at->step, err) != 0) return -1;
    char *yaml = config_to_yaml(&tr->resolved);
    int rc = checkpoint_save(path, tr->model.params, tr->model.n_params, &tr->optimizer, NULL, 0, &state, yaml, err);
    free(yaml);
    if (rc != 0) return -1;
    return checkpoint_prune_old(run_dir, tr->config->checkpoint.keep, err);
}

static double state_value(const CheckpointState *state, const char *name) {
    for (int i = 0; i < state->n_values; i++)
        if (strcmp(state->values[i].name, name) == 0) return state->values[i].value;
    return 0.0;
}

static int resume_from(Trainer *tr, const char *run_dir, const char *resume, RunPosition *at, Error *err) {
    char path[4096];
    if (strcmp(resume, "latest") == 0) {
        if (checkpoint_find_latest(run_dir, path, sizeof path, err) != 0) {
            // Killed before its first checkpoint: nothing to resume, so start from the beginning.
            progress_message(&tr->progress, "--resume latest: no checkpoint in %s yet; starting from step 0", run_dir);
            *at = (RunPosition){0};
            return 0;
        }
    } else {
        snprintf(path, sizeof path, "%s", resume);
    }
    char *yaml;
    if (checkpoint_read_config(path, &yaml, err) != 0) return -1;
    RunConfig saved;
    int rc = config_load_string(&saved, yaml, path, err);
    free(yaml);
    if (rc == 0) rc = check_same_model(&tr->resolved, &saved, path, err);
    config_free(&saved);
    if (rc != 0) return -1;
    CheckpointState state;
    if (checkpoint_load(path, tr->model.params, tr->model.n_params, &tr->optimizer, NULL, 0, &state, err) != 0)
        return -1;
    if (state.step > tr->config->train.steps)
        return error_set(err, "%s: the checkpoint is at step %ld, past train.steps = %d", path, state.step,
                         tr->config->train.steps);
    *at = (RunPosition){
        .step = state.step,
        .interval_loss = state_value(&state, "interval_loss"),
        .interval_steps = (int)state_value(&state, "interval_steps"),
        .last_loss = state_value(&state, "last_loss"),
        .train_seconds = state_value(&state, "train_seconds"),
    };
    progress_message(&tr->progress, "resuming from %s (step %ld)", path, state.step);
    return 0;
}

int train_run(const RunConfig *c, const char *run_dir, const char *resume, TrainSummary *summary, Error *err) {
    Trainer tr;
    const int B = c->train.batch_size, L = c->train.seqlen;
    const long steps = c->train.steps;
    RunPosition at = {0};
    int rc = trainer_open(&tr, c, run_dir, err);  // zeroes tr, so the progress line comes after
    progress_init(&tr.progress, stderr, c->log.progress, 0, steps);
    if (rc == 0 && resume) rc = resume_from(&tr, run_dir, resume, &at, err);
    char metrics_path[4096];
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics.jsonl", run_dir);
    if (rc == 0 && c->log.jsonl) {
        if (resume) rc = truncate_metrics(metrics_path, at.step, err);
        else remove(metrics_path);  // a fresh run starts a fresh log
        if (rc == 0) rc = metrics_open(&tr.metrics, metrics_path, err);
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

    double run_start = now_seconds(), interval_start = run_start, train_seconds = at.train_seconds;
    double interval_loss = at.interval_loss, last_loss = at.last_loss;
    int interval_steps = at.interval_steps;
    char extra[128] = "";
    for (long step = at.step; step < steps; step++) {
        double step_start = now_seconds();
        data_train_batch(&tr.data, step, B, L, tr.tokens, tr.targets);
        tape_reset(&tr.tape);
        mamba_model_zero_grad(&tr.model);
        Tensor *loss = mamba_forward(&tr.tape, &tr.model, tr.tokens, tr.targets, B, L, NULL);
        float loss_value = loss->data[0];
        if (!isfinite(loss_value)) {
            rc = error_set(err, "step %ld: the loss is %f; stopping (try a lower optim.lr or optim.grad_clip)", step,
                           loss_value);
            break;
        }
        tape_backward(&tr.tape, loss);
        double grad_norm = adamw_clip_grad_norm(&tr.optimizer, c->optim.grad_clip);
        if (!isfinite(grad_norm)) {
            rc = error_set(err, "step %ld: the gradient norm is %f; stopping (try a lower optim.lr)", step, grad_norm);
            break;
        }
        double lr = lr_at(step, steps, c->optim.warmup_steps, c->optim.lr, c->optim.lr_min);
        adamw_step(&tr.optimizer, lr);
        train_seconds += now_seconds() - step_start;
        interval_loss += loss_value;
        interval_steps++;

        long done = step + 1;
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
            cJSON_AddNumberToObject(o, "sparsity", 0.0);
            cJSON_AddNumberToObject(o, "tokens_per_s", tokens_per_s);
            cJSON_AddNumberToObject(o, "elapsed_s", now - run_start);
            metrics_write(&tr.metrics, o);
            progress_update(&tr.progress, done, (float)last_loss, (float)lr, 0.0f, tokens_per_s, extra[0] ? extra : NULL);
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
        if (c->checkpoint.every > 0 && done % c->checkpoint.every == 0 && done != steps) {
            RunPosition now = {done, interval_loss, last_loss, train_seconds, interval_steps};
            if ((rc = save_checkpoint(&tr, run_dir, &now, err)) != 0) break;
            interval_start = now_seconds();
        }
    }
    progress_finish(&tr.progress);
    if (rc == 0) {
        RunPosition end = {steps, interval_loss, last_loss, train_seconds, interval_steps};
        rc = save_checkpoint(&tr, run_dir, &end, err);
    }
    if (rc == 0) {
        Evaluation e = evaluate(&tr, c->eval.at_end ? c->eval.batches : c->train.eval_batches);
        TrainSummary s = {
            .steps = steps,
            .train_loss = last_loss,
            .val_loss = e.nll,
            .val_perplexity = e.perplexity,
            .val_accuracy = e.accuracy,
            .val_tokens = e.tokens,
            .tokens_per_s = train_seconds > 0 ? (double)steps * B * L / train_seconds : 0.0,
            .wall_s = now_seconds() - run_start,
        };
        cJSON *o = evaluation_json(steps, e);
        cJSON_AddBoolToObject(o, "summary", 1);
        cJSON_AddNumberToObject(o, "train_loss", s.train_loss);
        cJSON_AddNumberToObject(o, "tokens_per_s", s.tokens_per_s);
        cJSON_AddNumberToObject(o, "wall_s", s.wall_s);
        cJSON_AddNumberToObject(o, "parameters", (double)tr.model.n_elements);
        metrics_write(&tr.metrics, o);
        if (summary) *summary = s;
    }
    trainer_close(&tr);
    return rc;
}
