// Files written all-or-nothing: the bytes go to a temporary file in the same folder,
// which is flushed, fsync'ed and renamed over the destination, so that a reader (or a
// crash) sees either the old file or the complete new one, never a half-written one.
#ifndef MP_CORE_ATOMIC_FILE_H
#define MP_CORE_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"

typedef struct AtomicFile {
    FILE *fp;                 // the temporary file, open for writing
    char *path;               // the destination
    char *temp_path;          // "<path>.tmp.XXXXXX" in the same folder
} AtomicFile;

// mkdir -p: creates path and its missing parents (0755).
int make_directories(const char *path, Error *err);
// Creates the temporary file next to path (the folder must exist).
int atomic_file_begin(AtomicFile *file, const char *path, Error *err);
int atomic_file_write(AtomicFile *file, const void *data, size_t size, Error *err);
// Flushes, fsyncs, renames into place and fsyncs the folder. On failure the temporary
// file is removed and the destination is left as it was. Frees the AtomicFile either way.
int atomic_file_commit(AtomicFile *file, Error *err);
// Closes and removes the temporary file; the destination is untouched.
void atomic_file_abort(AtomicFile *file);

// The three steps above for a buffer already in memory.
int atomic_write_file(const char *path, const void *data, size_t size, Error *err);

#endif
