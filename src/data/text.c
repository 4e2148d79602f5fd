// Reading token data from disk: raw bytes of a text file (vocab 256) or an llm.c token
// file (SPEC §7), validated in full so that a malformed file is a clear error naming the
// path and what was found against what was expected, never a silent misread.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

#define HEADER_BYTES (DATA_TOKENS_HEADER_INTS * 4)

static int32_t read_le_i32(const uint8_t *b) {
    return (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
}

// The whole file in a new buffer (owned by the caller) and its size.
int data_read_file(const char *path, uint8_t **out, long *size, Error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return error_set(err, "%s: cannot open: %s", path, strerror(errno));
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return error_set(err, "%s: cannot determine the file size (not a regular file?)", path);
    }
    uint8_t *buf = xmalloc((size_t)n);
    size_t got = fread(buf, 1, (size_t)n, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || got != (size_t)n) {
        free(buf);
        return error_set(err, "%s: read %zu of %ld bytes", path, got, n);
    }
    *out = buf;
    *size = n;
    return 0;
}

static int load_tokens(Dataset *ds, const char *path, const uint8_t *file, long size, int vocab, Error *err) {
    if (size < HEADER_BYTES)
        return error_set(err, "%s: %ld bytes, too short for the %d-byte header of an llm.c token file", path,
                         size, HEADER_BYTES);
    int32_t magic = read_le_i32(file), version = read_le_i32(file + 4), count = read_le_i32(file + 8);
    if (magic != DATA_TOKENS_MAGIC)
        return error_set(err, "%s: header[0] (magic) is %d, expected %d for an llm.c token file", path, magic,
                         DATA_TOKENS_MAGIC);
    if (version != DATA_TOKENS_VERSION)
        return error_set(err, "%s: header[1] (version) is %d, expected %d (uint16 token ids)", path, version,
                         DATA_TOKENS_VERSION);
    long payload = size - HEADER_BYTES;
    if (count < 1) return error_set(err, "%s: header[2] (token count) is %d, expected >= 1", path, count);
    if (2L * count > payload)
        return error_set(err,
                         "%s: header[2] says %d tokens (%ld bytes) but the file holds only %ld bytes after the header",
                         path, count, 2L * count, payload);
    if (2L * count < payload)
        return error_set(err, "%s: header[2] says %d tokens (%ld bytes) but %ld bytes follow the header", path, count,
                         2L * count, payload);
    ds->ids = xmalloc(sizeof(uint16_t) * (size_t)count);
    int max_id = 0;
    for (long i = 0; i < count; i++) {
        const uint8_t *b = file + HEADER_BYTES + 2 * i;
        uint16_t id = (uint16_t)(b[0] | b[1] << 8);
        ds->ids[i] = id;
        if (id > max_id) max_id = id;
    }
    if (vocab > 0 && max_id >= vocab) {
        for (long i = 0; i < count; i++)
            if (ds->ids[i] >= vocab)
                return error_set(err, "%s: token %ld has id %d, outside the given vocab of %d (max id in file %d)",
                                 path, i, ds->ids[i], vocab, max_id);
    }
    ds->kind = DATA_TOKENS;
    ds->n_tokens = count;
    ds->vocab_size = vocab > 0 ? vocab : max_id + 1;
    return 0;
}

int text_load(Dataset *ds, DataKind kind, const char *path, int vocab, Error *err) {
    uint8_t *file = NULL;
    long size = 0;
    if (data_read_file(path, &file, &size, err)) return -1;
    if (kind == DATA_FILE)
        kind = size >= 4 && read_le_i32(file) == DATA_TOKENS_MAGIC ? DATA_TOKENS : DATA_TEXT;
    int rc = 0;
    if (kind == DATA_TOKENS) {
        rc = load_tokens(ds, path, file, size, vocab, err);
        free(file);
    } else if (size == 0) {
        free(file);
        rc = error_set(err, "%s: the file is empty", path);
    } else if (vocab > 0 && vocab < 256) {
        free(file);
        rc = error_set(err, "%s: byte-level text needs data.vocab >= 256 (or 0), got %d", path, vocab);
    } else {
        ds->kind = DATA_TEXT;
        ds->bytes = file;  // the file's bytes are the tokens
        ds->n_tokens = size;
        ds->vocab_size = vocab > 0 ? vocab : 256;
    }
    return rc;
}
