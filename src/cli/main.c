// mambaprune's command line: `mambaprune COMMAND [options]`. Parses arguments, reports
// errors and chooses exit codes; the work itself is in the library.
#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <hdf5.h>

#include "config/config.h"
#include "run/model_eval.h"
#include "run/model_source.h"
#include "run/reference.h"
#include "run/sweep.h"
#include "core/dist.h"
#include "run/text_tokens.h"
#include "run/trainer.h"
#include "run/run_signals.h"
#include "core/memory.h"
#include "core/parse.h"
#include "core/timer.h"
#include "io/hf_folder.h"
#include "run/generate.h"
#include "run/packed_file.h"

static const char usage[] =
    "usage: mambaprune train --config FILE [--set section.key=value ...] [--resume CKPT|latest]\n"
    "       mambaprune eval --model CKPT_OR_FOLDER [--data FILE] [--split val|test] [--seqlen L] [--batch B] [--max-batches N]\n"
    "       mambaprune export --model CKPT_OR_FOLDER --to DIR\n"
    "       mambaprune tokenize --tokenizer TOKENIZER_JSON --in TEXT --out TOKENS.bin [--decode]\n"
    "       mambaprune export --model CKPT_OR_FOLDER --sparse [--bf16] [--head fp32|bf16|int8] --to FILE   (the packed model file)\n"
    "       mambaprune generate --model CKPT_OR_FOLDER_OR_PACKED (--prompt TEXT | --prompt-file FILE | --prompt-tokens 1,2,3)\n"
    "                  [--tokens 64] [--temperature 1] [--top-k 0] [--top-p 1] [--seed 0] [--dense] [--head fp32|bf16|int8]\n"
    "                  [--batch N]   (N sequences from the prompt, seeds S..S+N-1, decoded together)\n"
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
        else if (dist_size() > 1) rc = error_set(&err, "sweep: a sweep runs on one process; run each of its configs under mpirun instead");
        else rc = sweep_run(&config, run_dir, &err);
        if (rc != 0) fprintf(stderr, "mambaprune: %s\n", err.message);
        config_free(&config);
        return rc == 0 ? 0 : run_signals_pending() ? 128 + run_signals_pending() : 1;
    }
    TrainSummary summary;
    rc = train_run(&config, run_dir, resume, &summary, &err);
    if (rc == 0) rc = reference_attach(&config, run_dir, &err);
    if (rc != 0) {
        if (dist_size() > 1) fprintf(stderr, "mambaprune (rank %d of %d): %s\n", dist_rank(), dist_size(), err.message);
        else fprintf(stderr, "mambaprune: %s\n", err.message);
        config_free(&config);
        return run_signals_pending() ? 128 + run_signals_pending() : 1;
    }
    if (dist_is_root() && summary.series)
        fprintf(stderr, "done: %ld steps, train loss %.4f, %s MSE %.4f, MAE %.4f over %ld windows, %.0f positions/s, "
                "%.1f s\n", summary.steps, summary.train_loss, config.data.split == CFG_SPLIT_TEST ? "test" : "validation",
                summary.val_loss, summary.val_mae, summary.val_tokens, summary.tokens_per_s, summary.wall_s);
    else if (dist_is_root())
        fprintf(stderr,
                "done: %ld steps, train loss %.4f, validation loss %.4f (perplexity %.3f, accuracy %.4f over %ld "
                "targets), %.0f tokens/s, %.1f s\n",
                summary.steps, summary.train_loss, summary.val_loss, summary.val_perplexity, summary.val_accuracy,
                summary.val_tokens, summary.tokens_per_s, summary.wall_s);
    config_free(&config);
    return 0;
}

// The limits of eval's flags: a window of up to 1 M tokens, up to 64 K sequences a batch
// (their product is then checked against the memory), any count of batches.
static int parse_flag(const char *option, const char *text, long long max, long *out) {
    Error err;
    long long v;
    if (parse_integer(option, text, 1, max, &v, &err) != 0) {
        fprintf(stderr, "mambaprune eval: %s\n", err.message);
        return -1;
    }
    *out = (long)v;
    return 0;
}

// eval's JSON line on stdout.
static void print_evaluation(const char *model_path, const char *data_path, long seqlen, const Evaluation *e,
                             double seconds) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model_path);
    cJSON_AddStringToObject(o, "data", data_path);
    cJSON_AddNumberToObject(o, "seqlen", (double)seqlen);
    cJSON_AddNumberToObject(o, "perplexity", e->perplexity);
    cJSON_AddNumberToObject(o, "nll", e->nll);
    cJSON_AddNumberToObject(o, "tokens", (double)e->tokens);
    cJSON_AddNumberToObject(o, "accuracy", e->accuracy);
    cJSON_AddNumberToObject(o, "seconds", seconds);
    char *text = cJSON_PrintUnformatted(o);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
}

// eval's JSON line of a forecaster: MSE and MAE on the standardised scale, and the
// repeat-the-last-value forecast of the same windows beside them.
static void print_series_evaluation(const char *model_path, const ModelEvalResult *r) {
    const Evaluation *e = &r->evaluation;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model_path);
    cJSON_AddStringToObject(o, "data", r->data);
    cJSON_AddStringToObject(o, "split", r->test_split ? "test" : "validation");
    cJSON_AddNumberToObject(o, "seqlen", (double)r->seqlen);
    cJSON_AddNumberToObject(o, "horizon", r->horizon);
    cJSON_AddNumberToObject(o, "features", r->n_features);
    cJSON_AddNumberToObject(o, "mse", e->mse);
    cJSON_AddNumberToObject(o, "mae", e->mae);
    cJSON_AddNumberToObject(o, "repeat_last_mse", e->repeat_last_mse);
    cJSON_AddNumberToObject(o, "repeat_last_mae", e->repeat_last_mae);
    cJSON_AddNumberToObject(o, "windows", (double)e->tokens);
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    char *text = cJSON_PrintUnformatted(o);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
}

static int command_eval(int argc, char **argv) {
    const char *model_path = NULL, *data_path = NULL, *split = NULL;
    long seqlen = 0, batch = 0, max_batches = 0;  // 0: not given
    for (int i = 0; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = value != NULL;
        if (ok && strcmp(argv[i], "--model") == 0) model_path = value;
        else if (ok && strcmp(argv[i], "--data") == 0) data_path = value;
        else if (ok && strcmp(argv[i], "--split") == 0) split = value;
        else if (ok && strcmp(argv[i], "--seqlen") == 0) ok = parse_flag("--seqlen", value, 1 << 20, &seqlen) == 0;
        else if (ok && strcmp(argv[i], "--batch") == 0) ok = parse_flag("--batch", value, 1 << 16, &batch) == 0;
        else if (ok && strcmp(argv[i], "--max-batches") == 0) ok = parse_flag("--max-batches", value, LONG_MAX, &max_batches) == 0;
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
    if (split && strcmp(split, "val") != 0 && strcmp(split, "validation") != 0 && strcmp(split, "test") != 0) {
        fprintf(stderr, "mambaprune eval: --split is val or test, got '%s'\n", split);
        return 2;
    }
    if (packed_file_detect(model_path) && split) {
        fprintf(stderr, "mambaprune eval: --split: a packed model file is evaluated on the whole --data file\n");
        return 2;
    }
    if (packed_file_detect(model_path) && !data_path) {
        fprintf(stderr, "mambaprune eval: %s is a packed model file, which has no data of its own: give --data FILE\n",
                model_path);
        return 2;
    }
    ModelEvalOptions options = {model_path, data_path, seqlen, batch, max_batches, split};
    ModelEvalResult result;
    Error err;
    if (model_eval(&options, &result, &err) != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
        return 1;
    }
    if (result.evaluation.series) print_series_evaluation(model_path, &result);
    else print_evaluation(model_path, result.data, result.seqlen, &result.evaluation, result.seconds);
    return 0;
}

// --head VALUE: the precision of the tied embedding/head (lowp_format_parse), or -1 with a message.
static int parse_head(const char *command, const char *value) {
    int format = lowp_format_parse(value);
    if (format < 0)
        fprintf(stderr, "mambaprune %s: --head expects fp32, bf16 or int8, got '%s'\n", command, value);
    return format;
}

// export --sparse: the packed model file, each linear in the format the measured rule picks.
static int export_packed(const char *model_path, const char *to, bool bf16, int head) {
    Error err;
    InferModel model;
    if (infer_load(model_path, false, &model, &err) != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
        return 1;
    }
    if (head >= 0) infer_model_set_head(&model, (LowpFormat)head);
    PackedFileOptions options = {.bf16 = bf16};
    int rc = packed_file_save(to, &model, &options, &err);
    if (rc != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
    } else {
        struct stat st;
        const MambaConfig *c = &model.config;
        double dense = 4.0 * (double)((size_t)c->vocab_padded * c->d_model + c->d_model) +
                       4.0 * c->n_layer * (double)(c->d_model + (size_t)2 * c->d_inner * c->d_model + (size_t)c->d_inner * (c->d_conv + 3 + c->d_state) +
                                                   (size_t)(c->dt_rank + 2 * c->d_state) * c->d_inner + (size_t)c->d_inner * c->dt_rank +
                                                   (size_t)c->d_model * c->d_inner);
        double size = stat(to, &st) == 0 ? (double)st.st_size : 0.0;
        fprintf(stderr, "wrote %s: %.1f MB, %.3fx the %.1f MB of the dense fp32 weights%s\n", to, size / 1e6,
                size / dense, dense / 1e6, bf16 ? " (values and embedding stored as bf16)" : "");
        if (model.head_format != LOWP_F32)
            fprintf(stderr, "the tied embedding/head is held as %s, in the file and in memory (logits not exact)\n",
                    lowp_format_name(model.head_format));
        generate_report_tensors(stderr, &model);
    }
    infer_model_free(&model);
    return rc == 0 ? 0 : 1;
}

static int command_export(int argc, char **argv) {
    const char *model_path = NULL, *to = NULL;
    bool sparse = false, bf16 = false;
    int head = -1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) model_path = argv[++i];
        else if (strcmp(argv[i], "--head") == 0 && i + 1 < argc) {
            if ((head = parse_head("export", argv[++i])) < 0) return 2;
        }
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) to = argv[++i];
        else if (strcmp(argv[i], "--sparse") == 0) sparse = true;
        else if (strcmp(argv[i], "--bf16") == 0) bf16 = true;
        else {
            fprintf(stderr, "mambaprune export: unexpected argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!model_path || !to) {
        fprintf(stderr, "mambaprune export: --model and --to are required\n\n%s", usage);
        return 2;
    }
    if (bf16 && !sparse) {
        fprintf(stderr, "mambaprune export: --bf16 needs --sparse (the transformers export stays fp32)\n");
        return 2;
    }
    if (head >= 0 && !sparse) {
        fprintf(stderr, "mambaprune export: --head needs --sparse (the transformers export stays fp32)\n");
        return 2;
    }
    if (sparse) return export_packed(model_path, to, bf16, head);
    Error err;
    MambaModel model;
    if (model_load(model_path, &model, &err) != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
        return 1;
    }
    if (mamba_head_reads_values(model.config.head)) {  // heads.h
        fprintf(stderr, "mambaprune: %s is a forecaster (model.head forecast or dlinear): transformers has no such "
                "model, so export is not implemented for it\n", model_path);
        mamba_model_free(&model);
        return 1;
    }
    int rc = hf_folder_save(to, &model.config, model.params, model.n_params, &err);
    int copied = 0;  // the model's tokenizer files go along
    if (rc == 0) rc = tokenizer_files_copy(model_path, to, &copied, &err);
    if (rc != 0) fprintf(stderr, "mambaprune: %s\n", err.message);
    else fprintf(stderr, "wrote %s (config.json, model.safetensors: %.2f M parameters%s)\n", to, model.n_elements / 1e6,
                 copied ? ", tokenizer files" : "");
    mamba_model_free(&model);
    return rc == 0 ? 0 : 1;
}

static int command_tokenize(int argc, char **argv) {
    const char *tokenizer = NULL, *in = NULL, *out = NULL;
    int decode = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) tokenizer = argv[++i];
        else if (strcmp(argv[i], "--in") == 0 && i + 1 < argc) in = argv[++i];
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) out = argv[++i];
        else if (strcmp(argv[i], "--decode") == 0) decode = 1;
        else {
            fprintf(stderr, "mambaprune tokenize: unexpected argument '%s'\n\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!tokenizer || !in || !out) {
        fprintf(stderr, "mambaprune tokenize: --tokenizer, --in and --out are required\n\n%s", usage);
        return 2;
    }
    Error err;
    long n = 0;
    int vocab = 0;
    int rc = decode ? detokenize_file(tokenizer, in, out, &err) : tokenize_file(tokenizer, in, out, &n, &vocab, &err);
    if (rc != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
        return 1;
    }
    if (decode) fprintf(stderr, "wrote %s (text)\n", out);
    else fprintf(stderr, "wrote %s: %ld tokens (%s ids, vocab %d)\n", out, n, vocab > 65536 ? "uint32" : "uint16", vocab);
    return 0;
}

// A number for a generate flag: the whole text, within [minimum, maximum].
static int parse_number(const char *flag, const char *text, double minimum, double maximum, bool integer, double *out) {
    char *end;
    errno = 0;
    double v = integer ? (double)strtoll(text, &end, 10) : strtod(text, &end);
    if (*text == '\0' || *end != '\0' || errno != 0 || !(v >= minimum && v <= maximum)) {
        fprintf(stderr, "mambaprune generate: %s expects %s in [%g, %g], got '%s'\n", flag,
                integer ? "an integer" : "a number", minimum, maximum, text);
        return -1;
    }
    *out = v;
    return 0;
}

static void emit_token(void *context, int32_t token) { generate_print_token(context, token); }

// generate --batch: each sequence's tokens, kept until all are done.
typedef struct BatchOutput {
    int n_tokens;
    int32_t *tokens;          // (batch, n_tokens)
    int done[GENERATE_MAX_BATCH];
} BatchOutput;

static void collect_token(void *context, int sequence, int32_t token) {
    BatchOutput *out = context;
    out->tokens[(size_t)sequence * out->n_tokens + out->done[sequence]++] = token;
}

static int command_generate(int argc, char **argv) {
    const char *model_path = NULL, *prompt_flag = NULL, *prompt_value = NULL;
    double tokens = 64, temperature = 1.0, top_k = 0, top_p = 1.0, seed = 0, batch = 1;
    bool dense = false;
    int head = -1;
    struct {
        const char *flag;
        double *value, minimum, maximum;
        bool integer;
    } numbers[] = {{"--tokens", &tokens, 0, 10000000, true},   {"--temperature", &temperature, 0, 1e6, false},
                   {"--top-k", &top_k, 0, 1e9, true},         {"--top-p", &top_p, 1e-9, 1, false},
                   {"--seed", &seed, 0, 9007199254740992.0, true},
                   {"--batch", &batch, 1, GENERATE_MAX_BATCH, true}};
    for (int i = 0; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--dense") == 0) {
            dense = true;
            continue;
        }
        int known = strcmp(flag, "--model") == 0 || strcmp(flag, "--head") == 0 || strcmp(flag, "--prompt") == 0 ||
                    strcmp(flag, "--prompt-file") == 0 || strcmp(flag, "--prompt-tokens") == 0;
        for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; k++) known |= strcmp(flag, numbers[k].flag) == 0;
        if (!known) {
            fprintf(stderr, "mambaprune generate: unknown option '%s'\n\n%s", flag, usage);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mambaprune generate: %s needs a value\n", flag);
            return 2;
        }
        const char *value = argv[++i];
        if (strcmp(flag, "--model") == 0) {
            model_path = value;
        } else if (strcmp(flag, "--head") == 0) {
            if ((head = parse_head("generate", value)) < 0) return 2;
        } else if (strncmp(flag, "--prompt", 8) == 0) {
            if (prompt_flag) {
                fprintf(stderr, "mambaprune generate: %s and %s both give the prompt: give one\n", prompt_flag, flag);
                return 2;
            }
            prompt_flag = flag, prompt_value = value;
        } else {
            for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; k++)
                if (strcmp(flag, numbers[k].flag) == 0 &&
                    parse_number(flag, value, numbers[k].minimum, numbers[k].maximum, numbers[k].integer,
                                 numbers[k].value) != 0)
                    return 2;
        }
    }
    if (!model_path || !prompt_flag) {
        fprintf(stderr, "mambaprune generate: --model and one of --prompt, --prompt-file, --prompt-tokens are required\n\n%s",
                usage);
        return 2;
    }
    Error err;
    InferModel model;
    if (infer_load(model_path, dense, &model, &err) != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
        return 1;
    }
    if (head >= 0) infer_model_set_head(&model, (LowpFormat)head);
    const MambaConfig *c = &model.config;
    // The model's tokenizer.json, when it has one, encodes the prompt and decodes the output.
    Tokenizer *tokenizer = NULL;
    char tokenizer_path[4096];
    if (tokenizer_find(model_path, tokenizer_path, sizeof tokenizer_path) == 1 &&
        tokenizer_load(&tokenizer, tokenizer_path, &err) != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
        infer_model_free(&model);
        return 1;
    }
    SamplerOptions options = {.temperature = (float)temperature, .top_k = (int)top_k, .top_p = (float)top_p,
                              .seed = (uint64_t)seed};
    int32_t *prompt = NULL;
    int n_prompt = 0, rc = sampler_options_check(&options, c->vocab_size, &err);
    if (rc == 0 && strcmp(prompt_flag, "--prompt-tokens") == 0) {
        rc = generate_parse_token_ids(c, prompt_value, &prompt, &n_prompt, &err);
    } else if (rc == 0 && strcmp(prompt_flag, "--prompt-file") == 0) {
        FILE *f = fopen(prompt_value, "rb");
        char *text = NULL;
        size_t length = 0;
        if (!f) {
            rc = error_set(&err, "--prompt-file %s: %s", prompt_value, strerror(errno));
        } else {
            for (size_t got = 1; got > 0;) {
                text = xrealloc(text, length + 65536);
                got = fread(text + length, 1, 65536, f);
                length += got;
            }
            if (ferror(f)) rc = error_set(&err, "--prompt-file %s: read error", prompt_value);
            fclose(f);
        }
        if (rc == 0) rc = generate_encode_prompt(c, tokenizer, text, length, &prompt, &n_prompt, &err);
        if (rc != 0 && f) error_prefix(&err, "--prompt-file %s", prompt_value);
        free(text);
    } else if (rc == 0) {
        rc = generate_encode_prompt(c, tokenizer, prompt_value, strlen(prompt_value), &prompt, &n_prompt, &err);
        if (rc != 0) error_prefix(&err, "--prompt");
    }
    if (rc != 0) {
        fprintf(stderr, "mambaprune generate: %s\n", err.message);
        tokenizer_free(tokenizer);
        infer_model_free(&model);
        return 2;
    }
    const int n_seq = (int)batch;
    Sampler samplers[GENERATE_MAX_BATCH];
    for (int b = 0; b < n_seq; b++) {
        SamplerOptions seq_options = options;
        seq_options.seed = options.seed + (uint64_t)b;
        sampler_init(&samplers[b], &seq_options, c->vocab_size);
    }
    GenerateStats stats;
    TokenPrinter printer = {.out = stdout, .config = c, .tokenizer = tokenizer};
    if (n_seq == 1) {
        rc = generate_run(&model, prompt, n_prompt, (int)tokens, samplers, emit_token, &printer, &stats, &err);
        generate_print_finish(&printer);
        if (tokenizer || generate_byte_level(c) || stats.generated > 0) printf("\n");
    } else {
        // The sequences decode together and are printed one after the other when done.
        BatchOutput out = {.n_tokens = (int)tokens, .tokens = xcalloc((size_t)n_seq * ((size_t)tokens + 1), sizeof(int32_t))};
        rc = generate_run_batch(&model, prompt, n_prompt, (int)tokens, samplers, n_seq, collect_token, &out, &stats, &err);
        for (int b = 0; rc == 0 && b < n_seq; b++) {
            printf("[sequence %d, seed %.0f]\n", b, seed + b);
            TokenPrinter p = {.out = stdout, .config = c, .tokenizer = tokenizer};
            for (int i = 0; i < (int)tokens; i++) generate_print_token(&p, out.tokens[(size_t)b * (size_t)tokens + i]);
            generate_print_finish(&p);
            printf("\n");
        }
        free(out.tokens);
    }
    fflush(stdout);
    if (rc != 0) {
        fprintf(stderr, "mambaprune: %s\n", err.message);
    } else {
        long rss, hwm;
        process_memory_kb(&rss, &hwm);
        fprintf(stderr, "prompt: %d tokens in %.3f s (%.1f tok/s); decode: %d tokens in %.3f s (%.1f tok/s)\n",
                stats.prompt_tokens, stats.prompt_s, stats.prompt_s > 0 ? stats.prompt_tokens / stats.prompt_s : 0.0,
                stats.generated, stats.decode_s, stats.decode_s > 0 ? stats.generated / stats.decode_s : 0.0);
        fprintf(stderr, "memory: VmRSS %.1f MB, VmHWM %.1f MB\n", rss / 1024.0, hwm / 1024.0);
        fprintf(stderr, "embedding/head: %s%s\n", lowp_format_name(model.head_format),
                model.head_format == LOWP_F32 ? "" : " (lower precision: the logits differ from fp32's; docs/SPARSE.md)");
        fprintf(stderr, "linear layers (%s):\n", dense ? "--dense" : "format by the measured rule");
        generate_report_tensors(stderr, &model);
    }
    for (int b = 0; b < n_seq; b++) sampler_free(&samplers[b]);
    free(prompt);
    tokenizer_free(tokenizer);
    infer_model_free(&model);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    // HDF5's exit handler would retry closing a checkpoint whose write failed (a full disk)
    // and print its internals; the process is ending, so it is not registered.
    H5dont_atexit();
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "train") == 0) {
        // Under mpirun every process runs the training, on its share of each batch (run/data_parallel.h).
        // SIGINT/SIGTERM: checkpoint after the current step, then exit 130/143. Before any
        // thread starts: they all block both signals (run/run_signals.h).
        run_signals_install();
        Error err;
        if (dist_init(&argc, &argv, &err) != 0) {
            fprintf(stderr, "mambaprune: %s\n", err.message);
            return 1;
        }
        int rc = command_train(argc - 2, argv + 2);
        // A process that failed leaves the others waiting in a collective call: end them all.
        // A run stopped by a signal has stopped on every process, after the same step.
        if (rc != 0 && !run_signals_stopped()) dist_abort(rc);
        dist_finalize();
        return rc;
    }
    if (strcmp(argv[1], "eval") == 0) return command_eval(argc - 2, argv + 2);
    if (strcmp(argv[1], "export") == 0) return command_export(argc - 2, argv + 2);
    if (strcmp(argv[1], "tokenize") == 0) return command_tokenize(argc - 2, argv + 2);
    if (strcmp(argv[1], "generate") == 0) return command_generate(argc - 2, argv + 2);
    if (strcmp(argv[1], "config-reference") == 0) {
        config_write_reference_markdown(stdout);
        return 0;
    }
    fprintf(stderr, "mambaprune: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
