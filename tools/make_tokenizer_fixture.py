#!/usr/bin/env python3
"""Builds the tokenizer fixtures of tests/fixtures/ with the Python `tokenizers` library.

Trains a small byte-level BPE (vocab 1500) configured like GPT-NeoX's tokenizer.json (the
one the Mamba checkpoints ship): no normalizer, ByteLevel pre-tokenizer with
add_prefix_space false and GPT-2's regex, ByteLevel decoder and post-processor,
`<|endoftext|>` as special token id 0, and (as GPT-NeoX has for runs of spaces) one
non-special added token with normalized=true. The training text is --train plus a few
lines in other scripts written below, so that accented letters, CJK and emoji get merges.

Writes, under --out:
  tokenizer.json                the trained tokenizer (merges in the new ["a", "b"] form)
  tokenizer_old_merges.json     the same with merges in the old "a b" form
  tokenizer_prefix_space.json   the same with pre_tokenizer.add_prefix_space true
  tokenizer_text.bin            the test text: bytes, including invalid UTF-8
  tokenizer_expected.json       what the library gives for them (see below)

tokenizer_expected.json:
  results[file]       for each tokenizer file: ids of the test text (the bytes decoded with
                      errors="replace", as a user of the library must before encoding),
                      decoded (decode(ids, skip_special_tokens=False)) and decoded_skip
                      (the library's default, skip_special_tokens=True)
  strings[]           {text, ids: {file: ids}}: short edge cases, encoded by every file
  decode_cases[]      {ids, text}: decode of id lists that cut UTF-8 characters apart
  notes               what the library does with a str holding lone surrogates (the only
                      way raw invalid bytes could reach it)

Re-run on a machine with tokenizers (no GPU needed):
  python3 tools/make_tokenizer_fixture.py --train tinyshakespeare.txt --out tests/fixtures
"""
import argparse
import json
import os

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

EXTRA_TRAIN = [
    "café naïve façade résumé über straße crème brûlée déjà vu Ångström señor año",
    "東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다。",
    "emoji: 😀 😃 🚀 👍🏽 ❤️ 🇫🇷 and more 🎉🎉🎉",
    "Numbers 1234567890, 3.14159, 2,718 and 1e-9; code: x += y**2 // (z - 1)!",
]

TEXT_PARTS = [
    b"First Citizen:\nBefore we proceed any further, hear me speak.\n\n",
    b"All:\nSpeak, speak.   Three spaces, then    four and a tab\there.\n\n\n\n",
    b"Trailing spaces   \n  leading spaces and          ten spaces.\r\n",
    b"Digits: 0 12 345 6789 1234567890 3.14159 2,718,281 $100 50% 1e-9\n",
    b"Punctuation runs: !!! ??? ... --- ;;; :) (:)) [] {} <> /// \\\\ @#$%^&*\n",
    b"Contractions: I'm, you're, he's, she'd, we've, they'll, it's, don't, can't, Y'ALL'RE\n",
    "Accents: café naïve façade résumé über straße Ångström señor crème brûlée\n".encode(),
    "CJK: 東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다。\n".encode(),
    "Emoji: 😀 🚀👍🏽 ❤️ 🇫🇷 🎉🎉🎉\n".encode(),
    "Other spaces: a\u00a0b\u3000c\u2009d\u0085e\u2028f\n".encode(),
    b"Invalid UTF-8: \xff\xfe lone \x80 cut \xe6\x97 then \xf0\x9f\x98 end \xc3( \xed\xa0\x80 \xf5\n",
    b"Special: <|endoftext|>The next document<|endoftext|><|endoftext|> x<|endoftext|>y\n",
    b"The end.",
]

STRINGS = [
    "", " ", "  ", "\n", "\n\n\n", "   \n   ", "hello", " hello", "  hello", "hello  ", "Hello, World!",
    "a" * 600, "ab" * 300 + " " + "1" * 300, "<|endoftext|>", "<|endoftext|><|endoftext|>", " <|endoftext|> ",
    "x<|endoftext|>y", "<|endoftext", "<|endoftext|", " " * 20, " " * 20 + "x", "\t\t x", "don't", "DON'T",
    "'s's's", "I'll've", "3.14", "1,000,000", "東京", "😀", "é", "e\u0301", "\u0085", "a\u0085b", "x\u00a0\u00a0y",
    "tab\tnew\nline\r\nend", "café<|endoftext|>東京", "        " + "<|endoftext|>" + "        ",
]


def train(train_path, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    with open(train_path, encoding="utf-8") as f:
        text = f.read()
    lines = text.splitlines(keepends=True) + EXTRA_TRAIN * 50
    tok.train_from_iterator(lines, trainer=trainer)
    # GPT-NeoX has non-special added tokens (runs of spaces) with normalized=true.
    tok.add_tokens([AddedToken(" " * 8, normalized=True, special=False)])
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True, help="training text (UTF-8)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=1500, help="vocabulary size (1500 for the committed fixture)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    tok = train(args.train, args.vocab)
    main_path = os.path.join(args.out, "tokenizer.json")
    tok.save(main_path)
    with open(main_path, encoding="utf-8") as f:
        spec = json.load(f)
    assert all(isinstance(m, list) for m in spec["model"]["merges"]), "expected the new merge form"
    old = json.loads(json.dumps(spec))
    old["model"]["merges"] = [" ".join(m) for m in spec["model"]["merges"]]
    prefix = json.loads(json.dumps(spec))
    prefix["pre_tokenizer"]["add_prefix_space"] = True
    files = {"tokenizer.json": None, "tokenizer_old_merges.json": old, "tokenizer_prefix_space.json": prefix}
    for name, content in files.items():
        if content is not None:
            with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
                json.dump(content, f, ensure_ascii=False, indent=2)
    toks = {name: Tokenizer.from_file(os.path.join(args.out, name)) for name in files}

    raw = b"".join(TEXT_PARTS)
    with open(os.path.join(args.out, "tokenizer_text.bin"), "wb") as f:
        f.write(raw)
    text = raw.decode("utf-8", errors="replace")
    results = {}
    for name, t in toks.items():
        ids = t.encode(text).ids
        results[name] = {"ids": ids, "decoded": t.decode(ids, skip_special_tokens=False),
                         "decoded_skip": t.decode(ids)}
    assert results["tokenizer.json"]["ids"] == results["tokenizer_old_merges.json"]["ids"]
    strings = [{"text": s, "ids": {name: t.encode(s).ids for name, t in toks.items()}} for s in STRINGS]

    t = toks["tokenizer.json"]
    byte_ids = [t.token_to_id(c) for c in pre_tokenizers.ByteLevel.alphabet()]
    assert all(i is not None for i in byte_ids)
    vocab, alphabet = t.get_vocab(), bytes_to_unicode()

    def byte_tokens(bs):  # the single-byte tokens of raw bytes
        return [vocab[alphabet[b]] for b in bs]
    decode_cases = []
    for bs in [b"\xe6\x97", "東京".encode()[:4], b"\xf0\x9f\x98", b"ab\xc3", b"\x80\x80x", "é".encode()[::-1],
               b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe0\x80\xaf"]:
        ids = byte_tokens(bs)
        decode_cases.append({"ids": ids, "text": t.decode(ids, skip_special_tokens=False)})
    full = results["tokenizer.json"]["ids"]
    for cut in [1, 7, len(full) // 2]:
        decode_cases.append({"ids": full[cut:cut + 40], "text": t.decode(full[cut:cut + 40], skip_special_tokens=False)})

    notes = {}
    lone = raw.decode("utf-8", errors="surrogateescape")
    try:
        notes["surrogateescape_encode"] = {"ids": t.encode(lone).ids}
    except Exception as e:  # noqa: BLE001 - the message is what we record
        notes["surrogateescape_encode"] = {"error": f"{type(e).__name__}: {e}"}
    notes["replace_matches_bytes_decode"] = text == raw.decode("utf-8", "replace")

    expected = {"text_file": "tokenizer_text.bin", "results": results, "strings": strings,
                "decode_cases": decode_cases, "notes": notes}
    with open(os.path.join(args.out, "tokenizer_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=True)
    print(json.dumps(notes)[:2000])
    print("vocab", t.get_vocab_size(), "ids", len(full))


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


if __name__ == "__main__":
    main()
