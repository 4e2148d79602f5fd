// The classification head (see heads.h): norm_f, pooling, head.weight / head.bias, and the
// cross-entropy of the pooled logits against one label per row.
#include "mamba/heads.h"

#include <stdlib.h>

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
