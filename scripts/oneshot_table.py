#!/usr/bin/env python3
# The README's one-shot tables ("One-shot methods side by side") from the runs of
# configs/compare_oneshot.yaml that have finished, also when the sweep has not (its own
# summary.md needs every run): per corpus, one row per method and target, the protocols
# in columns, each cell the perplexity's mean ± sample sd over the calibration seeds, the
# number of seeds when it is not 3 (magnitude, which reads no calibration data, runs one
# seed: "any seed"), and the mean prune_seconds.
#
#   python3 scripts/oneshot_table.py [SWEEP_DIR]      (default runs/compare_oneshot)
#   python3 scripts/oneshot_table.py --calib SWEEP_DIR CALIB_DIR
#
# --calib: the linear protocol at 50% against the number of calibration windows: the 16 of
# SWEEP_DIR's runs and each prune.nsamples of CALIB_DIR's (a sweep with a prune.nsamples
# axis, e.g. runs/compare_oneshot_calib), one column per count.
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


def read_runs(sweep, nsamples):
    # {(corpus, target, method, protocol, nsamples): [summary, ...]} of sweep's finished runs;
    # nsamples is the run's prune.nsamples key, else the given default.
    runs = {}
    for name in sorted(os.listdir(sweep)):
        keys = dict(kv.split("=", 1) for kv in name.split(",") if "=" in kv)
        if not {"corpus", "target", "prune.method", "protocol", "train.seed"} <= keys.keys():
            continue
        s = summary(os.path.join(sweep, name))
        if s is None:
            continue
        key = (keys["corpus"], keys["target"], keys["prune.method"], keys["protocol"], keys.get("prune.nsamples", nsamples))
        runs.setdefault(key, []).append(s)
    return runs


def calib_table(sweep, calib):
    runs = read_runs(sweep, "16")
    runs.update(read_runs(calib, "?"))
    counts = sorted({k[4] for k in runs if k[4] != "?"}, key=int)
    print("| corpus | method | " + " | ".join(f"{n} windows" for n in counts) + " |")
    print("|---|---|" + "---|" * len(counts))
    for corpus in ("tinyshakespeare", "ptb"):
        for method in METHODS:
            cells = [cell(runs.get((corpus, "50_", method, "linear", n), []), method) for n in counts]
            if any(c != "not run" for c in cells[1:]):
                print(f"| {corpus} | {method} | " + " | ".join(cells) + " |")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--calib":
        return calib_table(sys.argv[2], sys.argv[3])
    sweep = sys.argv[1] if len(sys.argv) > 1 else "runs/compare_oneshot"
    runs = {k[:4]: v for k, v in read_runs(sweep, "16").items()}
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
