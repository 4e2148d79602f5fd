// A byte-level BPE tokenizer read from a Hugging Face tokenizer.json (the format of the
// `tokenizers` library; GPT-2 / GPT-NeoX / the Mamba checkpoints use it). It covers what
// those files use: the BPE model, the ByteLevel pre-tokenizer (GPT-2's regex split through
// PCRE2, add_prefix_space), the ByteLevel decoder and added/special tokens. Anything else in
// a file (other models, normalizers, pre-tokenizers, decoders, post-processors) is refused
// at load time with an error naming the file and the field: never a silent wrong encoding.
//
// Text in: bytes. Invalid UTF-8 is replaced by U+FFFD per maximal invalid subpart first,
// exactly as Python's bytes.decode("utf-8", "replace") does before the Python library sees
// a str. A Tokenizer keeps a cache of pre-token -> ids, so encoding mutates it: use one
// Tokenizer per thread.
#ifndef MP_TOKENIZER_TOKENIZER_H
#define MP_TOKENIZER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct Tokenizer Tokenizer;

// A growing array of token ids (owned by whoever holds it; free ids).
typedef struct TokenIds {
    int32_t *ids;
    size_t n, cap;
} TokenIds;

// Loads path (a tokenizer.json). *out is owned by the caller (tokenizer_free).
int tokenizer_load(Tokenizer **out, const char *path, Error *err);
void tokenizer_free(Tokenizer *t);

// Max id + 1 over the vocabulary and the added tokens.
int tokenizer_vocab_size(const Tokenizer *t);
// FNV-1a 64 of the tokenizer.json bytes: a key for caches of tokenized text.
uint64_t tokenizer_hash(const Tokenizer *t);
// FNV-1a 64 of s[0..n) continued from h (tokenizer_hash, to key a text by both).
uint64_t tokenizer_fnv1a(uint64_t h, const uint8_t *s, size_t n);
// The id of an added token with this exact content, or -1.
int tokenizer_added_id(const Tokenizer *t, const char *content);

// Appends the ids of text[0..n) to out.
int tokenizer_encode(Tokenizer *t, const uint8_t *text, size_t n, TokenIds *out, Error *err);

// The text of ids, as the Python library's decode: the tokens' bytes joined, then invalid
// UTF-8 replaced by U+FFFD. skip_special drops special added tokens (Python's default
// skip_special_tokens=True). *text is NUL-terminated, owned by the caller; *len excludes
// the NUL. An id outside the vocabulary is an error naming its position.
int tokenizer_decode(const Tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **text, size_t *len,
                     Error *err);

// Streaming: the raw bytes of one token (a token may end inside a UTF-8 character, so a
// stream prints only what tokenizer_utf8_complete says is complete and keeps the rest for
// the next token). *bytes points into t.
int tokenizer_token_bytes(const Tokenizer *t, int32_t id, const uint8_t **bytes, size_t *len, Error *err);
// How many leading bytes of buf[0..n) to emit now: all but an unfinished UTF-8 sequence at
// the end that more bytes could still complete (invalid bytes are emitted).
size_t tokenizer_utf8_complete(const uint8_t *buf, size_t n);

// The tokenizer.json that goes with a model: <model>/tokenizer.json for a folder, or
// tokenizer.json beside a checkpoint file. Returns 1 and writes path when it exists, else 0.
int tokenizer_find(const char *model_path, char *path, size_t cap);

// Replaces each maximal invalid UTF-8 subpart of in[0..n) by U+FFFD (EF BF BD). Returns NULL
// when in is valid (nothing to replace), else a new buffer (owned by the caller), length *out_n.
uint8_t *utf8_replace_invalid(const uint8_t *in, size_t n, size_t *out_n);

#endif
