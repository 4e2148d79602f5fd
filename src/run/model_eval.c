// eval of a model (see model_eval.h).
#include "run/model_eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/memory.h"
#include "core/timer.h"
#include "data/data.h"
#include "infer/infer.h"
#include "io/checkpoint.h"
#include "mamba/model.h"
#include "run/generate.h"   // defines: infer_load
#include "run/infer_eval.h"
#include "run/model_source.h"
#include "run/packed_file.h"
#include "run/run_data.h"
#include "run/text_tokens.h"

// Data TEXT with a model that has a tokenizer: the text's token file, cached in a
// .mambaprune-cache folder beside the text (or under ~/.cache/mambaprune when that folder
// cannot be written). 1: *out is the token file; 0: not text or no tokenizer; -1: error.
static int text_tokens(const char *model_path, const char *data_path, char *out, size_t cap, Error *err) {
    FILE *f = fopen(data_path, "rb");
    int32_t magic = 0;
    if (f) {
        uint8_t b[4] = {0};
        if (fread(b, 1, 4, f) == 4) magic = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
        fclose(f);
    }
    if (!f || magic == DATA_TOKENS_MAGIC) return 0;  // data_open reports a missing file; token files stay as they are
    char cache[4096];
    const char *slash = strrchr(data_path, '/');
    snprintf(cache, sizeof cache, "%.*s.mambaprune-cache", slash ? (int)(slash - data_path + 1) : 0, data_path);
    int reused = 0;
    int rc = tokens_for_model(model_path, data_path, cache, out, cap, &reused, err);
    const char *home = getenv("HOME");
    if (rc < 0 && home && access(cache, F_OK) != 0) {  // a read-only data folder
        snprintf(cache, sizeof cache, "%s/.cache/mambaprune/tokens", home);
        rc = tokens_for_model(model_path, data_path, cache, out, cap, &reused, err);
    }
    if (rc == 1) fprintf(stderr, "%s: %s through the model's tokenizer: %s\n", data_path, reused ? "already tokenized" : "tokenized", out);
    return rc;
}

static int check_vocab(const Dataset *data, const char *data_name, const MambaConfig *m, Error *err) {
    if (data_vocab_size(data) <= m->vocab_padded) return 0;
    return error_set(err, "%s has token ids up to %d but the model has only %d", data_name, data_vocab_size(data) - 1,
                     m->vocab_padded);
}

// A packed model file: straight into the inference model, on the whole of a data file.
static int eval_packed(const ModelEvalOptions *o, ModelEvalResult *r, Error *err) {
    if (!o->data_path)
        return error_set(err, "%s is a packed model file, which has no data of its own: give --data FILE", o->model_path);
    InferModel model;
    if (infer_load(o->model_path, false, &model, err) != 0) return -1;
    DataOptions options;
    data_options_defaults(&options);
    options.kind = DATA_FILE;
    options.path = o->data_path;
    options.val_fraction = 1.0f;
    snprintf(r->data, sizeof r->data, "%s", o->data_path);
    r->seqlen = o->seqlen ? o->seqlen : 256;
    long batch = o->batch ? o->batch : 8;
    Dataset data = {0};
    double start = now_seconds();
    int rc = data_open(&data, &options, (int)r->seqlen, err);
    if (rc == 0) rc = check_vocab(&data, o->data_path, &model.config, err);
    if (rc == 0) rc = infer_evaluate(&model, &data, (int)batch, (int)r->seqlen, o->max_batches, &r->evaluation, err);
    r->seconds = now_seconds() - start;
    data_close(&data);
    infer_model_free(&model);
    return rc;
}

// The data of a data file: token ids (through the model's tokenizer for text), or
// label<TAB>text lines for a classifier, the whole file evaluated.
static int file_data(const ModelEvalOptions *o, const MambaModel *model, DataOptions *options, char *tokens_path,
                     size_t size, Error *err) {
    data_options_defaults(options);
    options->kind = DATA_FILE;  // a token file if it starts with llm.c's magic, else bytes
    options->path = o->data_path;
    int rc = text_tokens(o->model_path, o->data_path, tokens_path, size, err);
    if (rc == 1) options->path = tokens_path, options->kind = DATA_TOKENS;
    options->val_fraction = 1.0f;
    if (model->config.head == MAMBA_HEAD_CLASSIFY) options->kind = DATA_TEXT_CLASSIFICATION;
    return rc < 0 ? -1 : 0;
}

// A checkpoint's own data: the data section of its stored config (run's), and its batches.
static int checkpoint_data(const char *model_path, RunConfig *run, DataOptions *options, Error *err) {
    struct stat st;
    char *yaml = NULL;
    int rc;
    if (stat(model_path, &st) == 0 && S_ISDIR(st.st_mode))
        rc = error_set(err, "%s is a transformers folder, which has no data of its own: give --data FILE", model_path);
    else
        rc = checkpoint_probe(model_path, err) == 0 ? checkpoint_read_config(model_path, &yaml, err) : -1;
    if (rc == 0) rc = config_load_string(run, yaml, model_path, err);
    else config_defaults(run);
    free(yaml);
    if (rc != 0) return error_prefix(err, "eval without --data");
    run_data_options(run, options);
    return 0;
}

int model_eval(const ModelEvalOptions *o, ModelEvalResult *r, Error *err) {
    memset(r, 0, sizeof *r);
    if (packed_file_detect(o->model_path)) {
        if (o->split) return error_set(err, "--split: a packed model file is evaluated on the whole --data file");
        return eval_packed(o, r, err);
    }
    MambaModel model = {0};
    if (model_load(o->model_path, &model, err) != 0 ||
        (mamba_model_check_finite(&model, err) != 0 &&
         error_prefix(err, "%s: the model has a non-finite weight", o->model_path))) {
        if (model.params) mamba_model_free(&model);
        return -1;
    }
    long seqlen = o->seqlen, batch = o->batch;
    DataOptions options;
    RunConfig run;
    char tokens_path[4096];
    int rc = 0;
    bool series = mamba_head_reads_values(model.config.head);  // a forecaster: the data section of its run, always
    if (o->data_path && !series && o->split) {
        config_defaults(&run);
        rc = error_set(err, "--split: --data %s is evaluated whole (--split reads the held-out splits of a checkpoint's "
                       "own data)", o->data_path);
    } else if (o->data_path && !series) {
        config_defaults(&run);
        rc = file_data(o, &model, &options, tokens_path, sizeof tokens_path, err);
        snprintf(r->data, sizeof r->data, "%s", o->data_path);
    } else {
        rc = checkpoint_data(o->model_path, &run, &options, err);
        if (rc == 0) {
            if (o->data_path) options.path = o->data_path, options.kind = DATA_TIMESERIES;  // another CSV, the same protocol
            if (o->split) options.split = strcmp(o->split, "test") == 0 ? DATA_SPLIT_TEST : DATA_SPLIT_VALIDATION;
            if (seqlen == 0) seqlen = run.train.seqlen;
            if (batch == 0) batch = run.train.batch_size;  // the run's own batches: its numbers exactly
            snprintf(r->data, sizeof r->data, "%s", options.path ? options.path : data_kind_name(options.kind));
        }
    }
    if (batch == 0) batch = 8;
    if (seqlen == 0) seqlen = 256;
    r->seqlen = seqlen;
    Dataset data = {0};
    if (rc == 0) rc = data_open(&data, &options, (int)seqlen, err);
    config_free(&run);
    bool opened = rc == 0;
    if (rc == 0) rc = check_vocab(&data, r->data, &model.config, err);
    const MambaConfig *mc = &model.config;
    if (rc == 0 && series &&
        (mc->n_features != data_n_features(&data) || mc->horizon != data_horizon(&data) ||
         (mc->head == MAMBA_HEAD_DLINEAR && mc->input_len != seqlen)))
        rc = error_set(err, "%s forecasts %d steps of %d values (input length %d), but %s has %d values per step, "
                       "data.horizon %d, --seqlen %ld", o->model_path, mc->horizon, mc->n_features, mc->input_len, r->data,
                       data_n_features(&data), data_horizon(&data), seqlen);
    if (rc == 0 && series) {
        r->test_split = data.split == DATA_SPLIT_TEST;
        r->horizon = data_horizon(&data);
        r->n_features = data_n_features(&data);
    }
    uint64_t memory = memory_physical_bytes();
    char what[256];
    snprintf(what, sizeof what, "evaluating batches of %ld x %ld tokens", batch, seqlen);
    if (rc == 0 && memory)
        rc = mamba_check_memory(mamba_eval_bytes(&model.config, batch, seqlen), memory, what, "--batch, --seqlen",
                                "of this machine's memory", err);
    if (rc == 0) {
        Tape tape;
        tape_init(&tape, 64u << 20);
        int32_t *tokens = xmalloc(sizeof(int32_t) * (size_t)(batch * seqlen));
        int32_t *targets = xmalloc(sizeof(int32_t) * (size_t)(batch * seqlen));
        double start = now_seconds();
        r->evaluation = evaluate_model(&model, &data, &tape, (int)batch, (int)seqlen, o->max_batches, tokens, targets, true);
        r->seconds = now_seconds() - start;
        free(tokens);
        free(targets);
        tape_free(&tape);
    }
    if (opened) data_close(&data);
    mamba_model_free(&model);
    return rc;
}
