// The packed formats side by side (sparse/packed.h), to choose a format per tensor by
// measurement: for each linear shape of mamba-130m and mamba-370m and each density, the
// decode product at batch 1 and 8 and the prompt product at 512 rows, in every format
// that can hold the matrix, against the dense kernel, medians of --repeats runs. Decode
// cycles through enough copies of the matrix (--working-set MB) that they come from
// memory, as in a real decode step; GB/s counts the bytes of the format read. The dense
// matvec through oneDNN (matmul_forward with one row, the old decode path) and a memcpy
// of the working set by all threads (GB/s read + written, the STREAM convention) are measured in the
// same run. Prints Markdown tables.
//
//   bench_sparse [--threads N] [--repeats 5] [--working-set 192] [--quick] [--prompt-only]
//                [--clock wall|cpu] [--shape 130m|370m|'130m in_proj']
// --prompt-only: the prompt columns only (decode left blank).
// The dense row's last column is the same weights stored as a full bitmap through unpack
// + sgemm in blocks of rows, timed in turn with dense: a check of the dense baseline.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"      // defines: matmul_forward
#include "core/error.h"        // defines: xmalloc
#include "core/rng.h"          // defines: rng_seed, rng_uniform
#include "core/timer.h"        // defines: now_seconds, process_cpu_seconds
#include "sparse/packed.h"     // defines: packed_matrix_pack, packed_matvec, packed_matmul_with

typedef struct Shape {
    const char *name;
    int rows, cols;
} Shape;

static const Shape shapes[] = {
    {"130m in_proj", 3072, 768}, {"130m x_proj", 80, 1536},   {"130m dt_proj", 1536, 48},
    {"130m out_proj", 768, 1536}, {"370m in_proj", 4096, 1024}, {"370m x_proj", 96, 2048},
    {"370m dt_proj", 2048, 64},  {"370m out_proj", 1024, 2048},
};

// The clock of the timings: wall time, or with --clock cpu the process's CPU time (core/timer.h).
static bool use_cpu_clock = false;

static double clock_seconds(void) { return use_cpu_clock ? process_cpu_seconds() : now_seconds(); }

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct Options {
    int threads, repeats, working_set_mb, quick, prompt_only;
} Options;

// Seconds per product, decode at batch over the copies in turn (median of repeats passes).
static double time_decode(PackedMatrix *copies, int n_copies, const float *x, float *y, int batch, int repeats,
                          int use_onednn) {
    double t[64];
    for (int r = -1; r < repeats; r++) {
        double start = clock_seconds();
        for (int i = 0; i < n_copies; i++) {
            if (use_onednn)
                matmul_forward(y, x, copies[i].values, batch, copies[i].cols, copies[i].rows);
            else
                packed_matvec(&copies[i], x, y, batch);
        }
        if (r >= 0) t[r] = (clock_seconds() - start) / n_copies;
    }
    return median(t, repeats);
}

// The prompt of a and b in turn, repeat by repeat (sparse_a, sparse_b as in time_prompt):
// their medians in *ta and *tb, so that the machine's drift hits both alike.
static void time_prompt_pair(const PackedMatrix *a, bool sparse_a, const PackedMatrix *b, bool sparse_b,
                             const float *X, float *Y, int T, int repeats, double *ta, double *tb) {
    double t_a[64], t_b[64];
    for (int r = -1; r < repeats; r++) {
        double start = clock_seconds();
        packed_matmul_with(a, X, Y, T, sparse_a);
        double mid = clock_seconds();
        packed_matmul_with(b, X, Y, T, sparse_b);
        if (r >= 0) t_a[r] = mid - start, t_b[r] = clock_seconds() - mid;
    }
    *ta = median(t_a, repeats), *tb = median(t_b, repeats);
}

// dst = a copy of src's arrays, in memory of its own.
static void copy_matrix(PackedMatrix *dst, const PackedMatrix *src) {
    packed_matrix_alloc(dst, src->format, src->rows, src->cols, src->nnz);
    size_t r = (size_t)src->rows, c = (size_t)src->cols;
    size_t n_values = src->format == PACKED_DENSE ? r * c : src->format == PACKED_NM24 ? r * (c / 4) * 2 : src->nnz;
    memcpy(dst->values, src->values, sizeof(float) * n_values);
    dst->nnz = src->nnz;
    if (src->bitmap) memcpy(dst->bitmap, src->bitmap, r * (size_t)src->bitmap_stride);
    if (src->row_start) memcpy(dst->row_start, src->row_start, sizeof(uint32_t) * (r + 1));
    if (src->col_index) memcpy(dst->col_index, src->col_index, sizeof(uint16_t) * src->nnz);
    if (src->nm_index) memcpy(dst->nm_index, src->nm_index, r * (c / 4));
}

static double copy_bandwidth(size_t bytes, int repeats) {
    char *a = xmalloc(bytes), *b = xmalloc(bytes);
    memset(a, 1, bytes), memset(b, 2, bytes);
    double t[64];
    for (int r = -1; r < repeats; r++) {
        double start = now_seconds();
        const size_t chunk = 1u << 20, n_chunks = (bytes + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n_chunks; i++) {
            size_t at = i * chunk, len = at + chunk <= bytes ? chunk : bytes - at;
            memcpy(b + at, a + at, len);
        }
        if (r >= 0) t[r] = now_seconds() - start;
    }
    free(a), free(b);
    return 2.0 * (double)bytes / median(t, repeats) / 1e9;
}

int main(int argc, char **argv) {
    Options o = {.threads = 0, .repeats = 5, .working_set_mb = 192, .quick = 0};
    const char *only_shape = NULL;  // --shape 130m|370m: the shapes whose name starts so
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--clock") == 0 || strcmp(argv[i], "--shape") == 0) && i + 1 < argc) {
            if (strcmp(argv[i], "--shape") == 0) {
                only_shape = argv[++i];
                continue;
            }
            const char *value = argv[++i];
            if (strcmp(value, "wall") != 0 && strcmp(value, "cpu") != 0) {
                fprintf(stderr, "bench_sparse: --clock expects wall or cpu, got '%s'\n", value);
                return 2;
            }
            use_cpu_clock = strcmp(value, "cpu") == 0;
            continue;
        }
        if (strcmp(argv[i], "--quick") == 0 || strcmp(argv[i], "--prompt-only") == 0) {
            *(strcmp(argv[i], "--quick") == 0 ? &o.quick : &o.prompt_only) = 1;
            continue;
        }
        int *target = strcmp(argv[i], "--threads") == 0       ? &o.threads
                      : strcmp(argv[i], "--repeats") == 0     ? &o.repeats
                      : strcmp(argv[i], "--working-set") == 0 ? &o.working_set_mb
                                                              : NULL;
        if (!target || i + 1 >= argc || atoi(argv[i + 1]) < 1) {
            fprintf(stderr, "bench_sparse: expected --threads N, --repeats N (1..63), --working-set MB, --quick, "
                    "--prompt-only, --clock wall|cpu or --shape NAME, got '%s'\n",
                    argv[i]);
            return 2;
        }
        *target = atoi(argv[++i]);
    }
    if (o.repeats > 63) o.repeats = 63;
    if (o.threads > 0) omp_set_num_threads(o.threads);
    const size_t working_set = (size_t)o.working_set_mb << 20;
    printf("bench_sparse: %d threads, %d repeats, decode working set %d MB, prompt 512 rows; medians of %s\n\n",
           omp_get_max_threads(), o.repeats, o.working_set_mb, use_cpu_clock ? "process CPU time" : "wall time");
    printf("copy bandwidth (memcpy of the working set on every thread, read + written): %.1f GB/s\n\n",
           copy_bandwidth(working_set, o.repeats));
    printf("| shape | density | format | B/weight | decode 1 GB/s | x dense | decode 8 GB/s | x dense | prompt ms | x dense "
           "| prompt unpack+sgemm x dense |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    const double densities[] = {1.0, 0.9, 0.7, 0.5, 0.3, 0.2, 0.1, -1.0};  // -1: 2:4
    const int n_densities = 8, T = 512;
    Rng rng;
    rng_seed(&rng, 5);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const Shape *sh = &shapes[s];
        if (only_shape && strncmp(sh->name, only_shape, strlen(only_shape)) != 0) continue;
        const int rows = sh->rows, cols = sh->cols;
        const size_t size = (size_t)rows * cols;
        float *w = xmalloc(sizeof(float) * size), *X = xmalloc(sizeof(float) * (size_t)T * cols);
        float *Y = xmalloc(sizeof(float) * (size_t)T * rows);
        for (size_t i = 0; i < (size_t)T * cols; i++) X[i] = 2.0f * rng_uniform(&rng) - 1.0f;
        int n_copies = (int)((working_set + 4 * size - 1) / (4 * size));
        if (n_copies > 4096) n_copies = 4096;
        PackedMatrix *copies = xmalloc(sizeof(PackedMatrix) * (size_t)n_copies);
        double dense_t1 = 0, dense_t8 = 0, dense_prompt = 0;
        for (int di = 0; di < n_densities; di++) {
            const double density = densities[di];
            if (o.quick && (di == 1 || di == 5)) continue;  // --quick: 1.0, 0.7, 0.5, 0.3, 0.1, 2:4
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) {
                    float v = 2.0f * rng_uniform(&rng) - 1.0f;
                    bool on = density < 0 ? (c % 4 == (r + c / 4) % 4 || c % 4 == (r + c / 4 + 2) % 4)
                                          : rng_uniform_double(&rng) < density;
                    w[(size_t)r * cols + c] = on ? (v == 0.0f ? 0.5f : v) : 0.0f;
                }
            for (int f = 0; f < PACKED_N_FORMATS; f++) {
                if (density == 1.0 && f != PACKED_DENSE) continue;
                if (f == PACKED_NM24 && density >= 0) continue;
                if (f == PACKED_DENSE && density != 1.0) continue;  // dense costs the same at any density
                Error err;
                if (packed_matrix_pack(&copies[0], (PackedFormat)f, w, NULL, rows, cols, &err) != 0) {
                    fprintf(stderr, "bench_sparse: %s: %s\n", sh->name, err.message);
                    return 1;
                }
                const int n_timed = o.prompt_only ? 1 : n_copies;
                for (int i = 1; i < n_timed; i++) copy_matrix(&copies[i], &copies[0]);
                size_t bytes = packed_bytes((PackedFormat)f, rows, cols, copies[0].nnz);
                double t1 = o.prompt_only ? 0.0 : time_decode(copies, n_copies, X, Y, 1, o.repeats, 0);
                double t8 = o.prompt_only ? 0.0 : time_decode(copies, n_copies, X, Y, 8, o.repeats, 0);
                double tp, tu;
                if (f == PACKED_DENSE) {
                    // The baseline beside the same weights stored as a full bitmap and run
                    // by unpack + sgemm in blocks of rows: whether sgemm of the whole
                    // product is the fastest dense way (README, "Running a pruned model").
                    PackedMatrix full;
                    if (packed_matrix_pack(&full, PACKED_BITMAP, w, NULL, rows, cols, &err) != 0) {
                        fprintf(stderr, "bench_sparse: %s: %s\n", sh->name, err.message);
                        return 1;
                    }
                    time_prompt_pair(&copies[0], false, &full, false, X, Y, T, o.repeats, &tp, &tu);
                    packed_matrix_free(&full);
                } else {
                    time_prompt_pair(&copies[0], true, &copies[0], false, X, Y, T, o.repeats, &tp, &tu);
                }
                if (f == PACKED_DENSE) dense_t1 = t1, dense_t8 = t8, dense_prompt = tp;
                if (f == PACKED_DENSE && !o.prompt_only) {
                    double t1_onednn = time_decode(copies, n_copies, X, Y, 1, o.repeats, 1);
                    double t8_onednn = time_decode(copies, n_copies, X, Y, 8, o.repeats, 1);
                    printf("| %s | 1.00 | dense via oneDNN sgemm | 4.00 | %.1f | %.2f | %.1f | %.2f | | | |\n", sh->name,
                           bytes / t1_onednn / 1e9, dense_t1 / t1_onednn, bytes / t8_onednn / 1e9, dense_t8 / t8_onednn);
                }
                char dlabel[16];
                if (density < 0)
                    snprintf(dlabel, sizeof dlabel, "2:4");
                else
                    snprintf(dlabel, sizeof dlabel, "%.2f", density);
                if (o.prompt_only)
                    printf("| %s | %s | %s | %.2f | | | | | %.2f | %.2f | %.2f |\n", sh->name, dlabel,
                           packed_format_name((PackedFormat)f), (double)bytes / (double)size, tp * 1e3,
                           dense_prompt / tp, dense_prompt / tu);
                else
                    printf("| %s | %s | %s | %.2f | %.1f | %.2f | %.1f | %.2f | %.2f | %.2f | %.2f |\n", sh->name,
                           dlabel, packed_format_name((PackedFormat)f), (double)bytes / (double)size, bytes / t1 / 1e9,
                           dense_t1 / t1, bytes / t8 / 1e9, dense_t8 / t8, tp * 1e3, dense_prompt / tp,
                           dense_prompt / tu);
                fflush(stdout);
                for (int i = 0; i < n_timed; i++) packed_matrix_free(&copies[i]);
            }
        }
        free(copies), free(w), free(X), free(Y);
    }
    return 0;
}
