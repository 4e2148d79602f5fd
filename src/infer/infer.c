// The inference model of infer/infer.h: building it from a MambaModel and its masks, and
// running it, by the recurrent step of a batch of sequences or by the parallel forward of
// a prompt. Both run the same nonlinear code as the training forward (core/fastmath.h, the
// selective scan's formulas), so the sparse and dense paths agree to rounding; the linear
// layers go through sparse/packed.h in whatever format each was packed.
#include "infer/infer.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"             // defines: rmsnorm_forward, conv1d_causal_forward, matmul_forward
#include "autograd/selective_scan.h"  // defines: selective_scan_forward
#include "core/fastmath.h"            // defines: fast_expf, softplusf, siluf, silu_array

const char *infer_linear_name(InferLinear which) {
    static const char *names[] = {"in_proj", "x_proj", "dt_proj", "out_proj"};
    return which >= 0 && which < INFER_N_LINEARS ? names[which] : "unknown";
}

// (rows, cols) of each linear of a layer.
static void linear_shape(const MambaConfig *c, InferLinear which, int *rows, int *cols) {
    const int d = c->d_model, D = c->d_inner, N = c->d_state, R = c->dt_rank;
    const int shapes[INFER_N_LINEARS][2] = {{2 * D, d}, {R + 2 * N, D}, {D, R}, {d, D}};
    *rows = shapes[which][0];
    *cols = shapes[which][1];
}

static float *copy_floats(const float *src, size_t n) {
    float *p = xmalloc(sizeof(float) * (n ? n : 1));
    memcpy(p, src, sizeof(float) * n);
    return p;
}

void infer_model_alloc(InferModel *model, const MambaConfig *config) {
    memset(model, 0, sizeof *model);
    model->config = *config;
    const MambaConfig *c = config;
    const size_t d = (size_t)c->d_model, D = (size_t)c->d_inner, N = (size_t)c->d_state, K = (size_t)c->d_conv;
    model->embedding = xcalloc((size_t)c->vocab_padded * d, sizeof(float));
    model->norm_f_weight = xcalloc(d, sizeof(float));
    model->layers = xcalloc((size_t)c->n_layer, sizeof(InferLayer));
    for (int i = 0; i < c->n_layer; i++) {
        InferLayer *l = &model->layers[i];
        l->norm_weight = xcalloc(d, sizeof(float));
        l->conv1d_weight = xcalloc(D * K, sizeof(float));
        l->conv1d_bias = xcalloc(D, sizeof(float));
        l->dt_proj_bias = xcalloc(D, sizeof(float));
        l->A_log = xcalloc(D * N, sizeof(float));
        l->A = xcalloc(D * N, sizeof(float));
        l->D = xcalloc(D, sizeof(float));
        for (int k = 0; k < INFER_N_LINEARS; k++) {
            l->linear[k].format = PACKED_DENSE;
            linear_shape(c, (InferLinear)k, &l->linear[k].rows, &l->linear[k].cols);
        }
    }
}

void infer_model_free(InferModel *model) {
    if (model->layers)
        for (int i = 0; i < model->config.n_layer; i++) {
            InferLayer *l = &model->layers[i];
            free(l->norm_weight), free(l->conv1d_weight), free(l->conv1d_bias);
            free(l->dt_proj_bias), free(l->A_log), free(l->A), free(l->D);
            for (int k = 0; k < INFER_N_LINEARS; k++) packed_matrix_free(&l->linear[k]);
        }
    free(model->layers);
    free(model->embedding);
    lowp_matrix_free(&model->head);
    free(model->norm_f_weight);
    memset(model, 0, sizeof *model);
}

static void linear_param_name(char *out, size_t size, int layer, InferLinear which) {
    snprintf(out, size, "backbone.layers.%d.mixer.%s.weight", layer, infer_linear_name(which));
}

int infer_model_build(InferModel *model, const MambaModel *source, const PruneMasks *masks,
                      const InferOptions *options, Error *err) {
    const MambaConfig *c = &source->config;
    const size_t d = (size_t)c->d_model, D = (size_t)c->d_inner, N = (size_t)c->d_state, K = (size_t)c->d_conv;
    memset(model, 0, sizeof *model);
    model->config = *c;
    model->embedding = copy_floats(source->embedding.data, (size_t)c->vocab_padded * d);
    model->norm_f_weight = copy_floats(source->norm_f_weight.data, d);
    model->layers = xcalloc((size_t)c->n_layer, sizeof(InferLayer));
    for (int i = 0; i < c->n_layer; i++) {
        const MambaLayer *s = &source->layers[i];
        InferLayer *l = &model->layers[i];
        l->norm_weight = copy_floats(s->norm_weight.data, d);
        l->conv1d_weight = copy_floats(s->conv1d_weight.data, D * K);
        l->conv1d_bias = copy_floats(s->conv1d_bias.data, D);
        l->dt_proj_bias = copy_floats(s->dt_proj_bias.data, D);
        l->A_log = copy_floats(s->A_log.data, D * N);
        l->A = xmalloc(sizeof(float) * (D * N > 0 ? D * N : 1));
        l->D = copy_floats(s->D.data, D);
        const Tensor *weights[INFER_N_LINEARS] = {&s->in_proj_weight, &s->x_proj_weight, &s->dt_proj_weight,
                                                  &s->out_proj_weight};
        for (int k = 0; k < INFER_N_LINEARS; k++) {
            int rows, cols;
            linear_shape(c, (InferLinear)k, &rows, &cols);
            char name[96];
            linear_param_name(name, sizeof name, i, (InferLinear)k);
            const MaskedTensor *mask = masks ? prune_masks_find((PruneMasks *)masks, name) : NULL;
            const uint8_t *keep = mask ? mask->keep : NULL;
            const float *w = weights[k]->data;
            PackedFormat format = PACKED_DENSE;
            if (!(options && options->force_dense)) {
                size_t nnz = 0;
                for (size_t j = 0; j < (size_t)rows * cols; j++) nnz += keep ? keep[j] != 0 : w[j] != 0.0f;
                format = packed_choose_format(rows, cols, nnz, packed_is_2_4(w, keep, rows, cols));
            }
            if (packed_matrix_pack(&l->linear[k], format, w, keep, rows, cols, err) != 0) {
                error_prefix(err, "%s", name);
                infer_model_free(model);
                return -1;
            }
        }
    }
    infer_model_derive(model);
    return 0;
}

void infer_model_derive(InferModel *model) {
    const size_t DN = (size_t)model->config.d_inner * model->config.d_state;
    for (int i = 0; i < model->config.n_layer; i++) {
        InferLayer *l = &model->layers[i];
        for (size_t j = 0; j < DN; j++) l->A[j] = -fast_expf(l->A_log[j]);
    }
}

void infer_model_alloc_head(InferModel *model, LowpFormat format) {
    const MambaConfig *c = &model->config;
    lowp_matrix_free(&model->head);
    free(model->embedding);
    model->embedding = NULL;
    model->head_format = format;
    if (format == LOWP_F32)
        model->embedding = xcalloc((size_t)c->vocab_padded * c->d_model, sizeof(float));
    else
        lowp_matrix_alloc(&model->head, format, c->vocab_padded, c->d_model);
}

void infer_model_set_head(InferModel *model, LowpFormat format) {
    if (format == model->head_format) return;
    const MambaConfig *c = &model->config;
    const size_t V = (size_t)c->vocab_padded, d = (size_t)c->d_model;
    float *w = model->embedding;
    if (!w) {
        w = xmalloc(sizeof(float) * V * d);
        for (size_t r = 0; r < V; r++) lowp_matrix_row(&model->head, (int)r, w + r * d);
        lowp_matrix_free(&model->head);
    }
    model->embedding = NULL;
    model->head_format = format;
    if (format == LOWP_F32) {
        model->embedding = w;
        return;
    }
    lowp_matrix_from_f32(&model->head, format, w, (int)V, (int)d);
    free(w);
}

// x (d) = the embedding of token.
static void embed(const InferModel *model, int token, float *x) {
    const int d = model->config.d_model;
    if (model->head_format == LOWP_F32)
        memcpy(x, model->embedding + (size_t)token * d, sizeof(float) * d);
    else
        lowp_matrix_row(&model->head, token, x);
}

int infer_model_check(const InferModel *model, Error *err) {
    for (int i = 0; i < model->config.n_layer; i++)
        for (int k = 0; k < INFER_N_LINEARS; k++) {
            const PackedMatrix *m = &model->layers[i].linear[k];
            char name[96];
            linear_param_name(name, sizeof name, i, (InferLinear)k);
            int rows, cols;
            linear_shape(&model->config, (InferLinear)k, &rows, &cols);
            if (m->rows != rows || m->cols != cols)
                return error_set(err, "%s: shape (%d, %d), expected (%d, %d)", name, m->rows, m->cols, rows, cols);
            if (packed_matrix_validate(m, err) != 0) return error_prefix(err, "%s", name);
        }
    return 0;
}

int infer_model_tensors(const InferModel *model, InferTensorInfo *info) {
    int n = 0;
    for (int i = 0; i < model->config.n_layer; i++)
        for (int k = 0; k < INFER_N_LINEARS; k++, n++) {
            const PackedMatrix *m = &model->layers[i].linear[k];
            InferTensorInfo *t = &info[n];
            linear_param_name(t->name, sizeof t->name, i, (InferLinear)k);
            t->format = m->format;
            t->rows = m->rows, t->cols = m->cols;
            t->density = m->format == PACKED_DENSE ? 1.0 : packed_density(m);
            t->bytes = packed_bytes(m->format, m->rows, m->cols, m->nnz);
            t->prompt_sparse = packed_prompt_sparse_pays(m);
        }
    return n;
}

size_t infer_model_bytes(const InferModel *model) {
    const MambaConfig *c = &model->config;
    const size_t d = (size_t)c->d_model, D = (size_t)c->d_inner, N = (size_t)c->d_state, K = (size_t)c->d_conv;
    size_t bytes = lowp_bytes(model->head_format, c->vocab_padded, (int)d) + sizeof(float) * d;
    for (int i = 0; i < c->n_layer; i++) {
        bytes += sizeof(float) * (d + D * K + 3 * D + D * N);
        for (int k = 0; k < INFER_N_LINEARS; k++) {
            const PackedMatrix *m = &model->layers[i].linear[k];
            bytes += packed_bytes(m->format, m->rows, m->cols, m->nnz);
        }
    }
    return bytes;
}

// ---- state ----

static size_t conv_floats(const MambaConfig *c) { return (size_t)c->n_layer * c->d_inner * (c->d_conv - 1); }
static size_t ssm_floats(const MambaConfig *c) { return (size_t)c->n_layer * c->d_inner * c->d_state; }
// One step of B sequences: x, u, out (B, d); xz (B, 2D); xs, dt, y (B, D); dbc (B, R+2N); delta (B, R).
static size_t step_scratch_floats(const MambaConfig *c, int B) {
    return (size_t)B * (3 * c->d_model + 2 * c->d_inner + 3 * c->d_inner + 2 * c->dt_rank + 2 * c->d_state);
}

void infer_state_create(InferState *state, const MambaConfig *c, int capacity) {
    state->capacity = capacity;
    state->conv = xcalloc((size_t)capacity * conv_floats(c) + 1, sizeof(float));
    state->ssm = xcalloc((size_t)capacity * ssm_floats(c) + 1, sizeof(float));
    state->scratch = xcalloc(step_scratch_floats(c, capacity) + 1, sizeof(float));
}

void infer_state_reset(InferState *state, const MambaConfig *c) {
    memset(state->conv, 0, sizeof(float) * (size_t)state->capacity * conv_floats(c));
    memset(state->ssm, 0, sizeof(float) * (size_t)state->capacity * ssm_floats(c));
}

void infer_state_free(InferState *state) {
    free(state->conv), free(state->ssm), free(state->scratch);
    memset(state, 0, sizeof *state);
}

// ---- the recurrent step ----

// The fp32 head as a dense packed matrix: a view of the embedding (not freed).
static PackedMatrix head_f32_view(const InferModel *model) {
    return (PackedMatrix){.format = PACKED_DENSE, .rows = model->config.vocab_padded, .cols = model->config.d_model,
                          .values = model->embedding};
}

// The head: logits (B, V) = u (B, d) @ embedding^T, through the dense kernel.
static void head_matvec(const InferModel *model, const float *u, float *logits, int B) {
    if (model->head_format != LOWP_F32) {
        lowp_matvec(&model->head, u, logits, B);
        return;
    }
    const PackedMatrix head = head_f32_view(model);
    packed_matvec(&head, u, logits, B);
}

// One token through a layer's causal conv: xz (2D) the in_proj output (its first D the
// conv input), conv (D, K-1) the window, oldest first, shifted on; writes xs (D) = silu(conv).
// Mamba's K = 4 has its own loop, which the compiler runs in vector lanes over the
// channels (the general one stays scalar: its inner loops are 3 long); both add the
// terms in the same order (bias, window oldest first, the new input): the same bits.
// Channels [j0, j1) only (the step of one sequence shares them among its threads).
static void conv_step(const MambaConfig *c, const InferLayer *l, float *conv, const float *xz, float *xs, int j0,
                      int j1) {
    const int K = c->d_conv;
    if (K == 4) {
        const float *restrict w = l->conv1d_weight, *restrict bias = l->conv1d_bias;
        float *restrict window = conv;
        for (int j = j0; j < j1; j++) {
            const float w0 = window[3 * j], w1 = window[3 * j + 1], w2 = window[3 * j + 2], in = xz[j];
            float acc = bias[j];
            acc += w[4 * j] * w0;
            acc += w[4 * j + 1] * w1;
            acc += w[4 * j + 2] * w2;
            acc += w[4 * j + 3] * in;
            window[3 * j] = w1, window[3 * j + 1] = w2, window[3 * j + 2] = in;
            xs[j] = siluf(acc);
        }
        return;
    }
    for (int j = j0; j < j1; j++) {
        const float *w = l->conv1d_weight + (size_t)j * K;
        float *window = conv + (size_t)j * (K - 1);
        float acc = l->conv1d_bias[j];
        for (int k = 0; k < K - 1; k++) acc += w[k] * window[k];
        acc += w[K - 1] * xz[j];
        for (int k = 0; k + 1 < K - 1; k++) window[k] = window[k + 1];
        if (K > 1) window[K - 2] = xz[j];
        xs[j] = siluf(acc);
    }
}

// Channels per piece of the threaded scan: 48 pieces at mamba-130m's d_inner (3 per
// thread at 16 threads, where pieces of 64 left half the threads one short).
enum { SCAN_PIECE = 32 };

// h = exp(Δ A) h + Δ x B, y = <h, C> + D x, gated by silu(z): the selective scan's
// formulas (autograd/selective_scan.c: state_step, forward_block) for one token and the
// channels of piece q (SCAN_PIECE of them), with A = -exp(A_log) derived once
// (infer_model_derive). Channels are independent. Within a piece the per-channel scalars
// (softplus, silu) are vector loops over the channels, the state update (element-wise
// over n) a vector loop per channel, and the dot with C runs the piece's channels side by
// side, each channel's sum still in order n (one chain of N dependent FMAs per channel was
// the step's slowest part). Every value is computed by the same formula in the same order
// as the plain per-channel loop: the same bits, whichever thread runs the piece.
static void scan_piece(const MambaConfig *c, const InferLayer *l, float *ssm, const float *xs, const float *dt,
                       const float *B_t, const float *C_t, const float *z, float *y, int q) {
    const int D = c->d_inner, N = c->d_state;
    const int j0 = q * SCAN_PIECE, nj = D - j0 < SCAN_PIECE ? D - j0 : SCAN_PIECE;
    float delta[SCAN_PIECE], delta_x[SCAN_PIECE], acc[SCAN_PIECE], gate[SCAN_PIECE];
    for (int i = 0; i < nj; i++) {
        const int j = j0 + i;
        delta[i] = softplusf(dt[j] + l->dt_proj_bias[j]);
        delta_x[i] = delta[i] * xs[j];
        acc[i] = l->D[j] * xs[j];
    }
    silu_array(gate, z + j0, nj);  // siluf's bits, without its slow vector code
    float *restrict h0 = ssm + (size_t)j0 * N;
    const float *restrict A0 = l->A + (size_t)j0 * N;
    for (int i = 0; i < nj; i++) {
        float *restrict h = h0 + (size_t)i * N;
        const float *restrict A = A0 + (size_t)i * N;
        const float dl = delta[i], dx = delta_x[i];
        for (int n = 0; n < N; n++) h[n] = fmaf(fast_expf(dl * A[n]), h[n], dx * B_t[n]);
    }
    for (int n = 0; n < N; n++) {
        const float Cn = C_t[n];
        for (int i = 0; i < nj; i++) acc[i] = fmaf(h0[(size_t)i * N + n], Cn, acc[i]);
    }
    for (int i = 0; i < nj; i++) y[j0 + i] = acc[i] * gate[i];
}

// The scan of one token over all channels, threaded over pieces.
static void scan_step(const MambaConfig *c, const InferLayer *l, float *ssm, const float *xs, const float *dt,
                      const float *B_t, const float *C_t, const float *z, float *y) {
    const int n_pieces = (c->d_inner + SCAN_PIECE - 1) / SCAN_PIECE;
#pragma omp parallel for schedule(static) if (c->d_inner * c->d_state >= 4096)
    for (int q = 0; q < n_pieces; q++) scan_piece(c, l, ssm, xs, dt, B_t, C_t, z, y, q);
}

// Splits [0, n) into parts of equal cost at multiples of grain: *begin, *end of part t of
// n_parts, where cost(k) is the cost of [0, k) (nondecreasing; cost(n) the whole).
typedef size_t (*PrefixCost)(const void *ctx, int k);

static void split_by_cost(PrefixCost cost, const void *ctx, int n, int grain, int n_parts, int t, int *begin,
                          int *end) {
    const double whole = (double)cost(ctx, n);
    const int n_steps = (n + grain - 1) / grain;  // candidates: k = s * grain (s < n_steps), and n
    int bounds[2];
    for (int side = 0; side < 2; side++) {
        const int part = t + side;
        if (part <= 0 || part >= n_parts) {
            bounds[side] = part <= 0 ? 0 : n;
            continue;
        }
        // The first candidate whose cost reaches part / n_parts of the whole (binary search).
        const double target = whole * part / n_parts;
        int lo = 0, hi = n_steps;  // candidate s has k = min(s * grain, n)
        while (lo < hi) {
            const int mid = lo + (hi - lo) / 2;
            const int k = mid * grain < n ? mid * grain : n;
            if ((double)cost(ctx, k) < target) lo = mid + 1;
            else hi = mid;
        }
        bounds[side] = lo * grain < n ? lo * grain : n;
    }
    *begin = bounds[0], *end = bounds[1];
}

static size_t rows_cost(const void *ctx, int k) { return packed_rows_bytes(ctx, 0, k); }

// in_proj's cost up to channel k: its x rows [0, k) and z rows [D, D + k).
static size_t channels_cost(const void *ctx, int k) {
    const PackedMatrix *in_proj = ctx;
    const int D = in_proj->rows / 2;
    return packed_rows_bytes(in_proj, 0, k) + packed_rows_bytes(in_proj, D, D + k);
}

// infer_step for one sequence: the whole step in one parallel region. Each thread owns
// channels [j0, j1) (in_proj's x and z rows, the conv, dt_proj's rows and the scan of
// those channels, which need nothing from the others) and shares of x_proj's, out_proj's
// and the head's rows, with a barrier where a product needs all of its input: 5 a layer,
// where a region per product made 6 joins a layer and left the conv and the residual to
// one thread while the others waited. Every value is computed by the same code as in
// infer_step's batched path, so the bits do not depend on the thread count.
// Channel shares are multiples of SCAN_PIECE (the scan's pieces) and split in_proj's
// stored bytes evenly; the other shares split their matrix's bytes.
static void step_one(const InferModel *model, InferState *state, int token, float *logits) {
    const MambaConfig *c = &model->config;
    const int d = c->d_model, D = c->d_inner, N = c->d_state, R = c->dt_rank, V = c->vocab_padded;
    float *x = state->scratch, *u = x + d, *out = u + d, *xz = out + d;
    float *xs = xz + 2 * D, *dt = xs + D, *y = dt + D, *dbc = y + D;
    embed(model, token, x);
    const size_t conv_layer = (size_t)D * (c->d_conv - 1), ssm_layer = (size_t)D * N;
    const PackedMatrix head_f32 = head_f32_view(model);
#pragma omp parallel
    {
        const int n_threads = omp_get_num_threads(), t = omp_get_thread_num();
        float rstd;
        for (int i = 0; i < c->n_layer; i++) {
            const InferLayer *l = &model->layers[i];
            const PackedMatrix *in_proj = &l->linear[INFER_IN_PROJ], *x_proj = &l->linear[INFER_X_PROJ];
            const PackedMatrix *dt_proj = &l->linear[INFER_DT_PROJ], *out_proj = &l->linear[INFER_OUT_PROJ];
            int j0, j1, k0, k1, o0, o1;
            split_by_cost(channels_cost, in_proj, D, SCAN_PIECE, n_threads, t, &j0, &j1);
            split_by_cost(rows_cost, x_proj, R + 2 * N, 1, n_threads, t, &k0, &k1);
            split_by_cost(rows_cost, out_proj, d, 1, n_threads, t, &o0, &o1);
#pragma omp single
            rmsnorm_forward(u, &rstd, x, l->norm_weight, 1, d, c->norm_eps);
            packed_matvec_rows(in_proj, u, xz, j0, j1);
            packed_matvec_rows(in_proj, u, xz, D + j0, D + j1);
            conv_step(c, l, state->conv + i * conv_layer, xz, xs, j0, j1);
#pragma omp barrier
            packed_matvec_rows(x_proj, xs, dbc, k0, k1);
#pragma omp barrier
            packed_matvec_rows(dt_proj, dbc, dt, j0, j1);  // its input: delta, the first R of dbc
            // j0 is a multiple of SCAN_PIECE, or D for an empty share (whose piece j0 / SCAN_PIECE
            // is another thread's when D is not a multiple).
            for (int q = j0 / SCAN_PIECE; j0 < j1 && q * SCAN_PIECE < j1; q++)
                scan_piece(c, l, state->ssm + i * ssm_layer, xs, dt, dbc + R, dbc + R + N, xz + D, y, q);
#pragma omp barrier
            packed_matvec_rows(out_proj, y, out, o0, o1);
            for (int j = o0; j < o1; j++) x[j] += out[j];
#pragma omp barrier
        }
#pragma omp single
        rmsnorm_forward(u, &rstd, x, model->norm_f_weight, 1, d, c->norm_eps);
        const int h0 = (int)((long)V * t / n_threads), h1 = (int)((long)V * (t + 1) / n_threads);
        if (model->head_format != LOWP_F32)
            lowp_matvec_rows(&model->head, u, logits, h0, h1);
        else
            packed_matvec_rows(&head_f32, u, logits, h0, h1);
    }
}

int infer_step(const InferModel *model, InferState *state, const int32_t *tokens, int B, float *logits, Error *err) {
    const MambaConfig *c = &model->config;
    const int d = c->d_model, D = c->d_inner, N = c->d_state, R = c->dt_rank, V = c->vocab_padded;
    if (B < 1 || B > state->capacity)
        return error_set(err, "infer_step: batch %d outside [1, %d] (the state's capacity)", B, state->capacity);
    for (int b = 0; b < B; b++)
        if (tokens[b] < 0 || tokens[b] >= V)
            return error_set(err, "infer_step: token %d of sequence %d outside the vocabulary [0, %d)", tokens[b], b, V);
    if (B == 1) {
        step_one(model, state, tokens[0], logits);
        return 0;
    }
    float *x = state->scratch, *u = x + (size_t)B * d, *out = u + (size_t)B * d, *xz = out + (size_t)B * d;
    float *xs = xz + (size_t)B * 2 * D, *dt = xs + (size_t)B * D, *y = dt + (size_t)B * D;
    float *dbc = y + (size_t)B * D, *delta = dbc + (size_t)B * (R + 2 * N);
    for (int b = 0; b < B; b++) embed(model, tokens[b], x + (size_t)b * d);
    const size_t conv_seq = conv_floats(c), ssm_seq = ssm_floats(c);
    const size_t conv_layer = (size_t)D * (c->d_conv - 1), ssm_layer = (size_t)D * N;
    float rstd[16];
    for (int i = 0; i < c->n_layer; i++) {
        const InferLayer *l = &model->layers[i];
        for (int b = 0; b < B; b++)
            rmsnorm_forward(u + (size_t)b * d, rstd, x + (size_t)b * d, l->norm_weight, 1, d, c->norm_eps);
        packed_matvec(&l->linear[INFER_IN_PROJ], u, xz, B);                       // (B, 2D)
        for (int b = 0; b < B; b++)
            conv_step(c, l, state->conv + b * conv_seq + i * conv_layer, xz + (size_t)b * 2 * D, xs + (size_t)b * D, 0,
                      D);
        packed_matvec(&l->linear[INFER_X_PROJ], xs, dbc, B);                      // (B, R + 2N)
        for (int b = 0; b < B; b++) memcpy(delta + (size_t)b * R, dbc + (size_t)b * (R + 2 * N), sizeof(float) * R);
        packed_matvec(&l->linear[INFER_DT_PROJ], delta, dt, B);                   // (B, D)
        for (int b = 0; b < B; b++) {
            const float *row = dbc + (size_t)b * (R + 2 * N);
            scan_step(c, l, state->ssm + b * ssm_seq + i * ssm_layer, xs + (size_t)b * D, dt + (size_t)b * D, row + R,
                      row + R + N, xz + (size_t)b * 2 * D + D, y + (size_t)b * D);
        }
        packed_matvec(&l->linear[INFER_OUT_PROJ], y, out, B);                     // (B, d)
        for (size_t j = 0; j < (size_t)B * d; j++) x[j] += out[j];
    }
    for (int b = 0; b < B; b++)
        rmsnorm_forward(u + (size_t)b * d, rstd, x + (size_t)b * d, model->norm_f_weight, 1, d, c->norm_eps);
    head_matvec(model, u, logits, B);
    return 0;
}

// ---- the parallel forward of a prompt ----

// The prompt's elementwise steps run over rows of tokens on every thread (from
// PROMPT_PARALLEL_MIN floats; below, a region costs more than it saves). On one thread,
// while the others waited, they cost the dense 130m prompt on 2 threads about a tenth
// (720 tokens/s, 795 with them threaded), dense and sparse alike, which hid part of the
// sparse gain.
#define PROMPT_PARALLEL_MIN 32768

// dst (T, width) = columns [start, start + width) of src (T, stride).
static void copy_columns(float *dst, const float *src, int T, int stride, int start, int width) {
#pragma omp parallel for schedule(static) if ((size_t)T * width >= PROMPT_PARALLEL_MIN)
    for (int t = 0; t < T; t++) memcpy(dst + (size_t)t * width, src + (size_t)t * stride + start, sizeof(float) * width);
}

// x (T, width) = silu(x), row by row (siluf's bits, without its slow vector code).
static void silu_rows(float *x, int T, int width) {
#pragma omp parallel for schedule(static) if ((size_t)T * width >= PROMPT_PARALLEL_MIN)
    for (int t = 0; t < T; t++) silu_array(x + (size_t)t * width, x + (size_t)t * width, width);
}

// y (T, width) *= silu(z); z is overwritten with silu(z).
static void gate_rows(float *y, float *z, int T, int width) {
#pragma omp parallel for schedule(static) if ((size_t)T * width >= PROMPT_PARALLEL_MIN)
    for (int t = 0; t < T; t++) {
        float *zt = z + (size_t)t * width, *yt = y + (size_t)t * width;
        silu_array(zt, zt, width);
        for (int j = 0; j < width; j++) yt[j] *= zt[j];
    }
}

// x (T, width) += u.
static void add_rows(float *x, const float *u, int T, int width) {
#pragma omp parallel for schedule(static) if ((size_t)T * width >= PROMPT_PARALLEL_MIN)
    for (int t = 0; t < T; t++)
        for (int j = 0; j < width; j++) x[(size_t)t * width + j] += u[(size_t)t * width + j];
}

int infer_prompt(const InferModel *model, InferState *state, const int32_t *tokens, int B, int L, float *logits,
                 bool all_positions, Error *err) {
    const MambaConfig *c = &model->config;
    const int d = c->d_model, D = c->d_inner, N = c->d_state, R = c->dt_rank, V = c->vocab_padded, K = c->d_conv;
    if (B < 1 || B > state->capacity)
        return error_set(err, "infer_prompt: batch %d outside [1, %d] (the state's capacity)", B, state->capacity);
    if (L < 1) return error_set(err, "infer_prompt: seqlen %d, expected at least 1", L);
    const size_t T = (size_t)B * L;
    for (size_t t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= V)
            return error_set(err, "infer_prompt: token %d at position %zu outside the vocabulary [0, %d)", tokens[t], t, V);
    // Activations of one block: (T, .) each.
    float *x = xmalloc(sizeof(float) * T * d), *u = xmalloc(sizeof(float) * T * d);
    float *xz = xmalloc(sizeof(float) * T * 2 * D), *xi = xmalloc(sizeof(float) * T * D);
    float *z = xmalloc(sizeof(float) * T * D), *xs = xmalloc(sizeof(float) * T * D);
    float *dbc = xmalloc(sizeof(float) * T * (R + 2 * N)), *delta = xmalloc(sizeof(float) * T * R);
    float *B_ssm = xmalloc(sizeof(float) * T * N), *C_ssm = xmalloc(sizeof(float) * T * N);
    float *dt = xmalloc(sizeof(float) * T * D), *y = xmalloc(sizeof(float) * T * D);
    float *rstd = xmalloc(sizeof(float) * T), *final_state = xmalloc(sizeof(float) * (size_t)B * N * D);
    for (size_t t = 0; t < T; t++) embed(model, tokens[t], x + t * d);
    const size_t conv_seq = conv_floats(c), ssm_seq = ssm_floats(c);
    const size_t conv_layer = (size_t)D * (K - 1), ssm_layer = (size_t)D * N;
    for (int i = 0; i < c->n_layer; i++) {
        const InferLayer *l = &model->layers[i];
        rmsnorm_forward(u, rstd, x, l->norm_weight, (int)T, d, c->norm_eps);
        packed_matmul(&l->linear[INFER_IN_PROJ], u, xz, (int)T);                  // (T, 2D)
        copy_columns(xi, xz, (int)T, 2 * D, 0, D);                                 // (T, D)
        copy_columns(z, xz, (int)T, 2 * D, D, D);                                  // (T, D)
        conv1d_causal_forward(xs, xi, D, l->conv1d_weight, l->conv1d_bias, B, L, D, K);
        silu_rows(xs, (int)T, D);
        packed_matmul(&l->linear[INFER_X_PROJ], xs, dbc, (int)T);                  // (T, R + 2N)
        copy_columns(delta, dbc, (int)T, R + 2 * N, 0, R);
        copy_columns(B_ssm, dbc, (int)T, R + 2 * N, R, N);
        copy_columns(C_ssm, dbc, (int)T, R + 2 * N, R + N, N);
        packed_matmul(&l->linear[INFER_DT_PROJ], delta, dt, (int)T);               // (T, D)
        // One chunk of the whole prompt: the one checkpoint is the state after the last token.
        SelectiveScanShape shape = {.batch = B, .seqlen = L, .d_inner = D, .d_state = N, .chunk = L};
        selective_scan_forward(&shape, y, final_state, xs, dt, l->dt_proj_bias, l->A_log, B_ssm, C_ssm, l->D);
        gate_rows(y, z, (int)T, D);                                                // (T, D); z is a copy
        packed_matmul(&l->linear[INFER_OUT_PROJ], y, u, (int)T);                   // (T, d)
        add_rows(x, u, (int)T, d);
        // The state as after the prompt: ssm (D, N) from the checkpoint (N, D); the conv
        // window holds the last K-1 conv inputs, zeros before the sequence's start.
        for (int b = 0; b < B; b++) {
            float *ssm = state->ssm + b * ssm_seq + i * ssm_layer;
            const float *saved = final_state + (size_t)b * N * D;
            for (int j = 0; j < D; j++)
                for (int n = 0; n < N; n++) ssm[(size_t)j * N + n] = saved[(size_t)n * D + j];
            float *conv = state->conv + b * conv_seq + i * conv_layer;
            for (int j = 0; j < D; j++)
                for (int k = 0; k < K - 1; k++) {
                    int t = L - (K - 1) + k;
                    conv[(size_t)j * (K - 1) + k] = t >= 0 ? xi[((size_t)b * L + t) * D + j] : 0.0f;
                }
        }
    }
    // Final norm and the tied head, on the last position of each sequence or on all.
    size_t rows = all_positions ? T : (size_t)B;
    for (size_t r = 0; r < rows; r++) {
        size_t t = all_positions ? r : (r * L + L - 1);
        memcpy(u + r * d, x + t * d, sizeof(float) * d);
    }
    rmsnorm_forward(x, rstd, u, model->norm_f_weight, (int)rows, d, c->norm_eps);
    if (model->head_format == LOWP_F32)
        matmul_forward(logits, x, model->embedding, (int)rows, d, V);
    else
        lowp_matmul(&model->head, x, logits, (int)rows);
    free(x), free(u), free(xz), free(xi), free(z), free(xs), free(dbc), free(delta);
    free(B_ssm), free(C_ssm), free(dt), free(y), free(rstd), free(final_state);
    return 0;
}
