// Writes what the one-shot walk calibrates on, for tools/ref_prune.py --walk: a trained
// model's block parameters and the embedded calibration windows, as the one-shot driver
// draws them (the training batch ONESHOT_CALIB_BATCH of a text file, seed as train.seed).
//
//   ./build/dump_calibration MODEL TEXT_FILE NSAMPLES SEQLEN SEED OUT
//
// OUT is text, one array per line, "name rows cols v0 v1 ..." (float32 values printed
// exactly, %.9g): "dims" (d_model, n_layer, d_state, d_conv, expand, dt_rank, norm_eps,
// nsamples, seqlen), then every parameter by its transformers name (the blocks', the tied
// embedding and norm_f), then "inputs" (nsamples * seqlen, d_model), block 0's calibration
// input, and "targets" (1, nsamples * seqlen), each position's next token.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "prune/oneshot.h"
#include "run/model_source.h"

static void write_array(FILE *out, const char *name, const float *v, long rows, long cols) {
    fprintf(out, "%s %ld %ld", name, rows, cols);
    for (long i = 0; i < rows * cols; i++) fprintf(out, " %.9g", v[i]);
    fputc('\n', out);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: dump_calibration MODEL TEXT_FILE NSAMPLES SEQLEN SEED OUT\n");
        return 2;
    }
    int nsamples = atoi(argv[3]), seqlen = atoi(argv[4]);
    if (nsamples < 1 || seqlen < 2) {
        fprintf(stderr, "dump_calibration: NSAMPLES must be >= 1 and SEQLEN >= 2, got %s and %s\n", argv[3], argv[4]);
        return 2;
    }
    Error err;
    MambaModel model;
    if (model_load(argv[1], &model, &err)) {
        fprintf(stderr, "dump_calibration: %s\n", err.message);
        return 1;
    }
    DataOptions o;
    data_options_defaults(&o);
    o.kind = DATA_TEXT;
    o.path = argv[2];
    o.seed = strtoull(argv[5], NULL, 10);
    Dataset data;
    if (data_open(&data, &o, seqlen, &err)) {
        fprintf(stderr, "dump_calibration: %s\n", err.message);
        return 1;
    }
    FILE *out = fopen(argv[6], "w");
    if (!out) {
        fprintf(stderr, "dump_calibration: %s: cannot open for writing\n", argv[6]);
        return 1;
    }
    const MambaConfig *c = &model.config;
    float dims[] = {c->d_model, c->n_layer, c->d_state, c->d_conv, c->expand, c->dt_rank, c->norm_eps, nsamples, seqlen};
    write_array(out, "dims", dims, 1, sizeof dims / sizeof dims[0]);
    for (int k = 0; k < model.n_params; k++) {
        const Tensor *t = model.params[k].tensor;
        long cols = t->shape[t->ndim - 1];
        write_array(out, model.params[k].name, t->data, (long)t->size / cols, cols);
    }
    size_t rows = (size_t)nsamples * seqlen;
    int32_t *tokens = malloc(rows * sizeof(int32_t)), *targets = malloc(rows * sizeof(int32_t));
    float *x = malloc(rows * c->d_model * sizeof(float));
    data_train_batch(&data, ONESHOT_CALIB_BATCH, nsamples, seqlen, tokens, targets);
    for (size_t t = 0; t < rows; t++)
        memcpy(x + t * c->d_model, model.embedding.data + (size_t)tokens[t] * c->d_model, c->d_model * sizeof(float));
    write_array(out, "inputs", x, (long)rows, c->d_model);
    float *y = malloc(rows * sizeof(float));
    for (size_t t = 0; t < rows; t++) y[t] = (float)targets[t];
    write_array(out, "targets", y, 1, (long)rows);
    free(y);
    int failed = ferror(out) | (fclose(out) != 0);
    if (failed) fprintf(stderr, "dump_calibration: %s: write failed\n", argv[6]);
    free(tokens), free(targets), free(x);
    data_close(&data);
    mamba_model_free(&model);
    return failed;
}
