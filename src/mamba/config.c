// Model sizes: defaults and derived values (see config.h).
#include "mamba/config.h"

#include <stdbool.h>

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
        .n_features = 0,
        .horizon = 0,
        .input_len = 0,
        .window_norm = MAMBA_WINDOW_NONE,
    };
}

int mamba_config_finish(MambaConfig *c, Error *err) {
    if (c->d_model < 1) return error_set(err, "model.d_model must be >= 1, got %d", c->d_model);
    bool values = mamba_head_reads_values(c->head);
    if (c->head == MAMBA_HEAD_DLINEAR && c->n_layer != 0)
        return error_set(err, "model.n_layer must be 0 for model.head = dlinear (it has no Mamba blocks), got %d", c->n_layer);
    if (c->head != MAMBA_HEAD_DLINEAR && c->n_layer < 1)
        return error_set(err, "model.n_layer must be >= 1, got %d (0 only for model.head = dlinear)", c->n_layer);
    if (!values && c->vocab_size < 2) return error_set(err, "model.vocab_size must be >= 2, got %d", c->vocab_size);
    if (values) c->vocab_size = 0;  // series values in: no embedding
    if (c->pad_vocab_size_multiple < 1)
        return error_set(err, "model.pad_vocab_size_multiple must be >= 1, got %d", c->pad_vocab_size_multiple);
    if (c->d_state < 1) return error_set(err, "model.d_state must be >= 1, got %d", c->d_state);
    if (c->d_conv < 1) return error_set(err, "model.d_conv must be >= 1, got %d", c->d_conv);
    if (c->expand < 1) return error_set(err, "model.expand must be >= 1, got %d", c->expand);
    if (c->dt_rank < 0) return error_set(err, "model.dt_rank must be >= 0 (0 = ceil(d_model/16)), got %d", c->dt_rank);
    if (!(c->norm_eps > 0.0f)) return error_set(err, "model.norm_eps must be > 0");
    if (!(c->dt_min > 0.0f && c->dt_min <= c->dt_max))
        return error_set(err, "model.dt_min must be > 0 and <= model.dt_max");
    if (values && c->n_features < 1)
        return error_set(err, "model.n_features must be >= 1 for model.head = forecast or dlinear, got %d", c->n_features);
    if (values && c->horizon < 1)
        return error_set(err, "data.horizon must be >= 1 for model.head = forecast or dlinear, got %d", c->horizon);
    if (c->head == MAMBA_HEAD_DLINEAR && c->input_len < 1)
        return error_set(err, "train.seqlen (the input length of model.head = dlinear) must be >= 1, got %d", c->input_len);
    if (c->window_norm != MAMBA_WINDOW_NONE && c->head != MAMBA_HEAD_FORECAST)
        return error_set(err, "model.window_norm: a per-window normalisation is implemented for model.head = forecast "
                         "only; use none with this head");
    if (c->head == MAMBA_HEAD_CLASSIFY && c->n_classes < 2)
        return error_set(err, "model.n_classes must be >= 2 for model.head = classify, got %d", c->n_classes);
    // 64-bit from here: a size is stored back into an int only once it is known to fit.
    const int64_t d = c->d_model, N = c->d_state, K = c->d_conv, m = c->pad_vocab_size_multiple;
    const int64_t D = (int64_t)c->expand * d;
    const int64_t R = c->dt_rank == 0 ? (d + 15) / 16 : c->dt_rank;
    const int64_t V = ((int64_t)c->vocab_size + m - 1) / m * m;
    const struct { const char *what, *keys; int64_t value; } sizes[] = {
        {"d_inner = expand * d_model", "model.expand, model.d_model", D},
        {"in_proj rows = 2 * expand * d_model", "model.expand, model.d_model", 2 * D},
        {"the padded vocabulary", "model.vocab_size, model.pad_vocab_size_multiple", V},
        {"x_proj rows = dt_rank + 2 * d_state", "model.dt_rank, model.d_state", R + 2 * N},
        {"the embedding (padded vocabulary x d_model)", "model.vocab_size, model.d_model", V * d},
        {"in_proj (2 * d_inner x d_model)", "model.expand, model.d_model", 2 * D * d},
        {"conv1d (d_inner x d_conv)", "model.expand, model.d_model, model.d_conv", D * K},
        {"x_proj ((dt_rank + 2 * d_state) x d_inner)", "model.dt_rank, model.d_state, model.expand", (R + 2 * N) * D},
        {"dt_proj (d_inner x dt_rank)", "model.expand, model.d_model, model.dt_rank", D * R},
        {"A_log (d_inner x d_state)", "model.expand, model.d_model, model.d_state", D * N},
        {"the parameter table (8 + 10 * n_layer entries)", "model.n_layer", 8 + 10 * (int64_t)c->n_layer},
        {"the forecast head (horizon * n_features x d_model)", "data.horizon, model.n_features, model.d_model",
         (int64_t)c->horizon * c->n_features * d},
        {"dlinear's maps (horizon x train.seqlen)", "data.horizon, train.seqlen", (int64_t)c->horizon * c->input_len},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].value > INT32_MAX)
            return error_set(err, "%s: %s would be %lld, more than the %d elements a tensor dimension or tensor "
                             "of this build holds", sizes[i].keys, sizes[i].what, (long long)sizes[i].value, INT32_MAX);
    c->dt_rank = (int)R;
    c->d_inner = (int)D;
    c->vocab_padded = (int)V;
    return 0;
}

int64_t mamba_config_param_count(const MambaConfig *c) {
    const int64_t d = c->d_model, D = c->d_inner, N = c->d_state, K = c->d_conv, R = c->dt_rank, V = c->vocab_padded;
    const int64_t per_layer = d + 2 * D * d + D * K + D + (R + 2 * N) * D + D * R + D + D * N + D + d * D;
    int64_t head = 0;  // heads.h
    if (c->head == MAMBA_HEAD_CLASSIFY) head = (int64_t)c->n_classes * (d + 1);
    if (c->head == MAMBA_HEAD_FORECAST) head = d * ((int64_t)c->n_features + 1) + (int64_t)c->horizon * c->n_features * (d + 1);
    if (c->head == MAMBA_HEAD_DLINEAR) head = 2 * (int64_t)c->horizon * (c->input_len + 1);
    if (c->window_norm == MAMBA_WINDOW_REVIN_AFFINE) head += 2 * (int64_t)c->n_features;  // revin.weight, revin.bias
    return V * d + (int64_t)c->n_layer * per_layer + d + head;
}

uint64_t mamba_model_bytes(const MambaConfig *c) {
    return (uint64_t)mamba_config_param_count(c) * 2u * sizeof(float);  // data and grad
}

// Floats that the forward keeps per token: per layer the norm, in_proj's output (x and
// z, read in place by the conv and the gate), the convolution and its silu, x_proj's output
// and its three slices (δ, B, C), dt, the scan's output, the gating, out_proj's output and
// the residual; the scan's state per 64-token chunk; then the logits and their softmax.
// With recompute (train.recompute) the tape keeps only each block's output, and one
// block's activations at a time live on the scratch tape of its recomputation in the
// backward.
static uint64_t activation_floats_per_token(const MambaConfig *c, bool recompute) {
    const uint64_t d = (uint64_t)c->d_model, D = (uint64_t)c->d_inner, N = (uint64_t)c->d_state,
                   R = (uint64_t)c->dt_rank, V = (uint64_t)c->vocab_padded;
    const uint64_t per_layer = 3 * d + 2 * D + 2 * D + 2 * (R + 2 * N) + D + D + D + (D * N + 63) / 64;
    const uint64_t head = 2 * d + 2 * V;
    if (recompute) return (uint64_t)c->n_layer * d + per_layer + head;
    return (uint64_t)c->n_layer * per_layer + head;
}

// a * b, saturating at UINT64_MAX.
static uint64_t mul_sat(uint64_t a, uint64_t b) { return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b; }
static uint64_t add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

uint64_t mamba_eval_bytes(const MambaConfig *c, int64_t batch, int64_t seqlen) {
    uint64_t tokens = mul_sat((uint64_t)batch, (uint64_t)seqlen);
    return add_sat(mamba_model_bytes(c), mul_sat(mul_sat(tokens, activation_floats_per_token(c, false)), sizeof(float)));
}

uint64_t mamba_train_bytes(const MambaConfig *c, int64_t batch, int64_t seqlen, bool recompute) {
    uint64_t tokens = mul_sat((uint64_t)batch, (uint64_t)seqlen);
    uint64_t moments = (uint64_t)mamba_config_param_count(c) * 2u * sizeof(float);
    // The backward holds a gradient for each saved activation as it goes: about twice.
    uint64_t activations = mul_sat(mul_sat(tokens, activation_floats_per_token(c, recompute)), 2 * sizeof(float));
    return add_sat(add_sat(mamba_model_bytes(c), moments), activations);
}

int mamba_check_memory(uint64_t bytes, uint64_t limit_bytes, const char *what, const char *keys,
                       const char *override_hint, Error *err) {
    if (bytes <= limit_bytes) return 0;
    return error_set(err, "%s: %s needs about %.3g GB, more than the %.3g GB %s", keys, what, (double)bytes / 1e9,
                     (double)limit_bytes / 1e9, override_hint);
}
