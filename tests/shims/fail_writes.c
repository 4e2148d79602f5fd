// Test-only LD_PRELOAD shim that simulates a full disk: write(2) to a file whose path
// contains MP_FAIL_WRITE_PATH fails with ENOSPC once MP_FAIL_WRITE_AFTER bytes have gone to
// such files. Built as a shared library for tests/test_hardening.sh only, never linked into
// mambaprune. (Its byte counter is the shim's own state, read once at the first write.)
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long long budget = -1;  // -1: not read yet; -2: off
static const char *match;

// 0 if count more bytes to fd may be written, else -1 with errno ENOSPC.
static int take(int fd, size_t count) {
    if (budget == -1) {
        const char *after = getenv("MP_FAIL_WRITE_AFTER");
        match = getenv("MP_FAIL_WRITE_PATH");
        budget = after && match ? atoll(after) : -2;
    }
    if (budget >= 0 && fd > 2) {
        char link[64], path[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof path - 1);
        if (n > 0) {
            path[n] = '\0';
            if (strstr(path, match)) {
                if ((long long)count > budget) {
                    budget = 0;  // the disk stays full
                    errno = ENOSPC;
                    return -1;
                }
                budget -= (long long)count;
            }
        }
    }
    return 0;
}

ssize_t write(int fd, const void *buf, size_t count) {
    static ssize_t (*real_write)(int, const void *, size_t);
    if (!real_write) real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    return take(fd, count) != 0 ? -1 : real_write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
    if (!real_pwrite) real_pwrite = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    return take(fd, count) != 0 ? -1 : real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) { return pwrite(fd, buf, count, offset); }
