// Error messages and checked allocation (see error.h).
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int error_set(Error *err, const char *format, ...) {
    if (err) {
        va_list args;
        va_start(args, format);
        vsnprintf(err->message, sizeof err->message, format, args);
        va_end(args);
    }
    return -1;
}

int error_prefix(Error *err, const char *format, ...) {
    if (err) {
        char prefix[1024];
        char rest[sizeof err->message];
        va_list args;
        va_start(args, format);
        vsnprintf(prefix, sizeof prefix, format, args);
        va_end(args);
        snprintf(rest, sizeof rest, "%s", err->message);
        snprintf(err->message, sizeof err->message, "%.1000s: %.1040s", prefix, rest);
    }
    return -1;
}

static void out_of_memory(size_t size, const char *file, int line) {
    fprintf(stderr, "mambaprune: out of memory allocating %zu bytes at %s:%d\n", size, file, line);
    abort();
}

void *xmalloc_at(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) out_of_memory(size, file, line);
    return p;
}

void *xcalloc_at(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) out_of_memory(count * size, file, line);
    return p;
}

void *xrealloc_at(void *ptr, size_t size, const char *file, int line) {
    void *p = realloc(ptr, size ? size : 1);
    if (!p) out_of_memory(size, file, line);
    return p;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = xmalloc(n);
    memcpy(copy, s, n);
    return copy;
}
