// Errors as values. A library function that can fail returns 0 on success and -1 on
// failure, having written a message into the caller's Error; it never exits. Only the
// command-line front end decides how to report a failure and with which exit code.
#ifndef MP_CORE_ERROR_H
#define MP_CORE_ERROR_H

#include <stddef.h>

typedef struct Error {
    char message[2048];
} Error;

// Writes a printf-style message into err (if err is not NULL) and returns -1, so that
// `return error_set(err, "...")` reports and fails in one line.
int error_set(Error *err, const char *format, ...) __attribute__((format(printf, 2, 3)));

// Prepends "context: " to the message already in err; returns -1.
int error_prefix(Error *err, const char *format, ...) __attribute__((format(printf, 2, 3)));

// Allocation that cannot fail quietly: on out-of-memory it prints the size and the
// caller's file:line and aborts, since no caller can do anything useful then.
#define xmalloc(size) xmalloc_at((size), __FILE__, __LINE__)
#define xcalloc(count, size) xcalloc_at((count), (size), __FILE__, __LINE__)
#define xrealloc(ptr, size) xrealloc_at((ptr), (size), __FILE__, __LINE__)
void *xmalloc_at(size_t size, const char *file, int line);
void *xcalloc_at(size_t count, size_t size, const char *file, int line);
void *xrealloc_at(void *ptr, size_t size, const char *file, int line);
char *xstrdup(const char *s);

#endif
