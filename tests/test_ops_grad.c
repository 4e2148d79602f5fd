// Every op's backward against central finite differences on small random inputs.
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

    printf("%s: %d op gradient check(s) failed\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
