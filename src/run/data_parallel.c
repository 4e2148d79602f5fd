// Data-parallel training steps (see data_parallel.h).
//
// The loss of the global batch is Σ nll / C over its C counted targets; process r holds
// c_r of them and computes the mean over its own, loss_r. So the global loss is
// Σ_r (c_r / C) loss_r and its gradient Σ_r (c_r / C) ∇loss_r: each process runs its
// backward seeded with c_r / C (its cross-entropy then scales by (c_r / C) / c_r, which
// for equal shares of a power-of-two count is 1 / C to the bit, as on one process), and
// the gradients are summed over processes in rank order.
#include "run/data_parallel.h"

#include "core/dist.h"

int data_parallel_check(const RunConfig *c, Error *err) {
    const int P = dist_size();
    if (P == 1) return 0;
    if (c->train.batch_size % P != 0)
        return error_set(err, "train.batch_size: %d sequences do not split over %d processes (it must be a multiple of "
                              "the process count)", c->train.batch_size, P);
    if (c->model.head == CFG_HEAD_FORECAST || c->model.head == CFG_HEAD_DLINEAR)
        return error_set(err, "model.head: data-parallel training of a forecaster over %d processes is not implemented "
                              "(run it as one process)", P);
    return 0;
}

static long counted_targets(const int32_t *targets, size_t n) {
    long counted = 0;
    for (size_t i = 0; i < n; i++) counted += targets[i] >= 0;
    return counted;
}

float data_parallel_step(Tape *tape, Distiller *distill, MambaModel *model, const int32_t *tokens,
                         const int32_t *targets, int B, int L) {
    const int P = dist_size();
    if (P == 1) {
        Tensor *loss = distill_loss(distill, tape, model, tokens, targets, B, L);
        tape_backward(tape, loss);
        return loss->data[0];
    }
    const int share = B / P;  // data_parallel_check: B is a multiple of P
    const size_t first = (size_t)dist_rank() * (size_t)share * (size_t)L, n = (size_t)share * (size_t)L;
    Tensor *loss = distill_loss(distill, tape, model, tokens + first, targets + first, share, L);
    // [c_r loss_r, c_r] summed: the global batch's nll sum and count.
    long counted = counted_targets(targets + first, n);
    double sums[2] = {counted ? (double)counted * (double)loss->data[0] : 0.0, (double)counted};
    dist_allreduce_sum_double(sums, 2);
    float value = sums[1] > 0 ? (float)(sums[0] / sums[1]) : 0.0f;
    if (counted > 0) tape_backward_seeded(tape, loss, (float)((double)counted / sums[1]));
    for (int i = 0; i < model->n_params; i++) {
        Tensor *t = model->params[i].tensor;
        dist_allreduce_sum(t->grad, t->size);
    }
    return value;
}

void data_parallel_share_masks(PruneMasks *masks, AdamW *opt) {
    if (dist_size() == 1) return;
    for (int i = 0; i < masks->n; i++) dist_broadcast(masks->tensors[i].keep, masks->tensors[i].tensor->size);
    prune_masks_apply(masks, opt);
}

FILE *data_parallel_log_stream(void) {
    static FILE *quiet = NULL;
    if (dist_is_root()) return stderr;
    if (!quiet) quiet = fopen("/dev/null", "w");
    return quiet ? quiet : stderr;
}
