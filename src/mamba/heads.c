// The task heads (see heads.h): classification (norm_f, pooling, head.weight / head.bias, the
// cross-entropy of the pooled logits against one label per row), forecasting (the last
// position, norm_f, head.weight / head.bias, the mean squared error) and DLinear.
#include "mamba/heads.h"

#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "core/error.h"
#include "mamba/model.h"

void heads_row_labels(const int32_t *targets, int B, int L, int *ends, int32_t *labels) {
    for (int b = 0; b < B; b++) {
        ends[b] = -1;
        labels[b] = -1;
        for (int t = L - 1; t >= 0; t--) {
            if (targets[(size_t)b * L + t] >= 0) {
                ends[b] = t;
                labels[b] = targets[(size_t)b * L + t];
                break;
            }
        }
    }
}

Tensor *heads_classify(Tape *tape, MambaModel *model, Tensor *x, const int32_t *targets, int B, int L,
                       Tensor **logits_out) {
    int *ends = xmalloc(sizeof(int) * (size_t)B);
    int32_t *labels = xmalloc(sizeof(int32_t) * (size_t)B);
    if (targets) {
        heads_row_labels(targets, B, L, ends, labels);
    } else {  // no labels: pool every whole row
        for (int b = 0; b < B; b++) ends[b] = L - 1, labels[b] = -1;
    }
    Tensor *h = op_rmsnorm(tape, x, &model->norm_f_weight, model->config.norm_eps);     // (B*L, d)
    Tensor *pooled = op_pool(tape, h, ends, B, L, model->config.pool == MAMBA_POOL_MEAN); // (B, d)
    Tensor *logits = op_add_bias(tape, op_matmul(tape, pooled, &model->head_weight), &model->head_bias);  // (B, C)
    if (logits_out) *logits_out = logits;
    Tensor *loss = targets ? op_cross_entropy(tape, logits, labels, B) : NULL;
    free(ends);
    free(labels);
    return loss;
}

Tensor *heads_forecast(Tape *tape, MambaModel *model, Tensor *x, const float *future, int B, int L, const float *shift,
                       const float *scale, float *pred_out) {
    int *ends = xmalloc(sizeof(int) * (size_t)B);
    for (int b = 0; b < B; b++) ends[b] = L - 1;  // direct multi-horizon from the last position
    Tensor *last = op_pool(tape, x, ends, B, L, false);                                   // (B, d)
    free(ends);
    Tensor *h = op_rmsnorm(tape, last, &model->norm_f_weight, model->config.norm_eps);
    Tensor *pred = op_add_bias(tape, op_matmul(tape, h, &model->head_weight), &model->head_bias);  // (B, H*F)
    if (shift) {  // model.window_norm: back to the scale of each input window
        bool affine = model->config.window_norm == MAMBA_WINDOW_REVIN_AFFINE;
        pred = op_window_denorm(tape, pred, shift, scale, affine ? &model->revin_weight : NULL,
                                affine ? &model->revin_bias : NULL, B, model->config.horizon, model->config.n_features,
                                MAMBA_REVIN_EPS * MAMBA_REVIN_EPS);
    }
    if (pred_out) memcpy(pred_out, pred->data, sizeof(float) * pred->size);
    return future ? op_mse(tape, pred, future) : NULL;
}

void heads_moving_average_matrix(int L, int kernel, float *M) {
    memset(M, 0, sizeof(float) * (size_t)L * L);
    int half = (kernel - 1) / 2;
    for (int i = 0; i < L; i++)
        for (int o = -half; o <= kernel - 1 - half; o++) {
            int j = i + o < 0 ? 0 : i + o >= L ? L - 1 : i + o;
            M[(size_t)i * L + j] += 1.0f / (float)kernel;
        }
}

Tensor *heads_dlinear(Tape *tape, MambaModel *model, const float *values, const float *future, int B, int L,
                      float *pred_out) {
    const int F = model->config.n_features, H = model->config.horizon, R = B * F;
    // Every series as a row: X (B*F, L), and the targets the same way, Y (B*F, H).
    Tensor *X = tensor_new_2d(tape, R, L);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < L; t++)
            for (int f = 0; f < F; f++) X->data[((size_t)b * F + f) * L + t] = values[((size_t)b * L + t) * F + f];
    Tensor *trend_op = tensor_new_2d(tape, L, L), *seasonal_op = tensor_new_2d(tape, L, L);
    heads_moving_average_matrix(L, MAMBA_DLINEAR_KERNEL, trend_op->data);
    for (size_t i = 0; i < (size_t)L * L; i++) seasonal_op->data[i] = (i % (size_t)(L + 1) == 0) - trend_op->data[i];
    Tensor *trend = op_matmul(tape, X, trend_op);        // (B*F, L), constants: no node
    Tensor *seasonal = op_matmul(tape, X, seasonal_op);
    Tensor *pred = op_add(tape, op_add_bias(tape, op_matmul(tape, seasonal, &model->head_weight), &model->head_bias),
                          op_add_bias(tape, op_matmul(tape, trend, &model->trend_weight), &model->trend_bias));  // (B*F, H)
    if (pred_out)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int f = 0; f < F; f++)
                    pred_out[((size_t)b * H + h) * F + f] = pred->data[((size_t)b * F + f) * H + h];
    if (!future) return NULL;
    float *Y = arena_alloc(&tape->arena, sizeof(float) * (size_t)R * H);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int f = 0; f < F; f++) Y[((size_t)b * F + f) * H + h] = future[((size_t)b * H + h) * F + f];
    return op_mse(tape, pred, Y);
}
