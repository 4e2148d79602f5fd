// The packed formats of sparse/packed.h: packing a dense matrix, allocating and checking
// arrays filled by a reader, unpacking, sizes, the format rule, and the plain C reference
// kernels (one thread, the obvious loops) that the fast kernels in kernels.c are tested
// against.
#include "sparse/packed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// 64-byte aligned, zeroed; aborts on out-of-memory like xmalloc.
static void *alloc_zeroed(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory allocating %zu bytes\n", __FILE__, __LINE__, rounded);
        abort();
    }
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

const char *packed_format_name(PackedFormat format) {
    switch (format) {
    case PACKED_DENSE: return "dense";
    case PACKED_BITMAP: return "bitmap";
    case PACKED_CSR16: return "csr16";
    case PACKED_NM24: return "2:4";
    default: return "unknown";
    }
}

static int bitmap_stride_of(int cols) { return (cols + 63) / 64 * 8; }

size_t packed_bytes(PackedFormat format, int rows, int cols, size_t nnz) {
    size_t r = (size_t)rows, c = (size_t)cols;
    switch (format) {
    case PACKED_DENSE: return 4 * r * c;
    case PACKED_BITMAP: return r * (size_t)bitmap_stride_of(cols) + 4 * (r + 1) + 4 * nnz;
    case PACKED_CSR16: return 4 * (r + 1) + 6 * nnz;
    case PACKED_NM24: return r * (c / 4) * (2 * 4 + 1);
    default: return 0;
    }
}

size_t packed_rows_bytes(const PackedMatrix *m, int r0, int r1) {
    if (r1 <= r0) return 0;
    const size_t stored = m->row_start ? m->row_start[r1] - m->row_start[r0] : 0;
    return packed_bytes(m->format, r1 - r0, m->cols, stored);
}

double packed_density(const PackedMatrix *m) {
    double total = (double)m->rows * (double)m->cols;
    return total > 0 ? (double)m->nnz / total : 0.0;
}

void packed_matrix_alloc(PackedMatrix *m, PackedFormat format, int rows, int cols, size_t nnz) {
    memset(m, 0, sizeof *m);
    m->format = format;
    m->rows = rows;
    m->cols = cols;
    m->nnz = nnz;
    size_t r = (size_t)rows, c = (size_t)cols;
    switch (format) {
    case PACKED_DENSE:
        m->nnz = r * c;
        m->values = alloc_zeroed(sizeof(float) * (r * c + PACKED_VALUE_PAD));
        break;
    case PACKED_BITMAP:
        m->bitmap_stride = bitmap_stride_of(cols);
        m->bitmap = alloc_zeroed(r * (size_t)m->bitmap_stride);
        m->row_start = alloc_zeroed(sizeof(uint32_t) * (r + 1));
        m->values = alloc_zeroed(sizeof(float) * (nnz + PACKED_VALUE_PAD));
        break;
    case PACKED_CSR16:
        m->row_start = alloc_zeroed(sizeof(uint32_t) * (r + 1));
        m->col_index = alloc_zeroed(sizeof(uint16_t) * (nnz + 1));
        m->values = alloc_zeroed(sizeof(float) * (nnz + PACKED_VALUE_PAD));
        break;
    case PACKED_NM24:
        m->values = alloc_zeroed(sizeof(float) * (r * (c / 4) * 2 + PACKED_VALUE_PAD));
        m->nm_index = alloc_zeroed(r * (c / 4) + 1);
        memset(m->nm_index, 0x04, r * (c / 4));  // columns 0 and 1 of each group, with zero values
        break;
    default: break;
    }
}

void packed_matrix_free(PackedMatrix *m) {
    free(m->values);
    free(m->bitmap);
    free(m->row_start);
    free(m->col_index);
    free(m->nm_index);
    memset(m, 0, sizeof *m);
}

static bool kept(const float *w, const uint8_t *keep, size_t i) { return keep ? keep[i] != 0 : w[i] != 0.0f; }

bool packed_is_2_4(const float *w, const uint8_t *keep, int rows, int cols) {
    if (cols % 4 != 0) return false;
    for (size_t g = 0; g < (size_t)rows * (size_t)cols / 4; g++) {
        int n = 0;
        for (int k = 0; k < 4; k++) n += kept(w, keep, 4 * g + (size_t)k);
        if (n > 2) return false;
    }
    return true;
}

int packed_matrix_pack(PackedMatrix *m, PackedFormat format, const float *w, const uint8_t *keep, int rows,
                       int cols, Error *err) {
    memset(m, 0, sizeof *m);
    if (rows < 0 || cols < 0) return error_set(err, "packed matrix: negative shape (%d, %d)", rows, cols);
    size_t nnz = 0;
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) nnz += kept(w, keep, i);
    if (format == PACKED_CSR16 && cols > 65536)
        return error_set(err, "csr16: %d columns do not fit 16-bit column indices (at most 65536)", cols);
    if ((format == PACKED_BITMAP || format == PACKED_CSR16) && nnz >= UINT32_MAX)
        return error_set(err, "%s: %zu stored values do not fit 32-bit row offsets", packed_format_name(format), nnz);
    if (format == PACKED_NM24 && cols % 4 != 0)
        return error_set(err, "2:4: %d columns are not a multiple of 4", cols);
    if (format == PACKED_NM24 && !packed_is_2_4(w, keep, rows, cols))
        return error_set(err, "2:4: a group of four columns keeps more than two weights");
    if (format < 0 || format >= PACKED_N_FORMATS) return error_set(err, "packed matrix: unknown format %d", format);
    packed_matrix_alloc(m, format, rows, cols, nnz);
    size_t at = 0;
    for (int r = 0; r < rows; r++) {
        const float *wr = w + (size_t)r * cols;
        const uint8_t *kr = keep ? keep + (size_t)r * cols : NULL;
        switch (format) {
        case PACKED_DENSE:
            for (int c = 0; c < cols; c++) m->values[(size_t)r * cols + c] = kept(wr, kr, (size_t)c) ? wr[c] : 0.0f;
            break;
        case PACKED_BITMAP:
            m->row_start[r] = (uint32_t)at;
            for (int c = 0; c < cols; c++)
                if (kept(wr, kr, (size_t)c)) {
                    m->bitmap[(size_t)r * m->bitmap_stride + c / 8] |= (uint8_t)(1u << (c % 8));
                    m->values[at++] = wr[c];
                }
            break;
        case PACKED_CSR16:
            m->row_start[r] = (uint32_t)at;
            for (int c = 0; c < cols; c++)
                if (kept(wr, kr, (size_t)c)) {
                    m->col_index[at] = (uint16_t)c;
                    m->values[at++] = wr[c];
                }
            break;
        case PACKED_NM24:
            for (int g = 0; g < cols / 4; g++) {
                size_t group = (size_t)r * (cols / 4) + g;
                int k = 0, index[2] = {0, 1};
                for (int i = 0; i < 4; i++)
                    if (kept(wr, kr, (size_t)(4 * g + i))) {
                        index[k] = i;
                        m->values[group * 2 + k++] = wr[4 * g + i];
                    }
                // A group with one value stores a zero in the other slot, at a column that
                // keeps i0 < i1: after the kept one, or before it when it is column 3.
                if (k == 1 && index[0] == 3) {
                    index[0] = 2, index[1] = 3;
                    m->values[group * 2 + 1] = m->values[group * 2];
                    m->values[group * 2] = 0.0f;
                } else if (k == 1) {
                    index[1] = index[0] + 1;
                }
                m->nm_index[group] = (uint8_t)(index[0] | index[1] << 2);
            }
            break;
        default: break;
        }
    }
    if (format == PACKED_BITMAP || format == PACKED_CSR16) m->row_start[rows] = (uint32_t)at;
    if (format == PACKED_NM24) {
        m->nnz = 0;
        for (size_t i = 0; i < (size_t)rows * (size_t)cols / 2; i++) m->nnz += m->values[i] != 0.0f;
    }
    return 0;
}

static int popcount8(uint8_t b) { return __builtin_popcount(b); }

int packed_matrix_validate(const PackedMatrix *m, Error *err) {
    const char *name = packed_format_name(m->format);
    if (m->rows < 0 || m->cols < 0) return error_set(err, "%s: negative shape (%d, %d)", name, m->rows, m->cols);
    if (!m->values) return error_set(err, "%s: no values array", name);
    size_t rows = (size_t)m->rows;
    switch (m->format) {
    case PACKED_DENSE: return 0;
    case PACKED_BITMAP:
    case PACKED_CSR16:
        if (!m->row_start || (m->format == PACKED_BITMAP ? !m->bitmap : !m->col_index))
            return error_set(err, "%s: missing index arrays", name);
        if (m->format == PACKED_CSR16 && m->cols > 65536)
            return error_set(err, "csr16: %d columns do not fit 16-bit column indices", m->cols);
        if (m->format == PACKED_BITMAP && m->bitmap_stride != bitmap_stride_of(m->cols))
            return error_set(err, "bitmap: row stride %d, expected %d for %d columns", m->bitmap_stride,
                             bitmap_stride_of(m->cols), m->cols);
        if (m->row_start[0] != 0) return error_set(err, "%s: row_start[0] is %u, expected 0", name, m->row_start[0]);
        if (m->row_start[rows] != m->nnz)
            return error_set(err, "%s: row_start[%zu] is %u, expected nnz %zu", name, rows, m->row_start[rows], m->nnz);
        for (size_t r = 0; r < rows; r++) {
            uint32_t begin = m->row_start[r], end = m->row_start[r + 1];
            if (end < begin || end > m->nnz)
                return error_set(err, "%s: row_start[%zu] = %u after row_start[%zu] = %u (nnz %zu)", name, r + 1, end, r,
                                 begin, m->nnz);
            if (m->format == PACKED_BITMAP) {
                const uint8_t *bits = m->bitmap + r * m->bitmap_stride;
                uint32_t count = 0;
                for (int b = 0; b < m->bitmap_stride; b++) {
                    uint8_t byte = bits[b];
                    int first_col = 8 * b;
                    if (first_col + 8 > m->cols) {
                        uint8_t past = first_col >= m->cols ? 0xff : (uint8_t)(0xffu << (m->cols - first_col));
                        if (byte & past)
                            return error_set(err, "bitmap: row %zu has bits set past column %d", r, m->cols);
                    }
                    count += (uint32_t)popcount8(byte);
                }
                if (count != end - begin)
                    return error_set(err, "bitmap: row %zu has %u bits set but %u values (row_start)", r, count,
                                     end - begin);
            } else {
                for (uint32_t k = begin; k < end; k++) {
                    if (m->col_index[k] >= m->cols)
                        return error_set(err, "csr16: row %zu: column index %u out of range [0, %d)", r,
                                         m->col_index[k], m->cols);
                    if (k > begin && m->col_index[k] <= m->col_index[k - 1])
                        return error_set(err, "csr16: row %zu: column indices not increasing (%u after %u)", r,
                                         m->col_index[k], m->col_index[k - 1]);
                }
            }
        }
        return 0;
    case PACKED_NM24:
        if (m->cols % 4 != 0) return error_set(err, "2:4: %d columns are not a multiple of 4", m->cols);
        if (!m->nm_index) return error_set(err, "2:4: missing index array");
        for (size_t g = 0; g < rows * (size_t)(m->cols / 4); g++) {
            uint8_t b = m->nm_index[g];
            if ((b >> 4) != 0 || (b & 3) >= (b >> 2))
                return error_set(err, "2:4: index byte %zu is 0x%02x (expected i0 | i1 << 2 with i0 < i1 < 4)", g, b);
        }
        return 0;
    default: return error_set(err, "packed matrix: unknown format %d", m->format);
    }
}

// Calls visit(col, value) for each stored weight of row r in column order.
#define FOR_EACH_STORED(m, r, col, value, body)                                                             \
    do {                                                                                                    \
        switch ((m)->format) {                                                                              \
        case PACKED_DENSE:                                                                                  \
            for (int col = 0; col < (m)->cols; col++) {                                                     \
                float value = (m)->values[(size_t)(r) * (m)->cols + col];                                   \
                body;                                                                                       \
            }                                                                                               \
            break;                                                                                          \
        case PACKED_BITMAP: {                                                                               \
            const uint8_t *bits_ = (m)->bitmap + (size_t)(r) * (m)->bitmap_stride;                          \
            const float *v_ = (m)->values + (m)->row_start[r];                                              \
            for (int col = 0; col < (m)->cols; col++)                                                       \
                if (bits_[col / 8] >> (col % 8) & 1) {                                                      \
                    float value = *v_++;                                                                    \
                    body;                                                                                   \
                }                                                                                           \
            break;                                                                                          \
        }                                                                                                   \
        case PACKED_CSR16:                                                                                  \
            for (uint32_t k_ = (m)->row_start[r]; k_ < (m)->row_start[(r) + 1]; k_++) {                     \
                int col = (m)->col_index[k_];                                                               \
                float value = (m)->values[k_];                                                              \
                body;                                                                                       \
            }                                                                                               \
            break;                                                                                          \
        case PACKED_NM24:                                                                                   \
            for (int g_ = 0; g_ < (m)->cols / 4; g_++) {                                                    \
                size_t group_ = (size_t)(r) * ((m)->cols / 4) + g_;                                         \
                uint8_t ix_ = (m)->nm_index[group_];                                                        \
                for (int k_ = 0; k_ < 2; k_++) {                                                            \
                    int col = 4 * g_ + (ix_ >> (2 * k_) & 3);                                               \
                    float value = (m)->values[group_ * 2 + k_];                                             \
                    body;                                                                                   \
                }                                                                                           \
            }                                                                                               \
            break;                                                                                          \
        default: break;                                                                                     \
        }                                                                                                   \
    } while (0)

void packed_matrix_unpack(const PackedMatrix *m, float *w) {
    memset(w, 0, sizeof(float) * (size_t)m->rows * (size_t)m->cols);
    for (int r = 0; r < m->rows; r++) {
        float *wr = w + (size_t)r * m->cols;
        FOR_EACH_STORED(m, r, c, v, wr[c] = v);
    }
}

// y (batch, rows) = x (batch, cols) @ W^T, each dot summed in column order.
void packed_matvec_reference(const PackedMatrix *m, const float *x, float *y, int batch) {
    for (int b = 0; b < batch; b++)
        for (int r = 0; r < m->rows; r++) {
            const float *xb = x + (size_t)b * m->cols;
            double acc = 0.0;
            FOR_EACH_STORED(m, r, c, v, acc += (double)v * xb[c]);
            y[(size_t)b * m->rows + r] = (float)acc;
        }
}

// Y (T, rows) = X (T, cols) @ W^T: the batch kernel's reference with T rows.
void packed_matmul_reference(const PackedMatrix *m, const float *X, float *Y, int T) {
    packed_matvec_reference(m, X, Y, T);
}

// ---- the rule (docs/SPARSE.md has the measurements behind each constant) ----

// Decode, batch 1: CSR16 up to this density (its gathers keep near the bytes' speed
// however few are kept); the bitmap above it up to RULE_BITMAP_MAX_DENSITY (its
// expansion costs per 8 or 16 columns, so it loses to CSR16 when few are kept); dense above.
#define RULE_CSR16_MAX_DENSITY 0.25
#define RULE_BITMAP_MAX_DENSITY 0.6
// 2:4 patterns: the 2:4 format from this density of stored values up (below, CSR16
// reads fewer bytes), on AVX2; with AVX-512 the bitmap's vexpandps beats it.
#define RULE_NM24_MIN_DENSITY 0.35
#if defined(__AVX512F__)
#define RULE_PREFER_NM24 0
#else
#define RULE_PREFER_NM24 1
#endif
// Batches 2-16: the sparse batch kernel up to this density, else rows expanded in cache.
#define RULE_BATCH_SPARSE_MAX_DENSITY 0.3
// Prompt: the blocked sparse kernel up to this density, from this many rows and columns,
// else unpack + sgemm. Since the kernel reads the packed weights in place it beats unpack
// + sgemm by 1.2-1.5x at density 0.5 on 130m's and 370m's in_proj and out_proj, is even
// with it at 0.7 and loses at 0.9 (docs/sparse_bench/prompt_kernel_inplace_2026-12-03.md).
// x_proj's 80-96 rows and dt_proj's 48-64 columns pay only at 370m's size or at 0.3 and
// below, and not reproducibly at 2 threads on 130m's: they stay with unpack + sgemm.
// 0.6 is also RULE_BITMAP_MAX_DENSITY (and 2:4 is 0.5), so every large matrix the rule
// stores sparse takes the sparse prompt kernel; this bound matters for formats chosen by
// hand, and for the day the storage rule's bound moves.
#define RULE_PROMPT_SPARSE_MAX_DENSITY 0.6
#define RULE_PROMPT_SPARSE_MIN_ROWS 256
#define RULE_PROMPT_SPARSE_MIN_COLS 256

PackedFormat packed_choose_format(int rows, int cols, size_t nnz, bool is_2_4) {
    double total = (double)rows * (double)cols;
    if (total <= 0) return PACKED_DENSE;
    double density = (double)nnz / total;
    if (RULE_PREFER_NM24 && is_2_4 && density >= RULE_NM24_MIN_DENSITY) return PACKED_NM24;
    if (density <= RULE_CSR16_MAX_DENSITY && cols <= 65536) return PACKED_CSR16;
    return density <= RULE_BITMAP_MAX_DENSITY ? PACKED_BITMAP : PACKED_DENSE;
}

bool packed_batch_sparse_pays(const PackedMatrix *m) {
    return m->format != PACKED_DENSE && packed_density(m) <= RULE_BATCH_SPARSE_MAX_DENSITY;
}

bool packed_prompt_sparse_pays(const PackedMatrix *m) {
    return m->format != PACKED_DENSE && m->rows >= RULE_PROMPT_SPARSE_MIN_ROWS &&
           m->cols >= RULE_PROMPT_SPARSE_MIN_COLS && packed_density(m) <= RULE_PROMPT_SPARSE_MAX_DENSITY;
}
