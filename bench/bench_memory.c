// Training memory of Mamba LMs at the shapes of the released checkpoints: parameters,
// gradients, AdamW's two moments (4 bytes a number each), and the activations of one
// training step (forward and backward) at a batch, measured as the tape arena's high-water
// mark. Building a 1.4b model to measure it would take 22 GB, so the step is run at the real
// width with 1 and 2 layers and extrapolated: every layer adds the same activations.
// With train.recompute, the same for the tape that keeps only each block's output and the
// scratch tape that recomputes one block at a time. Also per process under mpirun -np P (the batch split P ways; parameters, gradients and
// moments held in full by every process).
//
//   bench_memory [--batch 4] [--seqlen 256] [--shape 130m|370m|790m|1.4b|all]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "mamba/model.h"

typedef struct Shape {
    const char *name;
    int d_model, n_layer;
} Shape;

// state-spaces/mamba-*: d_state 16, expand 2, d_conv 4, vocabulary 50280 (GPT-NeoX's, padded to 8).
static const Shape shapes[] = {{"130m", 768, 24}, {"370m", 1024, 48}, {"790m", 1536, 48}, {"1.4b", 2048, 48}};

static MambaConfig shape_config(const Shape *s, int n_layer) {
    MambaConfig c;
    mamba_config_defaults(&c);
    c.d_model = s->d_model;
    c.n_layer = n_layer;
    c.vocab_size = 50280;
    Error err;
    if (mamba_config_finish(&c, &err) != 0) {
        fprintf(stderr, "bench_memory: %s\n", err.message);
        exit(2);
    }
    return c;
}

// The tapes' high-water marks over one forward and backward of a random model (with
// recompute, the main tape's and the scratch tape's together).
static size_t step_bytes(const MambaConfig *c, int batch, int seqlen, bool recompute) {
    MambaModel model;
    mamba_model_create(&model, c);
    Rng rng;
    rng_seed(&rng, 1);
    mamba_model_init_random(&model, &rng);
    int T = batch * seqlen;
    int32_t *tokens = xmalloc(sizeof(int32_t) * (size_t)T), *targets = xmalloc(sizeof(int32_t) * (size_t)T);
    for (int i = 0; i < T; i++) tokens[i] = (int32_t)rng_below(&rng, (uint64_t)c->vocab_size);
    for (int i = 0; i < T; i++) targets[i] = (int32_t)rng_below(&rng, (uint64_t)c->vocab_size);
    Tape tape, scratch;
    tape_init(&tape, 1 << 20);
    tape_init(&scratch, 1 << 20);
    tape.recompute = recompute ? &scratch : NULL;
    Tensor *loss = mamba_forward(&tape, &model, tokens, targets, batch, seqlen, NULL);
    tape_backward(&tape, loss);
    size_t bytes = tape.arena.high_water + scratch.arena.high_water;
    tape_free(&tape);
    tape_free(&scratch);
    free(tokens);
    free(targets);
    mamba_model_free(&model);
    return bytes;
}

static double gb(double bytes) { return bytes / 1e9; }

int main(int argc, char **argv) {
    int batch = 4, seqlen = 256;
    const char *only = "all";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--batch") == 0) batch = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seqlen") == 0) seqlen = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--shape") == 0) only = argv[i + 1];
        else {
            fprintf(stderr, "bench_memory: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (argc % 2 == 0 || batch < 1 || seqlen < 2) {
        fprintf(stderr, "usage: bench_memory [--batch B] [--seqlen L] [--shape 130m|370m|790m|1.4b|all]\n");
        return 2;
    }
    printf("training memory at batch %d x %d tokens, GB (1e9 bytes)\n", batch, seqlen);
    printf("| shape | parameters | params | grads | AdamW m+v | activations | total | estimate (run_limits) | "
           "per process -np 2 | -np 4 | activations, train.recompute | total, train.recompute | estimate, "
           "train.recompute |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const Shape *s = &shapes[k];
        if (strcmp(only, "all") != 0 && strcmp(only, s->name) != 0) continue;
        MambaConfig c1 = shape_config(s, 1), c2 = shape_config(s, 2), full = shape_config(s, s->n_layer);
        double one = (double)step_bytes(&c1, batch, seqlen, false), two = (double)step_bytes(&c2, batch, seqlen, false);
        double per_layer = two - one, activations = one + (s->n_layer - 1) * per_layer;
        double one_r = (double)step_bytes(&c1, batch, seqlen, true), two_r = (double)step_bytes(&c2, batch, seqlen, true);
        double recomputed = one_r + (s->n_layer - 1) * (two_r - one_r);
        double n = (double)mamba_config_param_count(&full), params = 4.0 * n;
        double fixed = 4.0 * params;  // parameters, gradients, m, v
        // Under -np P a process holds B / P sequences: the activations are linear in tokens.
        double per2 = batch % 2 == 0 ? fixed + activations / 2 : 0, per4 = batch % 4 == 0 ? fixed + activations / 4 : 0;
        printf("| %s | %.1f M | %.2f | %.2f | %.2f | %.2f (%.0f MB a layer) | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f "
               "| %.2f |\n",
               s->name, n / 1e6, gb(params), gb(params), gb(2 * params), gb(activations), per_layer / 1e6,
               gb(fixed + activations), gb((double)mamba_train_bytes(&full, batch, seqlen, false)), gb(per2),
               gb(per4), gb(recomputed), gb(fixed + recomputed), gb((double)mamba_train_bytes(&full, batch, seqlen, true)));
        fflush(stdout);
    }
    return 0;
}
