// The training step's matrix products one by one, at mamba-130m's shapes by default: for
// each Linear layer (in_proj, x_proj, dt_proj, out_proj, the tied LM head) the forward
// out = x w^T, the input gradient dx += dout w and the weight gradient dw += dout^T x
// (whose inner dimension is the T tokens), as matmul_forward / matmul_backward call
// sgemm. Prints ms and GFLOP/s of each (the best of --reps after one warm-up call), so
// that runs at 1 and 16 threads show which product scales worst, on either library. The
// step's tape also defers the layers' weight gradients and cuts the head's input gradient
// into slices (src/autograd/matmul.c); this bench times the plain calls.
//
//   bench_matmul [--d-model 768] [--vocab 50280] [--tokens 1024] [--reps 3]
//                [--matmul openblas|onednn|both]
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "core/timer.h"
#include "mamba/model.h"

typedef struct Product {
    const char *layer;
    int K, N;  // x (T, K), w (N, K)
} Product;

static void fill(float *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u + seed) % 1000) / 1000.0f - 0.5f;
}

// Best of reps after one warm-up call: which = 0 forward, 1 dx, 2 dw.
static double time_product(int which, float *out, float *dx, float *dw, const float *x, const float *w, int T,
                           int K, int N, int reps) {
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double start = now_seconds();
        if (which == 0) matmul_forward(out, x, w, T, K, N);
        else matmul_backward(which == 1 ? dx : NULL, which == 2 ? dw : NULL, out, x, w, T, K, N);
        double t = now_seconds() - start;
        if (r > 0 && t < best) best = t;
    }
    return best;
}

static void run(MatmulBackend backend, const Product *products, int n_products, int T, int reps) {
    matmul_set_backend(backend);
    const char *names[3] = {"forward", "dx", "dw (K=T)"};
    double total = 0.0, total_flops = 0.0;
    for (int p = 0; p < n_products; p++) {
        const int K = products[p].K, N = products[p].N;
        float *x = xmalloc(sizeof(float) * (size_t)T * K), *w = xmalloc(sizeof(float) * (size_t)N * K);
        float *out = xmalloc(sizeof(float) * (size_t)T * N), *dx = xcalloc((size_t)T * K, sizeof(float));
        float *dw = xcalloc((size_t)N * K, sizeof(float));
        fill(x, (size_t)T * K, 1);
        fill(w, (size_t)N * K, 2);
        fill(out, (size_t)T * N, 3);
        for (int which = 0; which < 3; which++) {
            double t = time_product(which, out, dx, dw, x, w, T, K, N, reps);
            double flops = 2.0 * T * K * N;
            total += t;
            total_flops += flops;
            printf("%-8s %2d threads  %-9s %-9s T %5d K %5d N %5d  %9.2f ms  %7.1f GFLOP/s\n",
                   matmul_backend_name(backend), omp_get_max_threads(), products[p].layer, names[which], T, K, N,
                   1e3 * t, flops / t / 1e9);
        }
        free(x);
        free(w);
        free(out);
        free(dx);
        free(dw);
    }
    printf("%-8s %2d threads  all products once: %.2f ms, %.1f GFLOP/s\n", matmul_backend_name(backend),
           omp_get_max_threads(), 1e3 * total, total_flops / total / 1e9);
}

int main(int argc, char **argv) {
    int d_model = 768, vocab = 50280, T = 1024, reps = 3;
    const char *which = "both";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--d-model") == 0) d_model = atoi(v);
        else if (strcmp(a, "--vocab") == 0) vocab = atoi(v);
        else if (strcmp(a, "--tokens") == 0) T = atoi(v);
        else if (strcmp(a, "--reps") == 0) reps = atoi(v);
        else if (strcmp(a, "--matmul") == 0) which = v;
        else {
            fprintf(stderr, "bench_matmul: unknown option %s\n", a);
            return 2;
        }
    }
    if (argc % 2 == 0) {
        fprintf(stderr, "bench_matmul: %s needs a value\n", argv[argc - 1]);
        return 2;
    }
    MambaConfig c;
    mamba_config_defaults(&c);
    c.d_model = d_model;
    c.vocab_size = vocab;
    c.n_layer = 1;  // one of each product: every layer has the same shapes
    Error err;
    if (T < 1 || reps < 1 || mamba_config_finish(&c, &err) != 0) {
        fprintf(stderr, "bench_matmul: bad sizes%s%s\n", T < 1 || reps < 1 ? "" : ": ", T < 1 || reps < 1 ? "" : err.message);
        return 2;
    }
    const Product products[] = {
        {"in_proj", c.d_model, 2 * c.d_inner},
        {"x_proj", c.d_inner, c.dt_rank + 2 * c.d_state},
        {"dt_proj", c.dt_rank, c.d_inner},
        {"out_proj", c.d_inner, c.d_model},
        {"lm_head", c.d_model, c.vocab_padded},
    };
    const int n = (int)(sizeof products / sizeof products[0]);
    if (strcmp(which, "both") == 0 || strcmp(which, "onednn") == 0) run(MATMUL_ONEDNN, products, n, T, reps);
    if (strcmp(which, "both") == 0 || strcmp(which, "openblas") == 0) run(MATMUL_OPENBLAS, products, n, T, reps);
    return 0;
}
