// Tokenizing and detokenizing files, and the tokenized-text cache (see text_tokens.h).
#include "run/text_tokens.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data.h"
#include "core/atomic_file.h"
#include "tokenizer/tokenizer.h"

static int read_text(const char *path, uint8_t **out, size_t *n, Error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return error_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return error_set(err, "%s: not a regular file", path);
    }
    uint8_t *buf = xmalloc((size_t)st.st_size + 1);
    size_t got = fread(buf, 1, (size_t)st.st_size, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || got != (size_t)st.st_size) {
        free(buf);
        return error_set(err, "%s: read %zu of %lld bytes", path, got, (long long)st.st_size);
    }
    if (got == 0) {
        free(buf);
        return error_set(err, "%s: the file is empty (no text to tokenize)", path);
    }
    *out = buf;
    *n = got;
    return 0;
}

// Encodes text[0..n) and writes the token file.
static int encode_to_file(Tokenizer *t, const uint8_t *text, size_t n, const char *text_path, const char *out_path,
                          long *n_tokens, Error *err) {
    TokenIds ids = {0};
    int rc = tokenizer_encode(t, text, n, &ids, err);
    if (rc == 0 && ids.n == 0) rc = error_set(err, "%s: the text gives no tokens", text_path);
    if (rc == 0) rc = data_tokens_write(out_path, ids.ids, (long)ids.n, tokenizer_vocab_size(t), err);
    if (rc == 0 && n_tokens) *n_tokens = (long)ids.n;
    free(ids.ids);
    return rc;
}

int tokenize_file(const char *tokenizer_path, const char *text_path, const char *out_path, long *n_tokens,
                  int *vocab_size, Error *err) {
    Tokenizer *t;
    if (tokenizer_load(&t, tokenizer_path, err) != 0) return -1;
    uint8_t *text = NULL;
    size_t n = 0;
    int rc = read_text(text_path, &text, &n, err);
    if (rc == 0) rc = encode_to_file(t, text, n, text_path, out_path, n_tokens, err);
    if (rc == 0 && vocab_size) *vocab_size = tokenizer_vocab_size(t);
    free(text);
    tokenizer_free(t);
    return rc;
}

int detokenize_file(const char *tokenizer_path, const char *tokens_path, const char *out_path, Error *err) {
    Tokenizer *t;
    if (tokenizer_load(&t, tokenizer_path, err) != 0) return -1;
    int32_t *ids = NULL;
    long n = 0;
    char *text = NULL;
    size_t len = 0;
    int rc = data_tokens_read(tokens_path, &ids, &n, err);
    if (rc == 0 && tokenizer_decode(t, ids, (size_t)n, 0, &text, &len, err) != 0)
        rc = error_prefix(err, "%s", tokens_path);
    if (rc == 0) rc = atomic_write_file(out_path, text, len, err);
    free(text);
    free(ids);
    tokenizer_free(t);
    return rc;
}

int tokens_for_model(const char *model_path, const char *text_path, const char *cache_dir, char *out, size_t cap,
                     int *reused, Error *err) {
    char tokenizer_path[4096];
    if (!tokenizer_find(model_path, tokenizer_path, sizeof tokenizer_path)) return 0;
    Tokenizer *t;
    if (tokenizer_load(&t, tokenizer_path, err) != 0) return -1;
    uint8_t *text = NULL;
    size_t n = 0;
    int rc = read_text(text_path, &text, &n, err);
    if (rc == 0) {
        uint64_t key = tokenizer_fnv1a(tokenizer_hash(t), text, n);
        const char *slash = strrchr(text_path, '/');
        const char *name = slash ? slash + 1 : text_path;
        int w = snprintf(out, cap, "%s/%s.%016" PRIx64 ".tokens.bin", cache_dir, name, key);
        if (w < 0 || (size_t)w >= cap) rc = error_set(err, "%s: the cache path is too long", cache_dir);
    }
    struct stat st;
    *reused = rc == 0 && stat(out, &st) == 0 && S_ISREG(st.st_mode);
    if (rc == 0 && !*reused) rc = make_directories(cache_dir, err);
    if (rc == 0 && !*reused) rc = encode_to_file(t, text, n, text_path, out, NULL, err);
    if (rc != 0) error_prefix(err, "tokenizing %s with %s", text_path, tokenizer_path);
    free(text);
    tokenizer_free(t);
    return rc == 0 ? 1 : -1;
}

static int copy_file(const char *from, const char *to, Error *err) {
    uint8_t *buf = NULL;
    size_t n = 0;
    if (read_text(from, &buf, &n, err) != 0) return -1;
    int rc = atomic_write_file(to, buf, n, err);
    free(buf);
    return rc;
}

int tokenizer_files_copy(const char *model_path, const char *to_dir, int *copied, Error *err) {
    static const char *const names[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};
    char found[4096];
    *copied = 0;
    if (!tokenizer_find(model_path, found, sizeof found)) return 0;
    size_t dir_len = strlen(found) - strlen("tokenizer.json");  // keeps the trailing '/'
    if (make_directories(to_dir, err) != 0) return -1;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char from[4096 + 64], to[4096 + 64];
        snprintf(from, sizeof from, "%.*s%s", (int)dir_len, found, names[i]);
        snprintf(to, sizeof to, "%s/%s", to_dir, names[i]);
        struct stat st;
        if (stat(from, &st) != 0) continue;  // the optional files
        if (strcmp(from, to) == 0) continue;
        if (copy_file(from, to, err) != 0) return error_prefix(err, "copying the tokenizer files");
        ++*copied;
    }
    return 0;
}

int run_text_tokens(const char *model_init, const char *run_dir, DataOptions *options, char *path_buf, size_t cap,
                    Error *err) {
    if (options->kind != DATA_TEXT || !options->path || !model_init || strcmp(model_init, "random") == 0) return 0;
    char cache[4096];
    snprintf(cache, sizeof cache, "%s/tokens", run_dir);
    int reused;
    int rc = tokens_for_model(model_init, options->path, cache, path_buf, cap, &reused, err);
    if (rc <= 0) return rc;
    int copied;
    if (tokenizer_files_copy(model_init, run_dir, &copied, err) != 0) return -1;
    options->kind = DATA_TOKENS;
    options->path = path_buf;
    return 0;
}
