// Vectorizable exp, log and the activations built on them. glibc's expf and logf are
// scalar calls unless the whole build uses -ffast-math (which we refuse: it would let
// the compiler delete isfinite() checks), so loops over activations use these inline
// versions instead; gcc turns them into AVX-512 code. Accuracy is about 2 ulp over the
// ranges a model sees; fast_expf flushes inputs below -87.3 to exp(-87.3) ~ 1.2e-38.
#ifndef MP_CORE_FASTMATH_H
#define MP_CORE_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t float_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float fast_expf(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    // n = round(x / ln 2) by the 1.5*2^23 trick, which keeps everything in float lanes.
    const float shifter = 12582912.0f;
    float t = x * 1.44269504088896341f + shifter;
    float n = t - shifter;
    int32_t i = (int32_t)(float_to_bits(t) - float_to_bits(shifter));
    // r = x - n ln 2 in two pieces (Cody-Waite), |r| <= ln(2)/2.
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    // exp(r) by its Taylor series to degree 7: error below 1e-8 relative on |r| <= 0.347.
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return p * bits_to_float((uint32_t)(i + 127) << 23);
}

// Natural log of a positive normal float.
static inline float fast_logf(float x) {
    uint32_t u = float_to_bits(x);
    // Split x = m * 2^e with m in [sqrt(1/2), sqrt(2)).
    int32_t e = (int32_t)(u >> 23) - 127;
    uint32_t mant = u & 0x007fffffu;
    float m = bits_to_float(mant | 0x3f800000u);  // in [1, 2)
    if (m > 1.41421356f) {
        m *= 0.5f;
        e += 1;
    }
    // log(m) = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716: odd series to s^9.
    float s = (m - 1.0f) / (m + 1.0f);
    float s2 = s * s;
    float p = 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    return 2.0f * s * p + (float)e * 0.693147180559945309f;
}

// log(1 + y) for y >= 0, accurate also for tiny y (Goldberg's correction).
static inline float fast_log1pf(float y) {
    float u = 1.0f + y;
    float d = u - 1.0f;
    return d == 0.0f ? y : fast_logf(u) * (y / d);
}

static inline float sigmoidf(float x) { return 1.0f / (1.0f + fast_expf(-x)); }

static inline float siluf(float x) { return x * sigmoidf(x); }

// siluf over an array (out may be x), the same bits element by element. Written as one
// expression, x * sigmoidf(x) lets gcc split off the inputs below -88.3, whose sigmoid is
// the subnormal constant 1 / (1 + e^88.3), and multiply every vector by it before the
// blend: a subnormal operand, so a microcode assist on every vector, and silu ran >10x
// slower than sigmoid (8.4 against 0.5-0.6 ms for 1.5 M floats, one core). The sigmoids of a
// block go to the stack first, then the products: no constant product is left to hoist.
#define SILU_BLOCK 256
static inline void silu_array(float *out, const float *x, long n) {
    float s[SILU_BLOCK];
    for (long i0 = 0; i0 < n; i0 += SILU_BLOCK) {
        const long m = n - i0 < SILU_BLOCK ? n - i0 : SILU_BLOCK;
        const float *xb = x + i0;
        float *ob = out + i0;
#pragma omp simd
        for (long i = 0; i < m; i++) s[i] = sigmoidf(xb[i]);
        // Each product reads its x before it writes its out: in place is safe under simd.
#pragma omp simd
        for (long i = 0; i < m; i++) ob[i] = xb[i] * s[i];
    }
}

// softplus(x) = log(1 + e^x), written so that it neither overflows nor loses the tail.
static inline float softplusf(float x) {
    float ax = x < 0.0f ? -x : x;
    return (x > 0.0f ? x : 0.0f) + fast_log1pf(fast_expf(-ax));
}

#endif
