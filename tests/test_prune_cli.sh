#!/usr/bin/env bash
# Every pruning method through `mambaprune train` as a user drives it: a small base config
# and --set lines. One-shot (train.steps 0): the run folder's report, the target sparsity in
# the summary, masks in the checkpoint, `eval` of the checkpoint printing the summary's
# validation loss, `export` writing the (possibly smaller) model. One-shot then fine-tuning:
# the pruned weights stay exactly zero. Gradient pruning, also swept over alpha. Bad values
# fail with exit 2 (config) or 1 (run) and a message that names the key.
set -uo pipefail
source "$(dirname "$0")/check.sh"
export OMP_NUM_THREADS=1  # models this small gain nothing from a second thread, and wait for it on a busy machine
# (Tiny enough for the unoptimised sanitizer build as it is: no MP_SANITIZED variant.)

# 3 layers (the shedder removes one), d_state 8 (structured SparseSSM keeps 4), d_inner 32.
cat >"$tmp/base.yaml" <<YAML
model: {d_model: 16, n_layer: 3, d_state: 8}
data: {kind: selective_copying, vocab: 8, n_memorize: 4, val_sequences: 16}
train: {steps: 0, batch_size: 4, seqlen: 32, eval_every: 0, eval_batches: 2, log_every: 5}
optim: {lr: 3.0e-3, lr_min: 1.0e-4}
prune: {final_sparsity: 0.5, nsamples: 4, calib_seqlen: 32, prune_every: 5, grad_accum_batches: 2}
stability: {batches: 1}
checkpoint: {keep: 20}
log: {dir: $tmp/runs, progress: false}
YAML
train() {  # train NAME --set ...: a run in $tmp/runs/NAME, its stderr in $tmp/NAME.log
    local name=$1
    shift
    "$bin" train --config "$tmp/base.yaml" --set log.name="$name" "$@" 2>"$tmp/$name.log"
}
summary_of() { grep '"summary":true' "$tmp/runs/$1/metrics.jsonl"; }
near() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(a != "" && d <= 1e-3 && d >= -1e-3) }'; }
json_file_field() {  # json_file_field FIELD FILE -> the first number of FIELD in a formatted JSON file
    grep -m1 -o "\"$1\":[[:space:]]*[-0-9.eE+]*" "$2" | sed 's/.*[[:space:]:]//'
}
# masked_zeros CKPT -> "MASKED NONZERO": the weights that the checkpoint's masks prune, and
# how many of them are not zero (each mask dumped right before its parameter).
masked_zeros() {
    local names=() dumps=() name
    mapfile -t names < <(h5ls "$1/masks" | sed 's/ *Dataset.*//')
    for name in "${names[@]}"; do dumps+=(-d "/masks/$name" -d "/params/$name"); done
    h5dump -y "${dumps[@]}" "$1" | awk '
        /DATASET "\/masks\//  { mask = 1; i = 0 }
        /DATASET "\/params\// { mask = 0; i = 0 }
        /DATA \{/ { inside = 1; next }
        /^ *\}/   { inside = 0 }
        inside {
            n = split($0, v, ",")
            for (k = 1; k <= n; k++) {
                if (v[k] ~ /^ *$/) continue
                if (mask) keep[i++] = v[k] + 0
                else { if (keep[i] == 0) { masked++; if (v[k] + 0 != 0) nonzero++ } i++ }
            }
        }
        END { print masked + 0, nonzero + 0 }'
}
# report_pruned_counts REPORT -> "OVERALL COMPONENTS": the masks' pruned count and the sum of
# the six components' counts (a masked tensor counts its masks, not its zeros: A_log's
# first state column starts at exactly 0 and must not count as pruned).
report_pruned_counts() {
    grep -o '"pruned":[[:space:]]*[0-9][0-9]*' "$1" | head -7 | grep -o '[0-9]*$' |
        awk 'NR == 1 { overall = $1; next } { sum += $1 } END { print overall, sum }'
}
# mask_values CKPT: every mask entry of the checkpoint, one per line, masks in name order.
mask_values() {
    h5dump -y -g /masks "$1" | awk '
        /DATA \{/ { inside = 1; next }
        /^ *\}/   { inside = 0 }
        inside { n = split($0, v, ","); for (k = 1; k <= n; k++) if (v[k] !~ /^ *$/) print v[k] + 0 }'
}
config_json() { grep -o "\"$1\":[[:space:]]*[0-9]*" "$2" | grep -o '[0-9]*$'; }

# 1. One-shot, every method: NAME, the expected summary sparsity (shedder and structured
#    SparseSSM remove structures instead of masking weights: nothing masked, except the
#    C rows of an SSM the shedder removed), the masks expected, the --set lines.
dense_parameters=8096  # 16 x 16 embedding, final norm 16, 3 layers of 2608
oneshot_runs=(
    "magnitude 0.5 18 --set prune.method=magnitude"
    "magnitude_14 0.25 15 --set prune.method=magnitude --set prune.nm_n=1 --set prune.nm_m=4 --set prune.exclude=[dt_proj]"
    "wanda 0.5 18 --set prune.method=wanda"
    "sparsegpt 0.5 18 --set prune.method=sparsegpt"
    "sparsessm 0.5 18 --set prune.method=sparsessm"
    "sparsessm_structured 0 3 --set prune.method=sparsessm --set prune.sparsessm_structured=true --set prune.include=[mixer.A_log]"
    "shedder_block 0 12 --set prune.method=shedder"
    "shedder_ssm ssm 18 --set prune.method=shedder --set prune.shedder_target=ssm"
)
for line in "${oneshot_runs[@]}"; do
    read -r name expected n_masks sets <<<"$line"
    read -ra sets <<<"$sets"
    run="$tmp/runs/$name" ckpt="$tmp/runs/$name/ckpt-00000000.h5"
    train "$name" "${sets[@]}"
    check "$name: exit 0" test $? -eq 0
    check "$name: report.json and report.md" test -s "$run/report.json" -a -s "$run/report.md"
    summary=$(summary_of "$name")
    sparsity=$(json_field sparsity "$summary")
    if [ "$expected" = ssm ]; then  # the C rows (d_state x d_inner) of one layer's x_proj
        expected=$(awk -v p="$(json_file_field prunable "$run/report.json")" 'BEGIN { print 8 * 32 / p }')
    fi
    check "$name: summary sparsity $sparsity, expected $expected" near "$sparsity" "$expected"
    check "$name: $n_masks masks in the checkpoint" test "$(h5ls "$ckpt/masks" | grep -c Dataset)" -eq "$n_masks"
    read -r masked nonzero <<<"$(masked_zeros "$ckpt")"
    check "$name: the $masked masked weights are zero" test "$nonzero" -eq 0
    read -r overall components <<<"$(report_pruned_counts "$run/report.json")"
    check "$name: report.json's components add up to its $overall pruned weights (got $components)" \
        test "$overall" -eq "$components"
    eval_json=$("$bin" eval --model "$ckpt" 2>/dev/null)
    check "$name: eval exits 0" test $? -eq 0
    check "$name: eval prints the summary's validation loss" \
        test "$(json_field nll "$eval_json")" = "$(json_field val_loss "$summary")"
    "$bin" export --model "$ckpt" --to "$tmp/export/$name" 2>/dev/null
    check "$name: export exits 0" test $? -eq 0
    check "$name: export writes config.json and model.safetensors" \
        test -s "$tmp/export/$name/config.json" -a -s "$tmp/export/$name/model.safetensors"
done
check "magnitude 1:4: the report says 1:4" grep -q '^Method `magnitude` (one-shot) to 1:4,' "$tmp/runs/magnitude_14/report.md"
check "structured: d_state 8 -> 4 in the export" test "$(config_json state_size "$tmp/export/sparsessm_structured/config.json")" -eq 4
check "structured: 3 layers x 4 columns x (A_log + B + C rows) = 1152 parameters fewer" \
    test "$(json_field parameters "$(summary_of sparsessm_structured)")" -eq $((dense_parameters - 3 * 4 * 3 * 32))
check "structured: the report says what was removed" \
    grep -q '^Method `sparsessm` (one-shot) removing 50.0% of the state columns,' "$tmp/runs/sparsessm_structured/report.md"
check "shedder block: n_layer 3 -> 2 in the export" test "$(config_json num_hidden_layers "$tmp/export/shedder_block/config.json")" -eq 2
check "shedder block: one layer's 2608 parameters fewer" \
    test "$(json_field parameters "$(summary_of shedder_block)")" -eq $((dense_parameters - 2608))
check "shedder block: the report says what was removed" \
    grep -q '^Method `shedder` (one-shot) removing 1 block,' "$tmp/runs/shedder_block/report.md"
check "shedder ssm: all 3 layers kept" test "$(config_json num_hidden_layers "$tmp/export/shedder_ssm/config.json")" -eq 3
check "magnitude: the dense evaluation logged" grep -q '"dense":true' "$tmp/runs/magnitude/metrics.jsonl"

# 2. One-shot, then 10 steps of fine-tuning with the masks held: the same sparsity, the
#    masked weights still exactly zero, the others trained.
for line in "${oneshot_runs[@]}"; do
    read -r name expected n_masks sets <<<"$line"
    read -ra sets <<<"$sets"
    train "${name}_ft" "${sets[@]}" --set train.steps=10
    check "$name + fine-tuning: exit 0" test $? -eq 0
    check "$name + fine-tuning: the sparsity of the one-shot run" \
        test "$(json_field sparsity "$(summary_of "${name}_ft")")" = "$(json_field sparsity "$(summary_of "$name")")"
    run="$tmp/runs/${name}_ft"
    read -r masked nonzero <<<"$(masked_zeros "$run/ckpt-00000010.h5")"
    check "$name + fine-tuning: the $masked masked weights still zero" test "$nonzero" -eq 0
    h5diff -q "$run/ckpt-00000000.h5" "$run/ckpt-00000010.h5" /params >/dev/null 2>&1
    check "$name + fine-tuning: the kept weights trained" test $? -eq 1
done

# 3. Gradient pruning during training: masks at steps 5, 10 and 15 (end_step 0 = 20 * 3 / 4),
#    then 5 steps with the masks held.
train gradient --set prune.method=gradient --set train.steps=20
check "gradient: exit 0" test $? -eq 0
run="$tmp/runs/gradient" ckpt="$tmp/runs/gradient/ckpt-00000020.h5"
summary=$(summary_of gradient)
check "gradient: report.json and report.md" test -s "$run/report.json" -a -s "$run/report.md"
check "gradient: summary sparsity 0.5" near "$(json_field sparsity "$summary")" 0.5
check "gradient: 3 mask updates" test "$(grep -c '"prune_update"' "$run/metrics.jsonl")" -eq 3
check "gradient: 18 masks in the checkpoint" test "$(h5ls "$ckpt/masks" | grep -c Dataset)" -eq 18
read -r masked nonzero <<<"$(masked_zeros "$ckpt")"
check "gradient: the $masked masked weights are zero" test "$nonzero" -eq 0
eval_json=$("$bin" eval --model "$ckpt" 2>/dev/null)
check "gradient: eval prints the summary's validation loss" \
    test "$(json_field nll "$eval_json")" = "$(json_field val_loss "$summary")"
"$bin" export --model "$ckpt" --to "$tmp/export/gradient" 2>/dev/null
check "gradient: export" test -s "$tmp/export/gradient/config.json" -a -s "$tmp/export/gradient/model.safetensors"

# 3b. Pruning a pruned model: model.init is the gradient run's checkpoint. Its masks are
#     the starting masks: all of its pruned weights stay pruned (masks only grow) and count
#     towards the target.
train pruned_again --set prune.method=magnitude --set prune.final_sparsity=0.6 --set model.init="$ckpt" \
    --set train.steps=5
check "pruned again: exit 0" test $? -eq 0
check "pruned again: says it starts from model.init's masks" \
    grep -q "model.init .*: its masks on 18 of the 18 pruned tensors hold .* weights pruned (50.00%) from the start" \
    "$tmp/pruned_again.log"
paste -d' ' <(mask_values "$ckpt") <(mask_values "$tmp/runs/pruned_again/ckpt-00000005.h5") >"$tmp/masks_pairs.txt"
grown=$(awk '$1 == 0 && $2 == 1 { back++ } $1 == 1 && $2 == 0 { new++ } END { print back + 0, new + 0, NR }' \
        "$tmp/masks_pairs.txt")
read -r given_back newly_pruned compared <<<"$grown"
check "pruned again: none of the init's pruned weights given back ($compared mask entries compared)" \
    test "$given_back" -eq 0 -a "$compared" -gt 1000
check "pruned again: $newly_pruned more weights pruned" test "$newly_pruned" -gt 0
read -r masked nonzero <<<"$(masked_zeros "$tmp/runs/pruned_again/ckpt-00000005.h5")"
check "pruned again: the $masked masked weights are zero after fine-tuning" test "$nonzero" -eq 0

# 4. A sweep over alpha: two runs, their table at the end.
train alpha --set prune.method=gradient --set train.steps=20 --set 'sweep.prune.alpha=[0, 1]'
check "alpha sweep: exit 0" test $? -eq 0
check "alpha sweep: 2 runs finished" test "$(cat "$tmp/runs/alpha"/*/metrics.jsonl | grep -c '"summary":true')" -eq 2
check "alpha sweep: summary.md has a header, a rule and 2 rows" test "$(grep -c '^|' "$tmp/runs/alpha/summary.md")" -eq 4
h5diff -q "$tmp/runs/alpha/prune.alpha=0/ckpt-00000020.h5" "$tmp/runs/alpha/prune.alpha=1/ckpt-00000020.h5" /masks \
    >/dev/null 2>&1
check "alpha sweep: alpha 0 and 1 choose different masks" test $? -eq 1

# 5. Bad values: exit 2 before anything runs (no run folder) for the config, 1 for what
#    only the run can know; the message names the key and what was expected.
bad() {  # bad STATUS 'MESSAGE' --set ...
    local status=$1 message=$2
    shift 2
    "$bin" train --config "$tmp/base.yaml" --set log.name=bad "$@" 2>"$tmp/bad.log"
    local got=$?
    check "$* -> exit $status" test "$got" -eq "$status"
    check "$* -> message" grep -qF -- "$message" "$tmp/bad.log"
    [ "$status" -ne 2 ] || check "$* -> nothing ran" test ! -e "$tmp/runs/bad"
    rm -rf "$tmp/runs/bad"
}
bad 2 "--set prune.final_sparsity=1.0: expected a number in [0, 1), got '1.0'" \
    --set prune.method=magnitude --set prune.final_sparsity=1.0
bad 2 "--set prune.final_sparsity=-0.1: expected a number in [0, 1), got '-0.1'" \
    --set prune.method=magnitude --set prune.final_sparsity=-0.1
bad 2 "--set prune.nm_n=4: prune.nm_n: must be < prune.nm_m (N of every M pruned), got 4:4" \
    --set prune.method=wanda --set prune.nm_n=4 --set prune.nm_m=4
bad 2 "--set prune.shedder_steps=3: prune.shedder_steps: must be < model.n_layer (3)" \
    --set prune.method=shedder --set prune.shedder_steps=3
bad 2 "--set prune.shedder_steps=5: prune.shedder_steps: must be < model.n_layer (3): the shedder removes one SSM" \
    --set prune.method=shedder --set prune.shedder_target=ssm --set prune.shedder_steps=5
bad 2 "--set prune.shedder_steps=0: expected an integer >= 1, got '0'" --set prune.method=shedder --set prune.shedder_steps=0
# A pretrained model's layers are counted once it is loaded: a run error.
bad 1 "prune.shedder_steps: 3 removals asked, expected at least 1 and fewer than the 3 candidates" \
    --set prune.method=shedder --set prune.shedder_steps=3 --set model.init="$tmp/runs/magnitude/ckpt-00000000.h5"
bad 2 "--set prune.method=obs: expected one of none, gradient, magnitude, wanda, sparsegpt, sparsessm, shedder, got 'obs'" \
    --set prune.method=obs
bad 2 "got 'sparsgpt' (did you mean 'sparsegpt'?)" --set prune.method=sparsgpt
bad 2 "--set prune.alpha=-1: expected a number >= 0, got '-1'" --set prune.method=gradient --set prune.alpha=-1
bad 2 "--set stability.epsilon=1.5: expected a number in (0, 1), got '1.5'" \
    --set prune.method=gradient --set stability.epsilon=1.5

check_summary
