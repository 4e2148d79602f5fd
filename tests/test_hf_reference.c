// The C model against an independent implementation: a tiny random MambaForCausalLM
// saved by the real transformers library (tools/make_hf_fixture.py), loaded from its
// folder, must give transformers' logits, loss and the gradient of every parameter.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "autograd/ops.h"
#include "io/hf_folder.h"
#include "io/safetensors.h"
#include "mamba/model.h"

static int failures = 0;

static void compare(const char *what, const float *got, const float *want, size_t n, double tolerance) {
    double max_err = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        if (!(err <= max_err)) max_err = err;  // also catches NaN
        if (fabs(want[i]) > max_ref) max_ref = fabs(want[i]);
    }
    double rel = max_err / (max_ref > 1e-6 ? max_ref : 1e-6);
    int ok = rel <= tolerance;
    printf("%s %-52s max abs diff %.2e, relative to max |ref| %.2e: %.2e\n", ok ? "OK    " : "NOT OK", what, max_err,
           max_ref, rel);
    failures += !ok;
}

static float *read_tensor(const SafetensorsFile *file, const char *name, size_t expected) {
    const SafetensorsTensor *t = safetensors_find(file, name);
    Error err;
    if (!t || t->n_elements != expected) {
        printf("NOT OK reference tensor %s missing or of the wrong size\n", name);
        exit(1);
    }
    float *data = malloc(sizeof(float) * expected);
    if (safetensors_read_f32(file, t, data, &err) != 0) {
        printf("NOT OK %s\n", err.message);
        exit(1);
    }
    return data;
}

int main(void) {
    const char *folders[] = {"fixtures/hf_tiny", "fixtures/hf_tiny_sharded"};
    Error err;
    SafetensorsFile reference;
    if (safetensors_open(&reference, "fixtures/hf_tiny_reference.safetensors", &err) != 0) {
        printf("NOT OK %s\n", err.message);
        return 1;
    }
    const SafetensorsTensor *tokens_info = safetensors_find(&reference, "tokens");
    int B = (int)tokens_info->shape[0], L = (int)tokens_info->shape[1];
    int32_t *tokens = malloc(sizeof(int32_t) * (size_t)(B * L)), *targets = malloc(sizeof(int32_t) * (size_t)(B * L));
    if (safetensors_read_i32(&reference, tokens_info, tokens, &err) != 0 ||
        safetensors_read_i32(&reference, safetensors_find(&reference, "targets"), targets, &err) != 0) {
        printf("NOT OK %s\n", err.message);
        return 1;
    }
    for (int f = 0; f < 2; f++) {
        MambaConfig config;
        MambaModel model;
        if (hf_folder_read_config(folders[f], &config, &err) != 0) {
            printf("NOT OK %s\n", err.message);
            return 1;
        }
        mamba_model_create(&model, &config);
        if (hf_folder_load_params(folders[f], model.params, model.n_params, &err) != 0) {
            printf("NOT OK %s\n", err.message);
            return 1;
        }
        printf("-- %s: d_model %d, %d layers, vocab %d, d_state %d, dt_rank %d\n", folders[f], config.d_model,
               config.n_layer, config.vocab_padded, config.d_state, config.dt_rank);
        Tape tape;
        tape_init(&tape, 1 << 20);
        Tensor *logits;
        Tensor *loss = mamba_forward(&tape, &model, tokens, targets, B, L, &logits);
        tape_backward(&tape, loss);

        size_t n_logits = (size_t)B * L * config.vocab_padded;
        float *want_logits = read_tensor(&reference, "logits", n_logits);
        float *want_loss = read_tensor(&reference, "loss", 1);
        compare("logits", logits->data, want_logits, n_logits, 1e-5);
        compare("loss", loss->data, want_loss, 1, 1e-5);
        for (int i = 0; i < model.n_params; i++) {
            char name[128];
            snprintf(name, sizeof name, "grad.%s", model.params[i].name);
            Tensor *t = model.params[i].tensor;
            float *want = read_tensor(&reference, name, t->size);
            compare(name, t->grad, want, t->size, 1e-4);
            free(want);
        }
        free(want_logits);
        free(want_loss);
        tape_free(&tape);
        mamba_model_free(&model);
    }
    safetensors_close(&reference);
    free(tokens);
    free(targets);
    printf("%s: %d comparison(s) with transformers failed\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
