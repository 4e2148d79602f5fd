// The fast kernels of sparse/packed.h: decode (batch 1 and small batches) and prompt
// products with a packed matrix, threaded over output rows with OpenMP. AVX-512 and AVX2
// paths are chosen at compile time, with plain C below them for other targets; each is
// tested against packed.c's reference.
//
// Batch 1 reads each stored weight once, so it is written per format: dense is an FMA
// dot; bitmap expands 8 (AVX2: a permute from a 256-entry table) or 16 (AVX-512:
// vexpandps) packed values per bitmap byte/word; CSR16 gathers x; 2:4 permutes x within
// each 8 columns. Batches 2-16 (and prompts of up to 16 rows) share one sparse kernel:
// per output row, each stored weight (c, v) adds v * Xt[c, 0..W) into W accumulator
// lanes, Xt being x transposed, so one weight costs one vector FMA for W = 8 sequences.
// Longer prompts run a blocked version of it (spmm_prompt): tiles of 64 tokens, blocks of
// 64 columns and chunks of 16 rows, so that every FMA's operand comes from L1.
//
// Determinism: each output element is summed by one thread, in an order fixed by the
// matrix and the lane layout alone, so any thread count gives the same bits.
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"      // defines: matmul_forward, sgemm
#include "sparse/packed.h"

typedef float v8f __attribute__((vector_size(32)));

static void *alloc_aligned(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory allocating %zu bytes\n", __FILE__, __LINE__, rounded);
        abort();
    }
    return p;
}

// Software prefetch, PREFETCH_AHEAD bytes ahead of the stream a kernel reads: a decode
// product reads each row's arrays once, and with the prefetch the sparse formats read
// 1.1-1.4x faster from memory, dense 1.07x (one thread, 130m in_proj; docs/SPARSE.md).
#define PREFETCH_AHEAD 1024

// Prefetches the cache lines of [begin, end) moved PREFETCH_AHEAD bytes on: called once
// per row with that row's part of a stream, it keeps the stream's lines arriving ahead.
static inline void prefetch_ahead(const void *begin, const void *end) {
    const char *b = (const char *)((uintptr_t)begin & ~(uintptr_t)63) + PREFETCH_AHEAD;
    const char *e = (const char *)end + PREFETCH_AHEAD;
    for (; b < e; b += 64) _mm_prefetch(b, _MM_HINT_T0);
}

// ---- batch 1: dense ----

#if defined(__AVX2__) && defined(__FMA__)
static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

// <w, x> over n floats; stream: w comes from memory (prefetched ahead as it is read).
static inline __attribute__((always_inline)) float dot_dense_with(const float *restrict w, const float *restrict x,
                                                                  int n, bool stream) {
    int c = 0;
    float sum = 0.0f;
#if defined(__AVX512F__)
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    for (; c + 64 <= n; c += 64) {
        if (stream) prefetch_ahead(w + c, w + c + 64);
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + c), _mm512_loadu_ps(x + c), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + c + 16), _mm512_loadu_ps(x + c + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + c + 32), _mm512_loadu_ps(x + c + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + c + 48), _mm512_loadu_ps(x + c + 48), a3);
    }
    for (; c + 16 <= n; c += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + c), _mm512_loadu_ps(x + c), a0);
    if (c < n) {
        __mmask16 tail = (__mmask16)((1u << (n - c)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w + c), _mm512_maskz_loadu_ps(tail, x + c), a1);
        c = n;
    }
    sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (; c + 32 <= n; c += 32) {
        if (stream) prefetch_ahead(w + c, w + c + 32);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 8), _mm256_loadu_ps(x + c + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 16), _mm256_loadu_ps(x + c + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 24), _mm256_loadu_ps(x + c + 24), a3);
    }
    for (; c + 8 <= n; c += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), a0);
    sum = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
#endif
    for (; c < n; c++) sum += w[c] * x[c];
    return sum;
}

static inline float dot_dense(const float *restrict w, const float *restrict x, int n) {
    return dot_dense_with(w, x, n, false);
}

// y (batch, rows) = x (batch, cols) @ W^T, W dense: each row is read once from memory and
// multiplied with the batch from cache.
static void matvec_dense(const PackedMatrix *m, const float *x, float *y, int batch) {
    const int rows = m->rows, cols = m->cols;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *w = m->values + (size_t)r * cols;
        y[r] = dot_dense_with(w, x, cols, true);  // the row from memory, then from cache for the batch
        for (int b = 1; b < batch; b++) y[(size_t)b * rows + r] = dot_dense(w, x + (size_t)b * cols, cols);
    }
}

// ---- batch 1: bitmap ----

#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
// For a bitmap byte m, lane j's source among the packed values: the number of bits of m
// below j, with the sign bit set where bit j is set (a blend mask). A constant table.
#define EXPAND_POP8(m) (((m) & 1) + ((m) >> 1 & 1) + ((m) >> 2 & 1) + ((m) >> 3 & 1) + ((m) >> 4 & 1) + \
                        ((m) >> 5 & 1) + ((m) >> 6 & 1) + ((m) >> 7 & 1))
#define EXPAND_LANE(m, j) \
    (((m) >> (j) & 1) ? (int32_t)(0x80000000u | (uint32_t)EXPAND_POP8((m) & ((1 << (j)) - 1))) : 0)
#define EXPAND_ROW(m) {EXPAND_LANE(m, 0), EXPAND_LANE(m, 1), EXPAND_LANE(m, 2), EXPAND_LANE(m, 3), \
                       EXPAND_LANE(m, 4), EXPAND_LANE(m, 5), EXPAND_LANE(m, 6), EXPAND_LANE(m, 7)},
#define EXPAND_4(m) EXPAND_ROW(m) EXPAND_ROW((m) + 1) EXPAND_ROW((m) + 2) EXPAND_ROW((m) + 3)
#define EXPAND_16(m) EXPAND_4(m) EXPAND_4((m) + 4) EXPAND_4((m) + 8) EXPAND_4((m) + 12)
#define EXPAND_64(m) EXPAND_16(m) EXPAND_16((m) + 16) EXPAND_16((m) + 32) EXPAND_16((m) + 48)
static const int32_t expand_table[256][8] __attribute__((aligned(32))) = {
    EXPAND_64(0) EXPAND_64(64) EXPAND_64(128) EXPAND_64(192)};

// The 8 lanes of bitmap byte m, from the packed values at v (which may be read 8 ahead).
static inline __m256 expand8(uint8_t m, const float *v) {
    __m256i p = _mm256_load_si256((const __m256i *)expand_table[m]);
    return _mm256_blendv_ps(_mm256_setzero_ps(), _mm256_permutevar8x32_ps(_mm256_loadu_ps(v), p),
                            _mm256_castsi256_ps(p));
}
#endif

// One row's dot with x: bits (bitmap row), v its packed values.
static inline float dot_bitmap(const uint8_t *restrict bits, const float *restrict v, const float *restrict x,
                               int cols) {
    int c = 0;
    float sum = 0.0f;
#if defined(__AVX512F__)
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (; c + 32 <= cols; c += 32) {
        uint16_t m0, m1;
        memcpy(&m0, bits + c / 8, 2);
        memcpy(&m1, bits + c / 8 + 2, 2);
        a0 = _mm512_fmadd_ps(_mm512_maskz_expand_ps(m0, _mm512_loadu_ps(v)), _mm512_loadu_ps(x + c), a0);
        v += __builtin_popcount(m0);
        a1 = _mm512_fmadd_ps(_mm512_maskz_expand_ps(m1, _mm512_loadu_ps(v)), _mm512_loadu_ps(x + c + 16), a1);
        v += __builtin_popcount(m1);
    }
    // The rest in 16-column words; bits past cols are zero, so masked loads stop at cols.
    for (; c < cols; c += 16) {
        uint16_t m0;
        memcpy(&m0, bits + c / 8, 2);
        a0 = _mm512_fmadd_ps(_mm512_maskz_expand_ps(m0, _mm512_loadu_ps(v)), _mm512_maskz_loadu_ps(m0, x + c), a0);
        v += __builtin_popcount(m0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; c + 16 <= cols; c += 16) {
        uint8_t m0 = bits[c / 8], m1 = bits[c / 8 + 1];
        a0 = _mm256_fmadd_ps(expand8(m0, v), _mm256_loadu_ps(x + c), a0);
        v += __builtin_popcount(m0);
        a1 = _mm256_fmadd_ps(expand8(m1, v), _mm256_loadu_ps(x + c + 8), a1);
        v += __builtin_popcount(m1);
    }
    for (; c + 8 <= cols; c += 8) {
        uint8_t m0 = bits[c / 8];
        a0 = _mm256_fmadd_ps(expand8(m0, v), _mm256_loadu_ps(x + c), a0);
        v += __builtin_popcount(m0);
    }
    sum = hsum8(_mm256_add_ps(a0, a1));
#endif
    for (; c < cols; c++)
        if (bits[c / 8] >> (c % 8) & 1) sum += *v++ * x[c];
    return sum;
}

// ---- batch 1: CSR16 ----

static inline float dot_csr16(const uint16_t *restrict col, const float *restrict v, int n, const float *restrict x) {
    int k = 0;
    float sum = 0.0f;
#if defined(__AVX512F__)
    __m512 a0 = _mm512_setzero_ps();
    for (; k + 16 <= n; k += 16) {
        __m512i idx = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(col + k)));
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(v + k), _mm512_i32gather_ps(idx, x, 4), a0);
    }
    sum = _mm512_reduce_add_ps(a0);
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; k + 16 <= n; k += 16) {
        __m256i i0 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(col + k)));
        __m256i i1 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(col + k + 8)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + k), _mm256_i32gather_ps(x, i0, 4), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(v + k + 8), _mm256_i32gather_ps(x, i1, 4), a1);
    }
    for (; k + 8 <= n; k += 8) {
        __m256i i0 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(col + k)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + k), _mm256_i32gather_ps(x, i0, 4), a0);
    }
    sum = hsum8(_mm256_add_ps(a0, a1));
#endif
    for (; k < n; k++) sum += v[k] * x[col[k]];
    return sum;
}

// ---- batch 1: 2:4 ----

// One row of groups: index (groups bytes), v (2 * groups values).
static inline float dot_nm24(const uint8_t *restrict index, const float *restrict v, int groups,
                             const float *restrict x) {
    int g = 0;
    float sum = 0.0f;
#if defined(__AVX2__) && defined(__FMA__)
    // Four groups (16 columns, 8 values) at a time: lane j takes index bits of its group
    // (byte j / 2, bits 2 (j % 2)), offset by 4 within the low or high 8 columns of x.
    const __m256i shifts = _mm256_setr_epi32(0, 2, 8, 10, 16, 18, 24, 26);
    const __m256i base = _mm256_setr_epi32(0, 0, 4, 4, 0, 0, 4, 4);
    const __m256i three = _mm256_set1_epi32(3);
    __m256 a0 = _mm256_setzero_ps();
    for (; g + 4 <= groups; g += 4) {
        uint32_t word;
        memcpy(&word, index + g, 4);
        __m256i p = _mm256_add_epi32(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)word), shifts), three),
                                     base);
        __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + 4 * g), p);
        __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + 4 * g + 8), p);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + 2 * g), _mm256_blend_ps(lo, hi, 0xf0), a0);
    }
    sum = hsum8(a0);
#endif
    for (; g < groups; g++) {
        uint8_t ix = index[g];
        sum += v[2 * g] * x[4 * g + (ix & 3)] + v[2 * g + 1] * x[4 * g + (ix >> 2 & 3)];
    }
    return sum;
}

// ---- batches and the prompt: the shared sparse kernel ----

// The stored weights of row r as (column, value) lists: cols (m->cols ints of scratch)
// is filled; the values are returned in place (contiguous in every sparse format).
static inline int row_entries(const PackedMatrix *m, int r, int *restrict cols, const float **values) {
    switch (m->format) {
    case PACKED_BITMAP: {
        const uint8_t *bits = m->bitmap + (size_t)r * m->bitmap_stride;
        int n = 0;
        for (int w = 0; w < m->bitmap_stride / 8; w++) {
            uint64_t word;
            memcpy(&word, bits + 8 * w, 8);
            while (word) {
                cols[n++] = 64 * w + __builtin_ctzll(word);
                word &= word - 1;
            }
        }
        *values = m->values + m->row_start[r];
        return n;
    }
    case PACKED_CSR16: {
        uint32_t begin = m->row_start[r];
        int n = (int)(m->row_start[r + 1] - begin);
        for (int k = 0; k < n; k++) cols[k] = m->col_index[begin + k];
        *values = m->values + begin;
        return n;
    }
    case PACKED_NM24: {
        int groups = m->cols / 4;
        const uint8_t *index = m->nm_index + (size_t)r * groups;
        for (int g = 0; g < groups; g++) {
            cols[2 * g] = 4 * g + (index[g] & 3);
            cols[2 * g + 1] = 4 * g + (index[g] >> 2 & 3);
        }
        *values = m->values + (size_t)r * groups * 2;
        return 2 * groups;
    }
    default: return 0;
    }
}

// acc (NV vectors of 8 lanes) = sum over k of values[k] * Xt[cols[k], 0 .. 8 NV), where Xt
// rows are 8 NV floats, 32-byte aligned. NV is a constant at each call, so acc stays in registers.
static inline __attribute__((always_inline)) void spmm_row(const int *restrict cols, const float *restrict values,
                                                           int n, const float *restrict Xt, int NV, v8f *acc) {
    for (int j = 0; j < NV; j++) acc[j] = (v8f){0};
    for (int k = 0; k < n; k++) {
        const v8f *xr = (const v8f *)__builtin_assume_aligned(Xt + (size_t)cols[k] * 8 * NV, 32);
        const float v = values[k];
        for (int j = 0; j < NV; j++) acc[j] += v * xr[j];
    }
}

// Y rows t0 .. t0 + W of (T, rows) = X @ W^T for rows [r0, r1), with Xt (cols, W) the
// transposed tile of X (W = 8 NV, zero past T). cols_scratch holds m->cols ints.
static inline __attribute__((always_inline)) void spmm_tile(const PackedMatrix *m, const float *Xt, float *Y,
                                                            int t0, int T, int NV, int *cols_scratch) {
    const int rows = m->rows, W = 8 * NV, width = T - t0 < W ? T - t0 : W;
#pragma omp for schedule(static) nowait
    for (int r = 0; r < rows; r++) {
        const float *values;
        int n = row_entries(m, r, cols_scratch, &values);
        v8f acc[8];
        spmm_row(cols_scratch, values, n, Xt, NV, acc);
        float lanes[64];
        memcpy(lanes, acc, sizeof(float) * (size_t)W);
        for (int i = 0; i < width; i++) Y[(size_t)(t0 + i) * rows + r] = lanes[i];
    }
}

// Xt (n_tiles, cols, W) = X (T, cols) transposed tile by tile, zero past T.
static float *transpose_tiles(const float *X, int T, int cols, int W, int *n_tiles) {
    *n_tiles = (T + W - 1) / W;
    float *Xt = alloc_aligned(sizeof(float) * (size_t)*n_tiles * cols * W);
    const int tiles = *n_tiles;
    // 16 columns at a time: each token's 16 values are one read, and the 16 rows of out
    // they go to (16 W floats) stay in cache until the tile's W tokens have filled them.
    // Threaded over (tile, 16 columns): a 512-token prompt has only 8 tiles of 64.
    const int col_blocks = (cols + 15) / 16;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)T * cols > 65536)
    for (int tile = 0; tile < tiles; tile++) {
        for (int cb = 0; cb < col_blocks; cb++) {
            float *out = Xt + (size_t)tile * cols * W;
            const int c0 = 16 * cb, cn = cols - c0 < 16 ? cols - c0 : 16;
            for (int i = 0; i < W; i++) {
                const int t = tile * W + i;
                if (t < T)
                    for (int c = 0; c < cn; c++) out[(size_t)(c0 + c) * W + i] = X[(size_t)t * cols + c0 + c];
                else
                    for (int c = 0; c < cn; c++) out[(size_t)(c0 + c) * W + i] = 0.0f;
            }
        }
    }
    return Xt;
}

// Y (T, rows) = X (T, cols) @ W^T through the shared sparse kernel, in tiles of W tokens.
static void spmm(const PackedMatrix *m, const float *X, float *Y, int T) {
    const int NV = T <= 8 ? 1 : T <= 16 ? 2 : 8, W = 8 * NV;
    int n_tiles;
    float *Xt = transpose_tiles(X, T, m->cols, W, &n_tiles);
#pragma omp parallel if ((size_t)m->rows * m->cols > 4096)
    {
        int *cols = alloc_aligned(sizeof(int) * ((size_t)m->cols + 1));
        for (int tile = 0; tile < n_tiles; tile++) {
            const float *Xtile = Xt + (size_t)tile * m->cols * W;
            if (NV == 1)
                spmm_tile(m, Xtile, Y, tile * W, T, 1, cols);
            else if (NV == 2)
                spmm_tile(m, Xtile, Y, tile * W, T, 2, cols);
            else
                spmm_tile(m, Xtile, Y, tile * W, T, 8, cols);
        }
        free(cols);
    }
    free(Xt);
}

// ---- the prompt: a blocked sparse kernel ----
//
// Y (T, rows) = X (T, cols) @ W^T for long prompts, without expanding W. Per tile of
// PROMPT_TILE tokens, X is transposed to Xt (cols, PROMPT_TILE), so that the tile's values
// of one column are contiguous (one cache line per 16 tokens). Threads take chunks of
// PROMPT_CHUNK_ROWS rows; per tile, chunk and block of 64 columns (one word of a bitmap
// row), each row's accumulators (the tile's tokens: 4 zmm or 8 ymm) are loaded, one vector
// FMA per stored weight and per 16 (8) tokens adds v * Xt[c, :], and stored back. The
// column block of Xt (64 x PROMPT_TILE floats, 16 KB) and the chunk's accumulators (4 KB)
// stay in L1 while the chunk's rows pass over them, so every FMA's operand comes from L1.
// The stored weights are read where they are, each row's through a cursor that moves
// block by block (a bitmap word's set bits, csr16's indices below the block's end, 2:4's
// 16 groups); listing them per call as (column, value) pairs first cost about a third of
// the kernel's time, in writes (docs/SPARSE.md). Each output is summed by one thread in an
// order fixed by the matrix.
#ifndef PROMPT_TILE  // (a -D of bench experiments may set these two)
#define PROMPT_TILE 64
#endif
#ifndef PROMPT_CHUNK_ROWS
#define PROMPT_CHUNK_ROWS 16
#endif
#define PROMPT_KBLOCK 64  // columns: one 64-bit word of a bitmap row

#if defined(__AVX512F__)
typedef float vtile __attribute__((vector_size(64)));  // 16 tokens
#else
typedef float vtile __attribute__((vector_size(32)));  // 8 tokens
#endif
#define PROMPT_NV (PROMPT_TILE / (int)(sizeof(vtile) / sizeof(float)))

// Column c of a tile of Xt: PROMPT_NV vectors.
static inline const vtile *tile_column(const float *Xt, int c) {
    return (const vtile *)__builtin_assume_aligned(Xt + (size_t)c * PROMPT_TILE, 64);
}

static inline __attribute__((always_inline)) void fma_tile(vtile *restrict a, float v, const vtile *restrict x) {
    for (int j = 0; j < PROMPT_NV; j++) a[j] += v * x[j];
}

// Each block_* adds one row's stored weights of one column block times the tile Xt to
// acc (PROMPT_NV vectors): the block's even entries into one set of accumulators and its
// odd ones into another, summed at the end. That is the rounding of the kernel that listed
// the entries first; one set measured the same speed (docs/SPARSE.md), so the bits stayed.

// Bitmap: the set bits of word are columns c0 + bit; their values are v[0 ..].
static inline void block_bitmap(uint64_t word, int c0, const float *restrict v, const float *restrict Xt,
                                vtile *restrict acc) {
    vtile a[PROMPT_NV], e[PROMPT_NV];
    for (int j = 0; j < PROMPT_NV; j++) a[j] = acc[j], e[j] = (vtile){0};
    for (; word; v += 2) {
        const int c = c0 + __builtin_ctzll(word);
        word &= word - 1;
        fma_tile(a, v[0], tile_column(Xt, c));
        if (!word) break;
        const int c1 = c0 + __builtin_ctzll(word);
        word &= word - 1;
        fma_tile(e, v[1], tile_column(Xt, c1));
    }
    for (int j = 0; j < PROMPT_NV; j++) acc[j] = a[j] + e[j];
}

// CSR16: n entries, columns col[k] and values v[k].
static inline void block_csr16(const uint16_t *restrict col, const float *restrict v, int n, const float *restrict Xt,
                               vtile *restrict acc) {
    vtile a[PROMPT_NV], e[PROMPT_NV];
    for (int j = 0; j < PROMPT_NV; j++) a[j] = acc[j], e[j] = (vtile){0};
    int k = 0;
    for (; k + 2 <= n; k += 2) {
        fma_tile(a, v[k], tile_column(Xt, col[k]));
        fma_tile(e, v[k + 1], tile_column(Xt, col[k + 1]));
    }
    if (k < n) fma_tile(a, v[k], tile_column(Xt, col[k]));
    for (int j = 0; j < PROMPT_NV; j++) acc[j] = a[j] + e[j];
}

// 2:4: groups g0 .. g0 + ng (columns 4 g ..), their index bytes index[0 ..] and values v[0 ..].
static inline void block_nm24(const uint8_t *restrict index, const float *restrict v, int g0, int ng,
                              const float *restrict Xt, vtile *restrict acc) {
    vtile a[PROMPT_NV], e[PROMPT_NV];
    for (int j = 0; j < PROMPT_NV; j++) a[j] = acc[j], e[j] = (vtile){0};
    for (int g = 0; g < ng; g++) {
        const int c = 4 * (g0 + g);
        fma_tile(a, v[2 * g], tile_column(Xt, c + (index[g] & 3)));
        fma_tile(e, v[2 * g + 1], tile_column(Xt, c + (index[g] >> 2 & 3)));
    }
    for (int j = 0; j < PROMPT_NV; j++) acc[j] = a[j] + e[j];
}

// The next block of a row is read after the chunk's other rows have had theirs: its lines
// are fetched now, since the hardware does not follow 16 streams that advance by a block.
// bytes: the size of the block just read, the guess for the next one's. Its first, middle
// and last bytes cover every line of a span of up to 128 bytes (a block's values up to
// density 0.5; above, the middle line of four may be missed), without a loop whose count
// would vary (a mispredicted branch a block). The addresses are computed as integers:
// past a row's last block they may lie beyond the arrays, which a prefetch may touch.
static inline void prefetch_span(const void *p, size_t bytes) {
    const uintptr_t a = (uintptr_t)p;
    __builtin_prefetch((const void *)a);
    __builtin_prefetch((const void *)(a + bytes / 2));
    __builtin_prefetch((const void *)(a + bytes));
}

// end (n_blocks) = where row r's CSR16 entries of each column block end (indices into
// col_index), found once per call rather than at every tile.
static void csr16_block_ends(const PackedMatrix *m, int r, int n_blocks, uint32_t *restrict end) {
    uint32_t k = m->row_start[r];
    const uint32_t row_end = m->row_start[r + 1];
    for (int b = 0; b < n_blocks; b++) {
        while (k < row_end && m->col_index[k] < PROMPT_KBLOCK * (b + 1)) k++;
        end[b] = k;
    }
}

// acc (nr rows x PROMPT_NV vectors) = rows r0 .. r0 + nr of W times the tile Xt, block by
// block of columns, each row's stored weights read from where its cursor at[i] stands
// (csr_block_end: CSR16's block ends, NULL for the other formats).
static void prompt_chunk(const PackedMatrix *m, const uint32_t *csr_block_end, int r0, int nr, const float *restrict Xt,
                         vtile *restrict acc) {
    const int n_blocks = (m->cols + PROMPT_KBLOCK - 1) / PROMPT_KBLOCK;
    uint32_t at[PROMPT_CHUNK_ROWS];
    memset(acc, 0, sizeof(vtile) * PROMPT_NV * (size_t)nr);
    switch (m->format) {
    case PACKED_BITMAP:
        for (int i = 0; i < nr; i++) at[i] = m->row_start[r0 + i];
        for (int b = 0; b < n_blocks; b++)
            for (int i = 0; i < nr; i++) {
                uint64_t word;
                memcpy(&word, m->bitmap + (size_t)(r0 + i) * m->bitmap_stride + 8 * b, 8);
                block_bitmap(word, PROMPT_KBLOCK * b, m->values + at[i], Xt, acc + i * PROMPT_NV);
                const int n = __builtin_popcountll(word);
                at[i] += (uint32_t)n;
                prefetch_span(m->values + at[i], sizeof(float) * (size_t)n + 4);
            }
        break;
    case PACKED_CSR16:
        for (int i = 0; i < nr; i++) at[i] = m->row_start[r0 + i];
        for (int b = 0; b < n_blocks; b++)
            for (int i = 0; i < nr; i++) {
                const uint32_t end = csr_block_end[(size_t)(r0 + i) * n_blocks + b];
                const int n = (int)(end - at[i]);
                block_csr16(m->col_index + at[i], m->values + at[i], n, Xt, acc + i * PROMPT_NV);
                at[i] = end;
                prefetch_span(m->values + end, sizeof(float) * (size_t)n + 4);
                prefetch_span(m->col_index + end, sizeof(uint16_t) * (size_t)n + 2);
            }
        break;
    case PACKED_NM24: {
        const int groups = m->cols / 4, block_groups = PROMPT_KBLOCK / 4;
        for (int b = 0; b < n_blocks; b++) {
            const int g0 = block_groups * b, ng = groups - g0 < block_groups ? groups - g0 : block_groups;
            for (int i = 0; i < nr; i++) {
                const size_t g = (size_t)(r0 + i) * groups + g0;
                block_nm24(m->nm_index + g, m->values + 2 * g, g0, ng, Xt, acc + i * PROMPT_NV);
                prefetch_span(m->values + 2 * (g + ng), sizeof(float) * 2 * (size_t)ng);
                prefetch_span(m->nm_index + g + ng, (size_t)ng);
            }
        }
        break;
    }
    default: break;
    }
}

static void spmm_prompt(const PackedMatrix *m, const float *X, float *Y, int T) {
    const int rows = m->rows, cols = m->cols;
    const int n_chunks = (rows + PROMPT_CHUNK_ROWS - 1) / PROMPT_CHUNK_ROWS;
    const int n_blocks = (cols + PROMPT_KBLOCK - 1) / PROMPT_KBLOCK;
    int n_tiles;
    float *Xt = transpose_tiles(X, T, cols, PROMPT_TILE, &n_tiles);
    uint32_t *csr_block_end =
        m->format == PACKED_CSR16 ? alloc_aligned(sizeof(uint32_t) * (size_t)rows * n_blocks) : NULL;
    // Tile by tile, so that the tile of Xt (cols x PROMPT_TILE floats) stays in L2 while
    // every chunk passes over it.
#pragma omp parallel if ((size_t)rows * cols > 4096)
    {
        vtile *acc = alloc_aligned(sizeof(vtile) * PROMPT_NV * PROMPT_CHUNK_ROWS);
        if (csr_block_end) {
#pragma omp for schedule(static)
            for (int r = 0; r < rows; r++) csr16_block_ends(m, r, n_blocks, csr_block_end + (size_t)r * n_blocks);
        }
        for (int tile = 0; tile < n_tiles; tile++) {
            const float *Xtile = Xt + (size_t)tile * cols * PROMPT_TILE;
            const int t0 = tile * PROMPT_TILE, width = T - t0 < PROMPT_TILE ? T - t0 : PROMPT_TILE;
#pragma omp for schedule(static) nowait
            for (int q = 0; q < n_chunks; q++) {
                const int r0 = q * PROMPT_CHUNK_ROWS, nr = rows - r0 < PROMPT_CHUNK_ROWS ? rows - r0 : PROMPT_CHUNK_ROWS;
                prompt_chunk(m, csr_block_end, r0, nr, Xtile, acc);
                const float *lanes = (const float *)acc;
                for (int t = 0; t < width; t++)
                    for (int i = 0; i < nr; i++) Y[(size_t)(t0 + t) * rows + r0 + i] = lanes[i * PROMPT_TILE + t];
            }
        }
        free(acc);
    }
    free(Xt), free(csr_block_end);
}

// w (cols) = row r of the matrix, dense. The bitmap expands 8 or 16 columns per step;
// the other formats scatter their stored values.
static inline void expand_row(const PackedMatrix *m, int r, float *restrict w, int *restrict index) {
    const int cols = m->cols;
    if (m->format == PACKED_BITMAP) {
        const uint8_t *bits = m->bitmap + (size_t)r * m->bitmap_stride;
        const float *v = m->values + m->row_start[r];
        prefetch_ahead(v, m->values + m->row_start[r + 1]);
        prefetch_ahead(bits, bits + m->bitmap_stride);
        int c = 0;
#if defined(__AVX512F__)
        for (; c + 16 <= cols; c += 16) {
            uint16_t word;
            memcpy(&word, bits + c / 8, 2);
            _mm512_storeu_ps(w + c, _mm512_maskz_expand_ps(word, _mm512_loadu_ps(v)));
            v += __builtin_popcount(word);
        }
#elif defined(__AVX2__) && defined(__FMA__)
        for (; c + 8 <= cols; c += 8) {
            uint8_t byte = bits[c / 8];
            _mm256_storeu_ps(w + c, expand8(byte, v));
            v += __builtin_popcount(byte);
        }
#endif
        for (; c < cols; c++) w[c] = bits[c / 8] >> (c % 8) & 1 ? *v++ : 0.0f;
        return;
    }
    const float *values;
    int n = row_entries(m, r, index, &values);
    memset(w, 0, sizeof(float) * (size_t)cols);
    for (int k = 0; k < n; k++) w[index[k]] += values[k];
}

// y (batch, rows) = x (batch, cols) @ W^T with each row expanded to dense in cache and
// multiplied by the batch like matvec_dense: where the sparse batch kernel does not pay.
static void matvec_expanded(const PackedMatrix *m, const float *x, float *y, int batch) {
    const int rows = m->rows, cols = m->cols;
#pragma omp parallel
    {
        float *w = alloc_aligned(sizeof(float) * (size_t)cols);
        int *index = alloc_aligned(sizeof(int) * ((size_t)cols + 1));
#pragma omp for schedule(static)
        for (int r = 0; r < rows; r++) {
            expand_row(m, r, w, index);
            for (int b = 0; b < batch; b++) y[(size_t)b * rows + r] = dot_dense(w, x + (size_t)b * cols, cols);
        }
        free(w), free(index);
    }
}

// ---- entry points ----

// The prompt's unpack + sgemm path expands this many bytes of rows at a time.
#define UNPACK_BLOCK_BYTES (1u << 21)

void packed_matvec_rows(const PackedMatrix *m, const float *x, float *y, int r0, int r1) {
    const int cols = m->cols;
    if (cols == 0) {
        if (r1 > r0) memset(y + r0, 0, sizeof(float) * (size_t)(r1 - r0));
        return;
    }
    switch (m->format) {
    case PACKED_BITMAP:
        for (int r = r0; r < r1; r++) {
            const uint8_t *bits = m->bitmap + (size_t)r * m->bitmap_stride;
            const float *v = m->values + m->row_start[r];
            prefetch_ahead(v, m->values + m->row_start[r + 1]);
            prefetch_ahead(bits, bits + m->bitmap_stride);
            y[r] = dot_bitmap(bits, v, x, cols);
        }
        break;
    case PACKED_CSR16:
        for (int r = r0; r < r1; r++) {
            const uint32_t begin = m->row_start[r], end = m->row_start[r + 1];
            prefetch_ahead(m->values + begin, m->values + end);
            prefetch_ahead(m->col_index + begin, m->col_index + end);
            y[r] = dot_csr16(m->col_index + begin, m->values + begin, (int)(end - begin), x);
        }
        break;
    case PACKED_NM24:
        for (int r = r0; r < r1; r++) {
            const uint8_t *index = m->nm_index + (size_t)r * (cols / 4);
            const float *v = m->values + (size_t)r * (cols / 2);
            prefetch_ahead(v, v + cols / 2);
            prefetch_ahead(index, index + cols / 4);
            y[r] = dot_nm24(index, v, cols / 4, x);
        }
        break;
    default:
        for (int r = r0; r < r1; r++) y[r] = dot_dense_with(m->values + (size_t)r * cols, x, cols, true);
        break;
    }
}

// Batch 1 of a sparse format: rows in equal static shares, one per thread.
static void matvec_one(const PackedMatrix *m, const float *x, float *y) {
#pragma omp parallel
    {
        const int n = omp_get_num_threads(), t = omp_get_thread_num();
        packed_matvec_rows(m, x, y, (int)((long)m->rows * t / n), (int)((long)m->rows * (t + 1) / n));
    }
}

void packed_matvec(const PackedMatrix *m, const float *x, float *y, int batch) {
    if (m->rows == 0 || batch <= 0) return;
    if (m->cols == 0) {
        memset(y, 0, sizeof(float) * (size_t)batch * m->rows);
        return;
    }
    if (m->format == PACKED_DENSE) {
        matvec_dense(m, x, y, batch);
        return;
    }
    if (batch == 1) {
        matvec_one(m, x, y);
        return;
    }
    if (!packed_batch_sparse_pays(m)) {
        matvec_expanded(m, x, y, batch);
        return;
    }
    for (int b0 = 0; b0 < batch; b0 += 16) {
        int n = batch - b0 < 16 ? batch - b0 : 16;
        spmm(m, x + (size_t)b0 * m->cols, y + (size_t)b0 * m->rows, n);
    }
}

void packed_matmul_with(const PackedMatrix *m, const float *X, float *Y, int T, bool sparse) {
    if (m->rows == 0 || T <= 0) return;
    if (m->cols == 0) {
        memset(Y, 0, sizeof(float) * (size_t)T * m->rows);
        return;
    }
    if (m->format == PACKED_DENSE) {
        matmul_forward(Y, X, m->values, T, m->cols, m->rows);
        return;
    }
    if (sparse) {
        if (T <= 16)
            spmm(m, X, Y, T);
        else
            spmm_prompt(m, X, Y, T);
        return;
    }
    // Blocks of rows expanded to dense into one buffer of about UNPACK_BLOCK_BYTES (in
    // cache, and no fresh pages per call as a whole dense copy had), each multiplied by
    // sgemm straight into its columns of Y.
    const int rows = m->rows, cols = m->cols;
    int block = (int)(UNPACK_BLOCK_BYTES / (sizeof(float) * (size_t)cols)) / 16 * 16;
    block = block < 16 ? 16 : block > rows ? rows : block;
    float *w = alloc_aligned(sizeof(float) * (size_t)block * cols);
    for (int r0 = 0; r0 < rows; r0 += block) {
        const int nb = rows - r0 < block ? rows - r0 : block;
#pragma omp parallel
        {
            int *index = alloc_aligned(sizeof(int) * ((size_t)cols + 1));
#pragma omp for schedule(static)
            for (int i = 0; i < nb; i++) expand_row(m, r0 + i, w + (size_t)i * cols, index);
            free(index);
        }
        sgemm(0, 1, T, nb, cols, 1.0f, X, cols, w, cols, 0.0f, Y + r0, rows);
    }
    free(w);
}

void packed_matmul(const PackedMatrix *m, const float *X, float *Y, int T) {
    packed_matmul_with(m, X, Y, T, packed_prompt_sparse_pays(m));
}
