// Every op's backward against central finite differences on small random inputs.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "autograd/ops.h"
#include "gradcheck.h"

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

    printf("%s: %d op gradient check(s) failed\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
