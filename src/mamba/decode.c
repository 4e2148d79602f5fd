// Recurrent inference: one token at a time with a (conv, ssm) state per layer, the way
// a Mamba generates. Kept plain and readable: shift the conv window, depthwise dot,
// h = exp(Δ A) h + Δ x B, y = C h + D x. Must give the parallel forward's logits.
// The opt-in sparse step differs only in how the mixer's four matrices multiply.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "core/error.h"
#include "core/fastmath.h"
#include "mamba/model.h"

// Scratch: x (d), u (d), xz (2D), xs (D), dbc (R+2N), dt (D), y (D), out (d).
static size_t scratch_floats(const MambaConfig *c) {
    return (size_t)(4 * c->d_model + 2 * c->d_inner + 3 * c->d_inner + c->dt_rank + 2 * c->d_state);
}

void mamba_state_create(MambaState *state, const MambaConfig *c) {
    state->conv = xcalloc((size_t)c->n_layer * c->d_inner * (c->d_conv - 1) + 1, sizeof(float));
    state->ssm = xcalloc((size_t)c->n_layer * c->d_inner * c->d_state, sizeof(float));
    state->scratch = xcalloc(scratch_floats(c), sizeof(float));
}

void mamba_state_reset(MambaState *state, const MambaConfig *c) {
    memset(state->conv, 0, sizeof(float) * ((size_t)c->n_layer * c->d_inner * (c->d_conv - 1) + 1));
    memset(state->ssm, 0, sizeof(float) * (size_t)c->n_layer * c->d_inner * c->d_state);
}

void mamba_state_free(MambaState *state) {
    free(state->conv);
    free(state->ssm);
    free(state->scratch);
    memset(state, 0, sizeof *state);
}

// out (n_out) = w (n_out, n_in) @ x (n_in)
static void matvec(float *out, const float *w, const float *x, int n_out, int n_in) {
    matmul_forward(out, x, w, 1, n_in, n_out);
}

// out (rows) = m @ x (cols), over the nonzeros only.
static void csr_matvec(float *out, const CsrMatrix *m, const float *x) {
    // Threads only pay for a product big enough to hide the fork.
#pragma omp parallel for schedule(static) if (m->row_start[m->rows] >= (1 << 16))
    for (int i = 0; i < m->rows; i++) {
        // Four independent sums: one would wait on the adder's latency at every nonzero.
        float acc0 = 0.0f, acc1 = 0.0f, acc2 = 0.0f, acc3 = 0.0f;
        int32_t k = m->row_start[i], end = m->row_start[i + 1];
        for (; k + 4 <= end; k += 4) {
            acc0 += m->value[k] * x[m->col[k]];
            acc1 += m->value[k + 1] * x[m->col[k + 1]];
            acc2 += m->value[k + 2] * x[m->col[k + 2]];
            acc3 += m->value[k + 3] * x[m->col[k + 3]];
        }
        for (; k < end; k++) acc0 += m->value[k] * x[m->col[k]];
        out[i] = (acc0 + acc1) + (acc2 + acc3);
    }
}

// A linear layer of the step: the CSR copy when there is one (csr may be NULL), else dense.
static void linear(float *out, const Tensor *w, const CsrMatrix *csr, const float *x, int n_out, int n_in) {
    if (csr && csr->rows > 0) csr_matvec(out, csr, x);
    else matvec(out, w->data, x, n_out, n_in);
}

static void rmsnorm_vector(float *out, const float *x, const float *w, int C, float eps) {
    float rstd;
    rmsnorm_forward(out, &rstd, x, w, 1, C, eps);
}

// csr: the layer's four CSR copies (in_proj, x_proj, dt_proj, out_proj), or NULL.
static void mixer_step(const MambaConfig *c, const MambaLayer *l, const CsrMatrix *csr, float *conv_state,
                       float *ssm_state, const float *u, float *out, float *scratch) {
    int D = c->d_inner, N = c->d_state, K = c->d_conv, R = c->dt_rank, d = c->d_model;
    float *xz = scratch, *xs = xz + 2 * D, *dbc = xs + D, *dt = dbc + R + 2 * N, *y = dt + D;
    linear(xz, &l->in_proj_weight, csr ? &csr[0] : NULL, u, 2 * D, d);
    const float *z = xz + D;
    // Causal conv over the window [state (K-1 oldest first), x_t], then shift the window.
    for (int j = 0; j < D; j++) {
        const float *w = l->conv1d_weight.data + (long)j * K;
        float *window = conv_state + (long)j * (K - 1);
        float acc = l->conv1d_bias.data[j] + w[K - 1] * xz[j];
        for (int k = 0; k < K - 1; k++) acc += w[k] * window[k];
        for (int k = 0; k + 1 < K - 1; k++) window[k] = window[k + 1];
        if (K > 1) window[K - 2] = xz[j];
        xs[j] = siluf(acc);
    }
    linear(dbc, &l->x_proj_weight, csr ? &csr[1] : NULL, xs, R + 2 * N, D);
    const float *B = dbc + R, *C = dbc + R + N;
    linear(dt, &l->dt_proj_weight, csr ? &csr[2] : NULL, dbc, D, R);
    for (int j = 0; j < D; j++) {
        float delta = softplusf(dt[j] + l->dt_proj_bias.data[j]);
        float *h = ssm_state + (long)j * N;
        float acc = 0.0f;
        for (int n = 0; n < N; n++) {
            float A = -fast_expf(l->A_log.data[(long)j * N + n]);
            h[n] = fast_expf(delta * A) * h[n] + delta * xs[j] * B[n];
            acc += h[n] * C[n];
        }
        y[j] = (acc + l->D.data[j] * xs[j]) * siluf(z[j]);
    }
    linear(out, &l->out_proj_weight, csr ? &csr[3] : NULL, y, d, D);
}

static void step(const MambaModel *model, const MambaSparseWeights *sparse, MambaState *state, int32_t token,
                 float *logits) {
    const MambaConfig *c = &model->config;
    int d = c->d_model, D = c->d_inner, N = c->d_state, K = c->d_conv;
    float *x = state->scratch, *u = x + d, *out = u + d, *work = out + d;
    memcpy(x, model->embedding.data + (long)token * d, sizeof(float) * (size_t)d);
    for (int i = 0; i < c->n_layer; i++) {
        const MambaLayer *l = &model->layers[i];
        rmsnorm_vector(u, x, l->norm_weight.data, d, c->norm_eps);
        mixer_step(c, l, sparse ? &sparse->matrices[4 * i] : NULL, state->conv + (long)i * D * (K - 1),
                   state->ssm + (long)i * D * N, u, out, work);
        for (int j = 0; j < d; j++) x[j] += out[j];
    }
    rmsnorm_vector(u, x, model->norm_f_weight.data, d, c->norm_eps);
    matvec(logits, model->embedding.data, u, c->vocab_padded, d);
}

void mamba_step(const MambaModel *model, MambaState *state, int32_t token, float *logits) {
    step(model, NULL, state, token, logits);
}

void mamba_step_sparse(const MambaModel *model, const MambaSparseWeights *sparse, MambaState *state, int32_t token,
                       float *logits) {
    step(model, sparse, state, token, logits);
}

// The CSR copy of w (rows, cols) if at least min_zeros of it is zero; else m stays empty.
static void csr_from_dense(CsrMatrix *m, const Tensor *w, double min_zeros) {
    int cols = w->shape[w->ndim - 1], rows = (int)(w->size / (size_t)cols);
    size_t nonzeros = 0;
    for (size_t k = 0; k < w->size; k++) nonzeros += w->data[k] != 0.0f;
    if (cols > 65536 || (double)(w->size - nonzeros) < min_zeros * (double)w->size) return;
    m->rows = rows, m->cols = cols;
    m->row_start = xmalloc(sizeof(int32_t) * ((size_t)rows + 1));
    m->col = xmalloc(sizeof(uint16_t) * (nonzeros + 1));
    m->value = xmalloc(sizeof(float) * (nonzeros + 1));
    int32_t at = 0;
    for (int i = 0; i < rows; i++) {
        m->row_start[i] = at;
        const float *row = w->data + (size_t)i * cols;
        for (int j = 0; j < cols; j++)
            if (row[j] != 0.0f) m->col[at] = (uint16_t)j, m->value[at++] = row[j];
    }
    m->row_start[rows] = at;
}

void mamba_sparse_create(MambaSparseWeights *sparse, const MambaModel *model, double min_zeros) {
    int n_layer = model->config.n_layer;
    sparse->n_layer = n_layer;
    sparse->n_sparse = 0;
    sparse->matrices = xcalloc((size_t)4 * n_layer, sizeof(CsrMatrix));
    for (int i = 0; i < n_layer; i++) {
        const MambaLayer *l = &model->layers[i];
        const Tensor *weights[4] = {&l->in_proj_weight, &l->x_proj_weight, &l->dt_proj_weight, &l->out_proj_weight};
        for (int k = 0; k < 4; k++) {
            CsrMatrix *m = &sparse->matrices[4 * i + k];
            csr_from_dense(m, weights[k], min_zeros);
            sparse->n_sparse += m->rows > 0;
        }
    }
}

void mamba_sparse_free(MambaSparseWeights *sparse) {
    for (int i = 0; i < 4 * sparse->n_layer; i++) {
        free(sparse->matrices[i].row_start);
        free(sparse->matrices[i].col);
        free(sparse->matrices[i].value);
    }
    free(sparse->matrices);
    memset(sparse, 0, sizeof *sparse);
}
