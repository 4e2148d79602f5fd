// UTF-8 validation for the tokenizer: invalid bytes become U+FFFD per maximal invalid
// subpart (the Unicode recommendation that Python's "replace" handler and Rust's
// String::from_utf8_lossy both follow), and the streaming test for an unfinished character.
#include <string.h>

#include "tokenizer/tokenizer.h"

// Length of the valid UTF-8 sequence at s[0..n) (1..4), or -(k) where k >= 1 is the length of
// the maximal invalid subpart to replace (a prefix of a sequence that cannot be completed,
// or one bad byte). *truncated is set when the sequence was valid so far but n ran out.
static int utf8_sequence(const uint8_t *s, size_t n, int *truncated) {
    *truncated = 0;
    uint8_t b = s[0];
    if (b < 0x80) return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) need = 1;
    else if (b == 0xE0) need = 2, lo = 0xA0;
    else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) need = 2;
    else if (b == 0xED) need = 2, hi = 0x9F;
    else if (b == 0xF0) need = 3, lo = 0x90;
    else if (b >= 0xF1 && b <= 0xF3) need = 3;
    else if (b == 0xF4) need = 3, hi = 0x8F;
    else return -1;
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= n) {
            *truncated = 1;
            return -k;
        }
        uint8_t c = s[k];
        uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (c < l || c > h) return -k;
    }
    return need + 1;
}

uint8_t *utf8_replace_invalid(const uint8_t *in, size_t n, size_t *out_n) {
    size_t i = 0;
    int truncated;
    while (i < n) {  // fast path: find the first invalid byte
        if (in[i] < 0x80) {
            i++;
            continue;
        }
        int k = utf8_sequence(in + i, n - i, &truncated);
        if (k < 0) break;
        i += (size_t)k;
    }
    if (i == n) return NULL;
    // Each replaced subpart of >= 1 byte becomes 3 bytes: at most 3n.
    uint8_t *out = xmalloc(3 * n + 1);
    memcpy(out, in, i);
    size_t o = i;
    while (i < n) {
        int k = utf8_sequence(in + i, n - i, &truncated);
        if (k > 0) {
            memcpy(out + o, in + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            out[o++] = 0xEF, out[o++] = 0xBF, out[o++] = 0xBD;
            i += (size_t)-k;
        }
    }
    *out_n = o;
    return out;
}

size_t tokenizer_utf8_complete(const uint8_t *buf, size_t n) {
    // Only the last (at most 3) bytes can start a sequence that more bytes would complete.
    size_t start = n > 3 ? n - 3 : 0;
    for (size_t i = start; i < n; i++) {
        if ((buf[i] & 0xC0) == 0x80) continue;
        int truncated;
        int k = utf8_sequence(buf + i, n - i, &truncated);
        if (k < 0 && truncated) return i;
    }
    return n;
}
