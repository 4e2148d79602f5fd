// The sizes of a Mamba-1 language model (docs/DESIGN.md#model) and the values derived from them.
#ifndef MP_MAMBA_CONFIG_H
#define MP_MAMBA_CONFIG_H

#include "core/error.h"

typedef struct MambaConfig {
    int d_model;                  // d
    int n_layer;
    int vocab_size;               // as given (e.g. 256 for bytes)
    int pad_vocab_size_multiple;  // the embedding has vocab_padded rows
    int d_state;                  // N
    int d_conv;                   // K
    int expand;
    int dt_rank;                  // R; 0 means ceil(d_model / 16)
    float norm_eps;               // rmsnorm epsilon, 1e-5
    // Initialisation of dt (docs/DESIGN.md#model).
    float dt_min, dt_max, dt_init_floor;
    // Derived by mamba_config_finish():
    int d_inner;                  // D = expand * d_model
    int vocab_padded;             // V, vocab_size rounded up to pad_vocab_size_multiple
} MambaConfig;

// The defaults of docs/DESIGN.md#model for everything but d_model, n_layer and vocab_size.
void mamba_config_defaults(MambaConfig *config);
// Checks ranges and fills the derived fields.
int mamba_config_finish(MambaConfig *config, Error *err);

#endif
