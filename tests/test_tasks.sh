#!/usr/bin/env bash
# A small ListOps classifier end to end: dense training, its checkpoint resumed half-way
# (the same parameters as straight through), eval of the checkpoint (accuracy per row, the
# run's own numbers), one-shot magnitude and gradient-aware pruning from it (the heads
# stay dense), and the errors of a head that does not fit the data. Then the same for a
# small forecaster on the generated seasonal series and on a CSV in ETT's format (MSE and
# MAE, eval --split test), and the DLinear baseline.
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
check "forecast head on listops refused" test $? -eq 2

# ---- forecasting ----
# The plain forecaster (configs/ett.yaml's RevIN off); model.window_norm is checked below.
fc=(--config "$src/configs/ett.yaml" --set model.window_norm=none --set data.kind=seasonal --set model.d_model=16 --set model.n_layer=1
    --set train.seqlen=24 --set data.horizon=12 --set data.train_rows=300 --set data.val_rows=60 --set data.test_rows=60
    --set train.batch_size=8 --set train.eval_every=0 --set train.log_every=2 --set log.progress=false
    --set optim.warmup_steps=0 --set train.threads=1)
"$bin" train "${fc[@]}" --set train.steps=12 --set checkpoint.every=6 --set log.dir="$tmp/fstraight" 2>"$tmp/fstraight.log"
check "dense forecast run" test $? -eq 0
f="$tmp/fstraight/ett"
"$bin" train "${fc[@]}" --set train.steps=12 --set checkpoint.every=6 --set log.dir="$tmp/fcut" 2>/dev/null
rm -f "$tmp/fcut/ett/ckpt-00000012.h5"
"$bin" train "${fc[@]}" --set train.steps=12 --set checkpoint.every=6 --set log.dir="$tmp/fcut" \
    --resume "$tmp/fcut/ett/ckpt-00000006.h5" 2>/dev/null
check "forecast resumed at step 6: the same parameters as straight through" \
    h5diff "$f/ckpt-00000012.h5" "$tmp/fcut/ett/ckpt-00000012.h5" /params
check "the forecast checkpoint holds the input projection and the head" \
    bash -c "h5ls '$f/ckpt-00000012.h5/params/input_proj.weight' && h5ls '$f/ckpt-00000012.h5/params/head.weight'" >/dev/null
check "the forecaster has no embedding" bash -c "! h5ls '$f/ckpt-00000012.h5/params' | grep -q embeddings"
fsummary=$(grep '"summary":true' "$f/metrics.jsonl")
check "summary: 60 - 12 + 1 = 49 validation windows" test "$(json_field val_windows "$fsummary")" = 49
"$bin" eval --model "$f/ckpt-00000012.h5" >"$tmp/feval.json" 2>/dev/null
check "eval of the forecaster = the run's final validation MSE" \
    test "$(json_field mse "$(cat "$tmp/feval.json")")" = "$(json_field val_mse "$fsummary")"
check "eval reports MAE and the repeat-last baseline" \
    bash -c "grep -q '\"mae\":' '$tmp/feval.json' && grep -q '\"repeat_last_mse\":' '$tmp/feval.json'"
"$bin" eval --model "$f/ckpt-00000012.h5" --split test >"$tmp/ftest.json" 2>/dev/null
check "eval --split test reads the test split" grep -q '"split":"test"' "$tmp/ftest.json"
check "the test split's MSE is not the validation one" \
    test "$(json_field mse "$(cat "$tmp/ftest.json")")" != "$(json_field mse "$(cat "$tmp/feval.json")")"
for command in "generate --model $f/ckpt-00000012.h5 --prompt-tokens 1,2" "export --model $f/ckpt-00000012.h5 --to $tmp/fexport"; do
    "$bin" $command >/dev/null 2>"$tmp/fbad.log"
    check "${command%% *} of a forecaster refused as not implemented" grep -q "not implemented" "$tmp/fbad.log"
done
"$bin" eval --model "$f/ckpt-00000012.h5" --split train >/dev/null 2>&1
check "eval --split train refused" test $? -eq 2

for method in magnitude gradient sparsegpt; do
    "$bin" train "${fc[@]}" --set model.init="$f/ckpt-00000012.h5" --set prune.method=$method \
        --set prune.final_sparsity=0.5 --set train.steps=6 --set prune.end_step=4 --set prune.prune_every=2 \
        --set prune.grad_accum_batches=1 --set prune.nsamples=8 --set prune.calib_seqlen=24 \
        --set stability.batches=1 --set checkpoint.every=3 --set log.dir="$tmp/f$method" 2>"$tmp/f$method.log"
    check "$method pruning of the forecaster" test $? -eq 0
    s=$(grep '"summary":true' "$tmp/f$method/ett/metrics.jsonl")
    check "$method: 50% sparsity reached" test "$(json_field sparsity "$s" | cut -c1-3)" = "0.5"
    check "$method: the input projection and the head are not masked" \
        bash -c "! h5ls '$tmp/f$method/ett/ckpt-00000006.h5/masks' | grep -q -e head -e input_proj"
    check "$method: the report compares MSE" grep -q "MSE pruned / dense" "$tmp/f$method/ett/report.md"
    rm "$tmp/f$method/ett/ckpt-00000006.h5"
    "$bin" train "${fc[@]}" --set model.init="$f/ckpt-00000012.h5" --set prune.method=$method \
        --set prune.final_sparsity=0.5 --set train.steps=6 --set prune.end_step=4 --set prune.prune_every=2 \
        --set prune.grad_accum_batches=1 --set prune.nsamples=8 --set prune.calib_seqlen=24 \
        --set stability.batches=1 --set checkpoint.every=3 --set log.dir="$tmp/f$method" --resume latest 2>/dev/null
    s2=$(grep '"summary":true' "$tmp/f$method/ett/metrics.jsonl")
    check "$method: resumed at step 3, the same final MSE" test "$(json_field val_mse "$s2")" = "$(json_field val_mse "$s")"
    "$bin" eval --model "$tmp/f$method/ett/ckpt-00000006.h5" --split test >/dev/null 2>&1
    check "$method: eval of the pruned forecaster" test $? -eq 0
done
# The methods that build a smaller model, on a 3-layer RevIN forecaster: the shedder (its
# search scored by the calibration MSE) removes a layer, structured SparseSSM halves d_state;
# the head parameters come along, the result is saved and eval reads it.
"$bin" train "${fc[@]}" --set model.n_layer=3 --set model.window_norm=revin_affine --set train.steps=6 \
    --set checkpoint.every=6 --set log.dir="$tmp/f3" 2>/dev/null
check "3-layer revin forecaster trained" test $? -eq 0
small3=("${fc[@]}" --set model.init="$tmp/f3/ett/ckpt-00000006.h5" --set prune.nsamples=8 --set prune.calib_seqlen=24
        --set train.steps=2 --set checkpoint.every=2)
"$bin" train "${small3[@]}" --set prune.method=shedder --set prune.shedder_steps=1 --set log.dir="$tmp/fshed" \
    2>"$tmp/fshed.log"
check "shedder on a forecaster" test $? -eq 0
check "shedder on a forecaster: the search logs the calibration MSE" grep -q '"dense_mse"' "$tmp/fshed/ett/oneshot.json"
check "shedder on a forecaster: 2 layers left in the checkpoint" \
    bash -c "h5ls '$tmp/fshed/ett/ckpt-00000002.h5/params' | grep -q 'layers\.1\.norm' && \
             ! h5ls '$tmp/fshed/ett/ckpt-00000002.h5/params' | grep -q 'layers\.2\.'"
check "shedder on a forecaster: input_proj and revin copied unchanged into the smaller model" \
    bash -c "for p in input_proj.weight input_proj.bias revin.weight revin.bias head.weight; do \
             h5diff '$tmp/f3/ett/ckpt-00000006.h5' '$tmp/fshed/ett/ckpt-00000000.h5' /params/\$p || exit 1; done"
"$bin" eval --model "$tmp/fshed/ett/ckpt-00000002.h5" --split test >"$tmp/fshed.json" 2>/dev/null
check "shedder on a forecaster: eval of the result" grep -q '"mse":' "$tmp/fshed.json"
"$bin" train "${small3[@]}" --set prune.method=sparsessm --set prune.sparsessm_structured=true \
    --set prune.final_sparsity=0.5 --set log.dir="$tmp/fsss" 2>"$tmp/fsss.log"
check "structured sparsessm on a forecaster" test $? -eq 0
check "structured sparsessm on a forecaster: d_state 16 -> 8 in the checkpoint" \
    bash -c "h5ls '$tmp/fsss/ett/ckpt-00000002.h5/params/backbone.layers.0.mixer.A_log' | grep -q '{32, 8}'"
check "structured sparsessm on a forecaster: revin and input_proj copied unchanged" \
    bash -c "for p in input_proj.weight revin.weight revin.bias head.weight; do \
             h5diff '$tmp/f3/ett/ckpt-00000006.h5' '$tmp/fsss/ett/ckpt-00000000.h5' /params/\$p || exit 1; done"
"$bin" eval --model "$tmp/fsss/ett/ckpt-00000002.h5" --split test >"$tmp/fsss.json" 2>/dev/null
check "structured sparsessm on a forecaster: eval of the result" grep -q '"mse":' "$tmp/fsss.json"

# model.window_norm: RevIN with its affine, through train, resume, eval and pruning.
rv=("${fc[@]}" --set model.window_norm=revin_affine --set train.steps=12 --set checkpoint.every=6)
"$bin" train "${rv[@]}" --set log.dir="$tmp/rstraight" 2>"$tmp/rstraight.log"
check "revin_affine forecast run" test $? -eq 0
r="$tmp/rstraight/ett"
"$bin" train "${rv[@]}" --set log.dir="$tmp/rcut" 2>/dev/null
rm -f "$tmp/rcut/ett/ckpt-00000012.h5"
"$bin" train "${rv[@]}" --set log.dir="$tmp/rcut" --resume "$tmp/rcut/ett/ckpt-00000006.h5" 2>/dev/null
check "revin_affine resumed at step 6: the same parameters as straight through" \
    h5diff "$r/ckpt-00000012.h5" "$tmp/rcut/ett/ckpt-00000012.h5" /params
check "the checkpoint holds revin.weight and revin.bias" \
    bash -c "h5ls '$r/ckpt-00000012.h5/params/revin.weight' && h5ls '$r/ckpt-00000012.h5/params/revin.bias'" >/dev/null
check "revin.weight was trained (no longer all ones)" \
    bash -c "h5dump -d /params/revin.weight '$r/ckpt-00000012.h5' | grep '(0):' | grep -qv '(0): 1, 1, 1, 1, 1, 1, 1\$'"
check "a model without window_norm has no revin parameters" bash -c "! h5ls '$f/ckpt-00000012.h5/params' | grep -q revin"
rsummary=$(grep '"summary":true' "$r/metrics.jsonl")
check "revin changes the forecast: another validation MSE than the plain run" \
    test "$(json_field val_mse "$rsummary")" != "$(json_field val_mse "$fsummary")"
"$bin" eval --model "$r/ckpt-00000012.h5" >"$tmp/reval.json" 2>/dev/null
check "eval of the revin forecaster = the run's final validation MSE" \
    test "$(json_field mse "$(cat "$tmp/reval.json")")" = "$(json_field val_mse "$rsummary")"
"$bin" train "${rv[@]}" --set model.window_norm=last --set log.dir="$tmp/rcut" --resume "$tmp/rcut/ett/ckpt-00000006.h5" \
    2>"$tmp/rbad.log"
check "resume with another window_norm refused, naming the key" grep -q "model.window_norm: checkpoint 2, config 3" "$tmp/rbad.log"
# Pruning from it: the config does not say window_norm, the checkpoint's mode is taken; the
# dense figure of the report is the checkpoint's own validation MSE; revin.* stay dense.
rp=("${fc[@]}" --set model.init="$r/ckpt-00000012.h5" --set prune.method=magnitude --set prune.final_sparsity=0.5
    --set train.steps=2 --set checkpoint.every=2)
"$bin" train "${rp[@]}" --set log.dir="$tmp/rprune" 2>"$tmp/rprune.log"
check "magnitude pruning of the revin forecaster" test $? -eq 0
s=$(grep '"summary":true' "$tmp/rprune/ett/metrics.jsonl")
check "pruning from the revin checkpoint keeps its mode: dense MSE = its eval" \
    test "$(json_field dense_val_mse "$s")" = "$(json_field mse "$(cat "$tmp/reval.json")")"
check "revin.weight and revin.bias are not masked by default" \
    bash -c "h5ls '$tmp/rprune/ett/ckpt-00000002.h5/params/revin.weight' >/dev/null && ! h5ls '$tmp/rprune/ett/ckpt-00000002.h5/masks' | grep -q revin"
"$bin" train "${rp[@]}" --set 'prune.include=["mixer.in_proj.weight", "revin.weight"]' --set log.dir="$tmp/rprune2" \
    2>"$tmp/rprune2.log"
check "an include pattern naming revin.weight masks it" \
    bash -c "h5ls '$tmp/rprune2/ett/ckpt-00000002.h5/masks/revin.weight' >/dev/null"
"$bin" train "${fc[@]}" --set model.head=dlinear --set model.n_layer=0 --set model.window_norm=revin \
    --set log.dir="$tmp/fbad" 2>"$tmp/fbad.log"
check "window_norm with dlinear refused" grep -q "model.window_norm" "$tmp/fbad.log"

# The pruning sweep of configs/prune_ett.yaml: its table and plot use MSE, lower is better.
"$bin" train --config "$src/configs/prune_ett.yaml" --set model.init="$f/ckpt-00000012.h5" --set data.kind=seasonal \
    --set train.seqlen=24 --set data.horizon=12 --set data.train_rows=300 --set data.val_rows=60 --set data.test_rows=60 \
    --set train.batch_size=8 --set train.steps=2 --set prune.end_step=1 --set prune.prune_every=1 --set prune.nsamples=8 \
    --set prune.calib_seqlen=24 --set stability.batches=1 --set log.progress=false --set train.threads=1 \
    --set 'sweep.prune.final_sparsity=[0.5]' --set log.dir="$tmp/fsweep" 2>/dev/null
check "forecast sweep: the table has MSE and MAE columns" grep -q "| dense mse | dense mae | mse | mae |" "$tmp/fsweep/prune_ett/summary.md"
check "forecast sweep: the plot's metric is MSE, lower is better" grep -q "MSE, standardised (lower is better)" "$tmp/fsweep/prune_ett/summary.svg"

# DLinear: trained by the same tool, no Mamba blocks.
"$bin" train "${fc[@]}" --set model.head=dlinear --set model.n_layer=0 --set train.steps=20 --set optim.lr=5e-3 \
    --set log.dir="$tmp/fdl" 2>"$tmp/fdl.log"
check "dlinear run" test $? -eq 0
check "dlinear: the two maps and no blocks" \
    bash -c "h5ls '$tmp/fdl/ett/ckpt-00000020.h5/params/head.trend.weight' && ! h5ls '$tmp/fdl/ett/ckpt-00000020.h5/params' | grep -q layers" >/dev/null
d=$(grep '"summary":true' "$tmp/fdl/ett/metrics.jsonl")
check "dlinear beats repeating the last value on the seasonal series" \
    awk -v a="$(json_field val_mse "$d")" -v b="$(json_field val_repeat_last_mse "$d")" 'BEGIN { exit !(a < b) }'
"$bin" train "${fc[@]}" --set model.init="$tmp/fdl/ett/ckpt-00000020.h5" --set prune.method=shedder --set train.steps=2 \
    --set 'prune.include=[head.*]' --set log.dir="$tmp/fbad" 2>"$tmp/fbad.log"
check "shedder on dlinear refused: it has no Mamba blocks" grep -q "model.head dlinear has none" "$tmp/fbad.log"
"$bin" train "${fc[@]}" --set model.head=dlinear --set log.dir="$tmp/fbad" 2>"$tmp/fbad.log"
check "dlinear with Mamba blocks refused" grep -q "model.n_layer" "$tmp/fbad.log"
"$bin" train "${fc[@]}" --set model.head=lm --set log.dir="$tmp/fbad" 2>"$tmp/fbad.log"
check "lm head on a series refused" grep -q "model.head" "$tmp/fbad.log"

# A CSV in ETT's format: M and S, and a bad cell named by line and column.
{
    echo "date,HUFL,HULL,OT"
    for i in $(seq 0 119); do echo "2016-07-01 $i,$((i % 24)).5,$((i % 7)),$((i % 12)).25"; done
} >"$tmp/small.csv"
csvrun=(--config "$src/configs/ett.yaml" --set data.path="$tmp/small.csv" --set model.d_model=8 --set model.n_layer=1
        --set train.seqlen=12 --set data.horizon=6 --set data.train_rows=60 --set data.val_rows=30 --set data.test_rows=30
        --set train.batch_size=4 --set train.steps=4 --set train.eval_every=0 --set log.progress=false --set train.threads=1)
"$bin" train "${csvrun[@]}" --set log.dir="$tmp/fcsv" 2>"$tmp/fcsv.log"
check "forecast run on a CSV" test $? -eq 0
"$bin" train "${csvrun[@]}" --set data.features=S --set log.dir="$tmp/fcsvs" 2>"$tmp/fcsvs.log"
check "features S: input_proj is (d_model, 1)" bash -c "h5ls '$tmp/fcsvs/ett/ckpt-00000004.h5/params/input_proj.weight' | grep -q '{8, 1}'"
sed '50s/,[0-9]*\.25$/,NaN/' "$tmp/small.csv" >"$tmp/bad.csv"
"$bin" train "${csvrun[@]}" --set data.path="$tmp/bad.csv" --set log.dir="$tmp/fbad" 2>"$tmp/fbad.log"
check "a NaN cell refused, naming line 50 and column 4 (OT)" grep -q "line 50 (data row 48), column 4 (OT)" "$tmp/fbad.log"
"$bin" train "${csvrun[@]}" --set data.test_rows=40 --set log.dir="$tmp/fbad" 2>"$tmp/fbad.log"
check "too few rows refused, naming the split keys" grep -q "120 data rows, but data.train_rows" "$tmp/fbad.log"
check_summary
