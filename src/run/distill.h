// Fine-tuning against the dense teacher (docs/DESIGN.md#distillation): with
// prune.distill_weight w > 0, the training loss of every step is
// (1 - w) · cross-entropy + w · T² · KL(softmax(teacher / T) || softmax(student / T)), the
// teacher being model.init (the dense model, frozen) run on the same batch, T =
// prune.distill_temperature.
#ifndef MP_RUN_DISTILL_H
#define MP_RUN_DISTILL_H

#include <stdbool.h>
#include <stdint.h>

#include "autograd/tensor.h"
#include "config/config.h"
#include "core/error.h"
#include "mamba/model.h"

typedef struct Distiller {
    bool on;
    float weight, temperature;
    MambaModel teacher;
} Distiller;

// Loads the teacher from model.init when prune.distill_weight > 0 (off otherwise). The
// teacher's vocabulary must be the student's.
int distill_init(Distiller *d, const RunConfig *c, const MambaModel *student, Error *err);
void distill_free(Distiller *d);

// The training loss of a batch on the tape (backward-ready): mamba_forward's cross-entropy
// when off, else the mix above. The teacher's forward records nothing.
Tensor *distill_loss(Distiller *d, Tape *tape, MambaModel *model, const int32_t *tokens, const int32_t *targets,
                     int batch, int seqlen);

#endif
