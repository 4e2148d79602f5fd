#!/usr/bin/env python3
# The README's one-shot tables ("One-shot methods side by side") from the runs of
# configs/compare_oneshot.yaml that have finished, also when the sweep has not (its own
# summary.md needs every run): per corpus, one row per method and target, the protocols
# in columns, each cell the perplexity's mean ± sample sd over the calibration seeds, the
# number of seeds when it is not 3 (magnitude, which reads no calibration data, runs one
# seed: "any seed"), and the mean prune_seconds.
#
#   python3 scripts/oneshot_table.py [SWEEP_DIR]      (default runs/compare_oneshot)
#
# A run folder is named by the sweep's label, e.g.
# corpus=ptb,target=2_4,prune.method=wanda,protocol=linear,train.seed=1235; its summary is
# the last line of metrics.jsonl with "summary": true.
import json
import math
import os
import sys

METHODS = ["magnitude", "wanda", "sparsegpt", "sparsessm"]
TARGETS = [("50_", "50%"), ("2_4", "2:4")]
PROTOCOLS = ["linear", "ssm", "whole"]


def summary(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return None
    last = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                o = json.loads(line)
                if o.get("summary"):
                    last = o
    return last


def cell(runs, method):
    if not runs:
        return "not run"
    ppl = [r["val_perplexity"] for r in runs]
    secs = sum(r["prune_seconds"] for r in runs) / len(runs)
    mean = sum(ppl) / len(ppl)
    if len(ppl) > 1:
        sd = math.sqrt(sum((p - mean) ** 2 for p in ppl) / (len(ppl) - 1))
        text = f"{mean:.3f} ± {sd:.3f}"
    else:
        text = f"{mean:.3f}"
    if method == "magnitude" and len(ppl) == 1:
        text += " (any seed)"  # it reads no calibration data: every seed prunes the same weights
    elif len(ppl) != 3:
        text += f" ({len(ppl)} seed{'s' if len(ppl) > 1 else ''})"
    return f"{text} ({secs:.1f} s)"


def main():
    sweep = sys.argv[1] if len(sys.argv) > 1 else "runs/compare_oneshot"
    runs = {}
    for name in sorted(os.listdir(sweep)):
        keys = dict(kv.split("=", 1) for kv in name.split(",") if "=" in kv)
        if not {"corpus", "target", "prune.method", "protocol", "train.seed"} <= keys.keys():
            continue
        s = summary(os.path.join(sweep, name))
        if s is None:
            continue
        key = (keys["corpus"], keys["target"], keys["prune.method"], keys["protocol"])
        runs.setdefault(key, []).append(s)
    for corpus in ("tinyshakespeare", "ptb"):
        dense = [s["dense_val_perplexity"] for k, v in runs.items() if k[0] == corpus for s in v]
        if not dense:
            continue
        print(f"**{corpus}** (dense perplexity {dense[0]:.3f}):\n")
        print("| method | target | " + " | ".join(PROTOCOLS) + " |")
        print("|---|---|" + "---|" * len(PROTOCOLS))
        for folder, target in TARGETS:
            for method in METHODS:
                cells = [cell(runs.get((corpus, folder, method, p), []), method) for p in PROTOCOLS]
                print(f"| {method} | {target} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main()
