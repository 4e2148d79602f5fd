// Tests of core/fastmath.h's silu_array and of op_silu's forward built on it: the same
// bits as siluf element by element (the plain expression it replaces), over inputs from
// -120 to 120 (the clamps of fast_expf at -87.3 and 88.3 and the subnormal sigmoids
// between), zeros, subnormals, infinities and NaN; lengths around the block; in place;
// op_silu at 1, 2 and 3 threads.
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"    // defines: op_silu, tensor_new
#include "core/fastmath.h"   // defines: silu_array, siluf

#include "check.h"

// The plain expression, one element at a time, kept out of any vector loop so that the
// reference is siluf as a scalar call computes it.
static __attribute__((noinline)) float silu_reference(float x) { return siluf(x); }

static int same_bits(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    uint32_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    return ua == ub;
}

// Inputs: a fine grid over [-120, 120], the values next to the clamps, specials.
static long fill_inputs(float *x, long capacity) {
    long n = 0;
    for (float v = -120.0f; v <= 120.0f && n < capacity; v += 0.0137f) x[n++] = v;
    const float specials[] = {0.0f, -0.0f, 1e-40f, -1e-40f, 1e-45f, -1e-45f, 1.17e-38f, -1.17e-38f,
                              -87.3f, -87.29f, -87.31f, -88.3f, -88.29f, -88.31f, 87.3f, 88.3f, 88.31f,
                              -89.0f, -103.9f, -104.0f, 3.4e38f, -3.4e38f, INFINITY, -INFINITY, NAN};
    for (size_t k = 0; k < sizeof specials / sizeof specials[0] && n < capacity; k++) x[n++] = specials[k];
    return n;
}

static long count_mismatches(const float *got, const float *x, long n) {
    long bad = 0;
    for (long i = 0; i < n; i++) bad += !same_bits(got[i], silu_reference(x[i]));
    return bad;
}

int main(void) {
    enum { CAPACITY = 20000 };
    float *x = malloc(sizeof(float) * CAPACITY), *out = malloc(sizeof(float) * CAPACITY);
    float *inplace = malloc(sizeof(float) * CAPACITY);
    const long n = fill_inputs(x, CAPACITY);
    check(n > 17000, "%ld inputs", n);

    // Lengths around the block: none, a partial block, one, one and one more, the whole.
    const long lengths[] = {0, 1, 7, SILU_BLOCK - 1, SILU_BLOCK, SILU_BLOCK + 1, 3 * SILU_BLOCK + 5, n};
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        const long m = lengths[k];
        for (long i = 0; i < n; i++) out[i] = -7.0f;
        silu_array(out, x, m);
        long past = 0;
        for (long i = m; i < n; i++) past += out[i] != -7.0f;
        check(count_mismatches(out, x, m) == 0 && past == 0,
              "silu_array over %ld inputs has siluf's bits (%ld differ) and writes nothing past them (%ld)", m,
              count_mismatches(out, x, m), past);
    }
    memcpy(inplace, x, sizeof(float) * (size_t)n);
    silu_array(inplace, inplace, n);
    check(count_mismatches(inplace, x, n) == 0, "silu_array in place has siluf's bits (%ld differ)",
          count_mismatches(inplace, x, n));
    // The subnormal sigmoids the blocking is about are among the inputs: silu of -88 is
    // -88 / (1 + e^88), about -1.5e-36, a normal float from a subnormal sigmoid.
    check(sigmoidf(-88.0f) < 1.1754944e-38f && sigmoidf(-88.0f) > 0.0f, "sigmoid(-88) = %g is subnormal",
          (double)sigmoidf(-88.0f));

    // op_silu's forward: the same bits at any thread count (whole blocks per thread, a
    // partial one at the end).
    Tape tape;
    tape_init(&tape, 1 << 20);
    const int rows = 3, cols = 1000;
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        tape_reset(&tape);
        Tensor *t = tensor_new(&tape, 2, (int[]){rows, cols});
        memcpy(t->data, x + 5000, sizeof(float) * (size_t)(rows * cols));
        Tensor *y = op_silu(&tape, t);
        check(count_mismatches(y->data, t->data, rows * cols) == 0,
              "op_silu at %d thread(s) has siluf's bits (%ld of %d differ)", threads,
              count_mismatches(y->data, t->data, rows * cols), rows * cols);
    }
    tape_free(&tape);
    free(x);
    free(out);
    free(inplace);
    return check_summary("fastmath");
}
