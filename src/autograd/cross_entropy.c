// Mean cross-entropy of next-token logits. Targets < 0 are positions that do not count
// (the non-answer positions of the synthetic tasks, the padding of a last batch).
#include <math.h>
#include <string.h>

#include "autograd/ops.h"
#include "core/fastmath.h"

typedef struct CrossEntropySaved {
    const int32_t *targets;
    float *logsumexp;    // (T)
    long counted;        // targets >= 0
} CrossEntropySaved;

// Per row: logsumexp and, if the target counts, its negative log-likelihood.
static void cross_entropy_rows(const float *logits, const int32_t *targets, int T, int V, float *logsumexp, float *nll) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *row = logits + (long)t * V;
        float max = row[0];
        for (int v = 1; v < V; v++) max = row[v] > max ? row[v] : max;
        float sum = 0.0f;
        for (int v = 0; v < V; v++) sum += fast_expf(row[v] - max);
        logsumexp[t] = max + logf(sum);
        nll[t] = targets[t] >= 0 ? logsumexp[t] - row[targets[t]] : 0.0f;
    }
}

// dlogits[t, v] += (softmax[t, v] - [v == target]) * dloss / counted
static void cross_entropy_backward(Tape *tape, TapeNode *node) {
    Tensor *logits = node->inputs[0];
    CrossEntropySaved *saved = node->saved;
    int T = logits->shape[0], V = logits->shape[1];
    float scale = node->output->grad[0] / (float)saved->counted;
    float *dlogits = tensor_grad(tape, logits);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        int32_t target = saved->targets[t];
        if (target < 0) continue;
        const float *row = logits->data + (long)t * V;
        float *drow = dlogits + (long)t * V;
        float lse = saved->logsumexp[t];
        for (int v = 0; v < V; v++) drow[v] += fast_expf(row[v] - lse) * scale;
        drow[target] -= scale;
    }
}

Tensor *op_cross_entropy(Tape *tape, Tensor *logits, const int32_t *targets, int T) {
    int V = logits->shape[1];
    Tensor *loss = tensor_new(tape, 1, (int[]){1});
    float *logsumexp = arena_alloc(&tape->arena, sizeof(float) * (size_t)T);
    float *nll = arena_alloc(&tape->arena, sizeof(float) * (size_t)T);
    cross_entropy_rows(logits->data, targets, T, V, logsumexp, nll);
    // The sum in token order and in double: the same loss whatever the thread count.
    double total = 0.0;
    long counted = 0;
    for (int t = 0; t < T; t++) {
        if (targets[t] < 0) continue;
        total += nll[t];
        counted++;
    }
    loss->data[0] = counted ? (float)(total / (double)counted) : 0.0f;
    if (counted == 0) return loss;
    TapeNode *node = tape_record(tape, "cross_entropy", cross_entropy_backward, loss, 1, (Tensor *[]){logits});
    if (node) {
        CrossEntropySaved *saved = arena_alloc(&tape->arena, sizeof *saved);
        int32_t *copy = arena_alloc(&tape->arena, sizeof(int32_t) * (size_t)T);
        memcpy(copy, targets, sizeof(int32_t) * (size_t)T);
        *saved = (CrossEntropySaved){copy, logsumexp, counted};
        node->saved = saved;
    }
    return loss;
}
