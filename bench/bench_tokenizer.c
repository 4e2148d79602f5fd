// Single-threaded encoding speed of the tokenizer on a file, in MB/s: the whole text (the
// first call with the pre-token cache cold, then the median of --repeat calls on the same
// Tokenizer, as Python's tokenizers keeps its cache too) and line by line (the analogue of
// Python's encode_batch(lines)). bench/bench_tokenizers.py measures the Python library the
// same way; --expect compares the ids of the whole text with the ids it wrote.
//
//   bench_tokenizer TOKENIZER_JSON TEXT [--repeat 5] [--expect ids.bin]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"
#include "core/input_file.h"
#include "tokenizer/tokenizer.h"

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint8_t *read_all(const char *path, size_t *n) {
    char *buf = NULL;
    Error err;
    return input_file_read(path, "input", UINT64_MAX, &buf, n, &err) == 0 ? (uint8_t *)buf : NULL;
}

static int fail(const Error *err) {
    fprintf(stderr, "bench_tokenizer: %s\n", err->message);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer TOKENIZER_JSON TEXT [--repeat N] [--expect ids.bin]\n");
        return 2;
    }
    int repeat = 5;
    const char *expect = NULL;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--repeat") == 0) repeat = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--expect") == 0) expect = argv[i + 1];
    }
    if (repeat < 1 || repeat > 100) repeat = 5;
    size_t n = 0;
    uint8_t *text = read_all(argv[2], &n);
    if (!text) {
        fprintf(stderr, "bench_tokenizer: cannot read %s\n", argv[2]);
        return 1;
    }
    Error err;
    double t0 = now_seconds();
    Tokenizer *t;
    if (tokenizer_load(&t, argv[1], &err) != 0) return fail(&err);
    double load_s = now_seconds() - t0;
    double mb = (double)n / 1e6;

    TokenIds ids = {0};
    t0 = now_seconds();
    if (tokenizer_encode(t, text, n, &ids, &err) != 0) return fail(&err);
    double cold = now_seconds() - t0;
    double *whole = xmalloc(sizeof(double) * (size_t)repeat), *lines = xmalloc(sizeof(double) * (size_t)repeat);
    TokenIds again = {0};
    for (int r = 0; r < repeat; r++) {
        again.n = 0;
        t0 = now_seconds();
        if (tokenizer_encode(t, text, n, &again, &err) != 0) return fail(&err);
        whole[r] = now_seconds() - t0;
    }
    size_t line_tokens = 0;
    for (int r = 0; r < repeat; r++) {
        again.n = 0;
        t0 = now_seconds();
        for (size_t a = 0; a < n;) {
            size_t b = a;
            while (b < n && text[b] != '\n') b++;
            if (b < n) b++;  // the line with its newline, as Python's splitlines(keepends=True)
            if (tokenizer_encode(t, text + a, b - a, &again, &err) != 0) return fail(&err);
            a = b;
        }
        lines[r] = now_seconds() - t0;
        line_tokens = again.n;
    }
    qsort(whole, (size_t)repeat, sizeof *whole, compare_double);
    qsort(lines, (size_t)repeat, sizeof *lines, compare_double);
    printf("C tokenizer: %zu bytes, %zu tokens (%zu by lines), vocab %d, load %.3f s\n", n, ids.n, line_tokens,
           tokenizer_vocab_size(t), load_s);
    printf("C encode(whole)        first %7.2f MB/s   median %7.2f MB/s\n", mb / cold, mb / whole[repeat / 2]);
    printf("C encode(lines)                median %7.2f MB/s\n", mb / lines[repeat / 2]);
    int rc = 0;
    if (expect) {
        size_t bytes = 0;
        uint8_t *e = read_all(expect, &bytes);
        if (!e) {
            fprintf(stderr, "bench_tokenizer: cannot read %s\n", expect);
            return 1;
        }
        size_t m = bytes / 4, first = 0;
        const int32_t *ref = (const int32_t *)e;
        while (first < m && first < ids.n && ids.ids[first] == ref[first]) first++;
        if (m == ids.n && first == m) {
            printf("ids: identical to %s (%zu tokens)\n", expect, m);
        } else {
            printf("ids: DIFFER from %s: %zu vs %zu tokens, first difference at %zu\n", expect, ids.n, m, first);
            rc = 1;
        }
        free(e);
    }
    free(whole);
    free(lines);
    free(ids.ids);
    free(again.ids);
    free(text);
    tokenizer_free(t);
    return rc;
}
