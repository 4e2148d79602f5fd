#!/usr/bin/env bash
# A small ListOps classifier end to end: dense training, its checkpoint resumed half-way
# (the same parameters as straight through), eval of the checkpoint (accuracy per row, the
# run's own numbers), one-shot magnitude and gradient-aware pruning from it (the heads
# stay dense), and the errors of a head that does not fit the data.
set -uo pipefail
source "$(dirname "$0")/check.sh"
small=(--config "$src/configs/listops.yaml" --set model.d_model=16 --set model.n_layer=1 --set train.seqlen=24
       --set data.min_len=6 --set data.max_len=24 --set data.val_sequences=32 --set train.batch_size=8
       --set train.eval_every=0 --set train.log_every=2 --set log.progress=false --set optim.warmup_steps=0)

"$bin" train "${small[@]}" --set train.steps=12 --set checkpoint.every=6 --set log.dir="$tmp/straight" 2>"$tmp/straight.log"
check "dense classify run" test $? -eq 0
a="$tmp/straight/listops"
"$bin" train "${small[@]}" --set train.steps=12 --set checkpoint.every=6 --set log.dir="$tmp/cut" 2>/dev/null
rm -f "$tmp/cut/listops/ckpt-00000012.h5"
"$bin" train "${small[@]}" --set train.steps=12 --set checkpoint.every=6 --set log.dir="$tmp/cut" \
    --resume "$tmp/cut/listops/ckpt-00000006.h5" 2>/dev/null
check "resumed at step 6: the same parameters as straight through" \
    h5diff "$a/ckpt-00000012.h5" "$tmp/cut/listops/ckpt-00000012.h5" /params
check "the checkpoint holds the head" h5ls "$a/ckpt-00000012.h5/params/head.weight"
summary=$(grep '"summary":true' "$a/metrics.jsonl")
check "summary counts one label per validation row" test "$(json_field val_tokens "$summary")" = 32

"$bin" eval --model "$a/ckpt-00000012.h5" >"$tmp/eval.json" 2>/dev/null
check "eval of the checkpoint = the run's final validation accuracy" \
    test "$(json_field accuracy "$(cat "$tmp/eval.json")")" = "$(json_field val_accuracy "$summary")"

for method in magnitude gradient; do
    "$bin" train "${small[@]}" --set model.init="$a/ckpt-00000012.h5" --set prune.method=$method \
        --set prune.final_sparsity=0.5 --set train.steps=6 --set prune.end_step=4 --set prune.prune_every=2 \
        --set prune.grad_accum_batches=1 --set prune.nsamples=8 --set prune.calib_seqlen=24 \
        --set stability.batches=1 --set log.dir="$tmp/$method" 2>"$tmp/$method.log"
    check "$method pruning of the classifier" test $? -eq 0
    s=$(grep '"summary":true' "$tmp/$method/listops/metrics.jsonl")
    check "$method: 50% sparsity reached" test "$(json_field sparsity "$s" | cut -c1-3)" = "0.5"
    check "$method: the head is not masked" \
        bash -c "! h5ls '$tmp/$method/listops/ckpt-00000006.h5/masks' | grep -q head"
    "$bin" eval --model "$tmp/$method/listops/ckpt-00000006.h5" >/dev/null 2>&1
    check "$method: eval of the pruned checkpoint" test $? -eq 0
done

"$bin" train "${small[@]}" --set model.head=lm --set log.dir="$tmp/bad" 2>"$tmp/bad.log"
check "lm head on listops refused" test $? -eq 2
check "the error names model.head" grep -q "model.head" "$tmp/bad.log"
"$bin" train "${small[@]}" --set model.head=forecast --set log.dir="$tmp/bad" 2>"$tmp/bad.log"
check "forecast refused as not implemented" grep -q "not implemented" "$tmp/bad.log"
check_summary
