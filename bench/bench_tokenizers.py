#!/usr/bin/env python3
"""The Python `tokenizers` side of bench_tokenizer.c: single-threaded encode speed of a file.

Run with RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false (one thread, as the C encoder).
Prints MB/s of encode(whole text) (the first call, with the library's BPE cache cold, and
the median of --repeat calls) and of encode_batch(lines) (median), and writes the ids of
the whole text as little-endian int32 to --ids-out, for bench_tokenizer --expect.

  python3 bench/bench_tokenizers.py TOKENIZER_JSON TEXT [--repeat 5] [--ids-out ids.bin]
"""
import argparse
import array
import statistics
import sys
import time

from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer")
    ap.add_argument("text")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--ids-out")
    a = ap.parse_args()
    raw = open(a.text, "rb").read()
    text = raw.decode("utf-8", errors="replace")
    mb = len(raw) / 1e6
    tok = Tokenizer.from_file(a.tokenizer)
    t0 = time.perf_counter()
    ids = tok.encode(text).ids
    cold = time.perf_counter() - t0
    whole = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        tok.encode(text)
        whole.append(time.perf_counter() - t0)
    lines = text.splitlines(keepends=True)
    batch = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        tok.encode_batch(lines)
        batch.append(time.perf_counter() - t0)
    print(f"python tokenizers: {len(raw)} bytes, {len(ids)} tokens, vocab {tok.get_vocab_size()}")
    print(f"python encode(whole)   first {mb / cold:7.2f} MB/s   median {mb / statistics.median(whole):7.2f} MB/s")
    print(f"python encode_batch(lines)     median {mb / statistics.median(batch):7.2f} MB/s ({len(lines)} lines)")
    if a.ids_out:
        array.array("i", ids).tofile(open(a.ids_out, "wb"))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
