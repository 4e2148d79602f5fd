// Evaluation against transformers: the reference tokens written as an llm.c token file
// and evaluated in windows must give the NLL that transformers' own logits give for
// the same next-token targets (computed here from the stored logits, in double).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "autograd/tensor.h"
#include "run/evaluate.h"
#include "run/model_source.h"
#include "io/safetensors.h"

int main(void) {
    Error err;
    SafetensorsFile ref;
    if (safetensors_open(&ref, "fixtures/hf_tiny_reference.safetensors", &err) != 0) {
        printf("NOT OK %s\n", err.message);
        return 1;
    }
    const SafetensorsTensor *tok = safetensors_find(&ref, "tokens"), *lg = safetensors_find(&ref, "logits");
    int B = (int)tok->shape[0], L = (int)tok->shape[1], V = (int)lg->shape[2];
    int32_t *ref_tokens = malloc(sizeof(int32_t) * (size_t)(B * L));
    float *ref_logits = malloc(sizeof(float) * (size_t)(B * L * V));
    if (safetensors_read_i32(&ref, tok, ref_tokens, &err) || safetensors_read_f32(&ref, lg, ref_logits, &err)) {
        printf("NOT OK %s\n", err.message);
        return 1;
    }
    // Row 0 of the reference as a token file: windows of L-1 see tokens[0..L-2] and
    // predict tokens[1..L-1], exactly transformers' shifted loss on that row.
    char path[] = "/tmp/mp_test_eval_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "wb");
    int32_t header[256] = {20240520, 1, L};
    fwrite(header, sizeof header, 1, f);
    for (int t = 0; t < L; t++) {
        uint16_t id = (uint16_t)ref_tokens[t];
        fwrite(&id, sizeof id, 1, f);
    }
    fclose(f);

    double want = 0.0;
    for (int t = 0; t + 1 < L; t++) {
        const float *row = ref_logits + (long)t * V;
        double max = row[0], sum = 0.0;
        for (int v = 1; v < V; v++) max = row[v] > max ? row[v] : max;
        for (int v = 0; v < V; v++) sum += exp(row[v] - max);
        want += max + log(sum) - row[ref_tokens[t + 1]];
    }
    want /= (L - 1);

    MambaModel model;
    if (model_load("fixtures/hf_tiny", &model, &err) != 0) {
        printf("NOT OK %s\n", err.message);
        return 1;
    }
    DataOptions options;
    data_options_defaults(&options);
    options.kind = DATA_FILE;
    options.path = path;
    options.val_fraction = 1.0f;
    Dataset data;
    int failures = 0;
    if (data_open(&data, &options, L - 1, &err) != 0) {
        printf("NOT OK %s\n", err.message);
        return 1;
    }
    Tape tape;
    tape_init(&tape, 1 << 20);
    int32_t tokens[4 * 64], targets[4 * 64];
    for (int batch = 1; batch <= 2; batch++) {  // a padded second row must not count
        Evaluation e = evaluate_model(&model, &data, &tape, batch, L - 1, 0, tokens, targets, false);
        double diff = fabs(e.nll - want);
        int ok = diff < 1e-5 && e.tokens == L - 1 && fabs(e.perplexity - exp(e.nll)) < 1e-9;
        printf("%s batch %d: nll %.7f vs transformers %.7f (diff %.1e), %ld tokens, perplexity %.5f\n",
               ok ? "OK    " : "NOT OK", batch, e.nll, want, diff, e.tokens, e.perplexity);
        failures += !ok;
    }
    // A file with ids beyond the model's vocabulary is refused by the caller's check.
    printf("%s data vocab %d <= model vocab %d\n", data_vocab_size(&data) <= model.config.vocab_padded ? "OK    " : "NOT OK",
           data_vocab_size(&data), model.config.vocab_padded);
    tape_free(&tape);
    data_close(&data);
    mamba_model_free(&model);
    safetensors_close(&ref);
    unlink(path);
    free(ref_tokens);
    free(ref_logits);
    printf("%s: %d eval check(s) failed\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
