// Validation loss, perplexity and accuracy (see evaluate.h).
#include "run/evaluate.h"

#include <math.h>
#include <stdio.h>

#include "run/progress.h"
#include "run/task_metric.h"

Evaluation evaluate_model(MambaModel *model, const Dataset *data, Tape *tape, int B, int L, long max_batches,
                          int32_t *tokens, int32_t *targets, bool show_progress) {
    long n_batches = data_val_batch_count(data, B, L);
    if (max_batches > 0 && n_batches > max_batches) n_batches = max_batches;
    Progress progress;
    progress_init(&progress, stderr, show_progress, 0, n_batches);
    double total_nll = 0.0;
    long correct = 0, counted = 0;
    bool recording = tape->recording;
    tape->recording = false;
    for (long i = 0; i < n_batches; i++) {
        data_val_batch(data, i, B, L, tokens, targets);
        tape_reset(tape);
        Tensor *logits;
        Tensor *loss = mamba_forward(tape, model, tokens, targets, B, L, &logits);
        long batch_correct, batch_counted;
        task_accuracy(model, logits->data, targets, B, L, &batch_correct, &batch_counted);  // per row for classify
        // The loss is the batch's mean: weight it by its count to get the sum of NLLs.
        total_nll += (double)loss->data[0] * (double)batch_counted;
        correct += batch_correct;
        counted += batch_counted;
        // In place on a terminal; into a log, about ten lines per evaluation.
        long every = progress.is_terminal ? 1 : (n_batches + 9) / 10;
        if (show_progress && ((i + 1) % every == 0 || i + 1 == n_batches)) {
            double elapsed = now_seconds() - progress.start_time;
            progress_update_eval(&progress, i + 1, counted ? total_nll / (double)counted : 0.0,
                                 elapsed > 0 ? (double)(i + 1) * B * L / elapsed : 0.0);
        }
    }
    if (show_progress) progress_finish(&progress);
    tape->recording = recording;
    tape_reset(tape);
    Evaluation e = {0};
    e.nll = counted ? total_nll / (double)counted : 0.0;
    e.perplexity = exp(e.nll);
    e.accuracy = counted ? (double)correct / (double)counted : 0.0;
    e.tokens = counted;
    return e;
}

cJSON *evaluation_json_add(cJSON *o, const Evaluation *e) {
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
