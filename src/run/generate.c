// Generation with the inference model (see generate.h).
#include "run/generate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autograd/ops.h"       // defines: matmul_warm_up
#include "run/model_source.h"   // defines: model_load
#include "core/timer.h"
#include "run/packed_file.h"

// Every linear of a loaded packed file made dense (for --dense on a packed file).
static void make_dense(InferModel *model) {
    for (int i = 0; i < model->config.n_layer; i++) {
        for (int k = 0; k < INFER_N_LINEARS; k++) {
            PackedMatrix *m = &model->layers[i].linear[k];
            if (m->format == PACKED_DENSE) continue;
            float *w = xmalloc(sizeof(float) * (size_t)m->rows * (size_t)m->cols);
            packed_matrix_unpack(m, w);
            int rows = m->rows, cols = m->cols;
            packed_matrix_free(m);
            Error err;
            packed_matrix_pack(m, PACKED_DENSE, w, NULL, rows, cols, &err);  // dense cannot fail
            free(w);
        }
    }
}

int infer_load(const char *path, bool force_dense, InferModel *model, Error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return error_set(err, "%s: cannot open the model: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode) && packed_file_detect(path)) {
        if (packed_file_load(path, model, err) != 0) return -1;
        if (force_dense) make_dense(model);
        return 0;
    }
    MambaModel dense;
    if (model_load(path, &dense, err) != 0) return -1;
    if (mamba_head_reads_values(dense.config.head)) {  // heads.h: no tokens in or out
        mamba_model_free(&dense);
        return error_set(err, "%s: a forecaster (model.head forecast or dlinear) has no token head; the inference model, "
                         "generate and export --sparse are not implemented for it (eval is)", path);
    }
    if (mamba_model_check_finite(&dense, err) != 0) {
        mamba_model_free(&dense);
        return error_prefix(err, "%s", path);
    }
    InferOptions options = {.force_dense = force_dense};
    int rc = infer_model_build(model, &dense, NULL, &options, err);
    mamba_model_free(&dense);
    return rc == 0 ? 0 : error_prefix(err, "%s", path);
}

bool generate_byte_level(const MambaConfig *c) {
    int pad = c->pad_vocab_size_multiple > 8 ? c->pad_vocab_size_multiple : 8;
    return c->vocab_size >= 256 && c->vocab_size <= 256 + pad;
}

int generate_encode_prompt(const MambaConfig *c, Tokenizer *tokenizer, const char *text, size_t length,
                           int32_t **tokens, int *n_tokens, Error *err) {
    if (length == 0) return error_set(err, "the prompt is empty: give at least one byte or token");
    if (length > 100000000) return error_set(err, "the prompt has %zu bytes, more than 100000000", length);
    if (tokenizer) {
        TokenIds ids = {0};
        if (tokenizer_encode(tokenizer, (const uint8_t *)text, length, &ids, err) != 0) {
            free(ids.ids);
            return -1;
        }
        for (size_t i = 0; i < ids.n; i++)
            if (ids.ids[i] >= c->vocab_size) {
                int id = ids.ids[i];
                free(ids.ids);
                return error_set(err, "the tokenizer gave id %d, outside the model's vocabulary of %d", id,
                                 c->vocab_size);
            }
        *tokens = ids.ids;
        *n_tokens = (int)ids.n;
        return ids.n > 0 ? 0 : error_set(err, "the prompt gave no tokens");
    }
    if (!generate_byte_level(c))
        return error_set(err, "the model's vocabulary has %d tokens and it has no tokenizer.json, so its tokens are "
                              "not bytes: give the prompt as --prompt-tokens ID,ID,...", c->vocab_size);
    *tokens = xmalloc(sizeof(int32_t) * length);
    for (size_t i = 0; i < length; i++) (*tokens)[i] = (unsigned char)text[i];
    *n_tokens = (int)length;
    return 0;
}

int generate_parse_token_ids(const MambaConfig *c, const char *text, int32_t **tokens, int *n_tokens, Error *err) {
    size_t n = 1;
    for (const char *p = text; *p; p++) n += *p == ',';
    int32_t *ids = xmalloc(sizeof(int32_t) * n);
    int count = 0;
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0') || errno != 0) {
            free(ids);
            return error_set(err, "--prompt-tokens: item %zu: expected a token id (comma-separated integers), got '%.*s'",
                             i + 1, (int)strcspn(p, ","), p);
        }
        if (v < 0 || v >= c->vocab_size) {
            free(ids);
            return error_set(err, "--prompt-tokens: item %zu: token id %ld is outside the vocabulary [0, %d)", i + 1, v,
                             c->vocab_size);
        }
        ids[count++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    *tokens = ids;
    *n_tokens = count;
    return 0;
}

void generate_print_token(TokenPrinter *p, int32_t token) {
    const uint8_t *bytes;
    size_t n;
    Error err;
    if (p->tokenizer && tokenizer_token_bytes(p->tokenizer, token, &bytes, &n, &err) == 0) {
        // pending holds at most 3 bytes (an unfinished character); a token adds its own.
        uint8_t buf[sizeof p->pending + 256];
        size_t have = p->n_pending;
        memcpy(buf, p->pending, have);
        for (size_t at = 0; at < n;) {
            size_t take = n - at < 256 ? n - at : 256;
            memcpy(buf + have, bytes + at, take);
            have += take, at += take;
            size_t done = at < n ? have : tokenizer_utf8_complete(buf, have);
            fwrite(buf, 1, done, p->out);
            memmove(buf, buf + done, have - done);
            have -= done;
        }
        memcpy(p->pending, buf, have);
        p->n_pending = have;
    } else if (generate_byte_level(p->config) && token < 256) {
        fputc(token, p->out);
    } else {
        fprintf(p->out, "%d ", token);
    }
    fflush(p->out);
}

void generate_print_finish(TokenPrinter *p) {
    fwrite(p->pending, 1, p->n_pending, p->out);
    p->n_pending = 0;
    fflush(p->out);
}

int generate_run_batch(const InferModel *model, const int32_t *prompt, int n_prompt, int n_tokens, Sampler *samplers,
                       int batch, GenerateEmitSeq emit, void *context, GenerateStats *stats, Error *err) {
    const MambaConfig *c = &model->config;
    memset(stats, 0, sizeof *stats);
    if (n_prompt < 1) return error_set(err, "the prompt is empty: give at least one token");
    if (batch < 1 || batch > GENERATE_MAX_BATCH)
        return error_set(err, "--batch %d: expected 1 to %d sequences", batch, GENERATE_MAX_BATCH);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= c->vocab_size)
            return error_set(err, "prompt token %d is %d, outside the vocabulary [0, %d)", i, prompt[i], c->vocab_size);
    InferState state;
    infer_state_create(&state, c, batch);
    float *logits = xmalloc(sizeof(float) * (size_t)batch * c->vocab_padded);
    int32_t *prompts = xmalloc(sizeof(int32_t) * (size_t)batch * n_prompt), next[GENERATE_MAX_BATCH];
    for (int b = 0; b < batch; b++) memcpy(prompts + (size_t)b * n_prompt, prompt, sizeof(int32_t) * n_prompt);
    matmul_warm_up();  // oneDNN's one-time kernel generation stays out of the prompt's time
    double start = now_seconds();
    int rc = infer_prompt(model, &state, prompts, batch, n_prompt, logits, false, err);
    stats->prompt_s = now_seconds() - start;
    stats->prompt_tokens = batch * n_prompt;
    start = now_seconds();
    for (int i = 0; rc == 0 && i < n_tokens; i++) {
        for (int b = 0; b < batch; b++) {
            next[b] = sampler_next(&samplers[b], logits + (size_t)b * c->vocab_padded);
            emit(context, b, next[b]);
        }
        stats->generated += batch;
        if (i + 1 < n_tokens) rc = infer_step(model, &state, next, batch, logits, err);
    }
    stats->decode_s = now_seconds() - start;
    free(logits), free(prompts);
    infer_state_free(&state);
    return rc;
}

typedef struct OneSequence {
    GenerateEmit emit;
    void *context;
} OneSequence;

static void emit_one(void *context, int sequence, int32_t token) {
    (void)sequence;
    OneSequence *one = context;
    one->emit(one->context, token);
}

int generate_run(const InferModel *model, const int32_t *prompt, int n_prompt, int n_tokens, Sampler *sampler,
                 GenerateEmit emit, void *context, GenerateStats *stats, Error *err) {
    OneSequence one = {emit, context};
    return generate_run_batch(model, prompt, n_prompt, n_tokens, sampler, 1, emit_one, &one, stats, err);
}

void generate_report_tensors(FILE *out, const InferModel *model) {
    int n = model->config.n_layer * INFER_N_LINEARS;
    InferTensorInfo *info = xcalloc((size_t)n, sizeof *info);
    n = infer_model_tensors(model, info);
    size_t bytes = 0, dense_bytes = 0;
    for (int k = 0; k < INFER_N_LINEARS; k++) {
        fprintf(out, "  %-8s", infer_linear_name((InferLinear)k));
        for (int f = 0; f < PACKED_N_FORMATS; f++) {
            int count = 0, prompt_sparse = 0;
            double density = 0.0;
            for (int i = k; i < n; i += INFER_N_LINEARS) {
                if (info[i].format != (PackedFormat)f) continue;
                count++;
                prompt_sparse += info[i].prompt_sparse;
                density += info[i].density;
            }
            if (count == 0) continue;
            fprintf(out, " %s x%d (mean density %.3f", packed_format_name((PackedFormat)f), count, density / count);
            if (f != PACKED_DENSE) fprintf(out, ", prompt kernel sparse x%d", prompt_sparse);
            fprintf(out, ")");
        }
        fprintf(out, "\n");
    }
    for (int i = 0; i < n; i++) {
        bytes += info[i].bytes;
        dense_bytes += packed_bytes(PACKED_DENSE, info[i].rows, info[i].cols, 0);
    }
    fprintf(out, "  linears %.1f MB (dense %.1f MB, %.3fx); whole model %.1f MB\n", bytes / 1e6, dense_bytes / 1e6,
            dense_bytes ? (double)bytes / (double)dense_bytes : 0.0, infer_model_bytes(model) / 1e6);
    free(info);
}

void process_memory_kb(long *rss_kb, long *hwm_kb) {
    *rss_kb = *hwm_kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) *rss_kb = strtol(line + 6, NULL, 10);
        if (strncmp(line, "VmHWM:", 6) == 0) *hwm_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}
