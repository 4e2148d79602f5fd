// `mambaprune eval` (docs/DESIGN.md#evaluation): a model (a checkpoint, a transformers
// folder or a packed model file) evaluated on a data file, or, for a checkpoint without
// one, on the validation split of its own run's data with that run's batches.
#ifndef MP_RUN_MODEL_EVAL_H
#define MP_RUN_MODEL_EVAL_H

#include <stdbool.h>

#include "core/error.h"
#include "run/evaluate.h"   // defines: Evaluation

typedef struct ModelEvalOptions {
    const char *model_path;
    const char *data_path;    // NULL: the checkpoint's own data (not for folders and packed files)
    long seqlen, batch;       // 0: the checkpoint run's, else 256 and 8
    long max_batches;         // 0: all validation batches
    const char *split;        // "val" or "test": a checkpoint's own held-out split; NULL: validation
} ModelEvalOptions;

typedef struct ModelEvalResult {
    Evaluation evaluation;
    char data[4096];          // what was evaluated: the data file, or the checkpoint's data (path or kind)
    long seqlen;              // the window length used
    double seconds;           // the evaluation
    // A forecaster (evaluation.series): the split, the horizon and the values per step.
    bool test_split;
    int horizon, n_features;
} ModelEvalResult;

// Loads the model (refusing a non-finite weight), opens the data (text through the model's
// tokenizer when it has one, cached beside the text: text_tokens.h), checks its ids and the
// memory, and evaluates.
int model_eval(const ModelEvalOptions *options, ModelEvalResult *result, Error *err);

#endif
