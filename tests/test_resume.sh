#!/usr/bin/env bash
# Runs that survive being killed: a run killed with SIGKILL at random moments (checkpoints
# every 2 steps, so kills also land inside checkpoint writes) and resumed with
# `--resume latest` until it finishes must end with the same parameters, AdamW moments and
# logged losses, bit for bit, as the same run made straight through.
set -uo pipefail
source "$(dirname "$0")/check.sh"
config=(--config "$src/configs/train_copying.yaml" --set train.steps=60 --set train.log_every=2
        --set model.d_model=32 --set checkpoint.every=2 --set checkpoint.keep=2 --set train.eval_every=20
        --set train.eval_batches=2 --set log.progress=false)

"$bin" train "${config[@]}" --set log.dir="$tmp/straight" 2>/dev/null
check "straight run" test $? -eq 0

RANDOM=${MP_TEST_SEED:-7}
kills=0
for attempt in 1 2 3 4 5 6; do
    "$bin" train "${config[@]}" --set log.dir="$tmp/killed" --resume latest 2>>"$tmp/killed.log" &
    pid=$!
    sleep "0.$((RANDOM % 9 + 1))"
    if kill -KILL "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null
done
"$bin" train "${config[@]}" --set log.dir="$tmp/killed" --resume latest 2>>"$tmp/killed.log"
check "resumed run finishes" test $? -eq 0
echo "       killed $kills time(s); resumed from: $(grep -o 'step [0-9]*)' "$tmp/killed.log" | tr '\n' ' ')"

a="$tmp/straight/train_copying" b="$tmp/killed/train_copying"
check "same parameters" h5diff "$a/ckpt-00000060.h5" "$b/ckpt-00000060.h5" /params
check "same AdamW moments and step" h5diff "$a/ckpt-00000060.h5" "$b/ckpt-00000060.h5" /optim
losses() { grep -o '"step":[0-9]*,"loss":[^,]*,"lr":[^,]*,"grad_norm":[^,]*' "$1/metrics.jsonl"; }
check "same logged losses" diff <(losses "$a") <(losses "$b")
evals() { grep -o '"step":[0-9]*,"val_loss":[^,]*' "$1/metrics.jsonl"; }
check "same validations" diff <(evals "$a") <(evals "$b")
check "one summary line" test "$(grep -c '"summary":true' "$b/metrics.jsonl")" -eq 1
check "only checkpoint.keep checkpoints kept" test "$(ls "$b" | grep -c '^ckpt-.*\.h5$')" -eq 2

# eval of a checkpoint without --data uses its run's validation data: the run's final numbers.
"$bin" eval --model "$a/ckpt-00000060.h5" >"$tmp/eval_own.json" 2>/dev/null
summary=$(grep '"summary":true' "$a/metrics.jsonl")
check "eval of a checkpoint on its own data = the run's final validation" \
    test "$(json_field accuracy "$(cat "$tmp/eval_own.json")")" = "$(json_field val_accuracy "$summary")" -a \
    "$(json_field nll "$(cat "$tmp/eval_own.json")")" = "$(json_field val_loss "$summary")"

# A config whose model differs from the checkpoint's is refused, naming the keys.
"$bin" train "${config[@]}" --set log.dir="$tmp/killed" --set model.d_model=48 --resume latest 2>"$tmp/shape.log"
check "shape mismatch refused" test $? -ne 0
check "shape mismatch names the key" grep -q "model.d_model: checkpoint 32, config 48" "$tmp/shape.log"

# A truncated or corrupted checkpoint gives an error, never a crash.
cp "$b/ckpt-00000060.h5" "$tmp/cut.h5"
truncate -s $(($(stat -c %s "$tmp/cut.h5") / 2)) "$tmp/cut.h5"
"$bin" train "${config[@]}" --set log.dir="$tmp/x" --resume "$tmp/cut.h5" 2>"$tmp/cut.log"
rc=$?
check "truncated checkpoint: error exit, not a crash" test "$rc" -eq 1
check "truncated checkpoint: message names the file" grep -q "cut.h5" "$tmp/cut.log"

# A diverging run (huge learning rate, no clipping) stops at the first non-finite loss or
# gradient with a message and exit 1, keeping the checkpoints written before it.
"$bin" train "${config[@]}" --set log.dir="$tmp/nan" --set optim.lr=1e30 --set optim.lr_min=0 \
    --set optim.grad_clip=0 --set optim.warmup_steps=0 --set checkpoint.every=1 2>"$tmp/nan.log"
check "divergence exits 1" test $? -eq 1
check "divergence message" grep -Eq "step [0-9]+: the (loss|gradient norm) is (nan|inf|-nan)" "$tmp/nan.log"
check "checkpoints before the divergence kept" test -n "$(ls "$tmp/nan/train_copying" | grep '^ckpt-.*\.h5$')"
check "no checkpoint written after it" test ! -e "$tmp/nan/train_copying/ckpt-00000060.h5"

# eval and export read checkpoints; the exported transformers folder evaluates the same.
printf 'The quick brown fox jumps over the lazy dog. %.0s' $(seq 40) >"$tmp/text.txt"
"$bin" train --config "$src/configs/train_text.yaml" --set data.path="$tmp/text.txt" --set model.d_model=32 \
    --set model.n_layer=1 --set train.steps=4 --set train.seqlen=32 --set train.batch_size=2 \
    --set log.dir="$tmp/text" --set log.progress=false 2>/dev/null
ckpt="$tmp/text/train_text/ckpt-00000004.h5"
"$bin" eval --model "$ckpt" --data "$tmp/text.txt" --seqlen 32 >"$tmp/eval_ckpt.json" 2>/dev/null
check "eval of a checkpoint" grep -q '"perplexity":' "$tmp/eval_ckpt.json"
"$bin" export --model "$ckpt" --to "$tmp/exported" 2>/dev/null
check "export writes a transformers folder" test -f "$tmp/exported/config.json" -a -f "$tmp/exported/model.safetensors"
"$bin" eval --model "$tmp/exported" --data "$tmp/text.txt" --seqlen 32 >"$tmp/eval_exported.json" 2>/dev/null
nll() { sed -n 's/.*"nll":\([0-9.e+-]*\).*/\1/p' "$1"; }
check "the exported folder evaluates exactly as the checkpoint" test "$(nll "$tmp/eval_ckpt.json")" = "$(nll "$tmp/eval_exported.json")"
"$bin" train --config "$src/configs/train_text.yaml" --set data.path="$tmp/text.txt" --set model.init="$ckpt" \
    --set train.steps=2 --set train.seqlen=32 --set train.batch_size=2 --set log.dir="$tmp/init" \
    --set log.progress=false 2>"$tmp/init.log"
check "model.init from a checkpoint" test $? -eq 0

check_summary
