// The synthetic tasks of the Mamba paper, one sequence at a time from an rng: selective
// copying and multi-query associative recall. The layouts are drawn in data.h; only
// answer positions carry a target, every other target is -1.
#include <assert.h>

#include "data/data_internal.h"

void synthetic_selective_copying(Rng *rng, int L, int n, int alphabet, int32_t *tokens, int32_t *targets) {
    assert(n >= 1 && L >= 2 * n && alphabet >= 1);
    int context = L - n;
    // Selection sampling (Knuth's algorithm S): position p of the context gets a data token
    // with probability (still to place) / (positions left), which places exactly n of them
    // at uniformly random positions, visited in order, without a buffer.
    int placed = 0;
    for (int p = 0; p < context; p++) {
        targets[p] = -1;
        if ((int)rng_below(rng, (uint64_t)(context - p)) < n - placed) {
            int32_t symbol = 2 + (int32_t)rng_below(rng, (uint64_t)alphabet);
            tokens[p] = symbol;
            targets[context + placed] = symbol;  // answered at the placed-th marker
            placed++;
        } else {
            tokens[p] = DATA_BLANK;
        }
    }
    assert(placed == n);
    for (int p = context; p < L; p++) tokens[p] = DATA_MARKER;
}

void synthetic_associative_recall(Rng *rng, int L, int n, int alphabet, int32_t *tokens, int32_t *targets) {
    assert(n >= 1 && L >= 3 * n && alphabet >= n);
    // Key-value pairs: distinct keys in 1..a by rejection (n is small, a >= n), values in a+1..2a.
    for (int j = 0; j < n; j++) {
        int32_t key;
        int fresh;
        do {
            key = 1 + (int32_t)rng_below(rng, (uint64_t)alphabet);
            fresh = 1;
            for (int i = 0; i < j; i++) fresh &= tokens[2 * i] != key;
        } while (!fresh);
        tokens[2 * j] = key;
        tokens[2 * j + 1] = alphabet + 1 + (int32_t)rng_below(rng, (uint64_t)alphabet);
        targets[2 * j] = targets[2 * j + 1] = -1;
    }
    for (int p = 2 * n; p < L - n; p++) {
        tokens[p] = DATA_BLANK;
        targets[p] = -1;
    }
    // Queries: a Fisher-Yates permutation of the pair indices, built in the targets of
    // the query positions, then replaced by the key (token) and its value (target).
    int32_t *order = targets + (L - n);
    for (int j = 0; j < n; j++) order[j] = j;
    for (int j = n - 1; j > 0; j--) {
        int k = (int)rng_below(rng, (uint64_t)(j + 1));
        int32_t t = order[j];
        order[j] = order[k];
        order[k] = t;
    }
    for (int q = 0; q < n; q++) {
        int pair = order[q];
        tokens[L - n + q] = tokens[2 * pair];
        targets[L - n + q] = tokens[2 * pair + 1];
    }
}
