// Reading token data from disk: raw bytes of a text file (vocab 256) or an llm.c token
// file (docs/DESIGN.md#files), validated in full so that a malformed file is a clear error naming the
// path and what was found against what was expected, never a silent misread.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/memory.h"
#include "data/data_internal.h"
#include "core/input_file.h"

#define HEADER_BYTES (DATA_TOKENS_HEADER_INTS * 4)

static int32_t read_le_i32(const uint8_t *b) {
    return (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
}

// A data file is read whole and (token files) copied once: at most half of the memory.
static uint64_t data_file_max_bytes(void) {
    uint64_t memory = memory_physical_bytes();
    return memory ? memory / 2 : (1ull << 40);
}

// The whole file in a new buffer (owned by the caller) and its size, checked to be a
// regular file of a plausible size first.
int data_read_file(const char *path, uint8_t **out, long *size, Error *err) {
    char *bytes = NULL;
    size_t n_bytes = 0;
    if (input_file_read(path, "data file", data_file_max_bytes(), &bytes, &n_bytes, err)) return -1;
    *out = (uint8_t *)bytes;
    *size = (long)n_bytes;
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
    if (version != DATA_TOKENS_VERSION && version != DATA_TOKENS_VERSION_U32)
        return error_set(err, "%s: header[1] (version) is %d, expected %d (uint16 token ids) or %d (uint32 token ids)",
                         path, version, DATA_TOKENS_VERSION, DATA_TOKENS_VERSION_U32);
    long width = version == DATA_TOKENS_VERSION ? 2 : 4;
    long payload = size - HEADER_BYTES;
    if (count < 1) return error_set(err, "%s: header[2] (token count) is %d, expected >= 1", path, count);
    if (width * count > payload)
        return error_set(err,
                         "%s: header[2] says %d tokens (%ld bytes) but the file holds only %ld bytes after the header",
                         path, count, width * count, payload);
    if (width * count < payload)
        return error_set(err, "%s: header[2] says %d tokens (%ld bytes) but %ld bytes follow the header", path, count,
                         width * count, payload);
    if (width == 2) ds->ids = xmalloc(sizeof(uint16_t) * (size_t)count);
    else ds->ids32 = xmalloc(sizeof(uint32_t) * (size_t)count);
    long max_id = 0;
    for (long i = 0; i < count; i++) {
        const uint8_t *b = file + HEADER_BYTES + width * i;
        uint32_t id = width == 2 ? (uint32_t)(b[0] | b[1] << 8) : (uint32_t)read_le_i32(b);
        if (width == 2) ds->ids[i] = (uint16_t)id;
        else ds->ids32[i] = id;
        if (id > INT32_MAX - 1) {
            free(ds->ids32);
            ds->ids32 = NULL;
            return error_set(err, "%s: token %ld has id %u, beyond the int32 range", path, i, id);
        }
        if ((long)id > max_id) max_id = (long)id;
    }
    if (vocab > 0 && max_id >= vocab) {
        for (long i = 0; i < count; i++) {
            long id = width == 2 ? ds->ids[i] : (long)ds->ids32[i];
            if (id >= vocab) {
                free(ds->ids);
                free(ds->ids32);
                ds->ids = NULL, ds->ids32 = NULL;
                return error_set(err, "%s: token %ld has id %ld, outside the given vocab of %d (max id in file %ld)",
                                 path, i, id, vocab, max_id);
            }
        }
    }
    ds->kind = DATA_TOKENS;
    ds->n_tokens = count;
    ds->vocab_size = vocab > 0 ? vocab : (int)max_id + 1;
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
