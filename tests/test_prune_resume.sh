#!/usr/bin/env bash
# Gradient pruning survives being killed: a pruning run (masks every 5 steps from gradients of
# the 3 steps before, the stability check on, checkpoints every 2 steps so that some fall
# inside an accumulation window) killed with SIGKILL at random moments and resumed with
# `--resume latest` until it finishes must end with the same parameters, AdamW moments,
# masks and pruner state, bit for bit, as the same run made straight through, and log the
# same losses, mask updates and stability corrections.
set -uo pipefail
source "$(dirname "$0")/check.sh"
config=(--config "$src/configs/train_copying.yaml" --set train.steps=40 --set train.log_every=2
        --set model.d_model=32 --set checkpoint.every=2 --set checkpoint.keep=100 --set train.eval_every=0
        --set train.eval_batches=2 --set eval.batches=2 --set log.progress=false
        --set prune.method=gradient --set prune.prune_every=5 --set prune.grad_accum_batches=3
        --set prune.end_step=30 --set stability.batches=2)

"$bin" train "${config[@]}" --set log.dir="$tmp/straight" 2>"$tmp/straight.log"
check "straight run" test $? -eq 0

RANDOM=${MP_TEST_SEED:-11}
kills=0
for attempt in 1 2 3 4 5 6; do
    "$bin" train "${config[@]}" --set log.dir="$tmp/killed" --resume latest 2>>"$tmp/killed.log" &
    pid=$!
    sleep "$((RANDOM % 3)).$((RANDOM % 9 + 1))"  # 0.1 to 2.9 s of a run of about 3 s
    if kill -KILL "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null
done
"$bin" train "${config[@]}" --set log.dir="$tmp/killed" --resume latest 2>>"$tmp/killed.log"
check "resumed run finishes" test $? -eq 0
echo "       killed $kills time(s); resumed from: $(grep -o 'step [0-9]*)' "$tmp/killed.log" | tr '\n' ' ')"

a="$tmp/straight/train_copying" b="$tmp/killed/train_copying"
end=ckpt-00000040.h5 window=ckpt-00000024.h5  # at 24, 2 of the 3 gradients of the update at 25 are summed
check "same parameters" h5diff "$a/$end" "$b/$end" /params
check "same AdamW moments and step" h5diff "$a/$end" "$b/$end" /optim
check "same masks" h5diff "$a/$end" "$b/$end" /masks
check "same stability totals" h5diff "$a/$end" "$b/$end" /prune
check "inside a window: same gradient accumulator" h5diff "$a/$window" "$b/$window" /prune/grad_accum
check "inside a window: same masks and parameters" h5diff "$a/$window" "$b/$window" /params
losses() { grep -o '"step":[0-9]*,"loss":[^,]*,"lr":[^,]*,"grad_norm":[^,]*,"sparsity":[^,]*' "$1/metrics.jsonl"; }
check "same logged losses and sparsity" diff <(losses "$a") <(losses "$b")
updates() { grep '"prune_update"' "$1/metrics.jsonl" | sed 's/"prune_seconds":[^,]*,//'; }
check "same mask updates and stability corrections" diff <(updates "$a") <(updates "$b")
check "6 mask updates" test "$(updates "$a" | wc -l)" -eq 6
dense() { grep '"dense":true' "$1/metrics.jsonl"; }
check "the dense evaluation once, the same" diff <(dense "$a") <(dense "$b")
check "one summary line" test "$(grep -c '"summary":true' "$b/metrics.jsonl")" -eq 1
summary_a=$(grep '"summary":true' "$a/metrics.jsonl") summary_b=$(grep '"summary":true' "$b/metrics.jsonl")
for key in val_loss dense_val_loss sparsity; do
    check "summary $key the same" test "$(json_field $key "$summary_a")" = "$(json_field $key "$summary_b")"
done
check "report.json written" test -s "$b/report.json"
pruned=$(grep -B1 '"prunable":' "$b/report.json" | head -1 | grep -o '[0-9]*')
prunable=$(grep -m1 '"prunable":' "$b/report.json" | grep -o '[0-9]*')
check "exactly half pruned ($pruned of $prunable)" test "$pruned" -eq $(((prunable + 1) / 2))

# Resuming a pruning checkpoint as a dense run is refused, naming the key.
"$bin" train --config "$src/configs/train_copying.yaml" --set train.steps=40 --set model.d_model=32 \
    --set log.dir="$tmp/x" --resume "$a/$end" 2>"$tmp/method.log"
check "method mismatch refused" grep -q "prune.method: checkpoint gradient, config none" "$tmp/method.log"

check_summary
