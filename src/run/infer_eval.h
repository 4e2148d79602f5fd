// Perplexity of an inference model (infer/infer.h) over the validation windows of a
// dataset: the parallel forward of each window with the logits of every position, the
// mean NLL over the targets, and argmax accuracy. What `eval` runs on a packed model file,
// which never becomes a dense MambaModel.
#ifndef MP_RUN_INFER_EVAL_H
#define MP_RUN_INFER_EVAL_H

#include "run/evaluate.h"   // defines: Evaluation
#include "core/error.h"
#include "data/data.h"
#include "infer/infer.h"

// The first max_batches validation batches of B x L (all when max_batches <= 0).
int infer_evaluate(const InferModel *model, const Dataset *data, int B, int L, long max_batches, Evaluation *out,
                   Error *err);

#endif
