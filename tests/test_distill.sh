#!/usr/bin/env bash
# Distillation through `mambaprune train` (run/distill.h): the teacher is model.init, so at
# step 0 of an unpruned run the student equals it, the KL is exactly 0 and the logged loss
# is (1 - w) times the task loss of the same run without distillation; later steps differ;
# a pruning run distils to the end; distillation without a dense teacher is refused.
set -uo pipefail
source "$(dirname "$0")/check.sh"
export OMP_NUM_THREADS=1

cat >"$tmp/base.yaml" <<YAML
model: {d_model: 16, n_layer: 2, d_state: 4}
data: {kind: selective_copying, vocab: 8, n_memorize: 4, val_sequences: 16}
train: {steps: 6, batch_size: 4, seqlen: 32, eval_every: 0, eval_batches: 2, log_every: 1}
optim: {lr: 3.0e-3, lr_min: 1.0e-4}
prune: {final_sparsity: 0.5, prune_every: 2, grad_accum_batches: 2}
stability: {batches: 1}
log: {dir: $tmp/runs, progress: false}
YAML
train() {
    local name=$1
    shift
    "$bin" train --config "$tmp/base.yaml" --set log.name="$name" "$@" 2>"$tmp/$name.log"
}
loss_at() { json_field loss "$(grep "\"step\":$2," "$tmp/runs/$1/metrics.jsonl" | grep '"loss"' | head -1)"; }

train dense --set train.steps=20
dense=$tmp/runs/dense/ckpt-00000020.h5
train plain --set model.init="$dense"
train distilled --set model.init="$dense" --set prune.distill_weight=0.25 --set prune.distill_temperature=2
check "a distilled run exits 0" test $? -eq 0
plain0=$(loss_at plain 1) distilled0=$(loss_at distilled 1)
check "step 1: student = teacher, KL 0, loss = 0.75 x task loss ($distilled0 = 0.75 x $plain0)" \
    awk -v a="$distilled0" -v b="$plain0" 'BEGIN { d = a - 0.75 * b; exit !(a != "" && d < 1e-6 * b && -d < 1e-6 * b) }'
check "step 6: the runs differ" test "$(loss_at plain 6)" != "$(loss_at distilled 6)"
train pruned --set model.init="$dense" --set prune.method=gradient --set prune.distill_weight=0.5
check "a pruning run with distillation exits 0 with its report" test -f "$tmp/runs/pruned/report.json"
train random --set prune.distill_weight=0.5
check "no teacher: exit 1" test $? -eq 1
check "no teacher: the message names the key and model.init" \
    grep -q 'prune.distill_weight: distillation needs a dense teacher.*model.init is "random"' "$tmp/random.log"
check_summary
