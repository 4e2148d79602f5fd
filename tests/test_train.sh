#!/usr/bin/env bash
# The train command as a user drives it: a small model visibly learns the embedded
# selective-copying task; the same config gives the same losses to the bit; bad configs
# and bad data fail with messages that say where and what.
set -uo pipefail
source "$(dirname "$0")/check.sh"

# 1. Learning: 300 steps of selective copying reach twice chance (1/8) or better
#    (a 300-step run reaches about 0.28; the full 1500 steps of the config reach 0.999).
#    Under the sanitizers (an unoptimised build) a short run of a smaller model checks
#    only that training runs cleanly and the loss falls.
if [ "${MP_SANITIZED:-0}" = 1 ]; then
    learn=(--set train.steps=40 --set model.d_model=32 --set train.eval_every=20)
else
    learn=(--set train.steps=300)
fi
"$bin" train --config "$src/configs/train_copying.yaml" "${learn[@]}" --set log.dir="$tmp/learn" 2>"$tmp/learn.log"
check "train exits 0" test $? -eq 0
metrics="$tmp/learn/train_copying/metrics.jsonl"
summary=$(grep '"summary":true' "$metrics")
first_eval=$(grep -m1 '"val_loss"' "$metrics")
accuracy=$(json_field val_accuracy "$summary")
if [ "${MP_SANITIZED:-0}" != 1 ]; then
    echo "       validation accuracy after 300 steps: $accuracy (chance 0.125)"
    check "validation accuracy > 0.25 (twice chance)" awk -v a="$accuracy" 'BEGIN { exit !(a > 0.25) }'
    check "resolved config written" grep -q "steps: 300" "$tmp/learn/train_copying/config.yaml"
    check "progress lines printed" grep -q "step 300/300 | loss" "$tmp/learn.log"
fi
check "validation loss fell" awk -v a="$(json_field val_loss "$first_eval")" -v b="$(json_field val_loss "$summary")" \
    'BEGIN { exit !(b < a) }'

# 2. Determinism: two runs of one config log the same losses and gradient norms, bit for bit.
for run in a b; do
    "$bin" train --config "$src/configs/train_copying.yaml" --set train.steps=40 --set train.log_every=5 --set model.d_model=32 \
        --set log.dir="$tmp/$run" --set log.progress=false 2>/dev/null
done
losses() { grep -o '"loss":[^,]*,"lr":[^,]*,"grad_norm":[^,]*' "$1/train_copying/metrics.jsonl"; }
check "same config, same losses to the bit" diff <(losses "$tmp/a") <(losses "$tmp/b")
check "8 logged steps" test "$(losses "$tmp/a" | wc -l)" -eq 8

# 3. Errors name the file, line and column, the key, and what was expected; exit code 2.
printf 'train:\n  steps: 10\n  stpes: 3\n' >"$tmp/typo.yaml"
"$bin" train --config "$tmp/typo.yaml" 2>"$tmp/typo.log"
check "unknown key exits 2" test $? -eq 2
check "unknown key message" grep -q "typo.yaml:3:3: train.stpes: unknown key (did you mean 'steps'?)" "$tmp/typo.log"
"$bin" train --config "$src/configs/train_copying.yaml" --set optim.lr=-1 2>"$tmp/lr.log"
check "bad --set exits 2" test $? -eq 2
check "bad --set message" grep -qF -- "--set optim.lr=-1: expected a number > 0, got '-1'" "$tmp/lr.log"
"$bin" train --config "$src/configs/train_text.yaml" --set data.path="$tmp/missing.txt" --set log.dir="$tmp/x" 2>"$tmp/missing.log"
check "missing data file fails" test $? -ne 0
check "missing data file message names it" grep -q "missing.txt" "$tmp/missing.log"
"$bin" train 2>/dev/null
check "no --config exits 2" test $? -eq 2

# 4. eval and model.init on a transformers folder (the tiny fixture, vocab 64), with an
#    llm.c token file of 2000 ids below 64 written here.
byte() { printf "$(printf '\\x%02x' "$1")"; }
token_file() {  # token_file PATH COUNT (COUNT < 65536)
    {
        printf '\x88\xd8\x34\x01\x01\x00\x00\x00'                 # magic 20240520, version 1
        byte $(($2 & 255)); byte $(($2 >> 8)); byte 0; byte 0        # token count
        head -c $((253 * 4)) /dev/zero                                  # the rest of the header
        for ((i = 0; i < $2; i++)); do byte $(((i * 7 + i / 5) % 64)); byte 0; done
    } >"$1"
}
token_file "$tmp/ids.bin" 2000
"$bin" eval --model "$src/tests/fixtures/hf_tiny" --data "$tmp/ids.bin" --seqlen 64 >"$tmp/eval.json" 2>"$tmp/eval.log"
check "eval exits 0" test $? -eq 0
check "eval prints perplexity, nll and tokens" grep -q '"perplexity":[0-9.]*,"nll":[0-9.]*,"tokens":1999' "$tmp/eval.json"
"$bin" eval --model "$src/tests/fixtures/hf_tiny" --data "$src/configs/train_text.yaml" 2>"$tmp/eval_vocab.log"
check "eval refuses data beyond the model's vocabulary" grep -q "has token ids up to .* but the model has only 64" "$tmp/eval_vocab.log"
"$bin" train --config "$src/configs/train_text.yaml" --set data.kind=tokens --set data.path="$tmp/ids.bin" \
    --set model.init="$src/tests/fixtures/hf_tiny" --set train.steps=30 --set train.seqlen=64 --set train.eval_every=0 \
    --set optim.lr=1e-2 --set log.dir="$tmp/ft" 2>"$tmp/ft.log"
check "fine-tuning a transformers folder runs" test $? -eq 0
check "fine-tuning lowers the validation loss below the pretrained one" awk \
    -v a="$(sed -n 's/.*"nll":\([0-9.]*\).*/\1/p' "$tmp/eval.json")" \
    -v b="$(json_field val_loss "$(grep '"summary":true' "$tmp/ft/train_text/metrics.jsonl")")" 'BEGIN { exit !(b < a) }'

check_summary
