// Writing llm.c token files (and reading one back as int32 ids): the output of
// `mambaprune tokenize`, and the cache of tokenized text. Layout in data.h: version 1
// with uint16 ids, or version 2 with uint32 ids when the vocabulary exceeds 65,536.
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "core/atomic_file.h"

static void put_le32(uint8_t *b, uint32_t v) {
    b[0] = (uint8_t)v, b[1] = (uint8_t)(v >> 8), b[2] = (uint8_t)(v >> 16), b[3] = (uint8_t)(v >> 24);
}

int data_tokens_write(const char *path, const int32_t *ids, long n, int vocab_size, Error *err) {
    if (n < 1 || n > INT32_MAX)
        return error_set(err, "%s: %ld tokens; a token file holds 1 to %d", path, n, INT32_MAX);
    int wide = vocab_size > 65536;
    size_t width = wide ? 4 : 2, header = 4 * DATA_TOKENS_HEADER_INTS;
    uint8_t *buf = xcalloc(header + width * (size_t)n, 1);
    put_le32(buf, DATA_TOKENS_MAGIC);
    put_le32(buf + 4, wide ? DATA_TOKENS_VERSION_U32 : DATA_TOKENS_VERSION);
    put_le32(buf + 8, (uint32_t)n);
    for (long i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab_size) {
            free(buf);
            return error_set(err, "%s: token %ld has id %d, outside the vocabulary of %d", path, i, ids[i], vocab_size);
        }
        uint8_t *b = buf + header + width * (size_t)i;
        if (wide) put_le32(b, (uint32_t)ids[i]);
        else b[0] = (uint8_t)ids[i], b[1] = (uint8_t)(ids[i] >> 8);
    }
    int rc = atomic_write_file(path, buf, header + width * (size_t)n, err);
    free(buf);
    return rc;
}

int data_tokens_read(const char *path, int32_t **ids, long *n, Error *err) {
    Dataset ds;
    memset(&ds, 0, sizeof ds);
    if (text_load(&ds, DATA_TOKENS, path, 0, err) != 0) {
        data_close(&ds);
        return -1;
    }
    int32_t *out = xmalloc(sizeof(int32_t) * (size_t)ds.n_tokens);
    for (long i = 0; i < ds.n_tokens; i++) out[i] = ds.ids ? ds.ids[i] : (int32_t)ds.ids32[i];
    *ids = out;
    *n = ds.n_tokens;
    data_close(&ds);
    return 0;
}
