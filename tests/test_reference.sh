#!/usr/bin/env bash
# The dense fine-tuned reference (run/reference.h) through `mambaprune train`: a pruning run
# with prune.reference finetuned trains the reference once in log.dir/references/<key>/ and
# reports it (report.json quality.dense_finetuned, the ratio pruned / dense fine-tuned,
# report.md); the reference equals a plain unpruned run of the same config; runs that differ
# only in pruning keys reuse it untouched; other steps or another dense model get a new one;
# a dense run and prune.reference none train none; a sweep shares one.
set -uo pipefail
source "$(dirname "$0")/check.sh"
export OMP_NUM_THREADS=1

cat >"$tmp/base.yaml" <<YAML
model: {d_model: 16, n_layer: 2, d_state: 4}
data: {kind: selective_copying, vocab: 8, n_memorize: 4, val_sequences: 16}
train: {steps: 12, batch_size: 4, seqlen: 32, eval_every: 0, eval_batches: 2, log_every: 5}
optim: {lr: 3.0e-3, lr_min: 1.0e-4}
prune: {method: gradient, final_sparsity: 0.5, prune_every: 3, grad_accum_batches: 2, reference: finetuned}
stability: {batches: 1}
log: {dir: $tmp/runs, progress: false}
YAML
train() {  # train NAME --set ...
    local name=$1
    shift
    "$bin" train --config "$tmp/base.yaml" --set log.name="$name" "$@" 2>"$tmp/$name.log"
}
summary_ppl() { json_field val_perplexity "$(grep '"summary":true' "$1/metrics.jsonl")"; }
report_field() {  # report_field RUN KEY -> the number after "KEY": in report.json (formatted)
    grep -m1 -o "\"$2\":[[:space:]]*[-0-9.eE+]*" "$tmp/runs/$1/report.json" | sed 's/.*[[:space:]:]//'
}
n_references() { find "$tmp/runs/references" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l; }

# Two dense models to start from.
train dense --set prune.method=none --set train.steps=20
train dense2 --set prune.method=none --set train.steps=20 --set train.seed=7
dense=$tmp/runs/dense/ckpt-00000020.h5 dense2=$tmp/runs/dense2/ckpt-00000020.h5
check "dense runs train no reference" test "$(n_references)" -eq 0

train a --set model.init="$dense"
check "pruning run with prune.reference finetuned exits 0" test $? -eq 0
check "one reference trained" test "$(n_references)" -eq 1
ref=$(find "$tmp/runs/references" -mindepth 1 -maxdepth 1 -type d | head -1)
check "its folder is named by a 16-digit hex key" grep -qE '/[0-9a-f]{16}$' <<<"$ref"
grep -q "training it in $ref" "$tmp/a.log"
check "the log says it trains the reference" test $? -eq 0
ref_ppl=$(summary_ppl "$ref")
dft=$(awk '/"dense_finetuned"/{f=1} f && /"val_perplexity"/{gsub(/[^0-9.eE+-]/, "", $2); print $2; exit}' FS=: \
    "$tmp/runs/a/report.json")
check "report.json: dense_finetuned is the reference's perplexity ($dft = $ref_ppl)" \
    awk -v a="$dft" -v b="$ref_ppl" 'BEGIN { exit !(a != "" && a == b) }'
pruned=$(summary_ppl "$tmp/runs/a")
ratio=$(report_field a perplexity_ratio_finetuned)
check "the headline ratio is pruned / dense fine-tuned ($ratio)" \
    awk -v r="$ratio" -v p="$pruned" -v d="$ref_ppl" 'BEGIN { q = p / d; exit !(r != "" && r - q < 1e-9 && q - r < 1e-9) }'
check "report.md shows the dense fine-tuned row and ratio" \
    grep -q "Perplexity pruned / dense fine-tuned" "$tmp/runs/a/report.md"
grep -q "dense fine-tuned (same steps, unpruned)" "$tmp/runs/a/report.md"
check "report.md: the row" test $? -eq 0

# The reference is the same run as an unpruned one of the same config, to the bit.
train plain --set model.init="$dense" --set prune.method=none
check "the reference equals a plain unpruned run of the same steps, data and seed" \
    test "$(summary_ppl "$tmp/runs/plain")" = "$ref_ppl"

# Pruning keys do not change the key: reused, untouched.
before=$(md5sum "$ref/metrics.jsonl")
train b --set model.init="$dense" --set prune.alpha=0 --set prune.final_sparsity=0.7 --set stability.enabled=false
check "another alpha, sparsity, stability setting: still one reference" test "$(n_references)" -eq 1
check "the log says it was reused" grep -q "finished before, reused" "$tmp/b.log"
check "the reference was not retrained" test "$(md5sum "$ref/metrics.jsonl")" = "$before"
check "run b reports the same reference" grep -q "\"key\":[[:space:]]*\"$(basename "$ref")\"" "$tmp/runs/b/report.json"
cp "$dense" "$tmp/copy.h5"
train b2 --set model.init="$tmp/copy.h5"
check "the same dense model under another path: reused" grep -q "finished before, reused" "$tmp/b2.log"

# Other steps, another dense model: new keys.
train c --set model.init="$dense" --set train.steps=9 --set prune.prune_every=2
check "other train.steps: a second reference" test "$(n_references)" -eq 2
train d --set model.init="$dense2"
check "another dense model: a third reference" test "$(n_references)" -eq 3
train e --set model.init="$dense" --set prune.reference=none
check "prune.reference none: no reference" test "$(n_references)" -eq 3
check "prune.reference none: no dense_finetuned in the report" bash -c "! grep -q dense_finetuned '$tmp/runs/e/report.json'"

# A sweep over alpha shares the one reference of its config.
train sweep --set model.init="$dense" --set 'sweep.prune.alpha=[0, 1]'
check "a sweep exits 0" test $? -eq 0
check "its runs reuse the first reference" test "$(n_references)" -eq 3
for r in "prune.alpha=0" "prune.alpha=1"; do
    check "sweep run $r reports dense fine-tuned" grep -q dense_finetuned "$tmp/runs/sweep/$r/report.json"
done
check_summary
