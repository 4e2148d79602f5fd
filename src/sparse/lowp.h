// Dense matrices held in less than fp32, for the tied embedding/head of an inference
// model: bfloat16 (the top 16 bits of each float, rounded to nearest even), or int8 with
// one fp32 scale per row (w[r, c] ~ scale[r] * q[r, c], scale[r] = max |w[r, .]| / 127,
// q rounded to nearest). Either changes results (docs/SPARSE.md gives the measured error of
// the logits); they exist for decode, which reads the whole head at every token and so
// is bound by its bytes. Kernels are threaded over rows, each output summed by one thread
// in a fixed order (the same bits for any thread count).
#ifndef MP_SPARSE_LOWP_H
#define MP_SPARSE_LOWP_H

#include <stddef.h>
#include <stdint.h>

typedef enum LowpFormat { LOWP_F32, LOWP_BF16, LOWP_INT8, LOWP_N_FORMATS } LowpFormat;

typedef struct LowpMatrix {
    LowpFormat format;
    int rows, cols;
    float *f32;               // F32: rows * cols (owned)
    uint16_t *bf16;           // BF16: rows * cols (owned)
    int8_t *i8;               // INT8: rows * cols (owned)
    float *scale;             // INT8: rows (owned)
} LowpMatrix;

// "fp32", "bf16", "int8"; lowp_format_parse returns -1 for another name.
const char *lowp_format_name(LowpFormat format);
int lowp_format_parse(const char *name);

uint16_t lowp_float_to_bf16(float f);
float lowp_bf16_to_float(uint16_t b);

// Allocates the (zeroed) arrays of format for (rows, cols): for a file reader to fill.
void lowp_matrix_alloc(LowpMatrix *m, LowpFormat format, int rows, int cols);
// m = w (rows, cols) converted to format.
void lowp_matrix_from_f32(LowpMatrix *m, LowpFormat format, const float *w, int rows, int cols);
void lowp_matrix_free(LowpMatrix *m);
// Bytes of the arrays (what a product reads).
size_t lowp_bytes(LowpFormat format, int rows, int cols);
// out (cols) = row r as floats.
void lowp_matrix_row(const LowpMatrix *m, int r, float *out);

// y (batch, rows) = x (batch, cols) @ W^T, any batch >= 1: each row is read once from
// memory and multiplied by the batch from cache. For many rows of x (a prompt scored at
// every position) lowp_matmul converts blocks of rows to fp32 and runs sgemm.
void lowp_matvec(const LowpMatrix *m, const float *x, float *y, int batch);
void lowp_matmul(const LowpMatrix *m, const float *X, float *Y, int T);
// Batch 1 for rows [r0, r1) only, on the calling thread (see packed_matvec_rows): the
// same bits per row as lowp_matvec.
void lowp_matvec_rows(const LowpMatrix *m, const float *x, float *y, int r0, int r1);
// The plain reference (one thread, the obvious loop, double sums), for the tests.
void lowp_matvec_reference(const LowpMatrix *m, const float *x, float *y, int batch);

#endif
