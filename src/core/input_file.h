// Input files checked before they are read: each must be a regular file (not a folder, a
// device or a FIFO, which have no size and can block or return endless bytes) of a
// plausible size for what it is, and is then read whole with every read checked.
#ifndef MP_CORE_INPUT_FILE_H
#define MP_CORE_INPUT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

// Size limits of the small text inputs (a config, a transformers config.json or index).
#define INPUT_TEXT_MAX_BYTES (64ull << 20)

// 0 and the file's size in *size (may be NULL) if path is a regular file of at most
// max_bytes; else -1 and a message "PATH: <what>: why", e.g. "is a directory".
int input_file_check(const char *path, const char *what, uint64_t max_bytes, uint64_t *size, Error *err);

// input_file_check, then the whole file into a new buffer (owned by the caller) with a NUL
// byte after its size bytes.
int input_file_read(const char *path, const char *what, uint64_t max_bytes, char **data, size_t *size, Error *err);

#endif
