# (scripts/gradprune_jobs.py OUT [DONE ...]) # Writes the job list of the evidence runs (see gp_run.sh): name|corpus|--set settings.
import sys
SHORT = ("--set train.steps=60 --set prune.end_step=42 --set prune.prune_every=6 --set prune.grad_accum_batches=4 --set train.eval_every=0 "
         "--set eval.batches=16 --set checkpoint.every=0 --set checkpoint.keep=1 --set log.progress=false")
VARIANTS = {
    "mag": "--set prune.alpha=0",
    "a1": "--set prune.alpha=1",
    "rmsmedA": "--set prune.alpha=1 --set prune.grad_stat=rms --set prune.score_norm=median --set prune.a_log_sparsity=0.3",
}
done = set(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    for seed in (1234, 11, 12):
        for corpus in ("tiny", "ptb"):
            jobs = [(f"{corpus}_dft_seed{seed}", "--set prune.method=none")]
            for sp in ("0.5",):
                for v, s in VARIANTS.items():
                    jobs.append((f"{corpus}_s{sp}_{v}_seed{seed}", f"{s} --set prune.final_sparsity={sp}"))
            for name, s in jobs:
                if name not in done:
                    f.write(f"{name}|{corpus}|{SHORT} --set train.seed={seed} {s}\n")
