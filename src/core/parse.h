// Integers from text with range checks, for command-line flags and similar input.
#ifndef MP_CORE_PARSE_H
#define MP_CORE_PARSE_H

#include "core/error.h"

// Parses text as a decimal integer (optional sign, digits only, nothing after) in
// [min, max] into *out; else -1 and "WHAT: expected an integer in [min, max], got 'text'"
// (or "... out of range" for values past what a long long holds).
int parse_integer(const char *what, const char *text, long long min, long long max, long long *out, Error *err);

#endif
