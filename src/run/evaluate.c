// Validation loss, perplexity and accuracy (see evaluate.h).
#include "run/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/dist.h"
#include "core/error.h"

#include "run/progress.h"
#include "run/task_metric.h"

// A series: the model's forecast and the repeat-the-last-value one of every window, against its future.
static Evaluation evaluate_series(MambaModel *model, const Dataset *data, Tape *tape, int B, int L, long max_batches,
                                  bool show_progress) {
    const int F = data_n_features(data), H = data_horizon(data);
    long n_batches = data_val_batch_count(data, B, L);
    if (max_batches > 0 && n_batches > max_batches) n_batches = max_batches;
    float *values = xmalloc(sizeof(float) * (size_t)B * L * F);
    float *future = xmalloc(sizeof(float) * (size_t)B * H * F);
    float *pred = xmalloc(sizeof(float) * (size_t)B * H * F);
    Progress progress;
    progress_init(&progress, stderr, show_progress, 0, n_batches);
    double se = 0.0, ae = 0.0, repeat_se = 0.0, repeat_ae = 0.0;
    long windows = 0;
    bool recording = tape->recording;
    tape->recording = false;
    for (long i = 0; i < n_batches; i++) {
        int rows = data_val_values(data, i, B, L, values, future);
        tape_reset(tape);
        mamba_forward_values(tape, model, values, NULL, B, L, pred, NULL);
        for (int r = 0; r < rows; r++) {  // the padding rows of a last batch are not counted
            const float *last = values + ((size_t)r * L + L - 1) * F;
            for (int k = 0; k < H * F; k++) {
                double y = future[(size_t)r * H * F + k], e = pred[(size_t)r * H * F + k] - y, n = last[k % F] - y;
                se += e * e, ae += fabs(e), repeat_se += n * n, repeat_ae += fabs(n);
            }
        }
        windows += rows;
        long every = progress.is_terminal ? 1 : (n_batches + 9) / 10;
        if (show_progress && ((i + 1) % every == 0 || i + 1 == n_batches)) {
            double elapsed = now_seconds() - progress.start_time;
            double n = (double)windows * H * F;
            progress_update_eval(&progress, i + 1, n > 0 ? se / n : 0.0,
                                 elapsed > 0 ? (double)(i + 1) * B * L / elapsed : 0.0);
        }
    }
    if (show_progress) progress_finish(&progress);
    tape->recording = recording;
    tape_reset(tape);
    free(values);
    free(future);
    free(pred);
    double n = (double)windows * H * F;
    Evaluation e = {.series = true, .tokens = windows};
    if (n > 0) {
        e.mse = se / n, e.mae = ae / n, e.repeat_last_mse = repeat_se / n, e.repeat_last_mae = repeat_ae / n;
        e.nll = e.mse;
    }
    return e;
}

Evaluation evaluate_model(MambaModel *model, const Dataset *data, Tape *tape, int B, int L, long max_batches,
                          int32_t *tokens, int32_t *targets, bool show_progress) {
    if (data_is_series(data)) return evaluate_series(model, data, tape, B, L, max_batches, show_progress);
    long n_batches = data_val_batch_count(data, B, L);
    if (max_batches > 0 && n_batches > max_batches) n_batches = max_batches;
    // Under mpirun each process evaluates every P-th batch. Each batch's NLL sum, correct
    // and counted targets go to its own slot (zero elsewhere, so that the sum over the
    // processes is exact), and every process adds the slots in batch order: the result of
    // one process, to the bit.
    const int P = dist_size(), rank = dist_rank();
    double *per_batch = xcalloc((size_t)(n_batches > 0 ? n_batches : 1) * 3, sizeof(double));
    Progress progress;
    progress_init(&progress, stderr, show_progress, 0, n_batches);
    double running_nll = 0.0;
    long running_counted = 0;
    bool recording = tape->recording;
    tape->recording = false;
    for (long i = 0; i < n_batches; i++) {
        if (i % P != rank) continue;
        data_val_batch(data, i, B, L, tokens, targets);
        tape_reset(tape);
        Tensor *logits;
        Tensor *loss = mamba_forward(tape, model, tokens, targets, B, L, &logits);
        long batch_correct, batch_counted;
        task_accuracy(model, logits->data, targets, B, L, &batch_correct, &batch_counted);  // per row for classify
        // The loss is the batch's mean: weight it by its count to get the sum of NLLs.
        per_batch[3 * i] = (double)loss->data[0] * (double)batch_counted;
        per_batch[3 * i + 1] = (double)batch_correct;
        per_batch[3 * i + 2] = (double)batch_counted;
        running_nll += per_batch[3 * i];
        running_counted += batch_counted;
        // In place on a terminal; into a log, about ten lines per evaluation.
        long every = progress.is_terminal ? 1 : (n_batches + 9) / 10;
        if (show_progress && ((i + 1) % every == 0 || i + 1 == n_batches)) {
            double elapsed = now_seconds() - progress.start_time;
            progress_update_eval(&progress, i + 1, running_counted ? running_nll / (double)running_counted : 0.0,
                                 elapsed > 0 ? (double)(i + 1) * B * L / elapsed : 0.0);
        }
    }
    if (show_progress) progress_finish(&progress);
    tape->recording = recording;
    tape_reset(tape);
    dist_allreduce_sum_double(per_batch, (size_t)n_batches * 3);
    double total_nll = 0.0;
    long correct = 0, counted = 0;
    for (long i = 0; i < n_batches; i++) {
        total_nll += per_batch[3 * i];
        correct += (long)per_batch[3 * i + 1];
        counted += (long)per_batch[3 * i + 2];
    }
    free(per_batch);
    Evaluation e = {0};
    e.nll = counted ? total_nll / (double)counted : 0.0;
    e.perplexity = exp(e.nll);
    e.accuracy = counted ? (double)correct / (double)counted : 0.0;
    e.tokens = counted;
    return e;
}

cJSON *evaluation_json_add(cJSON *o, const Evaluation *e) {
    if (e->series) {  // forecasting: the loss is the MSE (evaluate.h)
        cJSON_AddNumberToObject(o, "val_loss", e->mse);
        cJSON_AddNumberToObject(o, "val_mse", e->mse);
        cJSON_AddNumberToObject(o, "val_mae", e->mae);
        cJSON_AddNumberToObject(o, "val_repeat_last_mse", e->repeat_last_mse);
        cJSON_AddNumberToObject(o, "val_repeat_last_mae", e->repeat_last_mae);
        cJSON_AddNumberToObject(o, "val_windows", (double)e->tokens);
        return o;
    }
    cJSON_AddNumberToObject(o, "val_loss", e->nll);
    cJSON_AddNumberToObject(o, "val_perplexity", e->perplexity);
    cJSON_AddNumberToObject(o, "val_accuracy", e->accuracy);
    cJSON_AddNumberToObject(o, "val_tokens", (double)e->tokens);
    return o;
}

cJSON *evaluation_json(long step, const Evaluation *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", (double)step);
    return evaluation_json_add(o, e);
}
