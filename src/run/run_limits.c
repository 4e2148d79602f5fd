// Up-front limits of a run (see run_limits.h).
#include "run/run_limits.h"

#include <stdio.h>

#include "core/memory.h"

int run_check_memory(const RunConfig *c, const MambaConfig *m, Error *err) {
    uint64_t limit = c->train.max_memory_gb > 0 ? (uint64_t)(c->train.max_memory_gb * 1e9) : memory_physical_bytes();
    if (limit == 0) return 0;  // the system does not say, and no limit was given
    uint64_t bytes = mamba_train_bytes(m, c->train.batch_size, c->train.seqlen, c->train.recompute);
    char what[256], hint[256];
    snprintf(what, sizeof what,
             "training %lld parameters (d_model %d, %d layers, d_inner %d, d_state %d, padded vocabulary %d) on "
             "batches of %d x %d tokens%s",
             (long long)mamba_config_param_count(m), m->d_model, m->n_layer, m->d_inner, m->d_state, m->vocab_padded,
             c->train.batch_size, c->train.seqlen, c->train.recompute ? " with train.recompute" : "");
    if (c->train.max_memory_gb > 0)
        snprintf(hint, sizeof hint, "that train.max_memory_gb allows");
    else
        snprintf(hint, sizeof hint, "of this machine's memory (set train.max_memory_gb to allow more)");
    return mamba_check_memory(bytes, limit, what,
                              "model.d_model, model.n_layer, model.expand, model.d_state, model.vocab_size, "
                              "train.batch_size, train.seqlen",
                              hint, err);
}
