// The tokenizer against the Python `tokenizers` library: the fixtures written by
// tools/make_tokenizer_fixture.py (a small GPT-NeoX-style byte-level BPE, its variants with
// the old merge form and add_prefix_space, the ids and decoded text of a test text with
// invalid UTF-8, short edge cases, decodes that cut characters). Then bad input: each
// malformed tokenizer.json must be an error naming the file and the field.
//
//   test_tokenizer [FIXTURE_DIR]   (default fixtures, run from tests/)
#include <stdlib.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "core/input_file.h"
#include "tokenizer/tokenizer.h"

static char dir[1024];
static char tmpdir[64];

static char *slurp(const char *path, size_t *n) {
    char *buf = NULL;
    Error err;
    return input_file_read(path, "fixture", UINT64_MAX, &buf, n, &err) == 0 ? buf : NULL;
}

static void spit(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(s, 1, n, f);
    fclose(f);
}

// ids (a JSON list) as int32; *n its length.
static int32_t *json_ids(const cJSON *list, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(list);
    int32_t *ids = xmalloc(sizeof(int32_t) * (*n + 1));
    size_t i = 0;
    for (const cJSON *v = list ? list->child : NULL; v; v = v->next) ids[i++] = (int32_t)v->valuedouble;
    return ids;
}

static size_t first_difference(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

static void check_encode(Tokenizer *t, const char *label, const uint8_t *text, size_t n, const cJSON *expected) {
    size_t ne;
    int32_t *want = json_ids(expected, &ne);
    TokenIds got = {0};
    Error err;
    int rc = tokenizer_encode(t, text, n, &got, &err);
    size_t d = first_difference(got.ids, got.n, want, ne);
    check(rc == 0 && got.n == ne && d == ne, "%s: encode gives the library's %zu ids (got %zu, first difference at %zu)",
          label, ne, got.n, d);
    free(got.ids);
    free(want);
}

static void check_decode(Tokenizer *t, const char *label, const cJSON *ids_json, int skip, const char *want) {
    size_t n;
    int32_t *ids = json_ids(ids_json, &n);
    char *text = NULL;
    size_t len = 0;
    Error err;
    int rc = tokenizer_decode(t, ids, n, skip, &text, &len, &err);
    check(rc == 0 && len == strlen(want) && memcmp(text, want, len) == 0,
          "%s: decode%s gives the library's text (%zu bytes, got %zu)", label, skip ? " (skip special)" : "",
          strlen(want), len);
    free(text);
    free(ids);
}

static void fixture_tests(void) {
    char path[2048];
    snprintf(path, sizeof path, "%s/tokenizer_expected.json", dir);
    size_t n;
    char *json = slurp(path, &n);
    check(json != NULL, "read %s", path);
    if (!json) return;
    cJSON *root = cJSON_Parse(json);
    free(json);
    snprintf(path, sizeof path, "%s/tokenizer_text.bin", dir);
    size_t text_n = 0;
    char *text = slurp(path, &text_n);
    check(text != NULL && text_n > 0, "read %s", path);
    const cJSON *results = cJSON_GetObjectItem(root, "results");
    const cJSON *strings = cJSON_GetObjectItem(root, "strings");
    for (const cJSON *r = results ? results->child : NULL; r; r = r->next) {
        snprintf(path, sizeof path, "%s/%s", dir, r->string);
        Tokenizer *t;
        Error err;
        int rc = tokenizer_load(&t, path, &err);
        check(rc == 0, "load %s%s%s", r->string, rc ? ": " : "", rc ? err.message : "");
        if (rc) continue;
        check_encode(t, r->string, (const uint8_t *)text, text_n, cJSON_GetObjectItem(r, "ids"));
        // Again: now every pre-token comes from the cache.
        check_encode(t, r->string, (const uint8_t *)text, text_n, cJSON_GetObjectItem(r, "ids"));
        check_decode(t, r->string, cJSON_GetObjectItem(r, "ids"), 0, cJSON_GetObjectItem(r, "decoded")->valuestring);
        check_decode(t, r->string, cJSON_GetObjectItem(r, "ids"), 1, cJSON_GetObjectItem(r, "decoded_skip")->valuestring);
        int i = 0, bad = 0;
        for (const cJSON *s = strings->child; s; s = s->next, i++) {
            const char *str = cJSON_GetObjectItem(s, "text")->valuestring;
            size_t ne;
            int32_t *want = json_ids(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "ids"), r->string), &ne);
            TokenIds got = {0};
            rc = tokenizer_encode(t, (const uint8_t *)str, strlen(str), &got, &err);
            if (rc || got.n != ne || first_difference(got.ids, got.n, want, ne) != ne) {
                bad++;
                printf("    string %d \"%.40s\": %zu ids, expected %zu\n", i, str, got.n, ne);
            }
            free(got.ids);
            free(want);
        }
        check(bad == 0, "%s: %d short edge-case strings encode as the library does (%d differ)", r->string, i, bad);
        if (strcmp(r->string, "tokenizer.json") == 0) {
            const cJSON *cases = cJSON_GetObjectItem(root, "decode_cases");
            int k = 0;
            for (const cJSON *c = cases->child; c; c = c->next, k++) {
                char label[64];
                snprintf(label, sizeof label, "decode case %d", k);
                check_decode(t, label, cJSON_GetObjectItem(c, "ids"), 0, cJSON_GetObjectItem(c, "text")->valuestring);
            }
        }
        tokenizer_free(t);
    }
    free(text);
    cJSON_Delete(root);
}

// Streaming: token bytes joined through tokenizer_utf8_complete give the decoded text.
static void stream_tests(void) {
    char path[2048];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    Tokenizer *t;
    Error err;
    if (tokenizer_load(&t, path, &err) != 0) return;
    const char *s = "東京 café 😀 ok";
    TokenIds ids = {0};
    tokenizer_encode(t, (const uint8_t *)s, strlen(s), &ids, &err);
    char out[256], pending[64];
    size_t o = 0, p = 0;
    int partial_seen = 0;
    for (size_t i = 0; i < ids.n; i++) {
        const uint8_t *b;
        size_t k;
        tokenizer_token_bytes(t, ids.ids[i], &b, &k, &err);
        memcpy(pending + p, b, k);
        p += k;
        size_t c = tokenizer_utf8_complete((const uint8_t *)pending, p);
        partial_seen |= c < p;
        memcpy(out + o, pending, c);
        o += c;
        memmove(pending, pending + c, p - c);
        p -= c;
    }
    check(p == 0 && o == strlen(s) && memcmp(out, s, o) == 0, "streamed token bytes give the text back");
    check(partial_seen, "some token ends inside a character (the stream held bytes back)");
    check(tokenizer_utf8_complete((const uint8_t *)"a\xe6\x97", 3) == 1, "utf8_complete holds back a cut 3-byte char");
    check(tokenizer_utf8_complete((const uint8_t *)"a\xff", 2) == 2, "utf8_complete emits an invalid byte");
    int32_t bad[] = {5, tokenizer_vocab_size(t)};
    char *text;
    size_t len;
    check_error("decode of an id beyond the vocabulary", tokenizer_decode(t, bad, 2, 0, &text, &len, &err), &err,
                "tokenizer.json", "not in the vocabulary", "id 1 of 2", NULL);
    int32_t neg = -3;
    check_error("decode of a negative id", tokenizer_decode(t, &neg, 1, 0, &text, &len, &err), &err, "-3", NULL);
    check(tokenizer_added_id(t, "<|endoftext|>") == 0, "<|endoftext|> is added token 0");
    free(ids.ids);
    tokenizer_free(t);
}

// Loads a copy of tokenizer.json with `from` replaced by `to` (first occurrence) and
// checks the error names the file and each needle.
static void check_bad_edit(const char *label, const char *from, const char *to, const char *needle) {
    char path[2048];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    size_t n;
    char *json = slurp(path, &n);
    char *at = json ? strstr(json, from) : NULL;
    check(at != NULL, "%s: the fixture holds '%s'", label, from);
    if (!at) {
        free(json);
        return;
    }
    size_t lf = strlen(from), lt = strlen(to);
    char *edited = xmalloc(n - lf + lt + 1);
    size_t head = (size_t)(at - json);
    memcpy(edited, json, head);
    memcpy(edited + head, to, lt);
    memcpy(edited + head + lt, at + lf, n - head - lf);
    snprintf(path, sizeof path, "%s/bad.json", tmpdir);
    spit(path, edited, n - lf + lt);
    Tokenizer *t = NULL;
    Error err;
    check_error(label, tokenizer_load(&t, path, &err), &err, "bad.json", needle, NULL);
    free(edited);
    free(json);
}

static void bad_input_tests(void) {
    char path[2048], src[2048];
    Tokenizer *t = NULL;
    Error err;
    snprintf(path, sizeof path, "%s/empty.json", tmpdir);
    spit(path, "", 0);
    check_error("empty file", tokenizer_load(&t, path, &err), &err, "empty.json", "empty", NULL);
    snprintf(path, sizeof path, "%s/missing.json", tmpdir);
    check_error("missing file", tokenizer_load(&t, path, &err), &err, "missing.json", "cannot open", NULL);
    snprintf(src, sizeof src, "%s/tokenizer.json", dir);
    size_t n;
    char *json = slurp(src, &n);
    snprintf(path, sizeof path, "%s/truncated.json", tmpdir);
    spit(path, json, n / 2);
    check_error("truncated file", tokenizer_load(&t, path, &err), &err, "truncated.json", "not valid JSON", "line",
                NULL);
    free(json);
    snprintf(path, sizeof path, "%s/array.json", tmpdir);
    spit(path, "[1, 2]", 6);
    check_error("a JSON list", tokenizer_load(&t, path, &err), &err, "array.json", "object", NULL);
    check_bad_edit("WordPiece model", "\"type\": \"BPE\"", "\"type\": \"WordPiece\"", "model.type 'WordPiece'");
    check_bad_edit("a normalizer", "\"normalizer\": null", "\"normalizer\": {\"type\": \"NFC\"}", "normalizer.type 'NFC'");
    check_bad_edit("another pre-tokenizer", "\"type\": \"ByteLevel\"", "\"type\": \"Whitespace\"",
                   "pre_tokenizer.type 'Whitespace'");
    check_bad_edit("no decoder", "\"decoder\": {", "\"decoder\": null, \"x\": {", "decoder.type");
    check_bad_edit("a template post-processor", "\"post_processor\": {\n    \"type\": \"ByteLevel\"",
                   "\"post_processor\": {\n    \"type\": \"TemplateProcessing\"", "post_processor.type");
    check_bad_edit("dropout", "\"dropout\": null", "\"dropout\": 0.1", "model.dropout");
    check_bad_edit("lstrip on an added token", "\"lstrip\": false", "\"lstrip\": true", "added_tokens[0].lstrip");
    check_bad_edit("a merge naming an unknown token", "\"merges\": [\n      [\n        \"",
                   "\"merges\": [\n      [\n        \"NOT_A_TOKEN", "model.merges[0]");
    check_bad_edit("a merge of three parts", "\"merges\": [\n      [", "\"merges\": [\"a b c\",\n      [",
                   "model.merges[0]");
    check_bad_edit("a vocab id that is not a number", "\"vocab\": {\n      \"<|endoftext|>\": 0",
                   "\"vocab\": {\n      \"<|endoftext|>\": \"zero\"", "model.vocab[\"<|endoftext|>\"]");
    check_bad_edit("no vocab", "\"vocab\": {", "\"vocab_\": {", "model.vocab is missing");
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "fixtures");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_tokenizer.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    fixture_tests();
    stream_tests();
    bad_input_tests();
    const char *names[] = {"empty.json", "truncated.json", "array.json", "bad.json"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
    return check_summary("tokenizer against the Python tokenizers library");
}
