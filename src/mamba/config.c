// Model sizes: defaults and derived values (see config.h).
#include "mamba/config.h"

void mamba_config_defaults(MambaConfig *config) {
    *config = (MambaConfig){
        .d_model = 0,
        .n_layer = 0,
        .vocab_size = 0,
        .pad_vocab_size_multiple = 8,
        .d_state = 16,
        .d_conv = 4,
        .expand = 2,
        .dt_rank = 0,
        .norm_eps = 1e-5f,
        .dt_min = 1e-3f,
        .dt_max = 1e-1f,
        .dt_init_floor = 1e-4f,
        .head = MAMBA_HEAD_LM,
        .n_classes = 0,
        .pool = MAMBA_POOL_MEAN,
    };
}

int mamba_config_finish(MambaConfig *c, Error *err) {
    if (c->d_model < 1) return error_set(err, "model.d_model must be >= 1, got %d", c->d_model);
    if (c->n_layer < 1) return error_set(err, "model.n_layer must be >= 1, got %d", c->n_layer);
    if (c->vocab_size < 2) return error_set(err, "model.vocab_size must be >= 2, got %d", c->vocab_size);
    if (c->pad_vocab_size_multiple < 1)
        return error_set(err, "model.pad_vocab_size_multiple must be >= 1, got %d", c->pad_vocab_size_multiple);
    if (c->d_state < 1) return error_set(err, "model.d_state must be >= 1, got %d", c->d_state);
    if (c->d_conv < 1) return error_set(err, "model.d_conv must be >= 1, got %d", c->d_conv);
    if (c->expand < 1) return error_set(err, "model.expand must be >= 1, got %d", c->expand);
    if (c->dt_rank < 0) return error_set(err, "model.dt_rank must be >= 0 (0 = ceil(d_model/16)), got %d", c->dt_rank);
    if (!(c->norm_eps > 0.0f)) return error_set(err, "model.norm_eps must be > 0");
    if (!(c->dt_min > 0.0f && c->dt_min <= c->dt_max))
        return error_set(err, "model.dt_min must be > 0 and <= model.dt_max");
    if (c->head == MAMBA_HEAD_FORECAST)
        return error_set(err, "model.head: forecast is not implemented yet (lm and classify are)");
    if (c->head == MAMBA_HEAD_CLASSIFY && c->n_classes < 2)
        return error_set(err, "model.n_classes must be >= 2 for model.head = classify, got %d", c->n_classes);
    if (c->dt_rank == 0) c->dt_rank = (c->d_model + 15) / 16;
    c->d_inner = c->expand * c->d_model;
    int m = c->pad_vocab_size_multiple;
    c->vocab_padded = (c->vocab_size + m - 1) / m * m;
    return 0;
}
