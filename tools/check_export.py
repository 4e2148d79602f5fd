#!/usr/bin/env python3
"""Checks that a folder written by `mambaprune export` is a working transformers model.

Loads it with transformers' MambaForCausalLM (float32, CPU), evaluates the same
non-overlapping windows that `mambaprune eval` evaluates (docs/DESIGN.md#evaluation: every token of the
file but the first is predicted once), and compares the mean NLL with the value that
`mambaprune eval` printed. Exits non-zero if the model does not load cleanly or the NLL
differs by more than --tolerance.

    ./build/mambaprune export --model runs/x/ckpt-00000100.h5 --to /tmp/exported
    ./build/mambaprune eval --model /tmp/exported --data FILE --seqlen 128   # prints "nll"
    python3 tools/check_export.py --folder /tmp/exported --data FILE --seqlen 128 --expect-nll NLL
"""
import argparse
import struct
import sys


def read_tokens(path):
    raw = open(path, "rb").read()
    if len(raw) >= 1024 and struct.unpack_from("<i", raw, 0)[0] == 20240520:
        count = struct.unpack_from("<i", raw, 8)[0]
        return list(struct.unpack_from("<%dH" % count, raw, 1024))
    return list(raw)  # bytes of a text file


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--seqlen", type=int, default=256)
    parser.add_argument("--expect-nll", type=float, required=True)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()

    import torch
    import transformers
    from transformers import MambaForCausalLM

    print("torch", torch.__version__, "transformers", transformers.__version__)
    model, info = MambaForCausalLM.from_pretrained(args.folder, torch_dtype=torch.float32, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    print("loading info:", problems or "clean")
    model.eval()
    tokens = read_tokens(args.data)
    total, count = 0.0, 0
    with torch.no_grad():
        # Window w covers targets tokens[1 + w*L .. (w+1)*L], inputs one position earlier.
        for start in range(0, len(tokens) - 1, args.seqlen):
            inputs = torch.tensor([tokens[start:start + args.seqlen]])
            targets = torch.tensor(tokens[start + 1:start + 1 + args.seqlen])
            inputs = inputs[:, :len(targets)]
            logits = model(inputs).logits[0].double()
            total += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
            count += len(targets)
    nll = total / count
    diff = abs(nll - args.expect_nll)
    ok = not problems and diff <= args.tolerance
    print(f"{'OK' if ok else 'NOT OK'} transformers nll {nll:.7f} over {count} tokens, "
          f"mambaprune {args.expect_nll:.7f}, diff {diff:.2e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
