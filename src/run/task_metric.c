// Accuracy for the model's head (see task_metric.h).
#include "run/task_metric.h"

#include <stdlib.h>

#include "core/error.h"
#include "data/data.h"
#include "mamba/heads.h"

void task_accuracy(const MambaModel *model, const float *logits, const int32_t *targets, int B, int L, long *correct,
                   long *counted) {
    if (model->config.head == MAMBA_HEAD_LM) {
        data_accuracy(logits, model->config.vocab_padded, targets, B * L, correct, counted);
        return;
    }
    int *ends = xmalloc(sizeof(int) * (size_t)B);
    int32_t *labels = xmalloc(sizeof(int32_t) * (size_t)B);
    heads_row_labels(targets, B, L, ends, labels);
    data_accuracy(logits, model->config.n_classes, labels, B, correct, counted);
    free(ends);
    free(labels);
}
