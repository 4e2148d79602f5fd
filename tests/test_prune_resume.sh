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

started=$(date +%s%N)
"$bin" train "${config[@]}" --set log.dir="$tmp/straight" 2>"$tmp/straight.log"
check "straight run" test $? -eq 0
run_ms=$((($(date +%s%N) - started) / 1000000))

RANDOM=${MP_TEST_SEED:-11}
kills=0
for attempt in 1 2 3 4 5 6; do
    "$bin" train "${config[@]}" --set log.dir="$tmp/killed" --resume latest 2>>"$tmp/killed.log" &
    pid=$!
    ms=$((50 + RANDOM % (run_ms / 2 + 1)))  # up to half a straight run: each attempt gets somewhat further
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
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

# One-shot + fine-tuning: structured SparseSSM shrinks d_state 16 -> 8; the pass is
# checkpointed as step 0, and a run resumed from a later checkpoint builds the smaller
# model from it, does not prune again, and ends bit-identical to the straight run.
oneshot=(--config "$src/configs/train_copying.yaml" --set train.steps=20 --set model.d_model=32
         --set prune.method=sparsessm --set prune.sparsessm_structured=true --set prune.nsamples=4
         --set prune.calib_seqlen=64 --set checkpoint.every=5 --set checkpoint.keep=10 --set train.eval_every=0
         --set log.progress=false)
"$bin" train "${oneshot[@]}" --set log.dir="$tmp/os_straight" 2>"$tmp/os_straight.log"
check "one-shot run" test $? -eq 0
c="$tmp/os_straight/train_copying" d="$tmp/os_resumed/train_copying"
check "one-shot result checkpointed as step 0, with the smaller d_state" \
    grep -q "d_state: 8" <(h5dump -d /config "$c/ckpt-00000000.h5" 2>/dev/null)
mkdir -p "$d" && cp "$c/ckpt-00000010.h5" "$d/"
"$bin" train "${oneshot[@]}" --set log.dir="$tmp/os_resumed" --resume latest 2>"$tmp/os_resumed.log"
check "resumed one-shot run finishes" test $? -eq 0
check "no second one-shot pass" test "$(grep -c 'one-shot pruning' "$tmp/os_resumed.log")" -eq 0
check "one-shot resume: same parameters" \
    h5diff "$c/ckpt-00000020.h5" "$d/ckpt-00000020.h5" /params
check "one-shot resume: same moments" h5diff "$c/ckpt-00000020.h5" "$d/ckpt-00000020.h5" /optim
check "one-shot resume: same masks" h5diff "$c/ckpt-00000020.h5" "$d/ckpt-00000020.h5" /masks
check "one-shot resume: the dense reference carried over" \
    test "$(json_field dense_val_loss "$(grep summary "$c/metrics.jsonl")")" = \
         "$(json_field dense_val_loss "$(grep summary "$d/metrics.jsonl")")"

# Resuming a pruning checkpoint as a dense run is refused, naming the key.
"$bin" train --config "$src/configs/train_copying.yaml" --set train.steps=40 --set model.d_model=32 \
    --set log.dir="$tmp/x" --resume "$a/$end" 2>"$tmp/method.log"
check "method mismatch refused" grep -q "prune.method: checkpoint gradient, config none" "$tmp/method.log"

check_summary
