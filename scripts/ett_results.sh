#!/usr/bin/env bash
# The ETTh1 forecasting results of the README (section "Forecasting: ETTh1"): for each
# horizon and seed, a dense Mamba forecaster and the DLinear baseline trained from scratch;
# then, from the dense checkpoint, the same number of fine-tuning steps dense (the control),
# with gradient-aware pruning and after one-shot magnitude pruning, each at every sparsity.
# Every run is evaluated on the test split (eval --split test), where the repeat-the-last-
# value forecast is reported beside the model's. Runs in parallel, one thread each.
#
#   bash scripts/ett_results.sh BIN CSV OUT [horizons] [seeds] [sparsities]
#   bash scripts/ett_results.sh ./build/mambaprune ../shared/data/ETTh1.csv runs/ett_results "96 336" "1 2 3" "0.5 0.7"
#
# OUT/<name>/ gets metrics.jsonl, report.json (pruning runs) and test.json; OUT/results.tsv
# one line per run (name, validation MSE/MAE, test MSE/MAE, repeat-last test MSE/MAE), and
# OUT/results.md the README's table of them (mean ± sample sd over the seeds).
# Environment: DENSE_STEPS (default 600), TUNE_STEPS (150), JOBS (nproc), CONFIG (configs/ett.yaml),
# SET (space-separated key=value overrides for every run, e.g. "model.d_model=64");
# SUMMARY_ONLY=1 only writes results.tsv from what OUT holds (e.g. after a time limit).
set -uo pipefail
bin="${1:?usage: ett_results.sh BIN CSV OUT [horizons] [seeds] [sparsities]}"
csv="${2:?CSV}"
out="${3:?OUT}"
horizons="${4:-96 336}"
seeds="${5:-1 2 3}"
sparsities="${6:-0.5 0.7}"
config="${CONFIG:-$(dirname "$0")/../configs/ett.yaml}"
dense_steps="${DENSE_STEPS:-600}"
tune_steps="${TUNE_STEPS:-150}"
jobs="${JOBS:-$(nproc)}"
work="$out/work"
mkdir -p "$work"
common=(--config "$config" --set data.path="$csv" --set train.threads=1 --set log.progress=false
        --set train.eval_every=0 --set checkpoint.every=0 --set checkpoint.keep=1 --set log.dir="$work")
for kv in ${SET:-}; do common+=(--set "$kv"); done  # e.g. SET="model.d_model=64" for every Mamba run

# run NAME ARGS...: one training run, then its test evaluation; its files into OUT/NAME.
# A run whose OUT/NAME/test.json holds a finished evaluation is not run again, so a sweep
# cut off by a time limit (or run in parts on two machines) carries on where it stopped.
run() {
    local name="$1"
    shift
    grep -q '"mse":' "$out/$name/test.json" 2>/dev/null && return 0
    "$bin" train "${common[@]}" --set log.name="$name" "$@" >"$work/$name.log" 2>&1 || { echo "$name failed" >&2; return 1; }
    local ckpt
    ckpt=$(ls "$work/$name"/ckpt-*.h5 | tail -1)
    mkdir -p "$out/$name"
    "$bin" eval --model "$ckpt" --split test >"$out/$name/test.json" 2>/dev/null
    cp "$work/$name/metrics.jsonl" "$out/$name/"
    [ -f "$work/$name/report.json" ] && cp "$work/$name/report.json" "$out/$name/"
    cp "$work/$name.log" "$out/$name/train.log"
}

[ "${SUMMARY_ONLY:-0}" = 1 ] || {
# Phase 1: the models trained from scratch.
pids=()
for h in $horizons; do
    for s in $seeds; do
        dense=(--set data.horizon="$h" --set train.seed="$s" --set train.steps="$dense_steps")
        run "dense-h$h-s$s" "${dense[@]}" &
        pids+=($!)
        run "dlinear-h$h-s$s" "${dense[@]}" --set model.head=dlinear --set model.n_layer=0 --set model.window_norm=none \
            --set optim.lr=5e-3 &
        pids+=($!)
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    done
done
wait

# Phase 2: from each dense checkpoint, tune_steps more steps: dense, gradient-aware, magnitude.
end=$((tune_steps * 3 / 4))
every=$((end / 3 > 0 ? end / 3 : 1))
for h in $horizons; do
    for s in $seeds; do
        init=$(ls "$work/dense-h$h-s$s"/ckpt-*.h5 2>/dev/null | tail -1)
        [ -n "$init" ] || continue
        tune=(--set data.horizon="$h" --set train.seed="$s" --set train.steps="$tune_steps" --set model.init="$init"
              --set optim.lr=3e-4 --set optim.lr_min=1e-5 --set optim.warmup_steps=0)
        run "tuned-h$h-s$s" "${tune[@]}" &
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
        for p in $sparsities; do
            run "gradient$p-h$h-s$s" "${tune[@]}" --set prune.method=gradient --set prune.final_sparsity="$p" \
                --set prune.start_step=0 --set prune.end_step="$end" --set prune.prune_every="$every" &
            while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
            run "magnitude$p-h$h-s$s" "${tune[@]}" --set prune.method=magnitude --set prune.final_sparsity="$p" &
            while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
        done
    done
done
wait
}

# One line per run: validation (the summary) and test (eval --split test) figures.
field() { grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2; }
printf 'run\tval_mse\tval_mae\ttest_mse\ttest_mae\trepeat_last_test_mse\trepeat_last_test_mae\n' >"$out/results.tsv"
for d in "$out"/*/; do
    name=$(basename "$d")
    grep -q "\"mse\":" "$d/test.json" 2>/dev/null || continue  # a finished evaluation only
    summary=$(grep '"summary":true' "$d/metrics.jsonl")
    t=$(cat "$d/test.json")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(field val_mse <<<"$summary")" "$(field val_mae <<<"$summary")" \
        "$(field mse <<<"$t")" "$(field mae <<<"$t")" "$(field repeat_last_mse <<<"$t")" \
        "$(field repeat_last_mae <<<"$t")" >>"$out/results.tsv"
done
cat "$out/results.tsv"

# The README's table: per horizon and model, mean ± sample sd over the seeds (results.md).
awk -F'\t' -v steps="$dense_steps" -v tune="$tune_steps" '
function label(m) {
    if (m == "dense") return "Mamba, dense (" steps " steps)"
    if (m == "tuned") return "Mamba, dense + " tune " steps"
    if (m == "dlinear") return "DLinear (" steps " steps)"
    if (m ~ /^gradient/) return "Mamba, gradient " substr(m, 9) * 100 "% + " tune " steps"
    if (m ~ /^magnitude/) return "Mamba, magnitude " substr(m, 10) * 100 "% + " tune " steps"
    return m
}
function order(m) { return m == "dlinear" ? 1 : m == "dense" ? 2 : m == "tuned" ? 3 : m ~ /^gradient/ ? 4 : 5 }
function stat(sum, sq, n) { sd = n > 1 ? sqrt((sq - sum * sum / n) / (n - 1)) : 0; return sprintf("%.4f ± %.4f", sum / n, sd) }
NR > 1 {
    split($1, part, "-"); m = part[1]; h = substr(part[2], 2)
    k = h SUBSEP m; n[k]++; keys[k] = 1
    v[k] += $2; vv[k] += $2 * $2; t[k] += $4; tt[k] += $4 * $4; a[k] += $5; aa[k] += $5 * $5
    seeds[k] = seeds[k] (seeds[k] == "" ? "" : ", ") sprintf("%.4f", $4)
    rl[h] = sprintf("| %s | repeat the last value | - | %.4f | %.4f | - | (no training) |", h, $6, $7)
}
END {
    print "| horizon | model | validation MSE | test MSE | test MAE | seeds | test MSE per seed |"
    print "|---|---|---|---|---|---|---|"
    nh = 0
    for (k in keys) { split(k, hm, SUBSEP); if (!(hm[1] in seen)) { seen[hm[1]] = 1; hs[++nh] = hm[1] + 0 } }
    for (i = 1; i <= nh; i++) for (j = i + 1; j <= nh; j++) if (hs[j] < hs[i]) { x = hs[i]; hs[i] = hs[j]; hs[j] = x }
    for (i = 1; i <= nh; i++) {
        h = hs[i]; print rl[h]
        for (o = 1; o <= 5; o++) {
            nm = 0
            for (k in keys) { split(k, hm, SUBSEP); if (hm[1] == h && order(hm[2]) == o) ms[++nm] = hm[2] }
            for (x = 1; x <= nm; x++) for (y = x + 1; y <= nm; y++) if (ms[y] < ms[x]) { z = ms[x]; ms[x] = ms[y]; ms[y] = z }
            for (x = 1; x <= nm; x++) {
                k = h SUBSEP ms[x]
                printf "| %s | %s | %s | %s | %s | %d | %s |\n", h, label(ms[x]), stat(v[k], vv[k], n[k]),
                       stat(t[k], tt[k], n[k]), stat(a[k], aa[k], n[k]), n[k], seeds[k]
            }
        }
    }
}' "$out/results.tsv" >"$out/results.md"
cat "$out/results.md"
