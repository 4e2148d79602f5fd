// tokenizer.json loading, encoding and decoding (see tokenizer.h). The pipeline is the
// `tokenizers` library's: added tokens split out first (leftmost-longest; the tokens with
// normalized=false, then those with normalized=true), then per remaining piece the ByteLevel
// pre-tokenizer (optional prefix space, GPT-2's regex split), then BPE by merge rank with a
// binary heap per pre-token (as the library's word.rs does), cached per pre-token.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <pcre2.h>

#include "tokenizer/tokenizer.h"

// GPT-2's split. \s is spelled out as Unicode's White_Space, Oniguruma's \s (the
// library's regex engine); PCRE2's UCP \s lacks U+0085 (which the fixture cannot tell apart).
#define WS "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char gpt2_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS
                                   "]+(?![^" WS "])|[" WS "]+";

enum { CACHE_MAX_ENTRIES = 1 << 20, CACHE_MAX_KEY = 256 };

// Open-addressing hash of byte strings -> int32 (the vocabulary, and the pre-token cache
// whose value is an offset into cache_ids).
typedef struct StrMap {
    uint32_t *slots;  // index + 1 into keys, 0 = empty
    size_t cap;       // power of two
    size_t n;
    // entries
    uint32_t *key_off, *key_len;
    int32_t *value;
    size_t entries_cap;
    uint8_t *pool;  // key bytes
    size_t pool_n, pool_cap;
} StrMap;

typedef struct PairMap {  // (left id, right id) -> (rank, merged id)
    uint64_t *keys;       // (left << 32 | right) + 1, 0 = empty
    int32_t *rank, *merged;
    size_t cap, n;
} PairMap;

typedef struct AddedToken {
    char *content;  // (owned)
    size_t len;
    int32_t id;
    int special, normalized;
} AddedToken;

struct Tokenizer {
    char *path;  // (owned)
    uint64_t hash;
    int vocab_size;
    StrMap vocab;
    char **id_token;          // (owned) id -> token string of the model or added token, NULL for holes
    uint8_t **id_bytes;       // (owned) id -> decoded bytes
    size_t *id_bytes_len;
    uint8_t *id_special;      // 1 for special added tokens
    int32_t byte_id[256];     // id of the single-byte symbol, -1 if not in the vocabulary
    PairMap merges;
    int32_t unk_id;           // -1 when the model has no unk_token
    int ignore_merges;
    int add_prefix_space, use_regex;
    AddedToken *added;
    int n_added;
    pcre2_code *regex;
    pcre2_match_data *match;
    int jit;
    StrMap cache;             // pre-token bytes -> offset into cache_ids (count first)
    int32_t *cache_ids;
    size_t cache_ids_n, cache_ids_cap;
    // scratch for BPE
    int32_t *sym, *prev, *next, *len;
    size_t sym_cap;
    struct HeapItem *heap;
    size_t heap_cap;
    uint8_t *piece;           // scratch for a prefix space
    size_t piece_cap;
};

uint64_t tokenizer_fnv1a(uint64_t h, const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

static uint64_t fnv1a(const uint8_t *s, size_t n) { return tokenizer_fnv1a(1469598103934665603ull, s, n); }

// ---- string map ----

static void strmap_init(StrMap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->cap = 16;
    while (m->cap < 2 * expected) m->cap <<= 1;
    m->slots = xcalloc(m->cap, sizeof *m->slots);
}

static void strmap_free(StrMap *m) {
    free(m->slots);
    free(m->key_off);
    free(m->key_len);
    free(m->value);
    free(m->pool);
}

static size_t strmap_find_slot(const StrMap *m, const uint8_t *key, size_t len, uint64_t h) {
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    for (;;) {
        uint32_t s = m->slots[i];
        if (s == 0) return i;
        uint32_t e = s - 1;
        if (m->key_len[e] == len && memcmp(m->pool + m->key_off[e], key, len) == 0) return i;
        i = (i + 1) & mask;
    }
}

// The value of key, or -1 when absent.
static int32_t strmap_get(const StrMap *m, const uint8_t *key, size_t len) {
    uint32_t s = m->slots[strmap_find_slot(m, key, len, fnv1a(key, len))];
    return s ? m->value[s - 1] : -1;
}

// Sets key -> value (overwriting). Returns 1 when the key was new.
static int strmap_put(StrMap *m, const uint8_t *key, size_t len, int32_t value) {
    if (2 * (m->n + 1) > m->cap) {  // grow: rehash every entry
        free(m->slots);
        m->cap <<= 1;
        m->slots = xcalloc(m->cap, sizeof *m->slots);
        for (size_t e = 0; e < m->n; e++) {
            const uint8_t *k = m->pool + m->key_off[e];
            m->slots[strmap_find_slot(m, k, m->key_len[e], fnv1a(k, m->key_len[e]))] = (uint32_t)e + 1;
        }
    }
    size_t slot = strmap_find_slot(m, key, len, fnv1a(key, len));
    if (m->slots[slot]) {
        m->value[m->slots[slot] - 1] = value;
        return 0;
    }
    if (m->n == m->entries_cap) {
        m->entries_cap = m->entries_cap ? 2 * m->entries_cap : 256;
        m->key_off = xrealloc(m->key_off, m->entries_cap * sizeof *m->key_off);
        m->key_len = xrealloc(m->key_len, m->entries_cap * sizeof *m->key_len);
        m->value = xrealloc(m->value, m->entries_cap * sizeof *m->value);
    }
    if (m->pool_n + len > m->pool_cap) {
        m->pool_cap = 2 * (m->pool_n + len) + 1024;
        m->pool = xrealloc(m->pool, m->pool_cap);
    }
    if (len) memcpy(m->pool + m->pool_n, key, len);
    m->key_off[m->n] = (uint32_t)m->pool_n;
    m->key_len[m->n] = (uint32_t)len;
    m->value[m->n] = value;
    m->pool_n += len;
    m->slots[slot] = (uint32_t)++m->n;
    return 1;
}

// ---- pair map ----

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static void pairmap_init(PairMap *m, size_t expected) {
    m->cap = 16;
    while (m->cap < 2 * expected) m->cap <<= 1;
    m->keys = xcalloc(m->cap, sizeof *m->keys);
    m->rank = xmalloc(m->cap * sizeof *m->rank);
    m->merged = xmalloc(m->cap * sizeof *m->merged);
    m->n = 0;
}

static void pairmap_free(PairMap *m) {
    free(m->keys);
    free(m->rank);
    free(m->merged);
}

static size_t pairmap_slot(const PairMap *m, uint64_t key) {
    size_t mask = m->cap - 1, i = (size_t)mix64(key) & mask;
    while (m->keys[i] != 0 && m->keys[i] != key) i = (i + 1) & mask;
    return i;
}

static inline uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1; }

// The merge of (a, b): its rank and merged id, or rank -1.
static inline int32_t pairmap_get(const PairMap *m, int32_t a, int32_t b, int32_t *merged) {
    size_t i = pairmap_slot(m, pair_key(a, b));
    if (m->keys[i] == 0) return -1;
    *merged = m->merged[i];
    return m->rank[i];
}

// The map is sized for every merge up front, so it never grows. A repeated pair takes
// the later rank, as the library's HashMap collect does.
static void pairmap_put(PairMap *m, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t key = pair_key(a, b);
    size_t i = pairmap_slot(m, key);
    if (m->keys[i] == 0) m->n++;
    m->keys[i] = key;
    m->rank[i] = rank;
    m->merged[i] = merged;
}

// ---- byte-level alphabet (GPT-2's bytes_to_unicode) ----

// The code point standing for byte b: printable Latin-1 bytes stand for themselves, the
// other 68 bytes for 256, 257, ... in byte order.
static void byte_level_alphabet(uint32_t cp[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        cp[b] = printable ? (uint32_t)b : (uint32_t)(256 + n++);
    }
}

static size_t utf8_put(uint32_t cp, uint8_t *out) {
    if (cp < 0x80) return out[0] = (uint8_t)cp, 1;
    if (cp < 0x800) return out[0] = (uint8_t)(0xC0 | cp >> 6), out[1] = (uint8_t)(0x80 | (cp & 0x3F)), 2;
    out[0] = (uint8_t)(0xE0 | cp >> 12), out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)), out[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;  // the alphabet stays below U+0800; a larger code point is not needed here
}

// Decodes one code point of valid UTF-8 at s (n bytes left); returns its length.
static size_t utf8_get(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t b = s[0];
    size_t k = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    if (k > n) k = n;
    uint32_t c = k == 1 ? b : k == 2 ? b & 0x1Fu : k == 3 ? b & 0x0Fu : b & 0x07u;
    for (size_t i = 1; i < k; i++) c = c << 6 | (s[i] & 0x3Fu);
    *cp = c;
    return k;
}

// The bytes a token decodes to under the ByteLevel decoder: each character mapped back to
// its byte when every character is in the alphabet, else the token's own UTF-8 bytes.
static uint8_t *token_decoded_bytes(const char *token, const int16_t *inverse, size_t *len) {
    size_t n = strlen(token);
    uint8_t *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += utf8_get((const uint8_t *)token + i, n - i, &cp);
        if (cp >= 512 || inverse[cp] < 0) {  // not byte-level: the raw text
            memcpy(out, token, n);
            *len = n;
            return out;
        }
        out[o++] = (uint8_t)inverse[cp];
    }
    *len = o;
    return out;
}

// ---- loading ----

static char *read_whole_file(const char *path, size_t *size, Error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return error_set(err, "%s: cannot open the tokenizer: %s", path, strerror(errno)), NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return error_set(err, "%s: not a regular file", path), NULL;
    }
    char *buf = xmalloc((size_t)st.st_size + 1);
    size_t got = fread(buf, 1, (size_t)st.st_size, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || got != (size_t)st.st_size) {
        free(buf);
        return error_set(err, "%s: read %zu of %lld bytes", path, got, (long long)st.st_size), NULL;
    }
    buf[got] = '\0';
    *size = got;
    return buf;
}

static const char *type_of(const cJSON *o) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

// A boolean field: absent = fallback; any other type is an error.
static int get_bool(const cJSON *o, const char *key, int fallback, int *out, const char *path, const char *where,
                    Error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return *out = fallback, 0;
    if (!cJSON_IsBool(v)) return error_set(err, "%s: %s.%s must be true or false", path, where, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_id(const cJSON *v, int32_t *id) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > INT32_MAX - 1 ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *id = (int32_t)v->valuedouble;
    return 0;
}

// A field that must be null/absent, or a boolean that must be false: the options of the
// library that this tokenizer does not implement.
static int refuse_set(const cJSON *o, const char *key, const char *path, const char *where, Error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return 0;
    if (cJSON_IsString(v) && v->valuestring[0] == '\0') return 0;
    return error_set(err, "%s: %s.%s is set, which is not supported (only byte-level BPE without it)", path, where,
                     key);
}

static int load_pre_tokenizer(Tokenizer *t, const cJSON *pre, const char *path, Error *err) {
    t->add_prefix_space = 0;
    t->use_regex = 0;
    if (!pre || cJSON_IsNull(pre))
        return error_set(err, "%s: pre_tokenizer is null; only the ByteLevel pre-tokenizer is supported", path);
    const char *type = type_of(pre);
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
        int n = cJSON_GetArraySize(list);
        if (!cJSON_IsArray(list) || n != 1)
            return error_set(err,
                             "%s: pre_tokenizer.pretokenizers: a Sequence of exactly one ByteLevel is supported, got %s",
                             path, cJSON_IsArray(list) ? "several" : "no list");
        pre = cJSON_GetArrayItem(list, 0);
        type = type_of(pre);
    }
    if (!type || strcmp(type, "ByteLevel") != 0)
        return error_set(err, "%s: pre_tokenizer.type '%s' is not supported (only ByteLevel, alone or in a Sequence)",
                         path, type ? type : "(missing)");
    if (get_bool(pre, "add_prefix_space", 1, &t->add_prefix_space, path, "pre_tokenizer", err)) return -1;
    if (get_bool(pre, "use_regex", 1, &t->use_regex, path, "pre_tokenizer", err)) return -1;
    return 0;
}

static int load_model(Tokenizer *t, const cJSON *model, const char *path, Error *err) {
    if (!cJSON_IsObject(model)) return error_set(err, "%s: model is missing (expected an object)", path);
    const char *type = type_of(model);
    if (type && strcmp(type, "BPE") != 0)
        return error_set(err, "%s: model.type '%s' is not supported (only BPE)", path, type);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab)) return error_set(err, "%s: model.vocab is missing (expected an object token -> id)", path);
    if (!cJSON_IsArray(merges)) return error_set(err, "%s: model.merges is missing (expected a list)", path);
    if (refuse_set(model, "dropout", path, "model", err) || refuse_set(model, "continuing_subword_prefix", path, "model", err) ||
        refuse_set(model, "end_of_word_suffix", path, "model", err) || refuse_set(model, "byte_fallback", path, "model", err) ||
        refuse_set(model, "fuse_unk", path, "model", err))
        return -1;
    if (get_bool(model, "ignore_merges", 0, &t->ignore_merges, path, "model", err)) return -1;
    int n_vocab = cJSON_GetArraySize(vocab);
    if (n_vocab == 0) return error_set(err, "%s: model.vocab is empty", path);
    strmap_init(&t->vocab, (size_t)n_vocab);
    int max_id = -1;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id;
        if (get_id(e, &id) != 0)
            return error_set(err, "%s: model.vocab[\"%s\"] must be a non-negative integer id", path, e->string);
        strmap_put(&t->vocab, (const uint8_t *)e->string, strlen(e->string), id);
        if (id > max_id) max_id = id;
    }
    t->vocab_size = max_id + 1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    t->unk_id = -1;
    if (cJSON_IsString(unk)) {
        t->unk_id = strmap_get(&t->vocab, (const uint8_t *)unk->valuestring, strlen(unk->valuestring));
        if (t->unk_id < 0) return error_set(err, "%s: model.unk_token '%s' is not in model.vocab", path, unk->valuestring);
    }
    int n_merges = cJSON_GetArraySize(merges);
    pairmap_init(&t->merges, (size_t)n_merges);
    int rank = 0;
    char *joined = NULL;
    size_t joined_cap = 0;
    for (const cJSON *m = merges->child; m; m = m->next, rank++) {
        const char *a, *b;
        size_t la, lb;
        const char *space;
        if (cJSON_IsString(m)) {  // the old form "a b"
            space = strchr(m->valuestring, ' ');
            if (!space || strchr(space + 1, ' ')) {
                free(joined);
                return error_set(err, "%s: model.merges[%d] is \"%s\", expected two tokens separated by one space", path,
                                 rank, m->valuestring);
            }
            a = m->valuestring, la = (size_t)(space - a), b = space + 1, lb = strlen(b);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {  // the new form ["a", "b"]
            a = m->child->valuestring, la = strlen(a), b = m->child->next->valuestring, lb = strlen(b);
        } else {
            free(joined);
            return error_set(err, "%s: model.merges[%d] must be \"a b\" or [\"a\", \"b\"]", path, rank);
        }
        int32_t ia = strmap_get(&t->vocab, (const uint8_t *)a, la), ib = strmap_get(&t->vocab, (const uint8_t *)b, lb);
        if (la + lb + 1 > joined_cap) joined = xrealloc(joined, joined_cap = 2 * (la + lb + 1));
        memcpy(joined, a, la);
        memcpy(joined + la, b, lb);
        int32_t im = strmap_get(&t->vocab, (const uint8_t *)joined, la + lb);
        if (ia < 0 || ib < 0 || im < 0) {
            const char *which = ia < 0 ? "its first token" : ib < 0 ? "its second token" : "the merged token";
            int w = ia < 0 ? (int)la : ib < 0 ? (int)lb : (int)(la + lb);
            const char *s = ia < 0 ? a : ib < 0 ? b : joined;
            int rc = error_set(err, "%s: model.merges[%d]: %s '%.*s' is not in model.vocab", path, rank, which, w, s);
            free(joined);
            return rc;
        }
        pairmap_put(&t->merges, ia, ib, rank, im);
    }
    free(joined);
    return 0;
}

static int load_added_tokens(Tokenizer *t, const cJSON *list, const char *path, Error *err) {
    if (!list || cJSON_IsNull(list)) return 0;
    if (!cJSON_IsArray(list)) return error_set(err, "%s: added_tokens must be a list", path);
    int n = cJSON_GetArraySize(list);
    t->added = xcalloc((size_t)n + 1, sizeof *t->added);
    int i = 0;
    for (const cJSON *a = list->child; a; a = a->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "added_tokens[%d]", i);
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        int32_t id;
        if (!cJSON_IsObject(a) || get_id(cJSON_GetObjectItemCaseSensitive(a, "id"), &id) != 0)
            return error_set(err, "%s: %s.id must be a non-negative integer", path, where);
        if (!cJSON_IsString(content) || content->valuestring[0] == '\0')
            return error_set(err, "%s: %s.content must be a non-empty string", path, where);
        AddedToken *tok = &t->added[t->n_added++];
        tok->content = xstrdup(content->valuestring);
        tok->len = strlen(tok->content);
        tok->id = id;
        if (get_bool(a, "special", 0, &tok->special, path, where, err) ||
            get_bool(a, "normalized", !tok->special, &tok->normalized, path, where, err) ||
            refuse_set(a, "single_word", path, where, err) || refuse_set(a, "lstrip", path, where, err) ||
            refuse_set(a, "rstrip", path, where, err))
            return -1;
        if (id >= t->vocab_size) t->vocab_size = id + 1;
    }
    return 0;
}

// The id -> token and id -> bytes tables, the single-byte symbols.
static int build_tables(Tokenizer *t, const char *path, Error *err) {
    uint32_t cp[256];
    byte_level_alphabet(cp);
    int16_t inverse[512];
    for (int i = 0; i < 512; i++) inverse[i] = -1;
    for (int b = 0; b < 256; b++) inverse[cp[b]] = (int16_t)b;
    for (int b = 0; b < 256; b++) {
        uint8_t s[4];
        size_t n = utf8_put(cp[b], s);
        t->byte_id[b] = strmap_get(&t->vocab, s, n);
    }
    size_t V = (size_t)t->vocab_size;
    t->id_token = xcalloc(V, sizeof *t->id_token);
    t->id_bytes = xcalloc(V, sizeof *t->id_bytes);
    t->id_bytes_len = xcalloc(V, sizeof *t->id_bytes_len);
    t->id_special = xcalloc(V, 1);
    for (size_t e = 0; e < t->vocab.n; e++) {
        int32_t id = t->vocab.value[e];
        if (t->id_token[id]) continue;  // two tokens with one id: the library keeps one of them
        char *s = xmalloc(t->vocab.key_len[e] + 1);
        memcpy(s, t->vocab.pool + t->vocab.key_off[e], t->vocab.key_len[e]);
        s[t->vocab.key_len[e]] = '\0';
        t->id_token[id] = s;
    }
    for (int i = 0; i < t->n_added; i++) {  // an added token's content wins over the model's
        const AddedToken *a = &t->added[i];
        free(t->id_token[a->id]);
        t->id_token[a->id] = xstrdup(a->content);
        t->id_special[a->id] = (uint8_t)a->special;
    }
    for (size_t id = 0; id < V; id++)
        if (t->id_token[id]) t->id_bytes[id] = token_decoded_bytes(t->id_token[id], inverse, &t->id_bytes_len[id]);
    (void)path;
    (void)err;
    return 0;
}

static int compile_regex(Tokenizer *t, const char *path, Error *err) {
    int code;
    PCRE2_SIZE offset;
    t->regex = pcre2_compile((PCRE2_SPTR)gpt2_pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &offset,
                             NULL);
    if (!t->regex) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return error_set(err, "%s: the ByteLevel regex does not compile at offset %zu: %s", path, (size_t)offset,
                         (char *)msg);
    }
    t->jit = pcre2_jit_compile(t->regex, PCRE2_JIT_COMPLETE) == 0;
    t->match = pcre2_match_data_create_from_pattern(t->regex, NULL);
    return 0;
}

static int load_json(Tokenizer *t, const char *text, size_t size, const char *path, Error *err) {
    if (size == 0) return error_set(err, "%s: the file is empty (expected a tokenizer.json object)", path);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        const char *e = cJSON_GetErrorPtr();
        if (e && e >= text && e <= text + size) at = (size_t)(e - text);
        int line = 1;
        for (size_t i = 0; i < at && i < size; i++) line += text[i] == '\n';
        return error_set(err, "%s: not valid JSON (truncated or malformed) near byte %zu, line %d", path, at, line);
    }
    int rc = 0;
    const cJSON *v;
    if (!cJSON_IsObject(root)) rc = error_set(err, "%s: expected a JSON object at the top level", path);
    if (rc == 0 && (v = cJSON_GetObjectItemCaseSensitive(root, "truncation")) && !cJSON_IsNull(v))
        rc = error_set(err, "%s: truncation is set, which is not supported", path);
    if (rc == 0 && (v = cJSON_GetObjectItemCaseSensitive(root, "padding")) && !cJSON_IsNull(v))
        rc = error_set(err, "%s: padding is set, which is not supported", path);
    if (rc == 0 && (v = cJSON_GetObjectItemCaseSensitive(root, "normalizer")) && !cJSON_IsNull(v))
        rc = error_set(err, "%s: normalizer.type '%s' is not supported (only null)", path,
                       type_of(v) ? type_of(v) : "(missing)");
    if (rc == 0) {
        v = cJSON_GetObjectItemCaseSensitive(root, "decoder");
        if (!v || cJSON_IsNull(v) || !type_of(v) || strcmp(type_of(v), "ByteLevel") != 0)
            rc = error_set(err, "%s: decoder.type '%s' is not supported (only ByteLevel)", path,
                           v && type_of(v) ? type_of(v) : "(missing)");
    }
    if (rc == 0 && (v = cJSON_GetObjectItemCaseSensitive(root, "post_processor")) && !cJSON_IsNull(v) &&
        (!type_of(v) || strcmp(type_of(v), "ByteLevel") != 0))
        rc = error_set(err, "%s: post_processor.type '%s' is not supported (only null or ByteLevel, which add no tokens)",
                       path, type_of(v) ? type_of(v) : "(missing)");
    if (rc == 0) rc = load_pre_tokenizer(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), path, err);
    if (rc == 0) rc = load_model(t, cJSON_GetObjectItemCaseSensitive(root, "model"), path, err);
    if (rc == 0) rc = load_added_tokens(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), path, err);
    cJSON_Delete(root);
    return rc;
}

int tokenizer_load(Tokenizer **out, const char *path, Error *err) {
    size_t size = 0;
    char *text = read_whole_file(path, &size, err);
    if (!text) return -1;
    Tokenizer *t = xcalloc(1, sizeof *t);
    t->path = xstrdup(path);
    t->hash = fnv1a((const uint8_t *)text, size);
    int rc = load_json(t, text, size, path, err);
    free(text);
    if (rc == 0) rc = build_tables(t, path, err);
    if (rc == 0 && t->use_regex) rc = compile_regex(t, path, err);
    if (rc != 0) {
        tokenizer_free(t);
        return -1;
    }
    strmap_init(&t->cache, 4096);
    *out = t;
    return 0;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    if (t->id_token)
        for (int i = 0; i < t->vocab_size; i++) {
            free(t->id_token[i]);
            free(t->id_bytes[i]);
        }
    free(t->id_token);
    free(t->id_bytes);
    free(t->id_bytes_len);
    free(t->id_special);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    if (t->vocab.slots) strmap_free(&t->vocab);
    if (t->cache.slots) strmap_free(&t->cache);
    if (t->merges.keys) pairmap_free(&t->merges);
    pcre2_match_data_free(t->match);
    pcre2_code_free(t->regex);
    free(t->cache_ids);
    free(t->sym);
    free(t->prev);
    free(t->next);
    free(t->len);
    free(t->heap);
    free(t->piece);
    free(t->path);
    free(t);
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->vocab_size; }
uint64_t tokenizer_hash(const Tokenizer *t) { return t->hash; }

int tokenizer_added_id(const Tokenizer *t, const char *content) {
    for (int i = 0; i < t->n_added; i++)
        if (strcmp(t->added[i].content, content) == 0) return t->added[i].id;
    return -1;
}

// ---- encoding ----

static void ids_push(TokenIds *out, int32_t id) {
    if (out->n == out->cap) {
        out->cap = out->cap ? 2 * out->cap : 1024;
        out->ids = xrealloc(out->ids, out->cap * sizeof *out->ids);
    }
    out->ids[out->n++] = id;
}

typedef struct HeapItem {
    int32_t rank, pos, merged;
} HeapItem;

static inline int heap_less(HeapItem a, HeapItem b) { return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos; }

static void heap_push(HeapItem *h, size_t *n, HeapItem x) {
    size_t i = (*n)++;
    while (i > 0 && heap_less(x, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = x;
}

static HeapItem heap_pop(HeapItem *h, size_t *n) {
    HeapItem top = h[0], x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(h[c + 1], h[c])) c++;
        if (!heap_less(h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = x;
    return top;
}

static void push_pair(Tokenizer *t, size_t *heap_n, int32_t pos) {
    int32_t nx = t->next[pos];
    if (nx < 0) return;
    int32_t merged = -1, rank = pairmap_get(&t->merges, t->sym[pos], t->sym[nx], &merged);
    if (rank >= 0) heap_push(t->heap, heap_n, (HeapItem){rank, pos, merged});
}

// BPE of one pre-token (raw bytes s[0..n)): appends its ids to out.
static void bpe_word(Tokenizer *t, const uint8_t *s, size_t n, TokenIds *out) {
    if (t->ignore_merges) {  // a pre-token that is itself a token is kept whole
        // The vocabulary holds byte-level strings: map the bytes first.
        uint32_t cp[256];
        byte_level_alphabet(cp);
        uint8_t buf[4 * CACHE_MAX_KEY];
        if (n <= CACHE_MAX_KEY) {
            size_t o = 0;
            for (size_t i = 0; i < n; i++) o += utf8_put(cp[s[i]], buf + o);
            int32_t id = strmap_get(&t->vocab, buf, o);
            if (id >= 0) {
                ids_push(out, id);
                return;
            }
        }
    }
    if (n > t->sym_cap) {
        t->sym_cap = 2 * n;
        t->sym = xrealloc(t->sym, t->sym_cap * sizeof *t->sym);
        t->prev = xrealloc(t->prev, t->sym_cap * sizeof *t->prev);
        t->next = xrealloc(t->next, t->sym_cap * sizeof *t->next);
        t->len = xrealloc(t->len, t->sym_cap * sizeof *t->len);
    }
    int32_t m = 0;  // symbols; a byte missing from the vocabulary becomes unk or is dropped
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[s[i]];
        if (id < 0) id = t->unk_id;
        if (id < 0) continue;
        t->sym[m] = id;
        t->len[m] = 1;
        t->prev[m] = m - 1;
        t->next[m] = m + 1;
        m++;
    }
    if (m == 0) return;
    t->next[m - 1] = -1;
    if (2 * (size_t)m > t->heap_cap) {  // m-1 pairs, and each merge adds at most one more
        t->heap_cap = 2 * (size_t)m;
        t->heap = xrealloc(t->heap, t->heap_cap * sizeof *t->heap);
    }
    size_t heap_n = 0;
    for (int32_t i = 0; i + 1 < m; i++) push_pair(t, &heap_n, i);
    while (heap_n > 0) {
        HeapItem top = heap_pop(t->heap, &heap_n);
        int32_t pos = top.pos, right = t->next[pos];
        if (t->len[pos] == 0 || right < 0) continue;  // merged away since it was pushed
        int32_t merged = -1;
        if (pairmap_get(&t->merges, t->sym[pos], t->sym[right], &merged) != top.rank || merged != top.merged) continue;
        t->sym[pos] = top.merged;
        t->len[pos] += t->len[right];
        t->len[right] = 0;
        t->next[pos] = t->next[right];
        if (t->next[right] >= 0) t->prev[t->next[right]] = pos;
        if (t->prev[pos] >= 0) push_pair(t, &heap_n, t->prev[pos]);
        push_pair(t, &heap_n, pos);
    }
    for (int32_t i = 0; i >= 0; i = t->next[i]) ids_push(out, t->sym[i]);
}

// One pre-token through the cache.
static void encode_word(Tokenizer *t, const uint8_t *s, size_t n, TokenIds *out) {
    if (n > CACHE_MAX_KEY) {
        bpe_word(t, s, n, out);
        return;
    }
    int32_t off = strmap_get(&t->cache, s, n);
    if (off >= 0) {
        const int32_t *c = t->cache_ids + off;
        for (int32_t i = 1; i <= c[0]; i++) ids_push(out, c[i]);
        return;
    }
    size_t start = out->n;
    bpe_word(t, s, n, out);
    size_t count = out->n - start;
    if (t->cache.n >= CACHE_MAX_ENTRIES || t->cache_ids_n + count + 1 > INT32_MAX) return;
    if (t->cache_ids_n + count + 1 > t->cache_ids_cap) {
        t->cache_ids_cap = 2 * (t->cache_ids_n + count + 1) + 4096;
        t->cache_ids = xrealloc(t->cache_ids, t->cache_ids_cap * sizeof *t->cache_ids);
    }
    int32_t *c = t->cache_ids + t->cache_ids_n;
    c[0] = (int32_t)count;
    memcpy(c + 1, out->ids + start, count * sizeof *c);
    strmap_put(&t->cache, s, n, (int32_t)t->cache_ids_n);
    t->cache_ids_n += count + 1;
}

// A piece of text between added tokens: prefix space, regex split, BPE.
static int encode_piece(Tokenizer *t, const uint8_t *s, size_t n, TokenIds *out, Error *err) {
    if (n == 0) return 0;
    if (t->add_prefix_space && s[0] != ' ') {
        if (n + 1 > t->piece_cap) {
            t->piece_cap = 2 * (n + 1);
            t->piece = xrealloc(t->piece, t->piece_cap);
        }
        t->piece[0] = ' ';
        memcpy(t->piece + 1, s, n);
        s = t->piece;
        n++;
    }
    if (!t->use_regex) {
        encode_word(t, s, n, out);
        return 0;
    }
    PCRE2_SIZE at = 0;
    while (at < n) {
        int rc = t->jit ? pcre2_jit_match(t->regex, s, n, at, 0, t->match, NULL)
                        : pcre2_match(t->regex, s, n, at, PCRE2_NO_UTF_CHECK, t->match, NULL);
        if (rc < 0) {
            if (rc == PCRE2_ERROR_NOMATCH) {  // cannot happen with GPT-2's pattern; kept whole as the library does
                encode_word(t, s + at, n - at, out);
                return 0;
            }
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return error_set(err, "%s: regex split failed at byte %zu: %s", t->path, (size_t)at, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->match);
        if (ov[0] > at) encode_word(t, s + at, ov[0] - at, out);  // text between matches is a piece too
        if (ov[1] == ov[0]) {  // an empty match cannot happen with this pattern; step on to stay finite
            at = ov[1] + 1;
            continue;
        }
        encode_word(t, s + ov[0], ov[1] - ov[0], out);
        at = ov[1];
    }
    return 0;
}

// The leftmost-longest added token among those with normalized == pass, in s[from..n).
static const AddedToken *find_added(const Tokenizer *t, const uint8_t *s, size_t n, size_t from, int pass,
                                    size_t *where) {
    for (size_t i = from; i < n; i++) {
        const AddedToken *best = NULL;
        for (int k = 0; k < t->n_added; k++) {
            const AddedToken *a = &t->added[k];
            if (a->normalized != pass || a->content[0] != (char)s[i] || a->len > n - i) continue;
            if ((!best || a->len > best->len) && memcmp(s + i, a->content, a->len) == 0) best = a;
        }
        if (best) {
            *where = i;
            return best;
        }
    }
    return NULL;
}

// Splits s on the added tokens of this pass (0: normalized=false, then 1: normalized=true).
static int encode_split(Tokenizer *t, const uint8_t *s, size_t n, int pass, TokenIds *out, Error *err) {
    if (pass > 1) return encode_piece(t, s, n, out, err);
    size_t at = 0, where;
    const AddedToken *a;
    while ((a = find_added(t, s, n, at, pass, &where)) != NULL) {
        if (encode_split(t, s + at, where - at, pass + 1, out, err)) return -1;
        ids_push(out, a->id);
        at = where + a->len;
    }
    return encode_split(t, s + at, n - at, pass + 1, out, err);
}

int tokenizer_encode(Tokenizer *t, const uint8_t *text, size_t n, TokenIds *out, Error *err) {
    size_t fixed_n;
    uint8_t *fixed = utf8_replace_invalid(text, n, &fixed_n);
    int rc = encode_split(t, fixed ? fixed : text, fixed ? fixed_n : n, 0, out, err);
    free(fixed);
    return rc;
}

// ---- decoding ----

int tokenizer_token_bytes(const Tokenizer *t, int32_t id, const uint8_t **bytes, size_t *len, Error *err) {
    if (id < 0 || id >= t->vocab_size || !t->id_bytes[id])
        return error_set(err, "%s: token id %d is not in the vocabulary (ids 0..%d)", t->path, id, t->vocab_size - 1);
    *bytes = t->id_bytes[id];
    *len = t->id_bytes_len[id];
    return 0;
}

int tokenizer_decode(const Tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **text, size_t *len,
                     Error *err) {
    size_t cap = 256, o = 0;
    uint8_t *buf = xmalloc(cap);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b = NULL;
        size_t k = 0;
        if (tokenizer_token_bytes(t, ids[i], &b, &k, err) != 0) {
            free(buf);
            return error_prefix(err, "id %zu of %zu", i, n);
        }
        if (skip_special && t->id_special[ids[i]]) continue;
        if (o + k + 1 > cap) buf = xrealloc(buf, cap = 2 * (o + k + 1));
        memcpy(buf + o, b, k);
        o += k;
    }
    size_t fixed_n;
    uint8_t *fixed = utf8_replace_invalid(buf, o, &fixed_n);
    if (fixed) {
        free(buf);
        buf = xrealloc(fixed, fixed_n + 1);
        o = fixed_n;
    }
    buf[o] = '\0';
    *text = (char *)buf;
    *len = o;
    return 0;
}

// ---- finding a model's tokenizer ----

int tokenizer_find(const char *model_path, char *path, size_t cap) {
    struct stat st;
    if (stat(model_path, &st) != 0) return 0;
    int n;
    if (S_ISDIR(st.st_mode)) {
        n = snprintf(path, cap, "%s/tokenizer.json", model_path);
    } else {
        const char *slash = strrchr(model_path, '/');
        int dir_len = slash ? (int)(slash - model_path) : 1;
        n = snprintf(path, cap, "%.*s/tokenizer.json", dir_len, slash ? model_path : ".");
    }
    if (n < 0 || (size_t)n >= cap) return 0;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
