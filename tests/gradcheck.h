// Central finite differences for the backward of any function built from tape ops.
// The scalar checked is L = Σ out ⊙ r for a fixed random r, summed in double; each input
// element is nudged by ±eps and the numerical slope compared with the tape's gradient.
#ifndef MP_TESTS_GRADCHECK_H
#define MP_TESTS_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autograd/tensor.h"
#include "core/rng.h"

typedef Tensor *(*GradcheckBuild)(Tape *tape, Tensor **inputs, void *context);

typedef struct GradcheckInput {
    const char *name;
    float *data;          // owned by the test
    int ndim;
    int shape[4];
} GradcheckInput;

static double gradcheck_loss(GradcheckBuild build, GradcheckInput *in, int n_in, void *context, const float *r,
                             Tape *tape, int record, float **grads) {
    tape_reset(tape);
    tape->recording = record;
    Tensor *tensors[8];
    for (int i = 0; i < n_in; i++) {
        tensors[i] = tensor_view(tape, in[i].data, in[i].ndim, in[i].shape);
        tensors[i]->requires_grad = true;
    }
    Tensor *out = build(tape, tensors, context);
    double loss = 0.0;
    for (size_t k = 0; k < out->size; k++) loss += (double)out->data[k] * r[k];
    if (record) {
        // Seed dL/dout = r through a gradient buffer, then walk the tape.
        float *g = tensor_grad(tape, out);
        memcpy(g, r, sizeof(float) * out->size);
        for (int i = tape->n_nodes - 1; i >= 0; i--)
            if (tape->nodes[i].output->grad) tape->nodes[i].backward(tape, &tape->nodes[i]);
        for (int i = 0; i < n_in; i++) {
            size_t n = tensors[i]->size;
            memcpy(grads[i], tensors[i]->grad ? tensors[i]->grad : memset(grads[i], 0, n * sizeof(float)),
                   n * sizeof(float));
        }
    }
    return loss;
}

// Returns the number of inputs whose gradient was off; prints one line per input.
static int gradcheck(const char *op_name, GradcheckBuild build, GradcheckInput *in, int n_in, void *context,
                     size_t out_size, float eps, float tolerance) {
    Tape tape;
    tape_init(&tape, 1 << 20);
    Rng rng;
    rng_seed(&rng, 99);
    float r[out_size];
    for (size_t k = 0; k < out_size; k++) r[k] = rng_normal(&rng);
    float *grads[8];
    for (int i = 0; i < n_in; i++) grads[i] = calloc(shape_size(in[i].ndim, in[i].shape), sizeof(float));
    gradcheck_loss(build, in, n_in, context, r, &tape, 1, grads);
    int failures = 0;
    for (int i = 0; i < n_in; i++) {
        size_t n = shape_size(in[i].ndim, in[i].shape);
        double max_err = 0.0, max_ref = 0.0;
        for (size_t k = 0; k < n; k++) {
            float saved = in[i].data[k];
            in[i].data[k] = saved + eps;
            double plus = gradcheck_loss(build, in, n_in, context, r, &tape, 0, NULL);
            in[i].data[k] = saved - eps;
            double minus = gradcheck_loss(build, in, n_in, context, r, &tape, 0, NULL);
            in[i].data[k] = saved;
            double numeric = (plus - minus) / (2.0 * eps);
            double err = fabs(numeric - grads[i][k]);
            if (err > max_err) max_err = err;
            if (fabs(numeric) > max_ref) max_ref = fabs(numeric);
        }
        double rel = max_err / (max_ref > 1e-3 ? max_ref : 1e-3);
        int ok = rel < tolerance;
        printf("%s %s d/d%s: max abs err %.3e, relative %.3e (max |grad| %.3e)\n", ok ? "OK    " : "NOT OK", op_name,
               in[i].name, max_err, rel, max_ref);
        failures += !ok;
        free(grads[i]);
    }
    tape_free(&tape);
    return failures;
}

static void fill_normal(float *x, size_t n, Rng *rng, float scale) {
    for (size_t k = 0; k < n; k++) x[k] = scale * rng_normal(rng);
}

#endif
