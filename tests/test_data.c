// Tests of src/data: batches are pure functions of (seed, index), each synthetic layout is
// what data.h defines (decoded independently here), text windows are the file's bytes,
// token files are read and every malformed one is rejected with a clear message,
// validation batches cover the split exactly once, and the accuracy counts.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/data.h"  // defines: data_open, data_train_batch, data_val_batch, data_accuracy

#include "check.h"


static char tmpdir[64];

static void tmp_path(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", tmpdir, name); }

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static void put_le32(uint8_t *b, int32_t v) {
    uint32_t u = (uint32_t)v;
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(u >> (8 * i));
}

// An llm.c token file of n ids with the given header fields; payload_tokens ids follow.
static void write_token_file(const char *path, int32_t magic, int32_t version, int32_t count, const uint16_t *ids,
                             long payload_tokens) {
    size_t size = 1024 + 2 * (size_t)payload_tokens;
    uint8_t *buf = calloc(1, size);
    put_le32(buf, magic);
    put_le32(buf + 4, version);
    put_le32(buf + 8, count);
    for (long i = 0; i < payload_tokens; i++) {
        buf[1024 + 2 * i] = (uint8_t)(ids[i] & 0xff);
        buf[1024 + 2 * i + 1] = (uint8_t)(ids[i] >> 8);
    }
    write_bytes(path, buf, size);
    free(buf);
}

static int same(const int32_t *a, const int32_t *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

// ---- determinism of training batches ----
static void test_determinism(DataKind kind, const char *path) {
    DataOptions o;
    data_options_defaults(&o);
    o.kind = kind;
    o.path = path;
    int B = 4, L = 64;
    Dataset ds;
    Error err;
    if (data_open(&ds, &o, L, &err)) {
        check(0, "determinism %s: open: %s", data_kind_name(kind), err.message);
        return;
    }
    size_t n = (size_t)B * L;
    int32_t *t1 = malloc(n * 4), *g1 = malloc(n * 4), *t2 = malloc(n * 4), *g2 = malloc(n * 4);
    data_train_batch(&ds, 7, B, L, t1, g1);
    data_train_batch(&ds, 8, B, L, t2, g2);
    data_train_batch(&ds, 7, B, L, t2, g2);  // after another batch, batch 7 again
    check(same(t1, t2, n) && same(g1, g2, n), "determinism %s: batch 7 twice is the same", data_kind_name(kind));
    data_train_batch(&ds, 8, B, L, t2, g2);
    check(!same(t1, t2, n), "determinism %s: batch 8 differs from batch 7", data_kind_name(kind));
    // A fresh dataset with the same seed gives the same batch; another seed does not.
    Dataset again;
    data_open(&again, &o, L, &err);
    data_train_batch(&again, 7, B, L, t2, g2);
    check(same(t1, t2, n) && same(g1, g2, n), "determinism %s: reopened dataset, same batch 7", data_kind_name(kind));
    data_close(&again);
    o.seed += 1;
    data_open(&again, &o, L, &err);
    data_train_batch(&again, 7, B, L, t2, g2);
    check(!same(t1, t2, n), "determinism %s: another seed, another batch 7", data_kind_name(kind));
    data_close(&again);
    data_close(&ds);
    free(t1), free(g1), free(t2), free(g2);
}

// ---- layouts of the synthetic tasks, decoded from scratch ----

// Returns 1 if one selective-copying row is right: the context [0, L-n) holds n data
// tokens (2..a+1) among blanks, [L-n, L) holds markers, the j-th marker's target is the
// j-th data token, every other target is -1. *first_pos gets the first data position.
static int selective_row_ok(const int32_t *tok, const int32_t *tgt, int L, int n, int a, int *first_pos) {
    int data_seen = 0;
    *first_pos = -1;
    for (int p = 0; p < L - n; p++) {
        if (tgt[p] != -1) return 0;
        if (tok[p] == 0) continue;
        if (tok[p] < 2 || tok[p] > a + 1) return 0;
        if (data_seen >= n) return 0;
        if (*first_pos < 0) *first_pos = p;
        if (tgt[L - n + data_seen] != tok[p]) return 0;
        data_seen++;
    }
    if (data_seen != n) return 0;
    for (int p = L - n; p < L; p++)
        if (tok[p] != 1) return 0;
    return 1;
}

static void test_selective_copying_layout(void) {
    DataOptions o;
    data_options_defaults(&o);
    o.kind = DATA_SELECTIVE_COPYING;
    o.vocab = 10;
    o.n_memorize = 8;
    int B = 16, L = 40;
    Dataset ds;
    Error err;
    if (data_open(&ds, &o, L, &err)) {
        check(0, "selective copying: open: %s", err.message);
        return;
    }
    check(data_vocab_size(&ds) == 12, "selective copying: vocab 10 symbols + blank + marker = %d",
          data_vocab_size(&ds));
    int32_t tok[16 * 40], tgt[16 * 40];
    int bad_rows = 0, first_positions_seen = 0, symbols_seen[12] = {0};
    long last_first = -2;
    for (long k = 0; k < 20; k++) {
        data_train_batch(&ds, k, B, L, tok, tgt);
        for (int r = 0; r < B; r++) {
            int first;
            if (!selective_row_ok(tok + r * L, tgt + r * L, L, 8, 10, &first)) bad_rows++;
            if (first != last_first) first_positions_seen++;
            last_first = first;
            for (int p = 0; p < L; p++) symbols_seen[tok[r * L + p]]++;
        }
    }
    check(bad_rows == 0, "selective copying: %d of 320 training rows break the layout", bad_rows);
    int all_symbols = 1;
    for (int s = 0; s < 12; s++) all_symbols &= symbols_seen[s] > 0;
    check(all_symbols && first_positions_seen > 100,
          "selective copying: every symbol occurs and data positions vary (%d changes)", first_positions_seen);
    // The validation set has the same layout.
    long nb = data_val_batch_count(&ds, B, L);
    bad_rows = 0;
    for (long i = 0; i < nb; i++) {
        data_val_batch(&ds, i, B, L, tok, tgt);
        for (int r = 0; r < B; r++) {
            int first;
            if (i * B + r < o.val_sequences && !selective_row_ok(tok + r * L, tgt + r * L, L, 8, 10, &first))
                bad_rows++;
        }
    }
    check(bad_rows == 0, "selective copying: %d validation rows break the layout", bad_rows);
    // Too short a sequence for 8 data tokens + 8 markers is an error naming the need.
    Dataset short_ds;
    int rc = data_open(&short_ds, &o, 15, &err);
    check(rc == -1 && strstr(err.message, "seqlen 15") && strstr(err.message, ">= 16"),
          "selective copying: seqlen 15 < 2*8 refused: %s", rc ? err.message : "(accepted)");
    data_close(&ds);
}

// One associative-recall row: pairs (key 1..a distinct, value a+1..2a) in [0, 2n),
// blanks up to L-n, then n queries that are a permutation of the keys, each targeting
// the value of its pair; every other target -1.
static int recall_row_ok(const int32_t *tok, const int32_t *tgt, int L, int n, int a, int *query_order_changes) {
    for (int j = 0; j < n; j++) {
        int32_t k = tok[2 * j], v = tok[2 * j + 1];
        if (k < 1 || k > a || v < a + 1 || v > 2 * a) return 0;
        for (int i = 0; i < j; i++)
            if (tok[2 * i] == k) return 0;
    }
    for (int p = 0; p < L - n; p++) {
        if (tgt[p] != -1) return 0;
        if (p >= 2 * n && tok[p] != 0) return 0;
    }
    int used[64] = {0};
    for (int q = 0; q < n; q++) {
        int pair = -1;
        for (int j = 0; j < n; j++)
            if (tok[2 * j] == tok[L - n + q]) pair = j;
        if (pair < 0 || used[pair]) return 0;
        used[pair] = 1;
        if (tgt[L - n + q] != tok[2 * pair + 1]) return 0;
        if (pair != q) (*query_order_changes)++;
    }
    return 1;
}

static void test_associative_recall_layout(void) {
    DataOptions o;
    data_options_defaults(&o);
    o.kind = DATA_ASSOCIATIVE_RECALL;
    o.vocab = 12;
    o.n_memorize = 6;
    int B = 8, L = 30;
    Dataset ds;
    Error err;
    if (data_open(&ds, &o, L, &err)) {
        check(0, "associative recall: open: %s", err.message);
        return;
    }
    check(data_vocab_size(&ds) == 25, "associative recall: vocab blank + 12 keys + 12 values = %d",
          data_vocab_size(&ds));
    int32_t tok[8 * 30], tgt[8 * 30];
    int bad_rows = 0, shuffled = 0;
    for (long k = 0; k < 40; k++) {
        data_train_batch(&ds, k, B, L, tok, tgt);
        for (int r = 0; r < B; r++)
            if (!recall_row_ok(tok + r * L, tgt + r * L, L, 6, 12, &shuffled)) bad_rows++;
    }
    check(bad_rows == 0, "associative recall: %d of 320 training rows break the layout", bad_rows);
    check(shuffled > 320, "associative recall: queries are shuffled (%d queries out of pair order)", shuffled);
    // Keys must be distinct, so the alphabet must hold n_memorize keys.
    Dataset bad;
    o.vocab = 5;
    int rc = data_open(&bad, &o, L, &err);
    check(rc == -1 && strstr(err.message, "data.vocab"), "associative recall: alphabet 5 < 6 keys refused: %s",
          rc ? err.message : "(accepted)");
    o.vocab = 12;
    rc = data_open(&bad, &o, 17, &err);
    check(rc == -1 && strstr(err.message, ">= 18"), "associative recall: seqlen 17 < 3*6 refused: %s",
          rc ? err.message : "(accepted)");
    data_close(&ds);
}

// The synthetic validation set: fixed, padded in its last batch, never a training batch.
static void test_synthetic_validation(void) {
    DataOptions o;
    data_options_defaults(&o);
    o.val_sequences = 10;
    int B = 4, L = 48;
    Dataset ds;
    Error err;
    data_open(&ds, &o, L, &err);
    long nb = data_val_batch_count(&ds, B, L);
    check(nb == 3, "synthetic validation: 10 sequences in batches of 4 = %ld batches (want 3)", nb);
    int32_t tok[4 * 48], tgt[4 * 48], tok2[4 * 48], tgt2[4 * 48];
    data_val_batch(&ds, 2, B, L, tok, tgt);
    int padding_ok = 1;
    for (int p = 2 * L; p < 4 * L; p++) padding_ok &= tok[p] == 0 && tgt[p] == -1;
    int real_rows = tgt[L - 1] >= 2 && tgt[2 * L - 1] >= 2;
    check(padding_ok && real_rows, "synthetic validation: last batch has 2 real rows and 2 rows of target -1");
    // Row r of batch i is sequence i*B + r whatever B is.
    int32_t one_tok[48], one_tgt[48];
    data_val_batch(&ds, 9, 1, L, one_tok, one_tgt);
    check(same(one_tok, tok + L, L) && same(one_tgt, tgt + L, L),
          "synthetic validation: sequence 9 is the same in batches of 1 and of 4");
    // No validation row equals any row of the first 200 training batches.
    int collisions = 0;
    data_val_batch(&ds, 0, B, L, tok, tgt);
    for (long k = 0; k < 200; k++) {
        data_train_batch(&ds, k, B, L, tok2, tgt2);
        for (int a = 0; a < B; a++)
            for (int b = 0; b < B; b++) collisions += same(tok + a * L, tok2 + b * L, L);
    }
    check(collisions == 0, "synthetic validation: %d validation rows equal a training row", collisions);
    data_close(&ds);
}

// ---- text ----

// Bytes of a fixed pseudo-random text (an LCG of the test's own), n long.
static uint8_t *make_text(long n) {
    uint8_t *t = malloc((size_t)n);
    uint32_t x = 12345;
    for (long i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        t[i] = (uint8_t)(x >> 24);
    }
    return t;
}

static void test_text_windows(const char *path, const uint8_t *text, long n) {
    DataOptions o;
    data_options_defaults(&o);
    o.kind = DATA_FILE;  // detected as text: no magic
    o.path = path;
    o.val_fraction = 0.25f;
    int B = 6, L = 32;
    Dataset ds;
    Error err;
    if (data_open(&ds, &o, L, &err)) {
        check(0, "text: open: %s", err.message);
        return;
    }
    check(ds.kind == DATA_TEXT && data_vocab_size(&ds) == 256 && ds.n_train == n - n / 4,
          "text: detected as bytes, vocab %d, %ld training tokens of %ld", data_vocab_size(&ds), ds.n_train, n);
    int32_t tok[6 * 32], tgt[6 * 32];
    int bad = 0;
    for (long k = 0; k < 50; k++) {
        data_train_batch(&ds, k, B, L, tok, tgt);
        for (int r = 0; r < B; r++) {
            // Find where the row's window starts in the file: it must lie in the training split.
            long found = -1;
            for (long s = 0; s + L <= n && found < 0; s++) {
                int match = 1;
                for (int c = 0; c < L && match; c++) match = tok[r * L + c] == text[s + c];
                if (match) found = s;
            }
            if (found < 0 || found + L + 1 > ds.n_train) {
                bad++;
                continue;
            }
            for (int c = 0; c < L; c++) bad += tgt[r * L + c] != text[found + c + 1];
        }
    }
    check(bad == 0, "text: 300 training windows are file bytes inside the training split, targets shifted by one");
    data_close(&ds);

    // A file too small for one window is a clear error.
    char small[128];
    tmp_path(small, sizeof small, "small.txt");
    write_bytes(small, "hello", 5);
    o.path = small;
    o.kind = DATA_TEXT;
    int rc = data_open(&ds, &o, L, &err);
    check(rc == -1 && strstr(err.message, small) && strstr(err.message, "needs 33"),
          "text: 5-byte file refused for seqlen 32: %s", rc ? err.message : "(accepted)");
    o.path = "/nonexistent/file.txt";
    rc = data_open(&ds, &o, L, &err);
    check(rc == -1 && strstr(err.message, "/nonexistent/file.txt"), "text: missing file: %s",
          rc ? err.message : "(accepted)");
}

// Validation batches of a token file whose id at position i is i (mod 65536), so that
// each target names its position: every validation position must be a target once, and
// its input the previous position.
static void check_val_coverage(const char *label, const Dataset *ds, int B, int L, long first, long n) {
    long nb = data_val_batch_count(ds, B, L);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)B * L), *tgt = malloc(sizeof(int32_t) * (size_t)B * L);
    int *seen = calloc((size_t)n, sizeof(int));
    long stray = 0, wrong_input = 0, counted = 0;
    for (long i = 0; i < nb; i++) {
        data_val_batch(ds, i, B, L, tok, tgt);
        for (int p = 0; p < B * L; p++) {
            if (tgt[p] < 0) continue;
            counted++;
            if (tgt[p] < first || tgt[p] >= n) {
                stray++;
                continue;
            }
            seen[tgt[p]]++;
            wrong_input += tok[p] != tgt[p] - 1;
        }
    }
    long once = 0;
    for (long t = first; t < n; t++) once += seen[t] == 1;
    check(once == n - first && stray == 0 && wrong_input == 0 && counted == n - first,
          "%s: %ld batches cover the %ld targets [%ld, %ld) exactly once (%ld counted, %ld stray, %ld bad inputs)",
          label, nb, n - first, first, n, counted, stray, wrong_input);
    free(tok), free(tgt), free(seen);
}

static void test_token_file(void) {
    char path[128];
    tmp_path(path, sizeof path, "tokens.bin");
    long n = 1000;
    uint16_t ids[1000];
    for (long i = 0; i < n; i++) ids[i] = (uint16_t)i;
    ids[500] = 4000;  // the largest id: vocab must become 4001
    write_token_file(path, DATA_TOKENS_MAGIC, 1, (int32_t)n, ids, n);
    DataOptions o;
    data_options_defaults(&o);
    o.kind = DATA_TOKENS;
    o.path = path;
    o.val_fraction = 0.1f;
    Dataset ds;
    Error err;
    int L = 7;
    if (data_open(&ds, &o, L, &err)) {
        check(0, "tokens: open: %s", err.message);
        return;
    }
    check(ds.n_tokens == n && data_vocab_size(&ds) == 4001 && ds.n_train == 900,
          "tokens: %ld ids read, vocab = max id + 1 = %d, %ld training tokens", ds.n_tokens, data_vocab_size(&ds),
          ds.n_train);
    int32_t tok[3 * 7], tgt[3 * 7];
    int bad = 0;
    for (long k = 0; k < 30; k++) {
        data_train_batch(&ds, k, 3, L, tok, tgt);
        for (int r = 0; r < 3; r++) {
            long s = -1;
            for (long i = 0; i < n; i++)  // ids are the positions except at 500
                if (i != 500 && ids[i] == tok[r * L]) s = i;
            if (tok[r * L] == 4000) s = 500;
            if (s < 0 || s + L + 1 > 900) {
                bad++;
                continue;
            }
            for (int c = 0; c < L; c++) bad += tok[r * L + c] != ids[s + c] || tgt[r * L + c] != ids[s + c + 1];
        }
    }
    check(bad == 0, "tokens: 90 training windows are ids of the file inside the training split");
    data_close(&ds);

    // A given vocab must cover every id.
    o.vocab = 4000;
    int rc = data_open(&ds, &o, L, &err);
    check(rc == -1 && strstr(err.message, "token 500") && strstr(err.message, "4000"),
          "tokens: id 4000 with vocab 4000 refused: %s", rc ? err.message : "(accepted)");
    o.vocab = 0;

    // Validation coverage: ids are positions (no 4000 here), L and B not dividing the split.
    ids[500] = 500;
    write_token_file(path, DATA_TOKENS_MAGIC, 1, (int32_t)n, ids, n);
    o.kind = DATA_FILE;  // detected by the magic
    o.val_fraction = 0.137f;
    data_open(&ds, &o, 10, &err);
    check(ds.kind == DATA_TOKENS, "tokens: data.kind = file detects the token file");
    check_val_coverage("tokens validation", &ds, 3, 10, ds.n_train, n);
    check_val_coverage("tokens validation, other B and L", &ds, 5, 4, ds.n_train, n);
    check(data_has_train(&ds), "tokens: a training split exists with val_fraction 0.137");
    data_close(&ds);
    // Evaluation of a whole file: val_fraction 1; position 0 has no predecessor.
    o.val_fraction = 1.0f;
    if (data_open(&ds, &o, 64, &err)) {
        check(0, "tokens: open whole file: %s", err.message);
    } else {
        check_val_coverage("whole-file evaluation", &ds, 2, 64, 1, n);
        check(!data_has_train(&ds), "whole-file evaluation: no training split");
        data_close(&ds);
    }
    o.val_fraction = 0.0f;
    data_open(&ds, &o, 10, &err);
    check(data_val_batch_count(&ds, 4, 10) == 0, "tokens: val_fraction 0 gives no validation batch");
    data_close(&ds);
}

static void expect_open_error(const char *label, const char *path, DataKind kind, const char *want1,
                              const char *want2) {
    DataOptions o;
    data_options_defaults(&o);
    o.kind = kind;
    o.path = path;
    Dataset ds;
    Error err;
    int rc = data_open(&ds, &o, 8, &err);
    int ok =
        rc == -1 && strstr(err.message, path) && strstr(err.message, want1) && (!want2 || strstr(err.message, want2));
    check(ok, "malformed token file, %s: %s", label, rc ? err.message : "(accepted)");
    if (rc == 0) data_close(&ds);
}

static void test_malformed_token_files(void) {
    char path[128];
    uint16_t ids[100];
    for (int i = 0; i < 100; i++) ids[i] = (uint16_t)(i % 50);

    tmp_path(path, sizeof path, "short.bin");
    uint8_t header_part[100] = {0};
    put_le32(header_part, DATA_TOKENS_MAGIC);
    write_bytes(path, header_part, sizeof header_part);
    expect_open_error("shorter than the header", path, DATA_TOKENS, "100 bytes", "1024-byte header");
    expect_open_error("shorter than the header, detected by magic", path, DATA_FILE, "100 bytes", "1024-byte header");

    tmp_path(path, sizeof path, "magic.bin");
    write_token_file(path, 20240519, 1, 100, ids, 100);
    expect_open_error("wrong magic", path, DATA_TOKENS, "20240519", "expected 20240520");

    tmp_path(path, sizeof path, "version.bin");
    write_token_file(path, DATA_TOKENS_MAGIC, 3, 100, ids, 100);  // 1 (uint16) and 2 (uint32) are valid
    expect_open_error("wrong version", path, DATA_TOKENS, "version) is 3", "expected 1");

    tmp_path(path, sizeof path, "count.bin");
    write_token_file(path, DATA_TOKENS_MAGIC, 1, 150, ids, 100);
    expect_open_error("count larger than the file", path, DATA_TOKENS, "150 tokens", "only 200 bytes");

    tmp_path(path, sizeof path, "trailing.bin");
    write_token_file(path, DATA_TOKENS_MAGIC, 1, 90, ids, 100);
    expect_open_error("bytes after the last token", path, DATA_TOKENS, "90 tokens", "200 bytes follow");

    tmp_path(path, sizeof path, "empty.bin");
    write_token_file(path, DATA_TOKENS_MAGIC, 1, 0, ids, 0);
    expect_open_error("no tokens", path, DATA_TOKENS, "is 0", ">= 1");

    tmp_path(path, sizeof path, "few.bin");
    write_token_file(path, DATA_TOKENS_MAGIC, 1, 5, ids, 5);
    expect_open_error("fewer tokens than one window", path, DATA_TOKENS, "holds 5 tokens", "needs 9");
}

// ---- accuracy ----
static void test_accuracy(void) {
    // 4 positions, V = 3. Argmaxes: 2, 0, 1, 0 (a tie between 0 and 2 resolves to 0).
    const float logits[12] = {0.1f, 0.2f, 0.9f, 5.0f, -1.0f, 4.0f, -3.0f, -2.0f, -2.5f, 1.0f, 0.0f, 1.0f};
    const int32_t targets[4] = {2, 1, -1, 0};
    long correct = -1, counted = -1;
    data_accuracy(logits, 3, targets, 4, &correct, &counted);
    // Position 0 right, 1 wrong, 2 ignored, 3 right by the tie rule: 2 of 3.
    check(correct == 2 && counted == 3, "accuracy: %ld correct of %ld counted (want 2 of 3)", correct, counted);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mp_test_data_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    char text_path[128];
    tmp_path(text_path, sizeof text_path, "text.txt");
    long n_text = 4000;
    uint8_t *text = make_text(n_text);
    write_bytes(text_path, text, (size_t)n_text);

    test_determinism(DATA_SELECTIVE_COPYING, NULL);
    test_determinism(DATA_ASSOCIATIVE_RECALL, NULL);
    test_determinism(DATA_TEXT, text_path);
    test_selective_copying_layout();
    test_associative_recall_layout();
    test_synthetic_validation();
    test_text_windows(text_path, text, n_text);
    test_token_file();
    test_malformed_token_files();
    test_accuracy();
    free(text);

    // Remove the temporary files and folder.
    const char *names[] = {"text.txt", "small.txt", "tokens.bin", "short.bin", "magic.bin", "version.bin",
                           "count.bin", "trailing.bin", "empty.bin", "few.bin"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[128];
        tmp_path(p, sizeof p, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    printf("%s\n", check_failures ? "FAILED" : "all data tests passed");
    return check_failures ? 1 : 0;
}
