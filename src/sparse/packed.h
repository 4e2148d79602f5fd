// Packed weight matrices for inference: a (rows, cols) float matrix stored dense, as a
// per-row bitmap with the kept values packed, as CSR with 16-bit column indices, or as
// 2:4 (two values and one index byte per group of four columns), and the kernels that
// multiply by them. No model knowledge here; docs/SPARSE.md has the measurements that
// pick a format (packed_choose_format).
//
// Kernels are threaded over output rows with OpenMP, and every output element is summed
// by one thread in an order fixed by the matrix alone: the results are the same, to the
// bit, for any thread count. Each fast kernel (AVX-512 or AVX2, chosen at compile time)
// has a plain C reference beside it (packed_*_reference) that the tests compare against.
#ifndef MP_SPARSE_PACKED_H
#define MP_SPARSE_PACKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum PackedFormat {
    PACKED_DENSE,             // values: rows * cols, row-major
    PACKED_BITMAP,            // bitmap + row_start + values (the kept values of each row, in column order)
    PACKED_CSR16,             // row_start + col_index (uint16) + values
    PACKED_NM24,              // 2:4: values (rows, cols/4, 2) + nm_index (rows, cols/4)
    PACKED_N_FORMATS,
} PackedFormat;

// Values arrays are allocated with this many zero floats past their last value, so that
// vector loads of a row's tail may read a little further (never used in a result).
#define PACKED_VALUE_PAD 16

// The arrays of each format (every array is owned by the matrix and 64-byte aligned):
//   DENSE   values (rows * cols)
//   BITMAP  bitmap (rows * bitmap_stride bytes): bit (c % 8) of byte (c / 8) of row r is 1 when
//           w[r, c] is stored; bitmap_stride = ceil(cols / 64) * 8, bits past cols are 0.
//           row_start (rows + 1): row r's values are values[row_start[r] .. row_start[r+1]).
//           values (nnz + PACKED_VALUE_PAD).
//   CSR16   row_start (rows + 1), col_index (nnz), values (nnz + PACKED_VALUE_PAD); cols <= 65536,
//           column indices strictly increasing within a row.
//   NM24    cols % 4 == 0. For row r and group g (columns 4g .. 4g+3): values[(r * cols/4 + g) * 2 + k],
//           k = 0, 1, the two kept values in column order (0 where the group keeps fewer than two);
//           nm_index[r * cols/4 + g] = i0 | i1 << 2, their columns 4g + i0 and 4g + i1 (i0 < i1,
//           bits 4-7 zero). values has rows * cols/2 + PACKED_VALUE_PAD floats.
// nnz counts the stored values (for NM24: the nonzero ones among them).
typedef struct PackedMatrix {
    PackedFormat format;
    int rows, cols;
    size_t nnz;
    int bitmap_stride;        // bytes per bitmap row (BITMAP only)
    float *values;            // (owned) see above
    uint8_t *bitmap;          // (owned) BITMAP only, else NULL
    uint32_t *row_start;      // (owned) BITMAP and CSR16, else NULL
    uint16_t *col_index;      // (owned) CSR16 only, else NULL
    uint8_t *nm_index;        // (owned) NM24 only, else NULL
} PackedMatrix;

// "dense", "bitmap", "csr16", "2:4".
const char *packed_format_name(PackedFormat format);
// Bytes of the arrays of format for this shape and nnz (without the padding): what one
// decode step reads. For NM24 nnz is not needed.
size_t packed_bytes(PackedFormat format, int rows, int cols, size_t nnz);

// Packs w (rows, cols) in format, storing w[i] where keep[i] != 0 (keep NULL: where
// w[i] != 0). Weights not stored count as zero. Fails (with a message naming why) when
// the format cannot hold the matrix: CSR16 with cols > 65536, NM24 with cols % 4 != 0 or
// a group of four with more than two kept weights, or nnz >= 2^32.
int packed_matrix_pack(PackedMatrix *m, PackedFormat format, const float *w, const uint8_t *keep, int rows,
                       int cols, Error *err);
// Allocates the (zeroed) arrays of format for this shape and nnz, to be filled directly
// by a file reader; then call packed_matrix_validate. nnz is ignored for DENSE and NM24.
void packed_matrix_alloc(PackedMatrix *m, PackedFormat format, int rows, int cols, size_t nnz);
// Checks that filled arrays are consistent (row_start monotone from 0 to nnz, bitmap
// popcounts equal the row lengths and no bit past cols, column indices in range and
// increasing, 2:4 indices increasing and bits 4-7 zero). The message names the array.
int packed_matrix_validate(const PackedMatrix *m, Error *err);
void packed_matrix_free(PackedMatrix *m);
// w (rows, cols) = the matrix, zeros where nothing is stored.
void packed_matrix_unpack(const PackedMatrix *m, float *w);
// Fraction of weights stored, nnz / (rows * cols) (for NM24: nonzero values).
double packed_density(const PackedMatrix *m);

// Whether keep (or, when NULL, the nonzeros of w) has at most two of every group of four
// columns, with cols % 4 == 0.
bool packed_is_2_4(const float *w, const uint8_t *keep, int rows, int cols);

// The format the measured rule of docs/SPARSE.md picks for a matrix of this shape with
// nnz stored weights (is_2_4: the pattern fits NM24). DENSE where no sparse kernel pays.
PackedFormat packed_choose_format(int rows, int cols, size_t nnz, bool is_2_4);

// ---- kernels; y, x never alias the matrix ----
// Decode: y (batch, rows) = x (batch, cols) @ W^T for batch 1..16 (any batch >= 1 works).
void packed_matvec(const PackedMatrix *m, const float *x, float *y, int batch);
// Decode at batch 1 for rows [r0, r1) only, on the calling thread (no OpenMP of its own):
// for a caller that shares the rows of several products among its threads in one parallel
// region (infer_step). Each y[r] gets the same bits as from packed_matvec at batch 1.
void packed_matvec_rows(const PackedMatrix *m, const float *x, float *y, int r0, int r1);
// Bytes stored for rows [r0, r1), as packed_bytes counts a matrix of those rows (the part
// of a decode step's traffic they are), to share rows among threads by the work they hold
// rather than by their count. Each range counts its own row_start entry past its end, so
// the shares of a split add up to a few bytes more than the whole.
size_t packed_rows_bytes(const PackedMatrix *m, int r0, int r1);
// Prompt: Y (T, rows) = X (T, cols) @ W^T for many rows T. Dense goes to sgemm; a sparse
// format runs its own kernel where packed_prompt_sparse_pays says so, and otherwise
// unpacks a dense copy of W for the call and runs sgemm.
void packed_matmul(const PackedMatrix *m, const float *X, float *Y, int T);
// Whether the sparse batch kernel beats expanding each row in cache (batches 2-16).
bool packed_batch_sparse_pays(const PackedMatrix *m);
// Whether the sparse prompt kernel beats unpack + sgemm for this matrix (docs/SPARSE.md).
bool packed_prompt_sparse_pays(const PackedMatrix *m);
// packed_matmul with the choice forced: sparse true runs the format's own kernel.
void packed_matmul_with(const PackedMatrix *m, const float *X, float *Y, int T, bool sparse);

// Plain C references of both kernels (one thread, the obvious loops), for the tests.
void packed_matvec_reference(const PackedMatrix *m, const float *x, float *y, int batch);
void packed_matmul_reference(const PackedMatrix *m, const float *X, float *Y, int T);

#endif
