// The checks of the C tests: one line per check, "OK" or "NOT OK" and what was checked,
// a count of failures, and a closing line whose result is main's exit code.
#ifndef MP_TESTS_CHECK_H
#define MP_TESTS_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

static int check_failures = 0;

static void check(bool ok, const char *format, ...) __attribute__((format(printf, 2, 3), unused));
static void check(bool ok, const char *format, ...) {
    va_list args;
    va_start(args, format);
    printf("%s ", ok ? "OK    " : "NOT OK");
    vprintf(format, args);
    printf("\n");
    va_end(args);
    if (!ok) check_failures++;
}

// A failure (rc -1) whose message holds every one of the needles (NULL-terminated).
static __attribute__((unused, sentinel)) void check_error(const char *label, int rc, const Error *err, ...) {
    bool ok = rc == -1;
    va_list needles;
    va_start(needles, err);
    for (const char *needle; (needle = va_arg(needles, const char *)) != NULL;)
        ok = ok && strstr(err->message, needle) != NULL;
    va_end(needles);
    check(ok, "%s: rc %d, \"%s\"", label, rc, rc ? err->message : "");
}

// Prints "PASSED: what: 0 check(s) failed" (or FAILED) and returns the exit code.
static __attribute__((unused)) int check_summary(const char *what) {
    printf("%s: %s: %d check(s) failed\n", check_failures ? "FAILED" : "PASSED", what, check_failures);
    return check_failures ? 1 : 0;
}

#endif
