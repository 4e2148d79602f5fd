#!/usr/bin/env bash
# Sweeps: one run per combination in its own folder, a table (Markdown, CSV) and an SVG
# plot at the end; a restarted sweep skips what finished and redoes only what did not.
set -uo pipefail
source "$(dirname "$0")/check.sh"

cat >"$tmp/sweep.yaml" <<YAML
model: {d_model: 16, n_layer: 1}
data: {n_memorize: 4}
train: {steps: 6, batch_size: 2, seqlen: 16, log_every: 3}
checkpoint: {every: 3}
log: {dir: $tmp/runs, name: grid, progress: false}
sweep:
  optim.lr: [1.0e-3, 3.0e-3, 1.0e-2]
  train.seed: [1, 2]
YAML
grid="$tmp/runs/grid"
"$bin" train --config "$tmp/sweep.yaml" 2>"$tmp/first.log"
check "sweep exits 0" test $? -eq 0
check "one folder per run (6)" test "$(ls -d "$grid"/optim.lr=* | wc -l)" -eq 6
check "every run finished with a summary" test "$(cat "$grid"/*/metrics.jsonl | grep -c '"summary":true')" -eq 6
check "Markdown table: header, rule and 6 rows" test "$(sed '/^$/q' "$grid/summary.md" | grep -c '^|')" -eq 8
check "seed means: one row per learning rate, over 2 seeds" test "$(sed -n '/^Mean/,$p' "$grid/summary.md" | grep -c '^| [0-9.e-]* | 2 | ')" -eq 3
# The seed means against mean and sample sd computed here from the CSV's accuracies (a
# synthetic task: the table reports accuracy, with 4 decimals).
check "seed means: the accuracy column" grep -q '^| optim.lr | runs | val_accuracy | prune s |' "$grid/summary.md"
acc_col=$(head -1 "$grid/summary.csv" | tr ',' '\n' | grep -n '^val_accuracy$' | cut -d: -f1)
for lr in 1.0e-3 3.0e-3 1.0e-2; do
    expected=$(grep "^\"$lr\"," "$grid/summary.csv" | cut -d, -f"$acc_col" |
        awk '{ s += $1; q += $1 * $1; n++ } END { m = s / n; printf "%.4f ± %.4f", m, sqrt((q - n * m * m) / (n - 1)) }')
    row=$(sed -n '/^Mean/,$p' "$grid/summary.md" | grep "^| $lr | 2 |")
    got=$(cut -d'|' -f4 <<<"$row" | sed 's/^ *//; s/ *$//')
    check "seed means, lr $lr: 2 runs, accuracy $got = $expected" test "$got" = "$expected"
done
check "CSV: header and 6 rows" test "$(wc -l <"$grid/summary.csv")" -eq 7
check "CSV rows name their values" grep -q '^"1.0e-2","2",' "$grid/summary.csv"
check "plot: one line per seed" test "$(grep -c '<polyline' "$grid/summary.svg")" -eq 2
check "plot: x axis is the first key" grep -q '>optim.lr<' "$grid/summary.svg"
check "table printed at the end" grep -q '| optim.lr | train.seed |' "$tmp/first.log"

# A run that did not finish (its summary line gone, as if killed after its last checkpoint)
# is the only one redone when the sweep is started again, and it ends where it did.
victim="$grid/optim.lr=3.0e-3,train.seed=2"
before=$(grep '"summary":true' "$victim/metrics.jsonl" | sed 's/"wall_s":[^,}]*//; s/"tokens_per_s":[^,}]*//')
sed -i '/"summary":true/d' "$victim/metrics.jsonl"
"$bin" train --config "$tmp/sweep.yaml" 2>"$tmp/second.log"
check "restarted sweep exits 0" test $? -eq 0
check "5 finished runs skipped" test "$(grep -c 'finished before, skipped' "$tmp/second.log")" -eq 5
check "the unfinished run resumed from its checkpoint" grep -q "resuming from $victim/ckpt-00000006.h5" "$tmp/second.log"
after=$(grep '"summary":true' "$victim/metrics.jsonl" | sed 's/"wall_s":[^,}]*//; s/"tokens_per_s":[^,}]*//')
check "the redone run reports the same validation" test "$before" = "$after"

# A group axis sets several keys per value and is labelled by its name; the last axis
# that is not a seed goes into columns, each cell the mean ± sd over the seeds.
cat >"$tmp/group.yaml" <<YAML
model: {d_model: 16, n_layer: 1}
data: {n_memorize: 4}
train: {steps: 2, batch_size: 2, seqlen: 16, log_every: 1}
log: {dir: $tmp/runs, name: group, progress: false}
sweep:
  setup: [{name: slow, optim.lr: 1.0e-4, optim.warmup_steps: 1}, {name: fast, optim.lr: 1.0e-2}]
  train.steps: [2, 4]
  train.seed: [1, 2]
YAML
"$bin" train --config "$tmp/group.yaml" 2>"$tmp/group.log"
check "group sweep exits 0" test $? -eq 0
check "group axis: folders named by the value's name" test -d "$tmp/runs/group/setup=slow,train.steps=4,train.seed=2"
check "group axis: every key of the value applied" \
  grep -q 'warmup_steps: 1' "$tmp/runs/group/setup=slow,train.steps=2,train.seed=1/config.yaml"
check "group axis: only that value's keys" \
  grep -q 'warmup_steps: 0' "$tmp/runs/group/setup=fast,train.steps=2,train.seed=1/config.yaml"
check "columns: one per train.steps value" grep -q '^| setup | 2 | 4 |$' "$tmp/runs/group/summary.md"
check "columns: a row per setup with mean ± sd" test "$(grep -c '^| \(slow\|fast\) | [0-9.]* ± [0-9.]* (' "$tmp/runs/group/summary.md")" -eq 2
"$bin" train --config "$tmp/group.yaml" --set 'sweep.setup=[{optim.lr: 1.0e-3}]' --set log.dir="$tmp/bad" 2>"$tmp/bad.log"
check "group value without a name: exit 2" test $? -eq 2
check "group value without a name: says so" grep -q "needs a name" "$tmp/bad.log"
"$bin" train --config "$tmp/group.yaml" --set 'sweep.setup=[{name: x, optim.nope: 1}]' --set log.dir="$tmp/bad" 2>"$tmp/bad.log"
check "group value with an unknown key: exit 2, names it" grep -q "nope" "$tmp/bad.log"

# A bad value in a sweep fails before anything runs, naming the run and the key.
"$bin" train --config "$tmp/sweep.yaml" --set 'sweep.optim.lr=[1.0e-3, -1]' --set log.dir="$tmp/bad" 2>"$tmp/bad.log"
check "bad sweep value: exit 2" test $? -eq 2
check "bad sweep value: names the key" grep -q "optim.lr" "$tmp/bad.log"
check "bad sweep value: nothing ran" test ! -e "$tmp/bad"
check_summary
