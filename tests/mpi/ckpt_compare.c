// Compares the parameters of two checkpoints of one model, tensor by tensor: the largest
// difference relative to the tensor's largest magnitude, max|a - b| / max|b|. Exit 0 when
// every tensor is within the tolerance, 1 when one is not, 2 on bad input.
// tests/mpi/test_mpi_train.sh compares an `mpirun -np 2` run with a single process by it.
//
//   ckpt_compare A.h5 B.h5 TOLERANCE     (TOLERANCE 0: the same bits)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mamba/model.h"
#include "run/model_source.h"  // defines: model_load

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: ckpt_compare A.h5 B.h5 TOLERANCE\n");
        return 2;
    }
    char *end;
    double tolerance = strtod(argv[3], &end);
    if (*end || !(tolerance >= 0)) {
        fprintf(stderr, "ckpt_compare: TOLERANCE: expected a number >= 0, got '%s'\n", argv[3]);
        return 2;
    }
    MambaModel a, b;
    Error err;
    if (model_load(argv[1], &a, &err) != 0 || model_load(argv[2], &b, &err) != 0) {
        fprintf(stderr, "ckpt_compare: %s\n", err.message);
        return 2;
    }
    if (a.n_params != b.n_params) {
        fprintf(stderr, "ckpt_compare: %s has %d tensors, %s has %d\n", argv[1], a.n_params, argv[2], b.n_params);
        return 2;
    }
    double worst = 0.0;
    const char *worst_name = "";
    int bad = 0;
    for (int i = 0; i < a.n_params; i++) {
        const Tensor *x = a.params[i].tensor, *y = b.params[i].tensor;
        if (x->size != y->size || strcmp(a.params[i].name, b.params[i].name) != 0) {
            fprintf(stderr, "ckpt_compare: tensor %d is %s (%zu) in %s but %s (%zu) in %s\n", i, a.params[i].name,
                    x->size, argv[1], b.params[i].name, y->size, argv[2]);
            return 2;
        }
        double diff = 0.0, scale = 0.0;
        for (size_t j = 0; j < x->size; j++) {
            double d = fabs((double)x->data[j] - (double)y->data[j]);
            if (tolerance == 0 && memcmp(&x->data[j], &y->data[j], sizeof(float)) != 0) d = d > 0 ? d : INFINITY;
            diff = d > diff ? d : diff;
            scale = fabs((double)y->data[j]) > scale ? fabs((double)y->data[j]) : scale;
        }
        double rel = diff == 0.0 ? 0.0 : diff / (scale > 0.0 ? scale : 1.0);
        if (rel > tolerance) {
            bad++;
            printf("  %s: max |a - b| %.3g, relative %.3g\n", a.params[i].name, diff, rel);
        }
        if (rel >= worst) {
            worst = rel;
            worst_name = a.params[i].name;
        }
    }
    printf("%s: %d tensors, largest relative difference %.3g (%s), %d above %g\n", bad ? "DIFFERENT" : "SAME",
           a.n_params, worst, worst_name, bad, tolerance);
    mamba_model_free(&a);
    mamba_model_free(&b);
    return bad ? 1 : 0;
}
