// Error messages and checked allocation (see error.h).
#include "core/error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Length of the UTF-8 sequence starting at s (1 to 4), or 0 if s does not start a valid
// one (overlong forms, surrogates and values past U+10FFFF included).
static size_t utf8_sequence(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (n == 0 || c > 0xf4) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && s[1] < 0xa0) return 0;  // overlong
    if (c == 0xed && s[1] >= 0xa0) return 0; // surrogate
    if (c == 0xf0 && s[1] < 0x90) return 0;  // overlong
    if (c == 0xf4 && s[1] >= 0x90) return 0; // past U+10FFFF
    return n;
}

// Copies text into out, escaping as error.h says; when it does not fit, cuts at a
// character boundary and ends with ERROR_CUT_MARK.
char *error_escape(char *out, size_t size, const char *text) {
    if (size == 0) return out;
    const size_t mark = sizeof ERROR_CUT_MARK - 1;
    const size_t room = size - 1;
    size_t used = 0;
    bool cut = false;
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        size_t n = utf8_sequence(s);
        bool printable = n > 1 || (n == 1 && (*s >= 0x20 || *s == '\n' || *s == '\t') && *s != 0x7f);
        size_t need = printable ? n : 4;
        // Keep room for the mark unless the rest fits exactly.
        if (used + need > room || (used + need + mark > room && strlen((const char *)s) > room - used)) {
            cut = true;
            break;
        }
        if (printable) {
            memcpy(out + used, s, n);
        } else {
            snprintf(out + used, 5, "\\x%02x", *s);
            n = 1;
        }
        used += need;
        s += n;
    }
    if (cut && used + mark <= room) {
        memcpy(out + used, ERROR_CUT_MARK, mark);
        used += mark;
    }
    out[used] = '\0';
    return out;
}

int error_set(Error *err, const char *format, ...) {
    if (!err) return -1;
    va_list args;
    va_start(args, format);
    int n = vsnprintf(NULL, 0, format, args);
    va_end(args);
    char *raw = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!raw) {
        snprintf(err->message, sizeof err->message, "(an error message that could not be formatted: %s)", format);
        return -1;
    }
    va_start(args, format);
    vsnprintf(raw, (size_t)n + 1, format, args);
    va_end(args);
    error_escape(err->message, sizeof err->message, raw);
    free(raw);
    return -1;
}

int error_prefix(Error *err, const char *format, ...) {
    if (!err) return -1;
    char prefix[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(prefix, sizeof prefix, format, args);
    va_end(args);
    size_t rest = strlen(err->message);
    size_t room = sizeof err->message - 1;
    // The reason stays whole: the context gives way (cut with the mark) if both do not fit.
    char escaped[sizeof prefix + sizeof ERROR_CUT_MARK];
    size_t prefix_room = rest + 2 < room ? room - rest - 2 : 0;
    if (prefix_room > sizeof escaped) prefix_room = sizeof escaped;
    error_escape(escaped, prefix_room ? prefix_room : 1, prefix);
    size_t p = strlen(escaped);
    if (p == 0) return -1;
    memmove(err->message + p + 2, err->message, rest + 1);
    memcpy(err->message, escaped, p);
    memcpy(err->message + p, ": ", 2);
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
