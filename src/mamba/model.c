// The Mamba-1 language model: parameter table, initialisation and the training forward
// as a sequence of tape ops (docs/DESIGN.md#model). The one-token recurrent step is in decode.c.
#include "mamba/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "core/error.h"
#include "core/share.h"  // share_of_thread, share_in_array
#include "mamba/heads.h"

static void add_param(MambaModel *model, Tensor *t, int ndim, const int *shape, const char *format, int layer) {
    tensor_init_param(t, ndim, shape);
    NamedParam *p = &model->params[model->n_params++];
    snprintf(p->name, sizeof p->name, format, layer);
    p->tensor = t;
    model->n_elements += t->size;
}

void mamba_model_create(MambaModel *model, const MambaConfig *config) {
    memset(model, 0, sizeof *model);
    model->config = *config;
    const MambaConfig *c = config;
    int d = c->d_model, D = c->d_inner, N = c->d_state, K = c->d_conv, R = c->dt_rank, V = c->vocab_padded;
    model->layers = xcalloc((size_t)c->n_layer, sizeof(MambaLayer));
    model->params = xcalloc((size_t)(8 + 10 * c->n_layer), sizeof(NamedParam));
    const int F = c->n_features, H = c->horizon;
    if (c->head == MAMBA_HEAD_FORECAST) {  // heads.h: series values in, no embedding
        add_param(model, &model->input_weight, 2, (int[]){d, F}, "input_proj.weight", 0);
        add_param(model, &model->input_bias, 1, (int[]){d}, "input_proj.bias", 0);
        if (c->window_norm == MAMBA_WINDOW_REVIN_AFFINE) {
            add_param(model, &model->revin_weight, 1, (int[]){F}, "revin.weight", 0);
            add_param(model, &model->revin_bias, 1, (int[]){F}, "revin.bias", 0);
        }
    } else if (c->head != MAMBA_HEAD_DLINEAR) {
        add_param(model, &model->embedding, 2, (int[]){V, d}, "backbone.embeddings.weight", 0);
    }
    for (int i = 0; i < c->n_layer; i++) {
        MambaLayer *l = &model->layers[i];
        add_param(model, &l->norm_weight, 1, (int[]){d}, "backbone.layers.%d.norm.weight", i);
        add_param(model, &l->in_proj_weight, 2, (int[]){2 * D, d}, "backbone.layers.%d.mixer.in_proj.weight", i);
        add_param(model, &l->conv1d_weight, 3, (int[]){D, 1, K}, "backbone.layers.%d.mixer.conv1d.weight", i);
        add_param(model, &l->conv1d_bias, 1, (int[]){D}, "backbone.layers.%d.mixer.conv1d.bias", i);
        add_param(model, &l->x_proj_weight, 2, (int[]){R + 2 * N, D}, "backbone.layers.%d.mixer.x_proj.weight", i);
        add_param(model, &l->dt_proj_weight, 2, (int[]){D, R}, "backbone.layers.%d.mixer.dt_proj.weight", i);
        add_param(model, &l->dt_proj_bias, 1, (int[]){D}, "backbone.layers.%d.mixer.dt_proj.bias", i);
        add_param(model, &l->A_log, 2, (int[]){D, N}, "backbone.layers.%d.mixer.A_log", i);
        add_param(model, &l->D, 1, (int[]){D}, "backbone.layers.%d.mixer.D", i);
        add_param(model, &l->out_proj_weight, 2, (int[]){d, D}, "backbone.layers.%d.mixer.out_proj.weight", i);
    }
    add_param(model, &model->norm_f_weight, 1, (int[]){d}, "backbone.norm_f.weight", 0);
    if (c->head == MAMBA_HEAD_CLASSIFY) {  // heads.h
        add_param(model, &model->head_weight, 2, (int[]){c->n_classes, d}, "head.weight", 0);
        add_param(model, &model->head_bias, 1, (int[]){c->n_classes}, "head.bias", 0);
    }
    if (c->head == MAMBA_HEAD_FORECAST) {
        add_param(model, &model->head_weight, 2, (int[]){H * F, d}, "head.weight", 0);
        add_param(model, &model->head_bias, 1, (int[]){H * F}, "head.bias", 0);
    }
    if (c->head == MAMBA_HEAD_DLINEAR) {
        add_param(model, &model->head_weight, 2, (int[]){H, c->input_len}, "head.seasonal.weight", 0);
        add_param(model, &model->head_bias, 1, (int[]){H}, "head.seasonal.bias", 0);
        add_param(model, &model->trend_weight, 2, (int[]){H, c->input_len}, "head.trend.weight", 0);
        add_param(model, &model->trend_bias, 1, (int[]){H}, "head.trend.bias", 0);
    }
}

void mamba_model_free(MambaModel *model) {
    for (int i = 0; i < model->n_params; i++) tensor_free_param(model->params[i].tensor);
    free(model->layers);
    free(model->params);
    memset(model, 0, sizeof *model);
}

int mamba_model_check_finite(const MambaModel *model, Error *err) {
    for (int i = 0; i < model->n_params; i++) {
        const Tensor *t = model->params[i].tensor;
        size_t bad = 0, first = 0;
        for (size_t j = 0; j < t->size; j++)
            if (!isfinite(t->data[j]) && bad++ == 0) first = j;
        if (bad)
            return error_set(err, "%s: element %zu is %s (%zu of its %zu elements are not finite)",
                             model->params[i].name, first, isnan(t->data[first]) ? "NaN" : "infinite", bad, t->size);
    }
    return 0;
}

Tensor *mamba_model_find(MambaModel *model, const char *name) {
    for (int i = 0; i < model->n_params; i++)
        if (strcmp(model->params[i].name, name) == 0) return model->params[i].tensor;
    return NULL;
}

// One parallel region over all the gradients end to end (core/share.h).
void mamba_model_zero_grad(MambaModel *model) {
    size_t total = 0;
    for (int i = 0; i < model->n_params; i++) total += model->params[i].tensor->size;
#pragma omp parallel if (total >= SHARE_MIN_PARALLEL)
    {
        size_t lo, hi, offset = 0, begin, end;
        share_of_thread(total, &lo, &hi);
        for (int i = 0; i < model->n_params && offset < hi; offset += model->params[i++].tensor->size) {
            const Tensor *t = model->params[i].tensor;
            if (share_in_array(lo, hi, offset, t->size, &begin, &end))
                memset(t->grad + begin, 0, sizeof(float) * (end - begin));
        }
    }
}

static void fill_uniform(Tensor *t, Rng *rng, float bound) {
    for (size_t i = 0; i < t->size; i++) t->data[i] = (2.0f * rng_uniform(rng) - 1.0f) * bound;
}

static void fill_constant(Tensor *t, float value) {
    for (size_t i = 0; i < t->size; i++) t->data[i] = value;
}

// docs/DESIGN.md#model: PyTorch's default Linear/Conv1d init (U(±1/sqrt(fan_in))), out_proj scaled by
// 1/sqrt(n_layer) as in transformers' rescale_prenorm_residual, embedding N(0, 0.02),
// A_log = log(1..N), D = 1, dt log-uniform in [dt_min, dt_max] with dt_bias its softplus
// inverse, dt_proj.weight U(±R^-0.5).
void mamba_model_init_random(MambaModel *model, Rng *rng) {
    const MambaConfig *c = &model->config;
    int d = c->d_model, D = c->d_inner, N = c->d_state, K = c->d_conv, R = c->dt_rank;
    for (size_t i = 0; i < model->embedding.size; i++) model->embedding.data[i] = 0.02f * rng_normal(rng);
    if (c->head == MAMBA_HEAD_FORECAST) {  // a Linear layer from n_features: U(±1/sqrt(F))
        fill_uniform(&model->input_weight, rng, 1.0f / sqrtf((float)c->n_features));
        fill_uniform(&model->input_bias, rng, 1.0f / sqrtf((float)c->n_features));
        fill_constant(&model->revin_weight, 1.0f);  // RevIN's affine starts as the identity
        fill_constant(&model->revin_bias, 0.0f);
    }
    for (int i = 0; i < c->n_layer; i++) {
        MambaLayer *l = &model->layers[i];
        fill_constant(&l->norm_weight, 1.0f);
        fill_uniform(&l->in_proj_weight, rng, 1.0f / sqrtf((float)d));
        fill_uniform(&l->conv1d_weight, rng, 1.0f / sqrtf((float)K));
        fill_uniform(&l->conv1d_bias, rng, 1.0f / sqrtf((float)K));
        fill_uniform(&l->x_proj_weight, rng, 1.0f / sqrtf((float)D));
        fill_uniform(&l->dt_proj_weight, rng, 1.0f / sqrtf((float)R));
        double log_min = log(c->dt_min), log_max = log(c->dt_max);
        for (int j = 0; j < D; j++) {
            double dt = exp(rng_uniform_double(rng) * (log_max - log_min) + log_min);
            if (dt < c->dt_init_floor) dt = c->dt_init_floor;
            l->dt_proj_bias.data[j] = (float)(dt + log(-expm1(-dt)));
        }
        for (int j = 0; j < D; j++)
            for (int n = 0; n < N; n++) l->A_log.data[j * N + n] = logf((float)(n + 1));
        fill_constant(&l->D, 1.0f);
        fill_uniform(&l->out_proj_weight, rng, 1.0f / sqrtf((float)D) / sqrtf((float)c->n_layer));
    }
    fill_constant(&model->norm_f_weight, 1.0f);
    if (c->head == MAMBA_HEAD_CLASSIFY || c->head == MAMBA_HEAD_FORECAST) {  // a Linear layer: U(±1/sqrt(d)), bias too
        fill_uniform(&model->head_weight, rng, 1.0f / sqrtf((float)d));
        fill_uniform(&model->head_bias, rng, 1.0f / sqrtf((float)d));
    }
    if (c->head == MAMBA_HEAD_DLINEAR) {  // two Linear layers from input_len: U(±1/sqrt(input_len))
        float bound = 1.0f / sqrtf((float)c->input_len);
        fill_uniform(&model->head_weight, rng, bound);
        fill_uniform(&model->head_bias, rng, bound);
        fill_uniform(&model->trend_weight, rng, bound);
        fill_uniform(&model->trend_bias, rng, bound);
    }
}

// The first part of a block, up to dt_proj's output; the rest of the block reads the trace.
Tensor *mamba_block_forward_dt(Tape *tape, const MambaConfig *c, MambaLayer *l, Tensor *x, int B, int L,
                               MambaBlockTrace *trace) {
    int N = c->d_state, R = c->dt_rank;
    Tensor *u = op_rmsnorm(tape, x, &l->norm_weight, c->norm_eps);
    Tensor *xz = op_matmul(tape, u, &l->in_proj_weight);                 // (T, 2D): x, then z
    // The conv and (in mamba_block_forward) the gate read their halves in place: copies of
    // them cost two passes and 4 D floats a token of the tape (README "Threads").
    Tensor *xc = op_conv1d_causal_cols(tape, xz, 0, &l->conv1d_weight, &l->conv1d_bias, B, L);
    Tensor *xs = op_silu(tape, xc);                                       // (T, D)
    Tensor *dbc = op_matmul(tape, xs, &l->x_proj_weight);                 // (T, R + 2N)
    Tensor *delta = op_slice_cols(tape, dbc, 0, R);                       // (T, R)
    Tensor *B_ssm = op_slice_cols(tape, dbc, R, N);                       // (T, N)
    Tensor *C_ssm = op_slice_cols(tape, dbc, R + N, N);                   // (T, N)
    Tensor *dt = op_matmul(tape, delta, &l->dt_proj_weight);              // (T, D), bias added in the scan
    *trace = (MambaBlockTrace){.input = x, .u = u, .xz = xz, .xs = xs, .delta = delta, .dt = dt, .B_ssm = B_ssm,
                               .C_ssm = C_ssm};
    return dt;
}

// One residual block: x + mixer(rmsnorm(x)). x is (B*L, d).
Tensor *mamba_block_forward(Tape *tape, const MambaConfig *c, MambaLayer *l, Tensor *x, int B, int L,
                            MambaBlockTrace *trace) {
    MambaBlockTrace t;
    Tensor *dt = mamba_block_forward_dt(tape, c, l, x, B, L, &t);
    Tensor *y = op_selective_scan(tape, t.xs, dt, &l->dt_proj_bias, &l->A_log, t.B_ssm, t.C_ssm, &l->D, B, L);
    t.gated = op_silu_gate(tape, y, t.xz, c->d_inner);                   // (T, D) y * silu(z)
    Tensor *out = op_matmul(tape, t.gated, &l->out_proj_weight);          // (T, d)
    t.output = op_add(tape, x, out);
    if (trace) *trace = t;
    return t.output;
}

// One block as op_recompute calls it.
typedef struct BlockCall {
    const MambaConfig *config;
    MambaLayer *layer;
    int batch, seqlen;
} BlockCall;

static Tensor *block_call(Tape *tape, void *context, Tensor *x) {
    BlockCall *call = context;
    return mamba_block_forward(tape, call->config, call->layer, x, call->batch, call->seqlen, NULL);
}

Tensor *mamba_embed(Tape *tape, MambaModel *model, const int32_t *tokens, int T) {
    return op_embedding(tape, &model->embedding, tokens, T);             // (T, d)
}

Tensor *mamba_head(Tape *tape, MambaModel *model, Tensor *x, const int32_t *targets, int T, Tensor **logits_out) {
    Tensor *h = op_rmsnorm(tape, x, &model->norm_f_weight, model->config.norm_eps);
    Tensor *logits = op_matmul(tape, h, &model->embedding);               // (T, V), the tied head
    if (logits_out) *logits_out = logits;
    return targets ? op_cross_entropy(tape, logits, targets, T) : NULL;
}

Tensor *mamba_forward_traced(Tape *tape, MambaModel *model, const int32_t *tokens, const int32_t *targets,
                             int batch, int seqlen, Tensor **logits_out, MambaBlockTrace *traces) {
    const MambaConfig *c = &model->config;
    int T = batch * seqlen;
    Tensor *x = mamba_embed(tape, model, tokens, T);
    for (int i = 0; i < c->n_layer; i++) {
        if (tape->recompute && !traces) {  // train.recompute: only the blocks' outputs stay on the tape
            BlockCall *call = arena_alloc(&tape->arena, sizeof *call);
            *call = (BlockCall){c, &model->layers[i], batch, seqlen};
            x = op_recompute(tape, block_call, call, x);
        } else {
            x = mamba_block_forward(tape, c, &model->layers[i], x, batch, seqlen, traces ? &traces[i] : NULL);
        }
    }
    if (c->head == MAMBA_HEAD_CLASSIFY) return heads_classify(tape, model, x, targets, batch, seqlen, logits_out);
    return mamba_head(tape, model, x, targets, T, logits_out);
}

// Per-window statistics of model.window_norm (shift, scale: (B*F) in the tape's arena, NULL
// for none), and the input projection of the (normalised) values.
static Tensor *embed_values(Tape *tape, MambaModel *model, const float *values, int B, int L, float **shift,
                            float **scale) {
    const MambaConfig *c = &model->config;
    const int F = c->n_features, T = B * L;
    *shift = *scale = NULL;
    Tensor *v;
    if (c->window_norm == MAMBA_WINDOW_NONE) {
        v = tensor_view(tape, (float *)values, 2, (int[]){T, F});  // (T, F), constant
    } else {
        *shift = arena_alloc(&tape->arena, sizeof(float) * (size_t)B * F);
        *scale = arena_alloc(&tape->arena, sizeof(float) * (size_t)B * F);
        window_norm_stats(values, B, L, F, c->window_norm == MAMBA_WINDOW_LAST, MAMBA_REVIN_EPS, *shift, *scale);
        bool affine = c->window_norm == MAMBA_WINDOW_REVIN_AFFINE;
        v = op_window_norm(tape, values, *shift, *scale, affine ? &model->revin_weight : NULL,
                           affine ? &model->revin_bias : NULL, B, L, F);
    }
    return op_add_bias(tape, op_matmul(tape, v, &model->input_weight), &model->input_bias);  // (T, d)
}

Tensor *mamba_embed_values(Tape *tape, MambaModel *model, const float *values, int batch, int seqlen) {
    float *shift, *scale;
    return embed_values(tape, model, values, batch, seqlen, &shift, &scale);
}

Tensor *mamba_forward_values(Tape *tape, MambaModel *model, const float *values, const float *future, int batch,
                             int seqlen, float *pred_out, MambaBlockTrace *traces) {
    const MambaConfig *c = &model->config;
    if (c->head == MAMBA_HEAD_DLINEAR) return heads_dlinear(tape, model, values, future, batch, seqlen, pred_out);
    float *shift, *scale;
    Tensor *x = embed_values(tape, model, values, batch, seqlen, &shift, &scale);
    for (int i = 0; i < c->n_layer; i++)
        x = mamba_block_forward(tape, c, &model->layers[i], x, batch, seqlen, traces ? &traces[i] : NULL);
    return heads_forecast(tape, model, x, future, batch, seqlen, shift, scale, pred_out);
}

Tensor *mamba_forward(Tape *tape, MambaModel *model, const int32_t *tokens, const int32_t *targets, int batch,
                      int seqlen, Tensor **logits_out) {
    return mamba_forward_traced(tape, model, tokens, targets, batch, seqlen, logits_out, NULL);
}
