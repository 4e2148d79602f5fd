// The quality metric of a batch for the model's head (docs/DESIGN.md): argmax accuracy
// per position for the language-model head, per row (one label each) for classification.
#ifndef MP_RUN_TASK_METRIC_H
#define MP_RUN_TASK_METRIC_H

#include <stdint.h>

#include "mamba/model.h"

// logits as mamba_forward returned them for targets (B, L).
void task_accuracy(const MambaModel *model, const float *logits, const int32_t *targets, int B, int L, long *correct,
                   long *counted);

#endif
