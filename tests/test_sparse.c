// The packed formats and their kernels (sparse/packed.h) against the plain C reference:
// every format at odd sizes (rows and columns not a multiple of the vector width, empty
// rows, an all-zero matrix, a fully dense one), decode batches 1..16 and prompts of
// several lengths, the same bits for 1 and 2 threads, pack/unpack round trips, and the
// errors of packing and of validating arrays filled by hand.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "sparse/lowp.h"
#include "sparse/packed.h"

// w (rows, cols) with about `density` of its weights nonzero, row 1 empty when rows > 2,
// and keep the mask of its nonzeros. two_four: at most two of every four columns.
static void random_matrix(float *w, int rows, int cols, double density, bool two_four, Rng *rng) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            float v = 2.0f * rng_uniform(rng) - 1.0f;
            bool on = rng_uniform_double(rng) < density;
            if (two_four) on = (c % 4) == (r % 4) || (c % 4) == ((r + 1 + c / 4) % 4);
            if (two_four && rng_uniform_double(rng) < 0.2) on = false;  // groups with one or no value
            if (rows > 2 && r == 1) on = false;
            w[(size_t)r * cols + c] = on ? v : 0.0f;
        }
}

// max over outputs of |y - ref| / (sum_c |w| |x| + tiny): the error relative to the dot's scale.
static double relative_error(const float *y, const float *ref, const float *w, const float *x, int n_out, int rows,
                             int cols) {
    double worst = 0.0;
    for (int i = 0; i < n_out; i++) {
        int b = i / rows, r = i % rows;
        double scale = 1e-30;
        for (int c = 0; c < cols; c++) scale += fabs(w[(size_t)r * cols + c]) * fabs(x[(size_t)b * cols + c]);
        double e = fabs((double)y[i] - (double)ref[i]) / scale;
        if (e > worst || isnan(e)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static void check_case(const char *label, int rows, int cols, double density, bool two_four, Rng *rng) {
    float *w = malloc(sizeof(float) * ((size_t)rows * cols + 1));
    random_matrix(w, rows, cols, density, two_four, rng);
    enum { MAX_T = 150 };
    float *x = malloc(sizeof(float) * ((size_t)MAX_T * cols + 1));
    for (size_t i = 0; i < (size_t)MAX_T * cols; i++) x[i] = 2.0f * rng_uniform(rng) - 1.0f;
    float *y = malloc(sizeof(float) * ((size_t)MAX_T * rows + 1)), *ref = malloc(sizeof(float) * ((size_t)MAX_T * rows + 1));
    float *y2 = malloc(sizeof(float) * ((size_t)MAX_T * rows + 1)), *back = malloc(sizeof(float) * ((size_t)rows * cols + 1));
    for (int f = 0; f < PACKED_N_FORMATS; f++) {
        if (f == PACKED_NM24 && !(two_four && cols % 4 == 0)) continue;
        PackedMatrix m;
        Error err;
        if (packed_matrix_pack(&m, (PackedFormat)f, w, NULL, rows, cols, &err) != 0) {
            check(false, "%s %s: pack: %s", label, packed_format_name(f), err.message);
            continue;
        }
        int rc = packed_matrix_validate(&m, &err);
        check(rc == 0, "%s %s: packed arrays validate%s%s", label, packed_format_name(f), rc ? ": " : "",
              rc ? err.message : "");
        packed_matrix_unpack(&m, back);
        check(memcmp(back, w, sizeof(float) * (size_t)rows * cols) == 0, "%s %s: unpack gives the matrix back", label,
              packed_format_name(f));
        double worst = 0.0, worst_prompt = 0.0;
        bool same_bits = true;
        for (int batch = 1; batch <= 16; batch++) {
            packed_matvec_reference(&m, x, ref, batch);
            omp_set_num_threads(2);
            packed_matvec(&m, x, y, batch);
            omp_set_num_threads(1);
            packed_matvec(&m, x, y2, batch);
            same_bits = same_bits && memcmp(y, y2, sizeof(float) * (size_t)batch * rows) == 0;
            double e = relative_error(y, ref, w, x, batch * rows, rows, cols);
            if (e > worst) worst = e;
        }
        // 17 and more: the blocked prompt kernel, in tiles of 64 tokens (65 and 150: a partial last tile).
        int lengths[] = {1, 7, 17, 64, 65, 150};
        for (int i = 0; i < 6; i++)
            for (int sparse = 0; sparse < 2; sparse++) {
                int T = lengths[i];
                packed_matmul_reference(&m, x, ref, T);
                omp_set_num_threads(2);
                packed_matmul_with(&m, x, y, T, sparse);
                omp_set_num_threads(1);
                packed_matmul_with(&m, x, y2, T, sparse);
                // sgemm (oneDNN) splits its sums by the thread count: only our kernels promise bits.
                if (sparse && f != PACKED_DENSE)
                    same_bits = same_bits && memcmp(y, y2, sizeof(float) * (size_t)T * rows) == 0;
                double e = relative_error(y, ref, w, x, T * rows, rows, cols);
                if (e > worst_prompt) worst_prompt = e;
            }
        check(worst < 1e-5, "%s %s: decode batch 1..16 matches the reference (max rel err %.2e)", label,
              packed_format_name(f), worst);
        check(worst_prompt < 1e-5, "%s %s: prompt T 1..150, sparse and unpacked, matches the reference (%.2e)", label,
              packed_format_name(f), worst_prompt);
        check(same_bits, "%s %s: 1 and 2 threads give the same bits", label, packed_format_name(f));
        packed_matrix_free(&m);
    }
    free(w), free(x), free(y), free(ref), free(y2), free(back);
}

static void check_errors(void) {
    float w[8] = {1, 2, 3, 0, 0, 0, 0, 4};  // (2, 4): row 0 keeps three of four
    PackedMatrix m;
    Error err;
    check_error("2:4 of a group keeping three", packed_matrix_pack(&m, PACKED_NM24, w, NULL, 2, 4, &err), &err, "2:4",
                "more than two", NULL);
    check_error("2:4 of 6 columns", packed_matrix_pack(&m, PACKED_NM24, w, NULL, 1, 6, &err), &err, "6 columns",
                "multiple of 4", NULL);
    uint8_t keep[8] = {1, 0, 0, 0, 0, 0, 0, 1};
    check(packed_matrix_pack(&m, PACKED_NM24, w, keep, 2, 4, &err) == 0 && m.nnz == 2,
          "2:4 from a keep mask drops the weights it prunes (nnz %zu)", m.nnz);
    packed_matrix_free(&m);

    packed_matrix_alloc(&m, PACKED_CSR16, 2, 10, 3);
    m.row_start[1] = 2, m.row_start[2] = 3;
    m.col_index[0] = 4, m.col_index[1] = 2, m.col_index[2] = 1;
    check_error("csr16 with decreasing columns", packed_matrix_validate(&m, &err), &err, "row 0", "not increasing", NULL);
    m.col_index[1] = 12;
    check_error("csr16 with a column out of range", packed_matrix_validate(&m, &err), &err, "out of range", NULL);
    m.row_start[2] = 2;
    check_error("csr16 whose row_start does not end at nnz", packed_matrix_validate(&m, &err), &err, "row_start[2]",
                "nnz 3", NULL);
    packed_matrix_free(&m);

    packed_matrix_alloc(&m, PACKED_BITMAP, 1, 10, 2);
    m.row_start[1] = 2;
    m.bitmap[0] = 0x07;
    check_error("bitmap whose bits disagree with row_start", packed_matrix_validate(&m, &err), &err, "3 bits set",
                "2 values", NULL);
    m.bitmap[0] = 0x01, m.bitmap[1] = 0x08;  // column 11 of 10
    check_error("bitmap with a bit past the last column", packed_matrix_validate(&m, &err), &err, "past column 10",
                NULL);
    packed_matrix_free(&m);

    packed_matrix_alloc(&m, PACKED_NM24, 1, 8, 0);
    m.nm_index[1] = 0x01;  // i0 = 1, i1 = 0
    check_error("2:4 with decreasing indices", packed_matrix_validate(&m, &err), &err, "index byte 1", NULL);
    packed_matrix_free(&m);
}

// The low-precision dense rows (sparse/lowp.h): conversion error within its bound, the
// kernels against the reference on the same rounded rows, 1 vs 2 threads, prompts.
static void check_lowp(const char *label, int rows, int cols, double density, Rng *rng) {
    enum { MAX_T = 40 };
    float *w = malloc(sizeof(float) * ((size_t)rows * cols + 1)), *row = malloc(sizeof(float) * ((size_t)cols + 1));
    float *x = malloc(sizeof(float) * ((size_t)MAX_T * cols + 1)), *dq = malloc(sizeof(float) * ((size_t)rows * cols + 1));
    float *y = malloc(sizeof(float) * ((size_t)MAX_T * rows + 1)), *y2 = malloc(sizeof(float) * ((size_t)MAX_T * rows + 1));
    float *ref = malloc(sizeof(float) * ((size_t)MAX_T * rows + 1));
    random_matrix(w, rows, cols, density, false, rng);
    for (int c = 0; c < cols && rows > 0; c++) w[c] *= 1000.0f;  // row 0 on another scale than the others
    for (size_t i = 0; i < (size_t)MAX_T * cols; i++) x[i] = 2.0f * rng_uniform(rng) - 1.0f;
    for (int f = LOWP_BF16; f <= LOWP_INT8; f++) {
        LowpMatrix m;
        lowp_matrix_from_f32(&m, (LowpFormat)f, w, rows, cols);
        const char *name = lowp_format_name((LowpFormat)f);
        check(lowp_bytes((LowpFormat)f, rows, cols) == (size_t)rows * cols * (f == LOWP_BF16 ? 2 : 1) +
                                                          (f == LOWP_INT8 ? 4 * (size_t)rows : 0),
              "%s %s: bytes", label, name);
        // bf16 rounds to 8 significant bits (half an ulp: at most 2^-8 relative); int8 to half a
        // step of max |row| / 127.
        bool bounded = true;
        for (int r = 0; r < rows; r++) {
            lowp_matrix_row(&m, r, row);
            memcpy(dq + (size_t)r * cols, row, sizeof(float) * (size_t)cols);
            float top = 0.0f;
            for (int c = 0; c < cols; c++) top = fmaxf(top, fabsf(w[(size_t)r * cols + c]));
            for (int c = 0; c < cols; c++) {
                double e = fabs((double)row[c] - w[(size_t)r * cols + c]);
                double bound = f == LOWP_BF16 ? fabs(w[(size_t)r * cols + c]) / 256.0 : top / 254.0 * (1 + 1e-6);
                bounded = bounded && e <= bound && (w[(size_t)r * cols + c] != 0.0f || row[c] == 0.0f);
            }
        }
        check(bounded, "%s %s: every weight within the rounding bound, zeros stay zero", label, name);
        double worst = 0.0;
        bool same_bits = true;
        for (int batch = 1; batch <= 16; batch++) {
            lowp_matvec_reference(&m, x, ref, batch);
            omp_set_num_threads(2);
            lowp_matvec(&m, x, y, batch);
            omp_set_num_threads(1);
            lowp_matvec(&m, x, y2, batch);
            same_bits = same_bits && memcmp(y, y2, sizeof(float) * (size_t)batch * rows) == 0;
            double e = relative_error(y, ref, dq, x, batch * rows, rows, cols);
            worst = e > worst ? e : worst;
        }
        omp_set_num_threads(2);
        lowp_matvec_reference(&m, x, ref, MAX_T);
        lowp_matmul(&m, x, y, MAX_T);
        double prompt = relative_error(y, ref, dq, x, MAX_T * rows, rows, cols);
        check(worst < 1e-5, "%s %s: decode batch 1..16 matches the reference (max rel err %.2e)", label, name, worst);
        check(prompt < 1e-5, "%s %s: %d rows through blocks + sgemm match the reference (%.2e)", label, name, MAX_T,
              prompt);
        check(same_bits, "%s %s: 1 and 2 threads give the same bits", label, name);
        lowp_matrix_free(&m);
    }
    check(lowp_format_parse("int8") == LOWP_INT8 && lowp_format_parse("fp16") == -1, "lowp format names parse");
    free(w), free(row), free(x), free(dq), free(y), free(y2), free(ref);
}

int main(void) {
    Rng rng;
    rng_seed(&rng, 11);
    check_case("37x45 at 30%", 37, 45, 0.3, false, &rng);
    check_case("33x129 at 60%", 33, 129, 0.6, false, &rng);
    check_case("19x100 2:4", 19, 100, 0.5, true, &rng);
    check_case("64x96 2:4", 64, 96, 0.5, true, &rng);
    check_case("9x70 all zero", 9, 70, 0.0, false, &rng);
    check_case("13x67 fully dense", 13, 67, 1.0, false, &rng);
    check_case("5x3 at 50%", 5, 3, 0.5, false, &rng);
    check_case("40x200 at 5%", 40, 200, 0.05, false, &rng);
    check_case("700x400 at 30%", 700, 400, 0.3, false, &rng);  // the prompt unpacks it in two blocks of rows
    check_lowp("37x45", 37, 45, 0.8, &rng);
    check_lowp("13x67", 13, 67, 1.0, &rng);
    check_lowp("9x70 all zero", 9, 70, 0.0, &rng);
    check_lowp("5x3", 5, 3, 1.0, &rng);
    check_lowp("300x1000", 300, 1000, 0.9, &rng);  // more rows than one block of the prompt's sgemm
    check_errors();
    return check_summary("packed sparse formats and kernels");
}
