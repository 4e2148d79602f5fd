// Token files written by data_tokens_write and read back by the data reader: version 1
// (uint16) for vocabularies up to 65,536, version 2 (uint32) beyond, both opened by
// data_open with the same windows; ids outside the vocabulary and bad versions refused.
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "data/data.h"

static void roundtrip(const char *path, int vocab, int expect_version) {
    enum { N = 300 };
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(((long)i * 7919) % vocab);
    ids[N - 1] = vocab - 1;
    Error err;
    int rc = data_tokens_write(path, ids, N, vocab, &err);
    check(rc == 0, "vocab %d: written", vocab);
    FILE *f = fopen(path, "rb");
    int32_t header[3] = {0};
    if (f) {
        check(fread(header, 4, 3, f) == 3, "header read");
        fclose(f);
    }
    check(header[0] == DATA_TOKENS_MAGIC && header[1] == expect_version && header[2] == N,
          "vocab %d: header magic %d, version %d (expected %d), count %d", vocab, header[0], header[1], expect_version,
          header[2]);
    int32_t *back = NULL;
    long n = 0;
    rc = data_tokens_read(path, &back, &n, &err);
    check(rc == 0 && n == N && memcmp(back, ids, sizeof ids) == 0, "vocab %d: read back identical", vocab);
    free(back);
    DataOptions o;
    data_options_defaults(&o);
    o.kind = DATA_FILE;
    o.path = path;
    o.val_fraction = 1.0f;
    Dataset ds;
    rc = data_open(&ds, &o, 16, &err);
    check(rc == 0 && ds.kind == DATA_TOKENS && ds.vocab_size == vocab, "vocab %d: data_open detects it, vocab %d",
          vocab, rc == 0 ? ds.vocab_size : -1);
    if (rc == 0) {
        int32_t tokens[2 * 16], targets[2 * 16];
        data_val_batch(&ds, 0, 2, 16, tokens, targets);
        int same = 1;  // the first window: tokens ids[0..16), targets the next ids
        for (int i = 0; i < 16; i++) same &= tokens[i] == ids[i] && (i == 15 || targets[i] == ids[i + 1]);
        check(same, "vocab %d: the first window holds the written ids", vocab);
        data_close(&ds);
    }
}

int main(void) {
    char dir[] = "/tmp/test_token_file.XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char small[64], big[64], bad[64];
    snprintf(small, sizeof small, "%s/small.bin", dir);
    snprintf(big, sizeof big, "%s/big.bin", dir);
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    roundtrip(small, 65536, DATA_TOKENS_VERSION);
    roundtrip(big, 100000, DATA_TOKENS_VERSION_U32);
    Error err;
    int32_t ids[2] = {1, 5};
    check_error("an id outside the vocabulary", data_tokens_write(bad, ids, 2, 5, &err), &err, "bad.bin", "token 1",
                "id 5", NULL);
    check_error("no tokens", data_tokens_write(bad, ids, 0, 5, &err), &err, "bad.bin", NULL);
    // A version 2 file whose payload is uint16-sized: the count check catches it.
    FILE *f = fopen(big, "r+b");
    int32_t v = 3;
    fseek(f, 4, SEEK_SET);
    fwrite(&v, 4, 1, f);
    fclose(f);
    int32_t *back;
    long n;
    check_error("version 3", data_tokens_read(big, &back, &n, &err), &err, "big.bin", "header[1] (version) is 3", NULL);
    unlink(small);
    unlink(big);
    unlink(bad);
    rmdir(dir);
    return check_summary("token files, uint16 and uint32");
}
