// Batches for the model's head (see task_batch.h).
#include "run/task_batch.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void task_batch_init(TaskBatch *b, const Dataset *data, int B, int L) {
    memset(b, 0, sizeof *b);
    b->B = B, b->L = L;
    size_t T = (size_t)B * (size_t)L;
    b->tokens = xmalloc(sizeof(int32_t) * T);
    b->targets = xmalloc(sizeof(int32_t) * T);
    if (data_is_series(data)) {
        b->values = xmalloc(sizeof(float) * T * (size_t)data_n_features(data));
        b->future = xmalloc(sizeof(float) * (size_t)B * (size_t)data_horizon(data) * (size_t)data_n_features(data));
    }
}

void task_batch_free(TaskBatch *b) {
    free(b->tokens);
    free(b->targets);
    free(b->values);
    free(b->future);
    memset(b, 0, sizeof *b);
}

Tensor *task_batch_train_loss(TaskBatch *b, const Dataset *data, long index, Tape *tape, MambaModel *model) {
    if (data_is_series(data)) {
        data_train_values(data, index, b->B, b->L, b->values, b->future);
        return mamba_forward_values(tape, model, b->values, b->future, b->B, b->L, NULL, NULL);
    }
    data_train_batch(data, index, b->B, b->L, b->tokens, b->targets);
    return mamba_forward(tape, model, b->tokens, b->targets, b->B, b->L, NULL);
}
