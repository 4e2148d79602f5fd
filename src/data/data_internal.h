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

// The whole file in a new buffer (owned by the caller) and its size (text.c).
int data_read_file(const char *path, uint8_t **out, long *size, Error *err);

// ListOps (listops.c): token ids, 16 in all.
enum {
    LISTOPS_PAD = 0,
    LISTOPS_DIGIT0 = 1,       // digit v is id 1 + v
    LISTOPS_MAX = 11,
    LISTOPS_MIN = 12,
    LISTOPS_MED = 13,
    LISTOPS_SM = 14,
    LISTOPS_CLOSE = 15,       // ]
    LISTOPS_VOCAB = 16,
};
// One expression of min_len .. max_len tokens (max_len >= 4) into tokens; returns its
// value (the label, 0-9) and sets *length.
int listops_sequence(Rng *rng, int min_len, int max_len, int32_t *tokens, int *length);
// One classification row of L >= max_len positions: the expression, then padding; the
// target is the label at the expression's last token, -1 elsewhere.
void listops_row(Rng *rng, int min_len, int max_len, int L, int32_t *tokens, int32_t *targets);

// text_classification (tsv.c): reads path (lines "label<TAB>text") into ds->bytes, with
// ds->line_span / ds->line_label, sets ds->n_lines and ds->n_classes.
int tsv_load(Dataset *ds, const char *path, Error *err);
// Row of line i: its bytes + 1 (0 is padding), cut to L, and the label at its last byte.
void tsv_row(const Dataset *ds, long i, int L, int32_t *tokens, int32_t *targets);

// Forecasting (timeseries.c): reads the CSV at path (a header, then rows of a date and
// numbers) into ds->series, or generates the seasonal series from rng; both keep
// ds->train_rows + ds->val_rows + ds->test_rows rows of ds->n_features values (which, with
// the splits, the caller has set, except n_features for a CSV), then standardise them by
// the training rows.
int timeseries_load_csv(Dataset *ds, const char *path, int target_only, Error *err);
void timeseries_generate(Dataset *ds, Rng *rng);
int timeseries_standardise(Dataset *ds, const char *what, Error *err);

#endif
