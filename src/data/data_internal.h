// Pieces shared by the files of src/data (not part of the public API in data.h): the
// generators of one synthetic sequence and the loader of a token or text file.
#ifndef MP_DATA_DATA_INTERNAL_H
#define MP_DATA_DATA_INTERNAL_H

#include <stdint.h>

#include "core/rng.h"
#include "data/data.h"

// One sequence of length L of each task (layouts in data.h); tokens and targets are (L).
// n is n_memorize, alphabet the number of data (or key, or value) symbols.
void synthetic_selective_copying(Rng *rng, int L, int n, int alphabet, int32_t *tokens, int32_t *targets);
void synthetic_associative_recall(Rng *rng, int L, int n, int alphabet, int32_t *tokens, int32_t *targets);

// Reads path as kind (DATA_TEXT, DATA_TOKENS or DATA_FILE to detect) into ds->bytes or
// ds->ids, sets ds->kind, ds->n_tokens and ds->vocab_size (vocab 0 = from the data).
int text_load(Dataset *ds, DataKind kind, const char *path, int vocab, Error *err);

#endif
