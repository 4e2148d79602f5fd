// The low-precision dense matrices of sparse/lowp.h: conversion and the product kernels
// (AVX-512 or AVX2 at compile time, plain C beside them), tested against
// lowp_matvec_reference.
#include "sparse/lowp.h"

#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"      // defines: matmul_forward, sgemm
#include "core/error.h"        // defines: xmalloc, xcalloc

const char *lowp_format_name(LowpFormat format) {
    switch (format) {
    case LOWP_F32: return "fp32";
    case LOWP_BF16: return "bf16";
    case LOWP_INT8: return "int8";
    default: return "unknown";
    }
}

int lowp_format_parse(const char *name) {
    for (int f = 0; f < LOWP_N_FORMATS; f++)
        if (strcmp(name, lowp_format_name((LowpFormat)f)) == 0) return f;
    return -1;
}

uint16_t lowp_float_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // NaN stays a NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float lowp_bf16_to_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

size_t lowp_bytes(LowpFormat format, int rows, int cols) {
    size_t n = (size_t)rows * (size_t)cols;
    switch (format) {
    case LOWP_BF16: return 2 * n;
    case LOWP_INT8: return n + 4 * (size_t)rows;
    default: return 4 * n;
    }
}

void lowp_matrix_alloc(LowpMatrix *m, LowpFormat format, int rows, int cols) {
    memset(m, 0, sizeof *m);
    m->format = format, m->rows = rows, m->cols = cols;
    size_t n = (size_t)rows * (size_t)cols + 64;  // + 64: vector loads of a row's tail stay inside
    switch (format) {
    case LOWP_BF16: m->bf16 = xcalloc(n, sizeof(uint16_t)); break;
    case LOWP_INT8:
        m->i8 = xcalloc(n, 1);
        m->scale = xcalloc((size_t)rows + 1, sizeof(float));
        break;
    default: m->f32 = xcalloc(n, sizeof(float)); break;
    }
}

void lowp_matrix_from_f32(LowpMatrix *m, LowpFormat format, const float *w, int rows, int cols) {
    lowp_matrix_alloc(m, format, rows, cols);
    const size_t n = (size_t)rows * (size_t)cols;
    if (format == LOWP_F32) memcpy(m->f32, w, sizeof(float) * n);
    if (format == LOWP_BF16)
        for (size_t i = 0; i < n; i++) m->bf16[i] = lowp_float_to_bf16(w[i]);
    if (format == LOWP_INT8)
        for (int r = 0; r < rows; r++) {
            const float *wr = w + (size_t)r * cols;
            float top = 0.0f;
            for (int c = 0; c < cols; c++) top = fmaxf(top, fabsf(wr[c]));
            const float scale = top / 127.0f, inv = top > 0.0f ? 127.0f / top : 0.0f;
            m->scale[r] = scale;
            for (int c = 0; c < cols; c++) {
                long q = lrintf(wr[c] * inv);
                m->i8[(size_t)r * cols + c] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
            }
        }
}

void lowp_matrix_free(LowpMatrix *m) {
    free(m->f32), free(m->bf16), free(m->i8), free(m->scale);
    memset(m, 0, sizeof *m);
}

void lowp_matrix_row(const LowpMatrix *m, int r, float *out) {
    const size_t at = (size_t)r * m->cols;
    for (int c = 0; c < m->cols; c++)
        out[c] = m->format == LOWP_BF16   ? lowp_bf16_to_float(m->bf16[at + c])
                 : m->format == LOWP_INT8 ? m->scale[r] * (float)m->i8[at + c]
                                          : m->f32[at + c];
}

// Prefetches the lines of [p, p + bytes) 1 KB on (as the sparse decode kernels do).
static inline void prefetch_ahead(const void *p, size_t bytes) {
    const char *b = (const char *)p + 1024, *e = b + bytes;
    for (; b < e; b += 64) _mm_prefetch(b, _MM_HINT_T0);
}

#if defined(__AVX2__) && defined(__FMA__)
static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
#endif

// <row, x>: a row of bf16 (b != NULL) or int8 (q) values, without the int8 row scale.
static inline float dot_lowp(const uint16_t *restrict b, const int8_t *restrict q, const float *restrict x, int n,
                             bool stream) {
    int c = 0;
    float sum = 0.0f;
#if defined(__AVX512F__)
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (; c + 32 <= n; c += 32) {
        __m512 w0, w1;
        if (b) {
            if (stream) prefetch_ahead(b + c, 64);
            w0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(b + c))), 16));
            w1 = _mm512_castsi512_ps(
                _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(b + c + 16))), 16));
        } else {
            if (stream && c % 64 == 0) prefetch_ahead(q + c, 64);
            w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + c))));
            w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + c + 16))));
        }
        a0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + c), a0);
        a1 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + c + 16), a1);
    }
    sum = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; c + 16 <= n; c += 16) {
        __m256 w0, w1;
        if (b) {
            if (stream && c % 32 == 0) prefetch_ahead(b + c, 64);
            w0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(b + c))), 16));
            w1 = _mm256_castsi256_ps(
                _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(b + c + 8))), 16));
        } else {
            if (stream && c % 64 == 0) prefetch_ahead(q + c, 64);
            w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + c))));
            w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + c + 8))));
        }
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + c), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + c + 8), a1);
    }
    sum = hsum8(_mm256_add_ps(a0, a1));
#endif
    (void)stream;
    for (; c < n; c++) sum += (b ? lowp_bf16_to_float(b[c]) : (float)q[c]) * x[c];
    return sum;
}

// Floats: the fp32 dot of the sparse kernels' dense path is not reachable from here, so
// F32 rows go through the same loop shape with a plain FMA.
static inline float dot_f32(const float *restrict w, const float *restrict x, int n) {
    float sum = 0.0f;
    int c = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; c + 16 <= n; c += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 8), _mm256_loadu_ps(x + c + 8), a1);
    }
    sum = hsum8(_mm256_add_ps(a0, a1));
#endif
    for (; c < n; c++) sum += w[c] * x[c];
    return sum;
}

static inline float dot_row(const LowpMatrix *m, int r, const float *x, bool stream) {
    const size_t at = (size_t)r * m->cols;
    switch (m->format) {
    case LOWP_BF16: return dot_lowp(m->bf16 + at, NULL, x, m->cols, stream);
    case LOWP_INT8: return m->scale[r] * dot_lowp(NULL, m->i8 + at, x, m->cols, stream);
    default: return dot_f32(m->f32 + at, x, m->cols);
    }
}

void lowp_matvec(const LowpMatrix *m, const float *x, float *y, int batch) {
    const int rows = m->rows, cols = m->cols;
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > 4096)
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < batch; b++) y[(size_t)b * rows + r] = dot_row(m, r, x + (size_t)b * cols, b == 0);
}

void lowp_matvec_rows(const LowpMatrix *m, const float *x, float *y, int r0, int r1) {
    for (int r = r0; r < r1; r++) y[r] = dot_row(m, r, x, true);
}

void lowp_matmul(const LowpMatrix *m, const float *X, float *Y, int T) {
    if (T <= 16 || m->format == LOWP_F32) {
        if (m->format == LOWP_F32)
            matmul_forward(Y, X, m->f32, T, m->cols, m->rows);
        else
            lowp_matvec(m, X, Y, T);
        return;
    }
    // Blocks of rows converted to fp32 (about 1 MB, in cache), each multiplied by sgemm
    // straight into its columns of Y.
    const int cols = m->cols;
    int block = (int)((1u << 20) / (sizeof(float) * (size_t)cols)) / 16 * 16;
    block = block < 16 ? 16 : block;
    float *w = xmalloc(sizeof(float) * (size_t)block * cols);
    for (int r0 = 0; r0 < m->rows; r0 += block) {
        const int nb = m->rows - r0 < block ? m->rows - r0 : block;
#pragma omp parallel for schedule(static)
        for (int i = 0; i < nb; i++) lowp_matrix_row(m, r0 + i, w + (size_t)i * cols);
        sgemm(0, 1, T, nb, cols, 1.0f, X, cols, w, cols, 0.0f, Y + r0, m->rows);
    }
    free(w);
}

void lowp_matvec_reference(const LowpMatrix *m, const float *x, float *y, int batch) {
    float *row = xmalloc(sizeof(float) * ((size_t)m->cols + 1));
    for (int r = 0; r < m->rows; r++) {
        lowp_matrix_row(m, r, row);
        for (int b = 0; b < batch; b++) {
            double acc = 0.0;
            for (int c = 0; c < m->cols; c++) acc += (double)row[c] * x[(size_t)b * m->cols + c];
            y[(size_t)b * m->rows + r] = (float)acc;
        }
    }
    free(row);
}
