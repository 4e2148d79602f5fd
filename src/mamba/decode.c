// Recurrent inference: one token at a time with a (conv, ssm) state per layer, the way
// a Mamba generates. Kept plain and readable: shift the conv window, depthwise dot,
// h = exp(Δ A) h + Δ x B, y = C h + D x. Must give the parallel forward's logits.
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

static void rmsnorm_vector(float *out, const float *x, const float *w, int C, float eps) {
    float rstd;
    rmsnorm_forward(out, &rstd, x, w, 1, C, eps);
}

static void mixer_step(const MambaConfig *c, const MambaLayer *l, float *conv_state, float *ssm_state,
                       const float *u, float *out, float *scratch) {
    int D = c->d_inner, N = c->d_state, K = c->d_conv, R = c->dt_rank, d = c->d_model;
    float *xz = scratch, *xs = xz + 2 * D, *dbc = xs + D, *dt = dbc + R + 2 * N, *y = dt + D;
    matvec(xz, l->in_proj_weight.data, u, 2 * D, d);
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
    matvec(dbc, l->x_proj_weight.data, xs, R + 2 * N, D);
    const float *B = dbc + R, *C = dbc + R + N;
    matvec(dt, l->dt_proj_weight.data, dbc, D, R);
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
    matvec(out, l->out_proj_weight.data, y, d, D);
}

void mamba_step(const MambaModel *model, MambaState *state, int32_t token, float *logits) {
    const MambaConfig *c = &model->config;
    int d = c->d_model, D = c->d_inner, N = c->d_state, K = c->d_conv;
    float *x = state->scratch, *u = x + d, *out = u + d, *work = out + d;
    memcpy(x, model->embedding.data + (long)token * d, sizeof(float) * (size_t)d);
    for (int i = 0; i < c->n_layer; i++) {
        const MambaLayer *l = &model->layers[i];
        rmsnorm_vector(u, x, l->norm_weight.data, d, c->norm_eps);
        mixer_step(c, l, state->conv + (long)i * D * (K - 1), state->ssm + (long)i * D * N, u, out, work);
        for (int j = 0; j < d; j++) x[j] += out[j];
    }
    rmsnorm_vector(u, x, model->norm_f_weight.data, d, c->norm_eps);
    matvec(logits, model->embedding.data, u, c->vocab_padded, d);
}
