// Shared by the fuzz targets whose reader takes a path: the fuzzer's bytes are written to a
// file in a per-process folder under /dev/shm (or /tmp), which the target then reads.
#ifndef MP_FUZZ_FILE_H
#define MP_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Writes data to DIR/name, DIR made once per process; returns the path (static storage:
// a fuzz target runs one input at a time) or NULL.
static const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size) {
    static char dir[256], path[512];
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/mp-fuzz-%ld", base, (long)getpid());
        mkdir(dir, 0700);
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    size_t written = size ? fwrite(data, 1, size, f) : 0;
    if (fclose(f) != 0 || written != size) return NULL;
    return path;
}

#endif
