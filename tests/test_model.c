// The whole Mamba LM: the loss's gradient for every parameter tensor against central
// finite differences; the recurrent one-token step, dense and with CSR matrices, against
// the parallel forward; and steady-state memory of the training step.
#include <math.h>
#include <stdio.h>

#include "autograd/ops.h"
#include "tiny_model.h"

enum { BATCH = 2, SEQ = 7 };

static double model_loss(MambaModel *model, Tape *tape, const int32_t *tokens, const int32_t *targets) {
    tape_reset(tape);
    tape->recording = false;
    Tensor *loss = mamba_forward(tape, model, tokens, targets, BATCH, SEQ, NULL);
    tape->recording = true;
    return loss->data[0];
}

static int check_gradients(MambaModel *model, const int32_t *tokens, const int32_t *targets) {
    Tape tape;
    tape_init(&tape, 1 << 20);
    mamba_model_zero_grad(model);
    tape_reset(&tape);
    Tensor *loss = mamba_forward(&tape, model, tokens, targets, BATCH, SEQ, NULL);
    tape_backward(&tape, loss);
    int failures = 0;
    Rng pick;
    rng_seed(&pick, 5);
    const float eps = 1e-2f;
    for (int i = 0; i < model->n_params; i++) {
        Tensor *t = model->params[i].tensor;
        double max_err = 0.0, max_ref = 0.0;
        int samples = t->size < 12 ? (int)t->size : 12;
        for (int s = 0; s < samples; s++) {
            size_t k = t->size <= 12 ? (size_t)s : (size_t)rng_below(&pick, t->size);
            float saved = t->data[k];
            t->data[k] = saved + eps;
            double plus = model_loss(model, &tape, tokens, targets);
            t->data[k] = saved - eps;
            double minus = model_loss(model, &tape, tokens, targets);
            t->data[k] = saved;
            double numeric = (plus - minus) / (2.0 * eps);
            double err = fabs(numeric - t->grad[k]);
            if (err > max_err) max_err = err;
            if (fabs(numeric) > max_ref) max_ref = fabs(numeric);
        }
        double rel = max_err / (max_ref > 1e-3 ? max_ref : 1e-3);
        int ok = rel < 3e-2;
        printf("%s grad %-44s max abs err %.2e relative %.2e (max |grad| %.2e)\n", ok ? "OK    " : "NOT OK",
               model->params[i].name, max_err, rel, max_ref);
        failures += !ok;
    }
    tape_free(&tape);
    return failures;
}

// sparse NULL: mamba_step; else mamba_step_sparse with those CSR copies.
static int check_recurrent_step(MambaModel *model, const int32_t *tokens, const MambaSparseWeights *sparse) {
    const MambaConfig *c = &model->config;
    Tape tape;
    tape_init(&tape, 1 << 20);
    tape.recording = false;
    Tensor *logits;
    mamba_forward(&tape, model, tokens, NULL, BATCH, SEQ, &logits);
    MambaState state;
    mamba_state_create(&state, c);
    float step_logits[64];
    double max_err = 0.0;
    for (int b = 0; b < BATCH; b++) {
        mamba_state_reset(&state, c);
        for (int t = 0; t < SEQ; t++) {
            if (sparse) mamba_step_sparse(model, sparse, &state, tokens[b * SEQ + t], step_logits);
            else mamba_step(model, &state, tokens[b * SEQ + t], step_logits);
            const float *ref = logits->data + (long)(b * SEQ + t) * c->vocab_padded;
            for (int v = 0; v < c->vocab_padded; v++) {
                double err = fabs(step_logits[v] - ref[v]);
                if (err > max_err) max_err = err;
            }
        }
    }
    int ok = max_err < 1e-5;
    printf("%s recurrent step%s vs parallel forward: max |logit diff| %.2e\n", ok ? "OK    " : "NOT OK",
           sparse ? " (CSR)" : "", max_err);
    mamba_state_free(&state);
    tape_free(&tape);
    return !ok;
}

// Zeroes the weights k of w with k % 10 < tenths: a fixed pattern, the same fraction in
// every row of a matrix whose row length is a multiple of 10, irregular otherwise.
static void zero_fraction(Tensor *w, int tenths) {
    for (size_t k = 0; k < w->size; k++)
        if ((int)(k % 10) < tenths) w->data[k] = 0.0f;
}

// The sparse step on a model whose in_proj, x_proj and out_proj are 60% zeros and whose
// dt_proj is 30% zeros: with the CSR threshold at 50%, three matrices of every layer are
// multiplied from their nonzeros and dt_proj stays dense.
static int check_sparse_step(MambaModel *model, const int32_t *tokens) {
    for (int i = 0; i < model->config.n_layer; i++) {
        MambaLayer *l = &model->layers[i];
        zero_fraction(&l->in_proj_weight, 6);
        zero_fraction(&l->x_proj_weight, 6);
        zero_fraction(&l->out_proj_weight, 6);
        zero_fraction(&l->dt_proj_weight, 3);
    }
    MambaSparseWeights sparse;
    mamba_sparse_create(&sparse, model, 0.5);
    int expected = 3 * model->config.n_layer, chosen = sparse.n_sparse;
    for (int i = 0; i < model->config.n_layer; i++) chosen -= sparse.matrices[4 * i + 2].rows > 0;  // dt_proj
    int ok = sparse.n_sparse == expected && chosen == expected;
    printf("%s CSR copies: %d of %d matrices, none of them dt_proj (expected %d)\n", ok ? "OK    " : "NOT OK",
           sparse.n_sparse, 4 * model->config.n_layer, expected);
    int failures = !ok;
    failures += check_recurrent_step(model, tokens, &sparse);
    mamba_sparse_free(&sparse);
    return failures;
}

// After the first steps have sized the arena, further steps must not grow it.
static int check_steady_memory(MambaModel *model, const int32_t *tokens, const int32_t *targets) {
    Tape tape;
    tape_init(&tape, 4096);  // deliberately too small: the first step must grow it
    size_t capacity_after[6];
    for (int step = 0; step < 6; step++) {
        tape_reset(&tape);
        mamba_model_zero_grad(model);
        Tensor *loss = mamba_forward(&tape, model, tokens, targets, BATCH, SEQ, NULL);
        tape_backward(&tape, loss);
        capacity_after[step] = arena_capacity(&tape.arena);
    }
    tape_reset(&tape);
    int ok = capacity_after[5] == capacity_after[2] && arena_capacity(&tape.arena) == capacity_after[5];
    printf("%s arena capacity after steps 1..6: %zu %zu %zu %zu %zu %zu bytes\n", ok ? "OK    " : "NOT OK",
           capacity_after[0], capacity_after[1], capacity_after[2], capacity_after[3], capacity_after[4],
           capacity_after[5]);
    tape_free(&tape);
    return !ok;
}

int main(void) {
    MambaModel model;
    tiny_model_create(&model, 2, 42);
    int32_t tokens[BATCH * SEQ], targets[BATCH * SEQ];
    Rng rng;
    rng_seed(&rng, 3);
    for (int i = 0; i < BATCH * SEQ; i++) tokens[i] = (int32_t)rng_below(&rng, 11);
    for (int i = 0; i < BATCH * SEQ; i++) targets[i] = (i % 5 == 4) ? -1 : (int32_t)rng_below(&rng, 11);
    int failures = 0;
    failures += check_gradients(&model, tokens, targets);
    failures += check_recurrent_step(&model, tokens, NULL);
    failures += check_steady_memory(&model, tokens, targets);
    failures += check_sparse_step(&model, tokens);  // last: it zeroes weights
    mamba_model_free(&model);
    printf("%s: %d model check(s) failed\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
