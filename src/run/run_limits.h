// Limits a run is checked against before it allocates: the memory its model, AdamW and a
// step's activations are estimated to take (mamba_train_bytes), against train.max_memory_gb
// or the machine's physical memory.
#ifndef MP_RUN_RUN_LIMITS_H
#define MP_RUN_RUN_LIMITS_H

#include "config/config.h"
#include "core/error.h"
#include "mamba/config.h"

// 0 if training the model m with the batches of c fits; else -1 naming the keys and the
// estimated bytes. m must be finished.
int run_check_memory(const RunConfig *c, const MambaConfig *m, Error *err);

#endif
