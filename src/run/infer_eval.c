// Evaluation with the inference model (see infer_eval.h). One sequence at a time, so the
// logits buffer is (L, V), not (B * L, V).
#include "run/infer_eval.h"

#include <math.h>
#include <stdlib.h>

int infer_evaluate(const InferModel *model, const Dataset *data, int B, int L, long max_batches, Evaluation *out,
                   Error *err) {
    const MambaConfig *c = &model->config;
    int V = c->vocab_padded;
    long n_batches = data_val_batch_count(data, B, L);
    if (max_batches > 0 && n_batches > max_batches) n_batches = max_batches;
    int32_t *tokens = xmalloc(sizeof(int32_t) * (size_t)B * L), *targets = xmalloc(sizeof(int32_t) * (size_t)B * L);
    float *logits = xmalloc(sizeof(float) * (size_t)L * V);
    InferState state;
    infer_state_create(&state, c, 1);
    double nll = 0.0;
    long correct = 0, counted = 0;
    int rc = 0;
    for (long i = 0; i < n_batches && rc == 0; i++) {
        data_val_batch(data, i, B, L, tokens, targets);
        for (int b = 0; b < B && rc == 0; b++) {
            rc = infer_prompt(model, &state, tokens + (size_t)b * L, 1, L, logits, true, err);
            for (int t = 0; rc == 0 && t < L; t++) {
                int32_t target = targets[(size_t)b * L + t];
                if (target < 0) continue;
                const float *row = logits + (size_t)t * V;
                float max = row[0];
                for (int v = 1; v < V; v++) max = row[v] > max ? row[v] : max;
                double sum = 0.0;
                for (int v = 0; v < V; v++) sum += exp((double)row[v] - max);
                nll += log(sum) + max - row[target];
            }
            long ok, n;
            if (rc == 0) data_accuracy(logits, V, targets + (size_t)b * L, L, &ok, &n);
            if (rc == 0) correct += ok, counted += n;
        }
    }
    free(tokens), free(targets), free(logits);
    infer_state_free(&state);
    if (rc != 0) return -1;
    out->nll = counted ? nll / (double)counted : 0.0;
    out->perplexity = exp(out->nll);
    out->accuracy = counted ? (double)correct / (double)counted : 0.0;
    out->tokens = counted;
    return 0;
}
