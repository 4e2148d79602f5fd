// A tiny random Mamba for tests: every size small and different, so that a mixed-up
// dimension shows up as an error rather than passing by symmetry.
#ifndef MP_TESTS_TINY_MODEL_H
#define MP_TESTS_TINY_MODEL_H

#include <stdio.h>
#include <stdlib.h>

#include "mamba/model.h"

// A random model of the given sizes (expand 2), every parameter perturbed as below.
// d_conv: the causal conv's width (Mamba's 4 unless a test wants another).
static __attribute__((unused)) void tiny_model_create_conv(MambaModel *model, int d_model, int n_layer, int vocab_size,
                                                           int d_state, int dt_rank, int d_conv, uint64_t seed) {
    MambaConfig config;
    mamba_config_defaults(&config);
    config.d_conv = d_conv;
    config.d_model = d_model;
    config.n_layer = n_layer;
    config.vocab_size = vocab_size;
    config.d_state = d_state;
    config.expand = 2;
    config.dt_rank = dt_rank;
    Error err;
    if (mamba_config_finish(&config, &err) != 0) {
        fprintf(stderr, "tiny model config: %s\n", err.message);
        exit(1);
    }
    mamba_model_create(model, &config);
    Rng rng;
    rng_seed(&rng, seed);
    mamba_model_init_random(model, &rng);
    // Make every parameter matter: norms and D away from 1, A_log away from log(1..N),
    // larger dt so that the state carries across tokens.
    for (int i = 0; i < model->n_params; i++) {
        Tensor *t = model->params[i].tensor;
        for (size_t k = 0; k < t->size; k++) t->data[k] += 0.1f * rng_normal(&rng);
    }
    for (int i = 0; i < n_layer; i++)
        for (int j = 0; j < config.d_inner; j++) model->layers[i].dt_proj_bias.data[j] += 1.5f;
}

static __attribute__((unused)) void tiny_model_create_sized(MambaModel *model, int d_model, int n_layer,
                                                            int vocab_size, int d_state, int dt_rank, uint64_t seed) {
    tiny_model_create_conv(model, d_model, n_layer, vocab_size, d_state, dt_rank, 4, seed);
}

// d_model 8, vocab 11 (padded to 16), d_state 4, D = 16, dt_rank 3.
static __attribute__((unused)) void tiny_model_create(MambaModel *model, int n_layer, uint64_t seed) {
    tiny_model_create_sized(model, 8, n_layer, 11, 4, 3, seed);
}

#endif
