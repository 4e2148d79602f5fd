// mambaprune's command line: `mambaprune COMMAND [options]`. Parses arguments, reports
// errors and chooses exit codes; the work itself is in the library.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "autograd/ops.h"
#include "config/config.h"
#include "run/evaluate.h"
#include "run/model_source.h"
#include "run/sweep.h"
#include "run/trainer.h"
#include "core/timer.h"
#include "data/data.h"
#include "io/checkpoint.h"
#include "io/hf_folder.h"

static const char usage[] =
    "usage: mambaprune train --config FILE [--set section.key=value ...] [--resume CKPT|latest]\n"
    "       mambaprune eval --model CKPT_OR_FOLDER [--data FILE] [--seqlen L] [--batch B] [--max-batches N]\n"
    "       mambaprune export --model CKPT_OR_FOLDER --to DIR\n"
    "       mambaprune config-reference        (every config key, as Markdown)\n"
    "\n"
    "  train   trains (and later prunes) a Mamba LM as the YAML config says; the run folder\n"
    "          is log.dir/log.name (config.yaml, metrics.jsonl). Any key can be overridden\n"
    "          with --set, e.g. --set train.steps=200 --set data.kind=text --set data.path=FILE\n";

static int command_train(int argc, char **argv) {
    const char *config_path = NULL, *resume = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config_path = argv[++i];
        else if (strcmp(argv[i], "--resume") == 0 && i + 1 < argc) resume = argv[++i];
        else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) i++;
        else {
            fprintf(stderr, "mambaprune train: unexpected argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!config_path) {
        fprintf(stderr, "mambaprune train: --config FILE is required\n\n%s", usage);
        return 2;
    }
    RunConfig config;
    Error err;
    int rc = config_load_file(&config, config_path, &err);
    for (int i = 0; rc == 0 && i < argc; i++)
        if (strcmp(argv[i], "--set") == 0) rc = config_set(&config, argv[++i], &err);
    if (rc == 0) rc = config_check(&config, &err);
    if (rc != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
        config_free(&config);
        return 2;
    }
    char name[256], run_dir[4096];
    config_run_name(&config, name, sizeof name);
    snprintf(run_dir, sizeof run_dir, "%s/%s", config.log.dir, name);
    if (config.n_sweep > 0) {
        // Each run of a sweep resumes by itself; --resume would be ambiguous.
        if (resume) rc = error_set(&err, "--resume: a sweep resumes its unfinished runs by itself; run it again without --resume");
        else rc = sweep_run(&config, run_dir, &err);
        if (rc != 0) fprintf(stderr, "mambaprune: %s\n", err.message);
        config_free(&config);
        return rc == 0 ? 0 : 1;
    }
    TrainSummary summary;
    rc = train_run(&config, run_dir, resume, &summary, &err);
    if (rc != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
        config_free(&config);
        return 1;
    }
    fprintf(stderr,
            "done: %ld steps, train loss %.4f, validation loss %.4f (perplexity %.3f, accuracy %.4f over %ld "
            "targets), %.0f tokens/s, %.1f s\n",
            summary.steps, summary.train_loss, summary.val_loss, summary.val_perplexity, summary.val_accuracy,
            summary.val_tokens, summary.tokens_per_s, summary.wall_s);
    config_free(&config);
    return 0;
}

static int parse_positive(const char *option, const char *text, long *out) {
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < 1) {
        fprintf(stderr, "mambaprune eval: %s expects a positive integer, got '%s'\n", option, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int command_eval(int argc, char **argv) {
    const char *model_path = NULL, *data_path = NULL;
    long seqlen = 0, batch = 0, max_batches = 0;  // 0: not given
    for (int i = 0; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = value != NULL;
        if (ok && strcmp(argv[i], "--model") == 0) model_path = value;
        else if (ok && strcmp(argv[i], "--data") == 0) data_path = value;
        else if (ok && strcmp(argv[i], "--seqlen") == 0) ok = parse_positive("--seqlen", value, &seqlen) == 0;
        else if (ok && strcmp(argv[i], "--batch") == 0) ok = parse_positive("--batch", value, &batch) == 0;
        else if (ok && strcmp(argv[i], "--max-batches") == 0) ok = parse_positive("--max-batches", value, &max_batches) == 0;
        else {
            fprintf(stderr, "mambaprune eval: unexpected argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
        if (!ok) return 2;
        i++;
    }
    if (!model_path) {
        fprintf(stderr, "mambaprune eval: --model is required\n\n%s", usage);
        return 2;
    }
    Error err;
    MambaModel model;
    if (model_load(model_path, &model, &err) != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
        return 1;
    }
    DataOptions options;
    RunConfig run;  // without --data: the validation split of the checkpoint's own data
    config_defaults(&run);
    int rc = 0;
    if (data_path) {
        data_options_defaults(&options);
        options.kind = DATA_FILE;  // a token file if it starts with llm.c's magic, else bytes
        options.path = data_path;
        options.val_fraction = 1.0f;  // the whole file is evaluated
        if (model.config.head == MAMBA_HEAD_CLASSIFY) options.kind = DATA_TEXT_CLASSIFICATION;  // label<TAB>text lines
    } else {
        char *yaml = NULL;
        config_free(&run);
        struct stat st;
        if (stat(model_path, &st) == 0 && S_ISDIR(st.st_mode))
            rc = error_set(&err, "%s is a transformers folder, which has no data of its own: give --data FILE", model_path);
        else
            rc = checkpoint_probe(model_path, &err) == 0 ? checkpoint_read_config(model_path, &yaml, &err) : -1;
        if (rc == 0) rc = config_load_string(&run, yaml, model_path, &err);
        else config_defaults(&run);
        free(yaml);
        if (rc == 0) {
            run_data_options(&run, &options);
            if (seqlen == 0) seqlen = run.train.seqlen;
            if (batch == 0) batch = run.train.batch_size;  // the run's own batches: its numbers exactly
            data_path = options.path ? options.path : data_kind_name(options.kind);
        } else {
            error_prefix(&err, "eval without --data");
        }
    }
    if (batch == 0) batch = 8;
    if (seqlen == 0) seqlen = 256;
    Dataset data;
    if (rc != 0 || data_open(&data, &options, (int)seqlen, &err) != 0) {
        config_free(&run);
        fprintf(stderr, "mambaprune: %s\n", err.message);
        mamba_model_free(&model);
        return 1;
    }
    if (data_vocab_size(&data) > model.config.vocab_padded) {
        fprintf(stderr, "mambaprune: %s has token ids up to %d but the model has only %d\n", data_path,
                data_vocab_size(&data) - 1, model.config.vocab_padded);
        data_close(&data);
        mamba_model_free(&model);
        config_free(&run);
        return 1;
    }
    Tape tape;
    tape_init(&tape, 64u << 20);
    int32_t *tokens = xmalloc(sizeof(int32_t) * (size_t)(batch * seqlen));
    int32_t *targets = xmalloc(sizeof(int32_t) * (size_t)(batch * seqlen));
    double start = now_seconds();
    Evaluation e = evaluate_model(&model, &data, &tape, (int)batch, (int)seqlen, max_batches, tokens, targets, true);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model_path);
    cJSON_AddStringToObject(o, "data", data_path);
    cJSON_AddNumberToObject(o, "seqlen", (double)seqlen);
    cJSON_AddNumberToObject(o, "perplexity", e.perplexity);
    cJSON_AddNumberToObject(o, "nll", e.nll);
    cJSON_AddNumberToObject(o, "tokens", (double)e.tokens);
    cJSON_AddNumberToObject(o, "accuracy", e.accuracy);
    cJSON_AddNumberToObject(o, "seconds", now_seconds() - start);
    char *text = cJSON_PrintUnformatted(o);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
    free(tokens);
    free(targets);
    tape_free(&tape);
    data_close(&data);
    mamba_model_free(&model);
    config_free(&run);
    return 0;
}

static int command_export(int argc, char **argv) {
    const char *model_path = NULL, *to = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) model_path = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) to = argv[++i];
        else {
            fprintf(stderr, "mambaprune export: unexpected argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!model_path || !to) {
        fprintf(stderr, "mambaprune export: --model and --to are required\n\n%s", usage);
        return 2;
    }
    Error err;
    MambaModel model;
    if (model_load(model_path, &model, &err) != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
        return 1;
    }
    int rc = hf_folder_save(to, &model.config, model.params, model.n_params, &err);
    if (rc != 0) fprintf(stderr, "mambaprune: %s\n", err.message);
    else fprintf(stderr, "wrote %s (config.json, model.safetensors: %.2f M parameters)\n", to, model.n_elements / 1e6);
    mamba_model_free(&model);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "train") == 0) return command_train(argc - 2, argv + 2);
    if (strcmp(argv[1], "eval") == 0) return command_eval(argc - 2, argv + 2);
    if (strcmp(argv[1], "export") == 0) return command_export(argc - 2, argv + 2);
    if (strcmp(argv[1], "config-reference") == 0) {
        config_write_reference_markdown(stdout);
        return 0;
    }
    fprintf(stderr, "mambaprune: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
