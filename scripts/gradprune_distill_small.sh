#!/usr/bin/env bash
# The small distillation measurement of README "Gradient statistics, A_log and the fair
# reference": a 0.08 M-parameter dense model (d_model 64, 2 layers, 400 steps of 8 x 128
# bytes of tinyshakespeare), then per seed 1234, 11, 12 the dense fine-tuned reference,
# alpha 0 at 50%, and alpha 0 at 50% distilled (prune.distill_weight 0.5, T 2), 100 steps.
# Run from the repository root; logs go to the current folder, runs under OUT_DIR. The score
# settings are pinned to those prune_cubic_text.yaml had when this ran (grad_stat mean, A_log
# in the global pool).
set -u
BIN=./build/mambaprune
C=configs
D=../shared/data/tinyshakespeare.txt
export OMP_NUM_THREADS=1
$BIN train --config $C/dense_text.yaml --set data.path=$D --set model.d_model=64 --set model.n_layer=2 \
  --set train.seqlen=128 --set train.steps=400 --set optim.warmup_steps=40 --set train.eval_every=0 \
  --set eval.batches=16 --set checkpoint.every=0 --set log.dir=${OUT_DIR:-runs/distill_small}/runs --set log.name=dense \
  --set log.progress=false --set train.threads=1 2> dense.log
for seed in 1234 11 12; do
  for v in "dft:prune.method=none" "mag:prune.alpha=0" "magkd:prune.alpha=0 --set prune.distill_weight=0.5"; do
    name=${v%%:*}_seed$seed
    $BIN train --config $C/prune_cubic_text.yaml --set data.path=$D --set model.init=${OUT_DIR:-runs/distill_small}/runs/dense/ckpt-00000400.h5 \
      --set train.seqlen=128 --set train.steps=100 --set prune.end_step=70 --set prune.prune_every=10 \
      --set train.eval_every=0 --set eval.batches=16 --set checkpoint.every=0 --set train.seed=$seed \
      --set log.progress=false --set train.threads=1 --set prune.grad_stat=mean --set prune.a_log_sparsity=-1 --set ${v#*:} --set log.dir=${OUT_DIR:-runs/distill_small}/runs --set log.name=$name 2> $name.log &
  done
  wait
done

