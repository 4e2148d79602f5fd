// ListOps (Nangia & Bowman 2018, as generated for the Long Range Arena, Tay et al. 2020):
// prefix expressions over the digits 0-9 with [MAX, [MIN, [MED (integer median), [SM (sum
// modulo 10), closed by ]; nesting depth up to 10, 2 to 10 arguments per operator; the
// label is the value. Generated from an rng stream by rejection: an expression whose
// token count falls outside [min_len, max_len] is drawn again. Tokens are those of LRA's
// released data with the parentheses removed (as S4's loader does).
#include <stdbool.h>
#include <stdlib.h>

#include "data/data_internal.h"

enum { MAX_DEPTH = 10, MAX_ARGS = 10 };
// LRA's VALUE_P: below the depth limit an argument is an operator with probability 0.25.
#define OPERATOR_P 0.25

static int apply(int op, const int *v, int n) {
    int r = v[0];
    switch (op) {
    case LISTOPS_MAX: for (int i = 1; i < n; i++) r = v[i] > r ? v[i] : r; return r;
    case LISTOPS_MIN: for (int i = 1; i < n; i++) r = v[i] < r ? v[i] : r; return r;
    case LISTOPS_SM: r = 0; for (int i = 0; i < n; i++) r += v[i]; return r % 10;
    default: {  // MED: numpy's median truncated to an integer, as LRA computes it
        int s[MAX_ARGS];
        for (int i = 0; i < n; i++) s[i] = v[i];
        for (int i = 1; i < n; i++)  // insertion sort of at most 10 values
            for (int j = i; j > 0 && s[j - 1] > s[j]; j--) { int t = s[j]; s[j] = s[j - 1]; s[j - 1] = t; }
        return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
    }
}

// One (sub)expression at depth (the root is depth 1) appended to tokens[*n ...]; returns
// its value, or -1 once the expression has grown past cap tokens (the draw is abandoned).
static int expression(Rng *rng, int depth, bool force_operator, int32_t *tokens, int *n, int cap) {
    bool op = force_operator || (depth < MAX_DEPTH && rng_uniform_double(rng) < OPERATOR_P);
    if (*n >= cap) return -1;
    if (!op) {
        int v = (int)rng_below(rng, 10);
        tokens[(*n)++] = LISTOPS_DIGIT0 + v;
        return v;
    }
    int n_args = 2 + (int)rng_below(rng, MAX_ARGS - 1);
    int which = LISTOPS_MAX + (int)rng_below(rng, 4);
    tokens[(*n)++] = which;
    int values[MAX_ARGS];
    for (int i = 0; i < n_args; i++) {
        values[i] = expression(rng, depth + 1, false, tokens, n, cap);
        if (values[i] < 0) return -1;
    }
    if (*n >= cap) return -1;
    tokens[(*n)++] = LISTOPS_CLOSE;
    return apply(which, values, n_args);
}

int listops_sequence(Rng *rng, int min_len, int max_len, int32_t *tokens, int *length) {
    for (;;) {
        int n = 0;
        int value = expression(rng, 1, true, tokens, &n, max_len);
        if (value >= 0 && n >= min_len && n <= max_len) {
            *length = n;
            return value;
        }
    }
}

void listops_row(Rng *rng, int min_len, int max_len, int L, int32_t *tokens, int32_t *targets) {
    int n;
    int label = listops_sequence(rng, min_len, max_len, tokens, &n);
    for (int t = n; t < L; t++) tokens[t] = LISTOPS_PAD;
    for (int t = 0; t < L; t++) targets[t] = -1;
    targets[n - 1] = label;
}
