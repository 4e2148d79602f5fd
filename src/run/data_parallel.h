// Data-parallel training steps over the processes of core/dist.h
// (docs/DESIGN.md#data-parallel-training): each process runs the forward and backward of
// its share of the global batch, the gradients are summed in rank order, and every process
// then takes the same optimizer step, so weights and masks stay the same everywhere. With
// one process every function here is the plain single-process step.
#ifndef MP_RUN_DATA_PARALLEL_H
#define MP_RUN_DATA_PARALLEL_H

#include <stdint.h>
#include <stdio.h>

#include "autograd/tensor.h"
#include "config/config.h"
#include "core/error.h"
#include "mamba/model.h"
#include "optim/adamw.h"
#include "prune/masks.h"
#include "run/distill.h"

// Refuses what cannot be split over dist_size() processes: train.batch_size must be a
// multiple of it.
int data_parallel_check(const RunConfig *c, Error *err);

// Forward and backward of the global batch tokens, targets (B, L): this process computes
// its B / dist_size() consecutive sequences, and on return every process holds the
// gradient of the global batch's mean loss (the mean over all counted targets), which it
// returns (a non-finite loss, which the caller checks, leaves non-finite gradients). The
// loss is distill_loss's: the cross-entropy, or its mix with the teacher's KL when distill
// is on.
float data_parallel_step(Tape *tape, Distiller *distill, MambaModel *model, const int32_t *tokens,
                         const int32_t *targets, int B, int L);

// Rank 0's masks on every process, held on the weights and AdamW moments (opt may be NULL).
void data_parallel_share_masks(PruneMasks *masks, AdamW *opt);

// Where the run's messages go: stderr on rank 0, a stream to /dev/null on the others.
FILE *data_parallel_log_stream(void);

#endif
