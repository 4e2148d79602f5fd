// One batch of a run's data in the form its model reads (docs/DESIGN.md#task-heads): token
// ids and targets for the language-model and classification heads, series windows for the
// forecasting heads; and the training loss of a batch for either.
#ifndef MP_RUN_TASK_BATCH_H
#define MP_RUN_TASK_BATCH_H

#include <stdint.h>

#include "autograd/tensor.h"
#include "data/data.h"
#include "mamba/model.h"

typedef struct TaskBatch {
    int B, L;
    int32_t *tokens, *targets;  // (B, L)
    float *values, *future;     // a series: (B, L, F) the inputs and (B, H, F) what follows; else NULL
} TaskBatch;

void task_batch_init(TaskBatch *batch, const Dataset *data, int B, int L);
void task_batch_free(TaskBatch *batch);

// Training batch number index of data through the model, on the tape: the mean
// cross-entropy (lm, classify) or the mean squared error (forecast, dlinear).
Tensor *task_batch_train_loss(TaskBatch *batch, const Dataset *data, long index, Tape *tape, MambaModel *model);

#endif
