// Errors as values. A library function that can fail returns 0 on success and -1 on
// failure, having written a message into the caller's Error; it never exits. Only the
// command-line front end decides how to report a failure and with which exit code.
#ifndef MP_CORE_ERROR_H
#define MP_CORE_ERROR_H

#include <stddef.h>

// Room for the longest message this project composes (a path of up to 4096 bytes, the
// reason and its context) with space to spare. A message that would still not fit is cut
// at a character boundary and ends with ERROR_CUT_MARK, never silently.
#define ERROR_MESSAGE_BYTES 16384
#define ERROR_CUT_MARK " [... message cut]"

typedef struct Error {
    char message[ERROR_MESSAGE_BYTES];
} Error;

// Writes a printf-style message into err (if err is not NULL) and returns -1, so that
// `return error_set(err, "...")` reports and fails in one line. Bytes that could upset a
// terminal (control characters other than newline and tab, bytes that are not UTF-8) are
// written as \xNN, so a message may quote untrusted text (a file's header, a name).
int error_set(Error *err, const char *format, ...) __attribute__((format(printf, 2, 3)));

// Prepends "context: " to the message already in err; returns -1. The reason (the message
// already there) is kept whole; only an over-long context would be shortened.
int error_prefix(Error *err, const char *format, ...) __attribute__((format(printf, 2, 3)));

// Writes text into out (size bytes) with the escaping of error_set; returns out.
char *error_escape(char *out, size_t size, const char *text);

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
