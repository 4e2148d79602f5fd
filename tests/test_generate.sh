#!/usr/bin/env bash
# `mambaprune generate` and `export --sparse` as a user drives them, on a small byte-level
# model (random weights, and a copy magnitude-pruned to 70%): same seed, same output; the
# sparse path, the dense path and the packed file give the same greedy text; the report on
# stderr; every class of bad argument fails with exit 2 and a message naming it; corrupt and
# truncated packed files fail naming the file and the tensor.
set -uo pipefail
source "$(dirname "$0")/check.sh"
export OMP_NUM_THREADS=1

printf 'the quick brown fox jumps over the lazy dog. ' >"$tmp/text.txt"
for _ in 1 2 3 4 5 6; do cat "$tmp/text.txt" "$tmp/text.txt" >"$tmp/t2" && mv "$tmp/t2" "$tmp/text.txt"; done
cat >"$tmp/base.yaml" <<YAML
model: {d_model: 32, n_layer: 2, d_state: 8}
data: {kind: text, path: $tmp/text.txt}
train: {steps: 0, batch_size: 2, seqlen: 32, eval_every: 0, eval_batches: 1}
prune: {final_sparsity: 0.7, nsamples: 2, calib_seqlen: 32, include: [in_proj.weight, x_proj.weight, dt_proj.weight, out_proj.weight]}
log: {dir: $tmp/runs, progress: false}
YAML
"$bin" train --config "$tmp/base.yaml" --set log.name=dense 2>"$tmp/dense.log" || cat "$tmp/dense.log"
"$bin" train --config "$tmp/base.yaml" --set log.name=pruned --set prune.method=magnitude 2>"$tmp/pruned.log" || cat "$tmp/pruned.log"
dense=$(ls "$tmp"/runs/dense/ckpt-*.h5 | tail -1)
pruned=$(ls "$tmp"/runs/pruned/ckpt-*.h5 | tail -1)
check "two checkpoints made" test -f "$dense" -a -f "$pruned"

gen() {  # gen NAME ARGS...: stdout in $tmp/NAME.out, stderr in $tmp/NAME.err, exit code in $tmp/NAME.rc
    local name=$1
    shift
    "$bin" generate "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    echo $? >"$tmp/$name.rc"
}
rc_is() { test "$(cat "$tmp/$1.rc")" = "$2"; }
same() { cmp -s "$tmp/$1.out" "$tmp/$2.out"; }

gen s1 --model "$pruned" --prompt "the quick" --tokens 40 --seed 7 --temperature 1 --top-k 20 --top-p 0.9
gen s2 --model "$pruned" --prompt "the quick" --tokens 40 --seed 7 --temperature 1 --top-k 20 --top-p 0.9
gen s3 --model "$pruned" --prompt "the quick" --tokens 40 --seed 8 --temperature 1 --top-k 20 --top-p 0.9
check "generate succeeds" rc_is s1 0
check "40 bytes and a newline on stdout" test "$(wc -c <"$tmp/s1.out")" -eq 41
check "same seed, same output" same s1 s2
check "another seed, other output" bash -c "! cmp -s '$tmp/s1.out' '$tmp/s3.out'"
check "stderr: prompt and decode tokens/s" grep -q "prompt: 9 tokens in .* tok/s); decode: 40 tokens in .* tok/s" "$tmp/s1.err"
check "stderr: VmRSS and VmHWM" grep -q "memory: VmRSS [0-9.]* MB, VmHWM [0-9.]* MB" "$tmp/s1.err"
check "stderr: what ran sparse, per linear" grep -q "in_proj .*x2" "$tmp/s1.err"

# Greedy: sparse kernels, dense kernels and the packed file give the same text.
"$bin" export --model "$pruned" --sparse --to "$tmp/pruned.packed" 2>"$tmp/export.err"
check "export --sparse writes the packed file" test -s "$tmp/pruned.packed"
check "export --sparse reports its size" grep -q "wrote .*pruned.packed: .* MB, .*x the .* MB of the dense fp32 weights" "$tmp/export.err"
gen g_sparse --model "$pruned" --prompt "over the" --tokens 30 --temperature 0
gen g_dense --model "$pruned" --prompt "over the" --tokens 30 --temperature 0 --dense
gen g_packed --model "$tmp/pruned.packed" --prompt "over the" --tokens 30 --temperature 0
gen g_packed_dense --model "$tmp/pruned.packed" --prompt "over the" --tokens 30 --temperature 0 --dense
check "greedy: sparse path = dense path" same g_sparse g_dense
check "greedy: packed file = checkpoint" same g_sparse g_packed
check "greedy: packed file with --dense = checkpoint" same g_sparse g_packed_dense
check "--dense reports every linear dense" bash -c "grep -A4 -- '--dense' '$tmp/g_dense.err' | grep -q 'in_proj  dense x2'"
gen s_packed --model "$tmp/pruned.packed" --prompt "the quick" --tokens 40 --seed 7 --temperature 1 --top-k 20 --top-p 0.9
check "sampling: packed file = checkpoint" same s1 s_packed
gen ids --model "$pruned" --prompt-tokens 116,104,101,32,113,117,105,99,107 --tokens 40 --seed 7 --top-k 20 --top-p 0.9
check "--prompt-tokens of the same bytes = --prompt" same s1 ids
printf 'the quick' >"$tmp/prompt.txt"
gen file --model "$pruned" --prompt-file "$tmp/prompt.txt" --tokens 40 --seed 7 --top-k 20 --top-p 0.9
check "--prompt-file = --prompt" same s1 file
gen zero --model "$dense" --prompt "x" --tokens 0
check "--tokens 0: the prompt only" rc_is zero 0
"$bin" export --model "$pruned" --sparse --bf16 --to "$tmp/pruned_bf16.packed" 2>"$tmp/export_bf16.err"
check "--bf16: a smaller packed file" test "$(stat -c %s "$tmp/pruned_bf16.packed")" -lt "$(stat -c %s "$tmp/pruned.packed")"
gen bf16 --model "$tmp/pruned_bf16.packed" --prompt "over the" --tokens 5 --temperature 0
check "--bf16 packed file loads and generates" rc_is bf16 0
# --batch: sequences decoded together, sequence b as --seed S+b alone (up to rounding of
# the batch kernels, which these short runs do not reach).
gen batch3 --model "$pruned" --prompt "the quick" --tokens 40 --seed 7 --temperature 1 --top-k 20 --top-p 0.9 --batch 3
seq_of() { awk -v want="[sequence $2, seed $3]" '/^\[sequence / { f = ($0 == want); next } f' "$tmp/$1.out"; }
check "--batch 3: sequence 0 = --seed 7 alone" test "$(seq_of batch3 0 7)" = "$(cat "$tmp/s1.out")"
check "--batch 3: sequence 1 = --seed 8 alone" test "$(seq_of batch3 1 8)" = "$(cat "$tmp/s3.out")"
check "--batch 3: the sequences differ" test "$(seq_of batch3 0 7)" != "$(seq_of batch3 2 9)"
check "--batch 3: three sequences, decode tokens counted for all" bash -c "test \$(grep -c '^\[sequence' '$tmp/batch3.out') = 3 && grep -q 'decode: 120 tokens' '$tmp/batch3.err'"
# The opt-in low-precision head: in the file (export --head) and at load (generate --head).
"$bin" export --model "$pruned" --sparse --head int8 --to "$tmp/pruned_int8.packed" 2>"$tmp/export_int8.err"
check "--head int8: a smaller packed file, said so" bash -c "test $(stat -c %s "$tmp/pruned_int8.packed") -lt $(stat -c %s "$tmp/pruned.packed") && grep -q 'held as int8' '$tmp/export_int8.err'"
gen int8 --model "$tmp/pruned_int8.packed" --prompt "over the" --tokens 5 --temperature 0
check "--head int8 packed file loads and generates, reports its head" bash -c "test \"\$(cat '$tmp/int8.rc')\" = 0 && grep -q 'embedding/head: int8' '$tmp/int8.err'"
gen head_bf16 --model "$pruned" --prompt "over the" --tokens 5 --temperature 0 --head bf16
check "generate --head bf16 reports its head" grep -q "embedding/head: bf16 (lower precision" "$tmp/head_bf16.err"
gen head_fp32 --model "$tmp/pruned_int8.packed" --prompt "over the" --tokens 5 --temperature 0 --head fp32
check "generate --head fp32 of an int8 file runs the dequantised head in fp32" grep -q "embedding/head: fp32" "$tmp/head_fp32.err"

# eval reads the packed file straight into the inference model: the same perplexity.
e_ckpt=$("$bin" eval --model "$pruned" --data "$tmp/text.txt" --seqlen 64 --batch 2 --max-batches 2 2>/dev/null)
e_packed=$("$bin" eval --model "$tmp/pruned.packed" --data "$tmp/text.txt" --seqlen 64 --batch 2 --max-batches 2 2>/dev/null)
rel_close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= 1e-5 * (a < 0 ? -a : a)) }'; }
check "eval of the packed file = eval of the checkpoint (nll $(json_field nll "$e_packed") vs $(json_field nll "$e_ckpt"))" \
    rel_close "$(json_field nll "$e_packed")" "$(json_field nll "$e_ckpt")"
check "eval of the packed file counts the same tokens" test "$(json_field tokens "$e_packed")" = "$(json_field tokens "$e_ckpt")"
"$bin" eval --model "$tmp/pruned.packed" 2>"$tmp/eval_nodata.err"
nodata_rc=$?
check "eval of a packed file without --data: exit 2, says so" bash -c "test $nodata_rc = 2 && grep -q 'give --data' '$tmp/eval_nodata.err'"

# Bad arguments: exit 2 and a message that names the problem.
bad() {  # bad NAME NEEDLE ARGS...
    local name=$1 needle=$2
    shift 2
    gen "$name" "$@"
    check "$name: exit 2, '$needle'" bash -c "test \"\$(cat '$tmp/$name.rc')\" = 2 && grep -qF -- '$needle' '$tmp/$name.err'"
}
bad unknown "unknown option" --model "$dense" --prompt a --bogus 1
bad missing_value "--tokens needs a value" --model "$dense" --prompt a --tokens
bad non_numeric "--tokens expects an integer" --model "$dense" --prompt a --tokens abc
bad fraction "--tokens expects an integer" --model "$dense" --prompt a --tokens 1.5
bad negative_t "--temperature expects a number in [0" --model "$dense" --prompt a --temperature -1
bad top_p "--top-p expects a number in" --model "$dense" --prompt a --top-p 1.5
bad top_k "--top-k: expected an integer in [0, 256]" --model "$dense" --prompt a --top-k 300
bad empty_prompt "the prompt is empty" --model "$dense" --prompt ""
bad empty_file "the prompt is empty" --model "$dense" --prompt-file /dev/null
bad beyond_vocab "token id 256 is outside the vocabulary [0, 256)" --model "$dense" --prompt-tokens 1,256
bad not_ids "item 2: expected a token id" --model "$dense" --prompt-tokens 1,x
bad batch_range "--batch expects an integer in [1, 16]" --model "$dense" --prompt a --batch 17
bad bad_head "--head expects fp32, bf16 or int8, got" --model "$dense" --prompt a --head fp16
bad conflicting "--prompt and --prompt-tokens both give the prompt" --model "$dense" --prompt a --prompt-tokens 1
bad no_prompt "one of --prompt, --prompt-file, --prompt-tokens are required" --model "$dense"
bad no_file "--prompt-file $tmp/none.txt" --model "$dense" --prompt-file "$tmp/none.txt"
bad not_bytes "not bytes: give the prompt as --prompt-tokens" --model "$src/tests/fixtures/hf_tiny" --prompt "hi"
gen no_model --model "$tmp/none.h5" --prompt a
check "missing model: exit 1, names it" bash -c "test \"\$(cat '$tmp/no_model.rc')\" = 1 && grep -q 'none.h5' '$tmp/no_model.err'"
gen hf_ids --model "$src/tests/fixtures/hf_tiny" --prompt-tokens 1,2,3 --tokens 5 --temperature 0
check "a non-byte model prints token ids" grep -qE '^([0-9]+ ){5}$' "$tmp/hf_ids.out"

# Corrupt and truncated packed files.
size=$(stat -c %s "$tmp/pruned.packed")
cp "$tmp/pruned.packed" "$tmp/flipped.packed"
printf '\x55' | dd of="$tmp/flipped.packed" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
gen flipped --model "$tmp/flipped.packed" --prompt a
check "flipped byte: exit 1, names the file, a tensor and the checksum" \
    bash -c "rc=\$(cat '$tmp/flipped.rc'); test \$rc = 1 && grep -q \"flipped.packed: tensor '.*'.*checksum\" '$tmp/flipped.err'"
head -c $((size - 1000)) "$tmp/pruned.packed" >"$tmp/truncated.packed"
gen truncated --model "$tmp/truncated.packed" --prompt a
check "truncated: exit 1, names the file" bash -c "test \"\$(cat '$tmp/truncated.rc')\" = 1 && grep -q 'truncated.packed' '$tmp/truncated.err'"
cat "$tmp/truncated.err" "$tmp/flipped.err"
check_summary
