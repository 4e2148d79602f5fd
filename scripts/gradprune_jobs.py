# (scripts/gradprune_jobs.py OUT [DONE ...]) # Writes the job list of the evidence runs (see gp_run.sh): name|corpus|--set settings.
# Names are CORPUS_dft_seedS (dense fine-tuned) and CORPUS_sSPARSITY_VARIANT_seedS; the list is in
# priority order (references and magnitude first), since the device runs it 16 at a time until a deadline.
import sys
SHORT = ("--set train.steps=60 --set prune.end_step=42 --set prune.prune_every=6 --set prune.grad_accum_batches=4 --set train.eval_every=0 "
         "--set eval.batches=16 --set checkpoint.every=0 --set checkpoint.keep=1 --set log.progress=false")
VARIANTS = {
    "mag": "--set prune.alpha=0",
    "rmsmedA": "--set prune.alpha=1 --set prune.grad_stat=rms --set prune.score_norm=median --set prune.a_log_sparsity=0.3",
}
SPARSITIES = ("0.5", "0.7")
SEEDS = (1234, 11, 12)
CORPORA = ("tiny", "ptb")
done = set(sys.argv[2:])
jobs = [(f"{c}_dft_seed{seed}", c, "--set prune.method=none") for c in CORPORA for seed in SEEDS]
for v, s in VARIANTS.items():
    for sp in SPARSITIES:
        jobs += [(f"{c}_s{sp}_{v}_seed{seed}", c, f"{s} --set prune.final_sparsity={sp}") for c in CORPORA for seed in SEEDS]
with open(sys.argv[1], "w") as f:
    for name, corpus, s in jobs:
        if name not in done:
            seed = name.rsplit("_seed", 1)[1]
            f.write(f"{name}|{corpus}|{SHORT} --set train.seed={seed} {s}\n")
