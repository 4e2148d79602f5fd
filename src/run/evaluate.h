// Evaluation of a model on the validation batches of a dataset (docs/DESIGN.md#evaluation): mean NLL per
// target, perplexity, and argmax accuracy; for a forecasting series, MSE and MAE on the
// standardised scale. Used at the end of training and by `eval`.
#ifndef MP_RUN_EVALUATE_H
#define MP_RUN_EVALUATE_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "autograd/tensor.h"
#include "data/data.h"
#include "mamba/model.h"

typedef struct Evaluation {
    double nll;               // mean negative log-likelihood per counted target
    double perplexity;        // exp(nll)
    double accuracy;          // argmax accuracy over counted targets
    long tokens;              // targets counted (a series: windows)
    // A series (data_is_series): over every predicted value of every held-out window, on the
    // standardised scale; nll is the MSE, perplexity and accuracy 0. The repeat-the-last-value
    // forecast of the same windows is the naive baseline beside it.
    bool series;
    double mse, mae;
    double repeat_last_mse, repeat_last_mae;
} Evaluation;

// Runs the first max_batches validation batches of B x L (all when max_batches <= 0).
// tokens and targets are caller buffers of B*L. show_progress prints an updating line on
// stderr for long evaluations. A series reads into buffers of its own (tokens and targets unused).
// Under mpirun (core/dist.h) every process must call it: each evaluates its share of the
// batches (every dist_size()-th) and all get the result of one process, to the bit (not
// yet for a series, whose training is refused under mpirun).
Evaluation evaluate_model(MambaModel *model, const Dataset *data, Tape *tape, int B, int L, long max_batches,
                          int32_t *tokens, int32_t *targets, bool show_progress);

// The figures of e added to o as "val_loss", "val_perplexity", "val_accuracy", "val_tokens"; returns o.
cJSON *evaluation_json_add(cJSON *o, const Evaluation *e);
// A metrics line of an evaluation after `step` steps: {"step", then the figures of e}.
cJSON *evaluation_json(long step, const Evaluation *e);

#endif
