// Every op's backward against central finite differences on small random inputs; and
// the model's gradients with each block recomputed (op_recompute) against the plain tape,
// and at 1, 2, 4 and 5 threads against one thread (the same bits).
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "autograd/ops.h"
#include "gradcheck.h"
#include "tiny_model.h"

enum { T = 6, C = 5, V = 7, BATCH = 2, SEQ = 3, K = 4 };

static Tensor *build_matmul(Tape *tape, Tensor **in, void *ctx) { (void)ctx; return op_matmul(tape, in[0], in[1]); }
static Tensor *build_add(Tape *tape, Tensor **in, void *ctx) { (void)ctx; return op_add(tape, in[0], in[1]); }
static Tensor *build_mul(Tape *tape, Tensor **in, void *ctx) { (void)ctx; return op_mul(tape, in[0], in[1]); }
static Tensor *build_silu(Tape *tape, Tensor **in, void *ctx) { (void)ctx; return op_silu(tape, in[0]); }
static Tensor *build_softplus(Tape *tape, Tensor **in, void *ctx) { (void)ctx; return op_softplus(tape, in[0]); }
static Tensor *build_exp(Tape *tape, Tensor **in, void *ctx) { (void)ctx; return op_exp(tape, in[0]); }
static Tensor *build_rmsnorm(Tape *tape, Tensor **in, void *ctx) { (void)ctx; return op_rmsnorm(tape, in[0], in[1], 1e-5f); }
static Tensor *build_embedding(Tape *tape, Tensor **in, void *ctx) { return op_embedding(tape, in[0], ctx, T); }
static Tensor *build_conv(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    return op_conv1d_causal(tape, in[0], in[1], in[2], BATCH, SEQ);
}
// On columns [2, 2 + C) of a wider x, as the block reads in_proj's output.
static Tensor *build_conv_cols(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    return op_conv1d_causal_cols(tape, in[0], 2, in[1], in[2], BATCH, SEQ);
}
static Tensor *build_silu_gate(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    return op_silu_gate(tape, in[0], in[1], 1);
}
static Tensor *build_slice(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    // Two overlapping slices used together, like (x, z) and (δ, B, C).
    return op_mul(tape, op_slice_cols(tape, in[0], 1, 2), op_slice_cols(tape, in[0], 2, 2));
}
static Tensor *build_cross_entropy(Tape *tape, Tensor **in, void *ctx) {
    return op_cross_entropy(tape, in[0], ctx, T);
}
// Distillation: the KL at temperature 2 against fixed teacher logits, rows with target < 0
// left out, mixed with the cross-entropy of the same logits.
static float teacher_logits[T * V];
static Tensor *build_kl(Tape *tape, Tensor **in, void *ctx) {
    return op_kl_distill(tape, in[0], teacher_logits, ctx, T, 2.0f);
}
static Tensor *build_kl_all(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    return op_kl_distill(tape, in[0], teacher_logits, NULL, T, 0.5f);
}
static Tensor *build_distill_mix(Tape *tape, Tensor **in, void *ctx) {
    Tensor *ce = op_cross_entropy(tape, in[0], ctx, T);
    return op_mix_scalars(tape, ce, op_kl_distill(tape, in[0], teacher_logits, ctx, T, 3.0f), 0.25f, 0.75f);
}
// The same tensor feeding two ops: gradients must add up.
static Tensor *build_shared(Tape *tape, Tensor **in, void *ctx) {
    (void)ctx;
    return op_mul(tape, op_silu(tape, in[0]), in[0]);
}

// op_recompute of x + silu(x @ w^T), w a parameter (it owns its gradient, as op_recompute asks).
static Tape recompute_scratch;
static Tensor *residual_block(Tape *tape, void *ctx, Tensor *x) {
    return op_add(tape, x, op_silu(tape, op_matmul(tape, x, ctx)));
}
static Tensor *build_recompute(Tape *tape, Tensor **in, void *ctx) {
    tape->recompute = &recompute_scratch;
    return op_recompute(tape, residual_block, ctx, in[0]);
}

// One forward and backward of a model at a thread count, with or without each block
// recomputed: the loss and every parameter gradient, concatenated into grads.
static float model_gradients(MambaModel *model, const int32_t *tokens, const int32_t *targets, int B, int L,
                             int threads, bool recompute, float *grads) {
    omp_set_num_threads(threads);
    Tape tape, scratch;
    tape_init(&tape, 1 << 16);
    tape_init(&scratch, 1 << 16);
    tape.recompute = recompute ? &scratch : NULL;
    mamba_model_zero_grad(model);
    Tensor *loss = mamba_forward(&tape, model, tokens, targets, B, L, NULL);
    const float value = loss->data[0];
    tape_backward(&tape, loss);
    for (int i = 0, at = 0; i < model->n_params; at += (int)model->params[i].tensor->size, i++)
        memcpy(grads + at, model->params[i].tensor->grad, sizeof(float) * model->params[i].tensor->size);
    tape_free(&tape);
    tape_free(&scratch);
    omp_set_num_threads(2);
    return value;
}

static void model_tokens(int32_t *tokens, int32_t *targets, int n, int vocab) {
    for (int i = 0; i < n; i++) tokens[i] = (i * 7 + 3) % vocab, targets[i] = i % 4 == 0 ? -1 : (i * 5 + 1) % vocab;
}

// A tiny model's loss and every parameter gradient, with and without recomputation: the same bits.
static int check_model_recompute(void) {
    MambaModel model;
    tiny_model_create_sized(&model, 12, 3, 11, 4, 3, 5);
    enum { B = 2, L = 9 };
    int32_t tokens[B * L], targets[B * L];
    model_tokens(tokens, targets, B * L, 11);
    size_t n = model.n_elements;
    float *plain = malloc(sizeof(float) * n), *again = malloc(sizeof(float) * n);
    const float loss_plain = model_gradients(&model, tokens, targets, B, L, omp_get_max_threads(), false, plain);
    const float loss_again = model_gradients(&model, tokens, targets, B, L, omp_get_max_threads(), true, again);
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) nonzero += plain[i] != 0.0f;
    bool ok = memcmp(plain, again, sizeof(float) * n) == 0 && loss_plain == loss_again && nonzero > (int)n / 2;
    printf("%s recompute: tiny model, loss %.7g / %.7g, gradients %s (%d of %zu numbers nonzero)\n",
           ok ? "OK    " : "NOT OK", loss_plain, loss_again,
           memcmp(plain, again, sizeof(float) * n) == 0 ? "the same bits" : "differ", nonzero, n);
    free(plain);
    free(again);
    mamba_model_free(&model);
    return ok ? 0 : 1;
}

// The same bits at every thread count (README "Threads"): one block of mamba-130m's
// width and a head large enough for the tiled products (tokens x vocab and vocab x
// d_model of at least 2^22), at 1, 2, 4 and 5 threads, with and without recomputation,
// against 1 thread without. At these sizes tiles of the head's weight gradient, or rows of
// in_proj's deferred one, would round differently from the whole product.
static int check_model_threads(void) {
    MambaModel model;
    enum { D_MODEL = 768, VOCAB = 8192, B = 4, L = 256 };
    tiny_model_create_sized(&model, D_MODEL, 1, VOCAB, 16, 48, 9);
    static int32_t tokens[B * L], targets[B * L];
    model_tokens(tokens, targets, B * L, VOCAB);
    size_t n = model.n_elements;
    float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
    const float loss_want = model_gradients(&model, tokens, targets, B, L, 1, false, want);
    int failures = 0;
    const int threads[] = {1, 2, 4, 5};
    for (int t = 0; t < 4; t++)
        for (int recompute = 0; recompute < 2; recompute++) {
            if (t == 0 && !recompute) continue;
            const float loss = model_gradients(&model, tokens, targets, B, L, threads[t], recompute, got);
            bool ok = loss == loss_want && memcmp(want, got, sizeof(float) * n) == 0;
            printf("%s threads: d_model %d, vocab %d, %d tokens, %d threads%s: loss and gradients the same bits as 1 "
                   "thread\n", ok ? "OK    " : "NOT OK", D_MODEL, VOCAB, B * L, threads[t],
                   recompute ? ", recomputed" : "");
            failures += !ok;
        }
    free(want);
    free(got);
    mamba_model_free(&model);
    return failures;
}

// The block's fused pieces against what they replace, bit for bit: op_silu_gate(y, xz, D)
// against op_mul(y, op_silu(op_slice_cols(xz, D, D))) and op_conv1d_causal_cols(xz, 0)
// against op_conv1d_causal(op_slice_cols(xz, 0, D)), forward and gradients, on widths
// past silu's block (300 and 520 columns), inputs below -88.3 included (silu's subnormal
// sigmoid), at 1 and 3 threads.
static Tensor *gate_fused(Tape *tape, Tensor **in, int D, Tensor *w, Tensor *bias, int B, int L) {
    Tensor *xc = op_conv1d_causal_cols(tape, in[1], 0, w, bias, B, L);
    return op_add(tape, xc, op_silu_gate(tape, in[0], in[1], D));
}
static Tensor *gate_copied(Tape *tape, Tensor **in, int D, Tensor *w, Tensor *bias, int B, int L) {
    Tensor *xc = op_conv1d_causal(tape, op_slice_cols(tape, in[1], 0, D), w, bias, B, L);
    return op_add(tape, xc, op_mul(tape, in[0], op_silu(tape, op_slice_cols(tape, in[1], D, D))));
}
typedef Tensor *(*GateBuild)(Tape *, Tensor **, int, Tensor *, Tensor *, int, int);

static int check_fused_bits(void) {
    int failures = 0;
    const int widths[] = {300, 520};
    enum { B = 2, L = 7, KW = 4 };
    for (int wi = 0; wi < 2; wi++)
        for (int threads = 1; threads <= 3; threads += 2) {
            const int D = widths[wi], T = B * L;
            Rng rng;
            rng_seed(&rng, 31 + (uint64_t)D);
            float *y = malloc(sizeof(float) * T * D), *xz = malloc(sizeof(float) * T * 2 * D);
            float *r = malloc(sizeof(float) * T * D);
            fill_normal(y, (size_t)T * D, &rng, 1.0f);
            fill_normal(xz, (size_t)T * 2 * D, &rng, 4.0f);
            fill_normal(r, (size_t)T * D, &rng, 1.0f);
            for (int i = 0; i < T * 2 * D; i += 17) xz[i] = -90.0f - (float)(i % 5);
            Tensor w, bias;
            tensor_init_param(&w, 3, (int[]){D, 1, KW});
            tensor_init_param(&bias, 1, (int[]){D});
            fill_normal(w.data, w.size, &rng, 0.5f);
            fill_normal(bias.data, bias.size, &rng, 0.5f);
            float *got[2][5];
            const size_t sizes[5] = {(size_t)T * D, (size_t)T * D, (size_t)T * 2 * D, w.size, bias.size};
            GateBuild builds[2] = {gate_fused, gate_copied};
            omp_set_num_threads(threads);
            for (int v = 0; v < 2; v++) {
                Tape tape;
                tape_init(&tape, 1 << 16);
                memset(w.grad, 0, sizeof(float) * w.size);
                memset(bias.grad, 0, sizeof(float) * bias.size);
                Tensor *in[2] = {tensor_view(&tape, y, 2, (int[]){T, D}), tensor_view(&tape, xz, 2, (int[]){T, 2 * D})};
                in[0]->requires_grad = in[1]->requires_grad = true;
                Tensor *out = builds[v](&tape, in, D, &w, &bias, B, L);
                tape_backward_from(&tape, out, r);
                const float *parts[5] = {out->data, in[0]->grad, in[1]->grad, w.grad, bias.grad};
                for (int k = 0; k < 5; k++) {
                    got[v][k] = malloc(sizeof(float) * sizes[k]);
                    memcpy(got[v][k], parts[k], sizeof(float) * sizes[k]);
                }
                tape_free(&tape);
            }
            omp_set_num_threads(2);
            const char *names[5] = {"output", "dy", "dxz", "dw", "dbias"};
            int differ = 0;
            for (int k = 0; k < 5; k++) {
                bool ok = memcmp(got[0][k], got[1][k], sizeof(float) * sizes[k]) == 0;
                if (!ok) {
                    size_t first = 0, n_diff = 0;
                    for (size_t i = sizes[k]; i-- > 0;)
                        if (memcmp(&got[0][k][i], &got[1][k][i], sizeof(float))) first = i, n_diff++;
                    printf("NOT OK fused gate and conv, width %d, %d thread(s): %s differs from the copies' in %zu "
                           "of %zu (first at %zu: %.9g against %.9g)\n", D, threads, names[k], n_diff, sizes[k],
                           first, got[0][k][first], got[1][k][first]);
                }
                differ += !ok;
                free(got[0][k]);
                free(got[1][k]);
            }
            printf("%s fused gate and conv on in_proj's output, width %d, %d thread(s): output and gradients the same "
                   "bits as on copies\n", differ ? "NOT OK" : "OK    ", D, threads);
            failures += differ;
            tensor_free_param(&w);
            tensor_free_param(&bias);
            free(y), free(xz), free(r);
        }
    return failures;
}

int main(void) {
    Rng rng;
    rng_seed(&rng, 7);
    int failures = 0;
    float a[T * C], b[T * C], w[V * C], wc[C];
    fill_normal(a, T * C, &rng, 1.0f);
    fill_normal(b, T * C, &rng, 1.0f);
    fill_normal(w, V * C, &rng, 0.5f);
    fill_normal(wc, C, &rng, 1.0f);

    GradcheckInput mm[] = {{"x", a, 2, {T, C}}, {"w", w, 2, {V, C}}};
    failures += gradcheck("matmul", build_matmul, mm, 2, NULL, T * V, 1e-2f, 1e-2f);
    GradcheckInput ab[] = {{"a", a, 2, {T, C}}, {"b", b, 2, {T, C}}};
    failures += gradcheck("add", build_add, ab, 2, NULL, T * C, 1e-2f, 1e-2f);
    failures += gradcheck("mul", build_mul, ab, 2, NULL, T * C, 1e-2f, 1e-2f);
    GradcheckInput x1[] = {{"x", a, 2, {T, C}}};
    failures += gradcheck("silu", build_silu, x1, 1, NULL, T * C, 1e-2f, 1e-2f);
    failures += gradcheck("softplus", build_softplus, x1, 1, NULL, T * C, 1e-2f, 1e-2f);
    failures += gradcheck("exp", build_exp, x1, 1, NULL, T * C, 1e-3f, 1e-2f);
    failures += gradcheck("silu(x)*x", build_shared, x1, 1, NULL, T * C, 1e-2f, 1e-2f);
    GradcheckInput rn[] = {{"x", a, 2, {T, C}}, {"w", wc, 1, {C}}};
    failures += gradcheck("rmsnorm", build_rmsnorm, rn, 2, NULL, T * C, 1e-2f, 1e-2f);

    int32_t tokens[T] = {3, 0, 6, 3, 1, 3};  // repeats: their gradients must add
    GradcheckInput em[] = {{"w", w, 2, {V, C}}};
    failures += gradcheck("embedding", build_embedding, em, 1, tokens, T * C, 1e-2f, 1e-2f);

    float cw[C * K], cb[C];
    fill_normal(cw, C * K, &rng, 0.5f);
    fill_normal(cb, C, &rng, 0.5f);
    GradcheckInput cv[] = {{"x", a, 2, {BATCH * SEQ, C}}, {"w", cw, 3, {C, 1, K}}, {"bias", cb, 1, {C}}};
    failures += gradcheck("conv1d_causal", build_conv, cv, 3, NULL, T * C, 1e-2f, 1e-2f);

    float xw[BATCH * SEQ * (C + 3)];
    fill_normal(xw, BATCH * SEQ * (C + 3), &rng, 1.0f);
    GradcheckInput cc[] = {{"x", xw, 2, {BATCH * SEQ, C + 3}}, {"w", cw, 3, {C, 1, K}}, {"bias", cb, 1, {C}}};
    failures += gradcheck("conv1d_causal_cols", build_conv_cols, cc, 3, NULL, T * C, 1e-2f, 1e-2f);
    GradcheckInput sg[] = {{"y", b, 2, {T, C}}, {"x", xw, 2, {T, C + 3}}};
    failures += gradcheck("silu_gate", build_silu_gate, sg, 2, NULL, T * C, 1e-2f, 1e-2f);
    failures += check_fused_bits();

    GradcheckInput sl[] = {{"x", a, 2, {T, C}}};
    failures += gradcheck("slice_cols", build_slice, sl, 1, NULL, T * 2, 1e-2f, 1e-2f);

    float logits[T * V];
    fill_normal(logits, T * V, &rng, 2.0f);
    int32_t targets[T] = {1, -1, 6, 0, -1, 2};  // two ignored positions
    GradcheckInput ce[] = {{"logits", logits, 2, {T, V}}};
    failures += gradcheck("cross_entropy", build_cross_entropy, ce, 1, targets, 1, 1e-2f, 1e-2f);
    fill_normal(teacher_logits, T * V, &rng, 2.0f);
    failures += gradcheck("kl_distill (T 2, ignored rows)", build_kl, ce, 1, targets, 1, 1e-2f, 1e-2f);
    failures += gradcheck("kl_distill (T 0.5, every row)", build_kl_all, ce, 1, NULL, 1, 1e-2f, 1e-2f);
    failures += gradcheck("0.25 cross_entropy + 0.75 kl_distill (T 3)", build_distill_mix, ce, 1, targets, 1, 1e-2f,
                          1e-2f);
    {  // The KL's value against a direct computation in double; 0 when student = teacher.
        Tape tape;
        tape_init(&tape, 1u << 20);
        Tensor *x = tensor_view(&tape, logits, 2, (int[]){T, V});
        float value = op_kl_distill(&tape, x, teacher_logits, targets, T, 2.0f)->data[0];
        double total = 0;
        int counted = 0;
        for (int t = 0; t < T; t++) {
            if (targets[t] < 0) continue;
            double zs = 0, zt = 0, kl = 0;
            for (int v = 0; v < V; v++) zs += exp(logits[t * V + v] / 2.0), zt += exp(teacher_logits[t * V + v] / 2.0);
            for (int v = 0; v < V; v++) {
                double p = exp(teacher_logits[t * V + v] / 2.0) / zt, q = exp(logits[t * V + v] / 2.0) / zs;
                kl += p * log(p / q);
            }
            total += kl;
            counted++;
        }
        double direct = 4.0 * total / counted;
        float same = op_kl_distill(&tape, tensor_view(&tape, teacher_logits, 2, (int[]){T, V}), teacher_logits,
                                   targets, T, 2.0f)->data[0];
        bool ok = fabs(value - direct) < 1e-5 * direct && fabs(same) < 1e-6;
        printf("%s kl_distill value %.7g, direct %.7g; against itself %.2g\n", ok ? "OK    " : "NOT OK", value, direct,
               same);
        failures += !ok;
        tape_free(&tape);
    }

    // recompute: the gradient of x through a block run twice, by finite differences.
    Tensor w_param;
    tensor_init_param(&w_param, 2, (int[]){C, C});
    fill_normal(w_param.data, C * C, &rng, 0.5f);
    tape_init(&recompute_scratch, 1 << 16);
    failures += gradcheck("recompute", build_recompute, x1, 1, &w_param, T * C, 1e-2f, 1e-2f);
    tape_free(&recompute_scratch);
    tensor_free_param(&w_param);
    failures += check_model_recompute();
    failures += check_model_threads();

    printf("%s: %d op gradient check(s) failed\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
