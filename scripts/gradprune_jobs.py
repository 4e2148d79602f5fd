# (scripts/gradprune_jobs.py OUT [DONE ...]) # Writes the job list of the evidence runs (see gp_run.sh): name|corpus|--set settings.
# Names are CORPUS_dft_seedS (dense fine-tuned) and CORPUS_sSPARSITY_VARIANT_seedS; the list is in
# priority order (references and magnitude first), since the device runs it 16 at a time until a deadline.
#   scripts/gradprune_jobs.py OUT [DONE ...]            the 30 runs of docs/results/gradprune2
#   scripts/gradprune_jobs.py --wave3 OUT [DONE ...]    those of docs/results/gradprune3: two controls (runs of
#       gradprune2, to be reproduced to the bit), then distillation and the three ablations at 70%, then
#       distillation at 50%; the dense fine-tuned and magnitude rows are gradprune2's (same dense models).
#   scripts/gradprune_jobs.py --wave3b OUT [DONE ...]   one control, then rmsA (the best at 70% in wave 3) at 50%
#   scripts/gradprune_jobs.py --wave3c OUT [DONE ...]   rmsA distilled, at 70% then 50%
#   scripts/gradprune_jobs.py --wave3e OUT [DONE ...]   magnitude distilled as rmsAd is, at 70% then 50%
#   scripts/gradprune_jobs.py --wave3d OUT              controls of the shipped config: a pinned gradprune2
#       magnitude run, and rmsAd's PTB 50% seed-1234 run as prune_cubic_text.yaml gives it (no score settings)
import sys
SHORT = ("--set train.steps=60 --set prune.end_step=42 --set prune.prune_every=6 --set prune.grad_accum_batches=4 --set train.eval_every=0 "
         "--set eval.batches=16 --set checkpoint.every=0 --set checkpoint.keep=1 --set log.progress=false "
         # The score settings these runs got from prune_cubic_text.yaml when they ran (magnitude, the
         # options' defaults), pinned: each variant's --sets come after them, and the shipped default may change.
         "--set prune.alpha=0 --set prune.grad_stat=mean --set prune.score_norm=none --set prune.a_log_sparsity=-1 "
         "--set prune.distill_weight=0")
RMS = "--set prune.alpha=1 --set prune.grad_stat=rms"
VARIANTS = {
    "mag": "--set prune.alpha=0",
    "rmsmedA": f"{RMS} --set prune.score_norm=median --set prune.a_log_sparsity=0.3",
}
# Wave 3: rmsmedA distilled against the dense teacher, and rmsmedA with one of its three changes taken back.
VARIANTS3 = {
    "rmsmedAd": f"{VARIANTS['rmsmedA']} --set prune.distill_weight=0.5 --set prune.distill_temperature=2",
    "magmed": "--set prune.alpha=0 --set prune.score_norm=median",
    "rmsmed": f"{RMS} --set prune.score_norm=median",
    "rmsA": f"{RMS} --set prune.a_log_sparsity=0.3",
}
DISTILL = "--set prune.distill_weight=0.5 --set prune.distill_temperature=2"
VARIANTS3["rmsAd"] = f"{VARIANTS3['rmsA']} {DISTILL}"
VARIANTS3["magd"] = f"{VARIANTS['mag']} {DISTILL}"  # magnitude with the same distillation: the fair baseline of rmsAd
PLAIN = SHORT.split(" --set prune.alpha=0")[0]  # SHORT without the pinned score settings
SPARSITIES = ("0.5", "0.7")
SEEDS = (1234, 11, 12)
CORPORA = ("tiny", "ptb")
wave = sys.argv[1] if sys.argv[1].startswith("--") else ""
args = sys.argv[2:] if wave else sys.argv[1:]
done = set(args[1:])


def runs(variants, sparsity, seeds=SEEDS):
    return [(f"{c}_s{sparsity}_{v}_seed{seed}", c, f"{s} --set prune.final_sparsity={sparsity}")
            for v, s in variants.items() for c in CORPORA for seed in seeds]


if wave == "--wave3e":
    jobs = runs({"magd": VARIANTS3["magd"]}, "0.7") + runs({"magd": VARIANTS3["magd"]}, "0.5")
elif wave == "--wave3d":
    jobs = runs({"mag": VARIANTS["mag"]}, "0.5", seeds=(1234,))[1:]  # ptb's
elif wave == "--wave3c":
    jobs = runs({"rmsAd": VARIANTS3["rmsAd"]}, "0.7") + runs({"rmsAd": VARIANTS3["rmsAd"]}, "0.5")
elif wave == "--wave3b":
    jobs = runs({"rmsmedA": VARIANTS["rmsmedA"]}, "0.7", seeds=(1234,))[1:]  # ptb's
    jobs += runs({"rmsA": VARIANTS3["rmsA"]}, "0.5")
elif wave == "--wave3":
    jobs = runs({"rmsmedA": VARIANTS["rmsmedA"]}, "0.7", seeds=(1234,))
    jobs += runs({v: VARIANTS3[v] for v in ("rmsmedAd", "magmed", "rmsmed", "rmsA")}, "0.7")
    jobs += runs({"rmsmedAd": VARIANTS3["rmsmedAd"]}, "0.5")
else:
    jobs = [(f"{c}_dft_seed{seed}", c, "--set prune.method=none") for c in CORPORA for seed in SEEDS]
    for v, s in VARIANTS.items():
        for sp in SPARSITIES:
            jobs += runs({v: s}, sp)
with open(args[0], "w") as f:
    for name, corpus, s in jobs:
        if name not in done:
            seed = name.rsplit("_seed", 1)[1]
            f.write(f"{name}|{corpus}|{SHORT} --set train.seed={seed} {s}\n")
    if wave == "--wave3d":
        f.write(f"ptb_s0.5_rmsAd_seed1234|ptb|{PLAIN} --set train.seed=1234\n")
