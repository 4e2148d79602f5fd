// Integers from text with range checks (see parse.h).
#include "core/parse.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>

int parse_integer(const char *what, const char *text, long long min, long long max, long long *out, Error *err) {
    const char *p = text;
    if (*p == '+' || *p == '-') p++;
    bool digits = *p != '\0';
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q)) digits = false;
    if (!digits) return error_set(err, "%s: expected an integer in [%lld, %lld], got '%s'", what, min, max, text);
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (errno == ERANGE || v < min || v > max)
        return error_set(err, "%s: %s is out of range, expected an integer in [%lld, %lld]", what, text, min, max);
    *out = v;
    return 0;
}
