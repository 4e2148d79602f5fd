// Knowledge distillation (Hinton et al. 2015, "Distilling the Knowledge in a Neural
// Network"): the KL divergence from the teacher's softened distribution to the student's,
// and the weighted sum that mixes it with the task loss (docs/DESIGN.md#distillation).
#include <math.h>
#include <string.h>

#include "autograd/ops.h"

typedef struct KlSaved {
    float *student;      // (T, V) softmax(logits / temperature)
    float *teacher;      // (T, V) softmax(teacher / temperature)
    const int32_t *targets;
    long counted;
    float temperature;
} KlSaved;

// p = softmax(row / temperature), in double for the normaliser; returns log of the normaliser
// of row / temperature (so that log p_v = row_v / temperature - returned value).
static double softmax_row(const float *row, int V, float temperature, float *p) {
    double max = row[0] / temperature;
    for (int v = 1; v < V; v++) max = fmax(max, row[v] / temperature);
    double sum = 0.0;
    for (int v = 0; v < V; v++) sum += exp(row[v] / temperature - max);
    double log_z = max + log(sum);
    for (int v = 0; v < V; v++) p[v] = (float)exp(row[v] / temperature - log_z);
    return log_z;
}

// dlogits[t, v] += dloss * temperature * (q[t, v] - p[t, v]) / counted for counted rows:
// the derivative of temperature² KL(p || q) with q = softmax(logits / temperature).
static void kl_backward(Tape *tape, TapeNode *node) {
    Tensor *logits = node->inputs[0];
    const KlSaved *s = node->saved;
    int T = logits->shape[0], V = logits->shape[1];
    float scale = node->output->grad[0] * s->temperature / (float)s->counted;
    float *dlogits = tensor_grad(tape, logits);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        if (s->targets && s->targets[t] < 0) continue;
        const float *q = s->student + (long)t * V, *p = s->teacher + (long)t * V;
        float *d = dlogits + (long)t * V;
        for (int v = 0; v < V; v++) d[v] += scale * (q[v] - p[v]);
    }
}

Tensor *op_kl_distill(Tape *tape, Tensor *logits, const float *teacher_logits, const int32_t *targets, int T,
                      float temperature) {
    int V = logits->shape[1];
    Tensor *loss = tensor_new(tape, 1, (int[]){1});
    float *q = arena_alloc(&tape->arena, sizeof(float) * (size_t)T * (size_t)V);
    float *p = arena_alloc(&tape->arena, sizeof(float) * (size_t)T * (size_t)V);
    double *row_kl = arena_alloc(&tape->arena, sizeof(double) * (size_t)T);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        row_kl[t] = 0.0;
        if (targets && targets[t] < 0) continue;
        const float *s_row = logits->data + (long)t * V, *t_row = teacher_logits + (long)t * V;
        double log_zq = softmax_row(s_row, V, temperature, q + (long)t * V);
        double log_zp = softmax_row(t_row, V, temperature, p + (long)t * V);
        double kl = 0.0;
        for (int v = 0; v < V; v++) {
            double pv = p[(long)t * V + v];
            if (pv > 0) kl += pv * ((t_row[v] / temperature - log_zp) - (s_row[v] / temperature - log_zq));
        }
        row_kl[t] = kl;
    }
    // The sum in token order: the same loss whatever the thread count.
    double total = 0.0;
    long counted = 0;
    for (int t = 0; t < T; t++) {
        if (targets && targets[t] < 0) continue;
        total += row_kl[t];
        counted++;
    }
    loss->data[0] = counted ? (float)((double)temperature * temperature * total / (double)counted) : 0.0f;
    if (counted == 0) return loss;
    TapeNode *node = tape_record(tape, "kl_distill", kl_backward, loss, 1, (Tensor *[]){logits});
    if (node) {
        KlSaved *saved = arena_alloc(&tape->arena, sizeof *saved);
        int32_t *copy = NULL;
        if (targets) {
            copy = arena_alloc(&tape->arena, sizeof(int32_t) * (size_t)T);
            memcpy(copy, targets, sizeof(int32_t) * (size_t)T);
        }
        *saved = (KlSaved){q, p, copy, counted, temperature};
        node->saved = saved;
    }
    return loss;
}

typedef struct MixSaved {
    float wa, wb;
} MixSaved;

static void mix_backward(Tape *tape, TapeNode *node) {
    const MixSaved *s = node->saved;
    float d = node->output->grad[0];
    Tensor *a = node->inputs[0], *b = node->inputs[1];
    if (a->requires_grad) tensor_grad(tape, a)[0] += s->wa * d;
    if (b->requires_grad) tensor_grad(tape, b)[0] += s->wb * d;
}

Tensor *op_mix_scalars(Tape *tape, Tensor *a, Tensor *b, float wa, float wb) {
    Tensor *out = tensor_new(tape, 1, (int[]){1});
    out->data[0] = wa * a->data[0] + wb * b->data[0];
    TapeNode *node = tape_record(tape, "mix_scalars", mix_backward, out, 2, (Tensor *[]){a, b});
    if (node) {
        MixSaved *saved = arena_alloc(&tape->arena, sizeof *saved);
        *saved = (MixSaved){wa, wb};
        node->saved = saved;
    }
    return out;
}
