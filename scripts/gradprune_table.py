#!/usr/bin/env python3
"""The table of README "Gradient statistics, A_log and the fair reference": reads the runs'
summaries (NAME.summary.json, the last metrics.jsonl line) and reports (NAME.report.json)
from a folder, NAME = CORPUS_VARIANT_seedSEED (scripts/gradprune_jobs.py), and prints per
corpus, sparsity and variant the validation perplexity as mean ± sd over the seeds, the ratio to the
dense fine-tuned reference (the dft runs of the same seeds), the A_log / dt_proj / x_proj
sparsity, the stability corrections and the share of pruning time in the check.

    python3 scripts/gradprune_table.py docs/results/gradprune
    python3 scripts/gradprune_table.py docs/results/gradprune2 docs/results/gradprune3

Several folders are read as one set of runs; a run found in more than one (a control, run
again to show that the folders' rows are comparable) must have the same summary in each, to
the bit, and is listed under the table; a mismatch is an error.
"""
import glob
import json
import os
import statistics
import sys

folders = sys.argv[1:] or ["docs/results/gradprune"]
runs = {}
controls = []  # (name, folders, perplexity): runs found in more than one folder, equal in each
for folder in folders:
    paths = sorted(glob.glob(os.path.join(folder, "*.summary.json")))
    if not paths:
        sys.exit(f"gradprune_table: {folder}: no *.summary.json")
    for path in paths:
        name = os.path.basename(path)[: -len(".summary.json")]
        key, seed = name.rsplit("_seed", 1)
        corpus, variant = key.split("_", 1)
        with open(path) as f:
            summary = json.load(f)
        report_path = os.path.join(folder, name + ".report.json")
        report = json.load(open(report_path)) if os.path.exists(report_path) else None
        seen = runs.setdefault(corpus, {}).setdefault(variant, {})
        if seed in seen:
            # timings differ between machines and loads; everything the run computed must not
            old = {k: v for k, v in seen[seed][0].items() if "second" not in k and k not in ("wall_s", "tokens_per_s")}
            new = {k: v for k, v in summary.items() if "second" not in k and k not in ("wall_s", "tokens_per_s")}
            if old != new:
                sys.exit(f"gradprune_table: {name} differs between {seen[seed][2]} and {folder}: {old} against {new}")
            controls.append((name, seen[seed][2], folder, summary["val_perplexity"]))
            continue
        seen[seed] = (summary, report, folder)


def mean_sd(values):
    m = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return m, sd


NAMES = {"mag": "alpha 0 (magnitude)", "a1": "alpha 1, mean", "rmsmedA": "alpha 1, rms, median, A_log 30%",
         "rmsmedAd": "alpha 1, rms, median, A_log 30%, distilled (w 0.5, T 2)", "magmed": "alpha 0, median",
         "rmsmed": "alpha 1, rms, median", "rmsA": "alpha 1, rms, A_log 30%",
         "rmsAd": "alpha 1, rms, A_log 30%, distilled (w 0.5, T 2)",
         "magd": "alpha 0 (magnitude), distilled (w 0.5, T 2)"}


def row_name(variant):
    if variant == "dft":
        return "dense fine-tuned"
    sparsity, name = variant[1:].split("_", 1)
    return f"{100 * float(sparsity):.0f}%: {NAMES.get(name, name)}"


def order(variant):  # dft first, then by sparsity, magnitude first within one
    if variant == "dft":
        return (0.0, 0, variant)
    sparsity, name = variant[1:].split("_", 1)
    return (float(sparsity), 0 if name == "mag" else 1, name)


print("| corpus | run | perplexity (mean ± sd, n) | vs dense fine-tuned (paired) | better than magnitude "
      "| A_log | dt_proj | x_proj | corrected (A_log) | check / prune time |")
print("|---|---|---|---|---|---|---|---|---|---|")
for corpus in sorted(runs):
    variants = runs[corpus]
    dft = {seed: s["val_perplexity"] for seed, (s, *_) in variants.get("dft", {}).items()}
    dense = next((s["dense_val_perplexity"] for v, r in variants.items() if v != "dft" for s, *_ in r.values()), None)
    print(f"| {corpus} | dense before fine-tuning | {dense:.4f} | | | | | | | |")
    for variant in sorted(variants, key=order):
        seeds = sorted(variants[variant])
        ppl = [variants[variant][s][0]["val_perplexity"] for s in seeds]
        m, sd = mean_sd(ppl)
        ratios = [variants[variant][s][0]["val_perplexity"] / dft[s] for s in seeds if s in dft]
        rm, rsd = mean_sd(ratios) if ratios else (float("nan"), float("nan"))
        mag_variant = variant.rsplit("_", 1)[0] + "_mag" if variant != "dft" else None
        mag = {seed: s["val_perplexity"] for seed, (s, *_) in variants.get(mag_variant, {}).items()}
        wins = sum(variants[variant][s][0]["val_perplexity"] < mag[s] for s in seeds if s in mag)
        cells = [f"{m:.4f} ± {sd:.4f} ({len(ppl)})", f"{100 * (rm - 1):+.2f}% ± {100 * rsd:.2f}" if variant != "dft" else "",
                 f"{wins} of {len(seeds)} seeds" if variant != "dft" and variant != mag_variant else ""]
        reports = [variants[variant][s][1] for s in seeds if variants[variant][s][1]]
        if reports:
            comp = lambda c: statistics.mean(r["sparsity"]["components"][c]["sparsity"] for r in reports)
            corrected = statistics.mean(r["stability"]["corrected"] for r in reports)
            corrected_a = statistics.mean(r["stability"]["corrected_a_log"] for r in reports)
            share = statistics.mean(r["time"]["stability"] / r["time"]["prune_seconds"] for r in reports)
            cells += [f"{100 * comp('A_log'):.1f}%", f"{100 * comp('dt_proj'):.1f}%", f"{100 * comp('x_proj'):.1f}%",
                      f"{corrected:.0f} ({corrected_a:.0f})", f"{100 * share:.0f}%"]
        else:
            cells += [""] * 5
        print(f"| {corpus} | {row_name(variant)} | " + " | ".join(cells) + " |")
for name, first, second, ppl in controls:
    print(f"\ncontrol {name}: the same in {first} and {second} (perplexity {ppl!r})", end="")
if controls:
    print()
