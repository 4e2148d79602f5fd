// Token data for training and evaluation: the synthetic tasks of the Mamba paper
// (selective copying, multi-query associative recall), generated from a seed so that the
// default needs no download, and real text (raw UTF-8 bytes or llm.c token files).
//
// Every batch is a pure function of (seed, batch index, B, L): a checkpoint's data cursor
// is the index of the next training batch, and resuming replays the same batches to the
// bit. Targets < 0 are ignored by the loss and by the accuracy.
//
// Token layouts of the synthetic tasks (n = n_memorize, a = vocab, the alphabet size):
//
//   selective copying, data_vocab_size() = a + 2; ids 0 = blank, 1 = marker, 2..a+1 data
//     position  [0, L-n)                        [L-n, L)
//     tokens    n data tokens at random          n markers
//               positions (in order), blanks
//               elsewhere
//     targets   -1                               the j-th data token at the j-th marker
//
//   associative recall (MQAR), data_vocab_size() = 2a + 1; ids 0 = blank,
//   1..a keys, a+1..2a values; the n keys are distinct (so a >= n), values may repeat
//     position  [0, 2n)                [2n, L-n)    [L-n, L)
//     tokens    k0 v0 k1 v1 ...        blanks       the n keys again, shuffled
//     targets   -1                     -1           the value paired with that key
//
// Text: the training split is the first (1 - val_fraction) of the tokens, the validation
// split the rest. A window reads L+1 tokens: tokens = w[0..L), targets = w[1..L].
//
// Forecasting (timeseries from an ETT-format CSV, seasonal generated from the seed): a
// series of rows of F values, standardised by the mean and std of the training rows, in
// chronological splits [0, tr), [tr, tr+va), [tr+va, tr+va+te) (rows beyond are unused).
// A window starting at row s is the input rows s .. s+L-1 and the future rows s+L ..
// s+L+H-1, all inside its split; validation and test windows may start up to L rows before
// their split (the input reaches back into the split before, as ETT's standard loaders
// do), so split k has (its rows) - H + 1 windows, every one of them evaluated, in order.
// docs/DESIGN.md#forecasting.
#ifndef MP_DATA_DATA_H
#define MP_DATA_DATA_H

#include <stdint.h>

#include "core/error.h"

typedef enum DataKind {
    DATA_SELECTIVE_COPYING,   // synthetic, see the layout above
    DATA_ASSOCIATIVE_RECALL,  // synthetic, see the layout above
    DATA_TEXT,                // raw bytes of a file, vocab 256
    DATA_TOKENS,              // llm.c token file (docs/DESIGN.md#files)
    DATA_FILE,                // a file: DATA_TOKENS if it starts with the llm.c magic, else DATA_TEXT
    DATA_LISTOPS,             // classification: ListOps expressions generated from the seed
    DATA_TEXT_CLASSIFICATION, // classification: a TSV file of "label<TAB>text" lines, bytes
    DATA_TIMESERIES,          // forecasting: a CSV file in ETT's format (date, features..., target)
    DATA_SEASONAL,            // forecasting: a multi-seasonal series generated from the seed
} DataKind;

// Which held-out split data_val_batch reads: the validation split, or the test split
// (ListOps: a third stream of the seed).
typedef enum DataSplit { DATA_SPLIT_VALIDATION, DATA_SPLIT_TEST } DataSplit;

// Reserved ids of the synthetic tasks.
enum { DATA_BLANK = 0, DATA_MARKER = 1 };
// llm.c token files: a header of 256 little-endian int32 (magic, version, count), then
// uint16 ids (version 1, llm.c's). Version 2 is ours for vocabularies beyond 65,536:
// the same header with little-endian uint32 ids.
enum { DATA_TOKENS_MAGIC = 20240520, DATA_TOKENS_VERSION = 1, DATA_TOKENS_VERSION_U32 = 2, DATA_TOKENS_HEADER_INTS = 256 };

typedef struct DataOptions {
    DataKind kind;
    const char *path;       // the file (text kinds); copied by data_open
    float val_fraction;     // text: the last fraction of the tokens is validation, in [0, 1];
                            // 1 makes the whole file validation (evaluation of a file)
    int vocab;              // 0 = the kind's default: synthetic alphabet 16 (the Mamba paper's),
                            // 256 for bytes, max id + 1 for token files; else the synthetic
                            // alphabet, or a text vocab that must cover every id
    int n_memorize;         // synthetic: data tokens to copy / key-value pairs to recall
    int val_sequences;      // synthetic: size of the fixed validation set
    uint64_t seed;          // training windows / examples, and the synthetic validation set
    int min_len, max_len;   // listops: token counts of an expression; max_len 0 = seqlen
    DataSplit split;        // the held-out split of data_val_batch
    int horizon;            // forecasting: time steps predicted (H)
    int target_only;        // forecasting: 1 = features S (the last column alone), 0 = M (all)
    long train_rows, val_rows, test_rows;  // forecasting: the chronological splits
    int n_series;           // seasonal: series generated
} DataOptions;

typedef struct Dataset {
    DataKind kind;          // never DATA_FILE after data_open
    char *path;             // owned copy, NULL for synthetic data
    int vocab_size;         // what the model's vocab_size must be
    int seqlen;             // the window length checked by data_open
    uint64_t seed;
    // Synthetic tasks.
    int alphabet, n_memorize, val_sequences;
    // Text: exactly one of bytes / ids / ids32 (version 2 token files) is set, n_tokens
    // long, owned.
    uint8_t *bytes;
    uint16_t *ids;
    uint32_t *ids32;
    long n_tokens;
    long n_train;           // [0, n_train) is training, [n_train, n_tokens) validation
    // Classification (listops, text_classification): every row has one label, 0 .. n_classes-1,
    // at the last token of its sequence; positions after it are padding (id 0, target -1).
    int n_classes;          // 0 for the other kinds
    int min_len, max_len;   // listops
    DataSplit split;
    long *line_span;        // text_classification: (n_lines, 2) [start, end) of each text in bytes, owned
    int32_t *line_label;    // (n_lines), owned
    long n_lines;           // lines [0, n_train) are training, the rest validation
    // Forecasting: the standardised series, (train_rows + val_rows + test_rows, n_features)
    // row-major, owned; the training rows' mean and std of each feature, owned.
    float *series;
    int n_features, horizon;
    long train_rows, val_rows, test_rows;
    double *feature_mean, *feature_std;
} Dataset;

// kind = selective copying, vocab 0 (alphabet 16), n_memorize 16 (as in the Mamba paper),
// val_sequences 256, val_fraction 0.1, seed 1234, no path.
void data_options_defaults(DataOptions *o);
// "selective_copying", "associative_recall", "text", "tokens", "file".
int data_kind_parse(const char *name, DataKind *kind);
const char *data_kind_name(DataKind kind);

// Opens (and for files, reads and validates) the data for windows of seqlen tokens.
// Fails with a message naming the file or option and what was expected when the file is
// malformed, too small for one window, or seqlen too short for the synthetic layout.
int data_open(Dataset *ds, const DataOptions *o, int seqlen, Error *err);
void data_close(Dataset *ds);

int data_vocab_size(const Dataset *ds);
// The number of classes of a classification dataset, 0 for the others.
int data_n_classes(const Dataset *ds);
// Forecasting: whether the data is a series (data_train_values / data_val_values, never
// data_train_batch / data_val_batch), its values per time step and the horizon.
int data_is_series(const Dataset *ds);
int data_n_features(const Dataset *ds);
int data_horizon(const Dataset *ds);
// Training batch number index of a series: values (B, L, F) the input windows, future
// (B, H, F) what follows each. Windows start uniformly in the training split.
void data_train_values(const Dataset *ds, long index, int B, int L, float *values, float *future);
// Held-out batch i in [0, data_val_batch_count(ds, B, L)) of a series, windows in order;
// returns the number of real rows (the rest of a last batch is zeros).
int data_val_values(const Dataset *ds, long i, int B, int L, float *values, float *future);

// Whether data_train_batch may be called (false for text with val_fraction = 1).
int data_has_train(const Dataset *ds);

// Training batch number index (>= 0). tokens and targets are (B, L) int32.
// L must be >= the minimum of the synthetic layout (2n or 3n); for text, the training
// split must hold L+1 tokens (data_open checked this for its seqlen).
void data_train_batch(const Dataset *ds, long index, int B, int L, int32_t *tokens, int32_t *targets);

// Validation batches, i in [0, data_val_batch_count(ds, B, L)).
// Text: non-overlapping windows over the validation split in order, so that every
// validation token is a target exactly once (the first one is predicted from the last
// training token; with val_fraction = 1 the file's first token, which has no
// predecessor, is never a target). Synthetic: the fixed validation set, sequence
// i*B + r in row r. Rows and positions past the end have token 0 and target -1.
long data_val_batch_count(const Dataset *ds, int B, int L);
void data_val_batch(const Dataset *ds, long i, int B, int L, int32_t *tokens, int32_t *targets);

// Accuracy of argmax predictions: logits (T, V) row-major, targets (T). Sets *counted to
// the number of targets >= 0 and *correct to how many of them are the row's argmax
// (the first maximum on ties).
void data_accuracy(const float *logits, int V, const int32_t *targets, int T, long *correct, long *counted);

// Writes ids[0..n) as a token file: version 1 (uint16) when vocab_size <= 65,536, else
// version 2 (uint32). Every id must be in [0, vocab_size). Written all-or-nothing.
int data_tokens_write(const char *path, const int32_t *ids, long n, int vocab_size, Error *err);
// Reads a token file (either version, validated as data_open does) into *ids (owned by
// the caller), *n ids.
int data_tokens_read(const char *path, int32_t **ids, long *n, Error *err);

#endif
