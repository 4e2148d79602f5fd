#!/usr/bin/env bash
# The tokenizer as a user meets it: `tokenize` and `--decode` (round trip, the token file
# header, the uint32 variant), eval --data TEXT and train with data.kind text through a
# model folder's tokenizer.json (cached by hash, re-tokenized when the text changes),
# export carrying the tokenizer files, and the errors of bad input.
set -uo pipefail
source "$(dirname "$0")/check.sh"
fx="$src/tests/fixtures"
tok="$fx/tokenizer.json"
head -c 6000 "$src/README.md" >"$tmp/text.txt"

# 1. Round trip and header.
"$bin" tokenize --tokenizer "$tok" --in "$tmp/text.txt" --out "$tmp/t.bin" 2>"$tmp/log"
check "tokenize exits 0" test $? -eq 0
header=$(od -An -t d4 -N 12 "$tmp/t.bin" | tr -s ' ')
count=$(awk '{print $3}' <<<"$header")
check "header: magic 20240520, version 1 (uint16)" test "$(awk '{print $1, $2}' <<<"$header")" = "20240520 1"
check "size = 1024 + 2 * count" test "$(stat -c %s "$tmp/t.bin")" -eq $((1024 + 2 * count))
"$bin" tokenize --tokenizer "$tok" --in "$tmp/t.bin" --out "$tmp/back.txt" --decode 2>>"$tmp/log"
check "decode gives the text back" cmp -s "$tmp/text.txt" "$tmp/back.txt"

# 2. A vocabulary beyond 65,536 (an added token with id 70000): uint32 ids, version 2.
sed 's|"added_tokens": \[|"added_tokens": [{"id": 70000, "content": "<\|big\|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},|' \
    "$tok" >"$tmp/big.json"
printf 'hello <|big|> world' >"$tmp/big.txt"
"$bin" tokenize --tokenizer "$tmp/big.json" --in "$tmp/big.txt" --out "$tmp/big.bin" 2>>"$tmp/log"
check "version 2 header" test "$(od -An -t d4 -j 4 -N 4 "$tmp/big.bin" | tr -d ' ')" = 2
check "id 70000 written as uint32" grep -q "70000" <(od -An -t d4 -j 1024 "$tmp/big.bin")
"$bin" tokenize --tokenizer "$tmp/big.json" --in "$tmp/big.bin" --out "$tmp/big_back.txt" --decode 2>>"$tmp/log"
check "version 2 decodes back" cmp -s "$tmp/big.txt" "$tmp/big_back.txt"

# 3. Errors name the file and what is wrong.
err() {  # err NEEDLE ARGS...: exit 1 and the message holds NEEDLE
    local needle=$1
    shift
    "$bin" tokenize "$@" 2>"$tmp/err"
    local rc=$?
    [ $rc -eq 1 ] && grep -qF -- "$needle" "$tmp/err" || { cat "$tmp/err"; return 1; }
}
: >"$tmp/empty.txt"
check "empty text" err "empty.txt: the file is empty" --tokenizer "$tok" --in "$tmp/empty.txt" --out "$tmp/x.bin"
check "missing text" err "nope.txt: cannot open" --tokenizer "$tok" --in "$tmp/nope.txt" --out "$tmp/x.bin"
check "missing tokenizer" err "nope.json: cannot open" --tokenizer "$tmp/nope.json" --in "$tmp/text.txt" --out "$tmp/x.bin"
head -c 3000 "$tok" >"$tmp/trunc.json"
check "truncated tokenizer" err "trunc.json: not valid JSON" --tokenizer "$tmp/trunc.json" --in "$tmp/text.txt" --out "$tmp/x.bin"
check "decode ids beyond the vocabulary" err "not in the vocabulary" --tokenizer "$tok" --in "$tmp/big.bin" --out "$tmp/x.txt" --decode
check "decode of a text file" err "text.txt: header[0] (magic)" --tokenizer "$tok" --in "$tmp/text.txt" --out "$tmp/x.txt" --decode
"$bin" tokenize --tokenizer "$tok" --in "$tmp/text.txt" 2>"$tmp/err"
check "missing --out: usage, exit 2" test $? -eq 2

# 4. A model folder with tokenizer.json: a random model of the tokenizer's vocabulary,
#    exported, given the tokenizer.
cat >"$tmp/m.yaml" <<YAML
model: {d_model: 16, n_layer: 1, vocab_size: 1501}
data: {kind: text, path: $tmp/text.txt}
train: {steps: 1, batch_size: 2, seqlen: 32, eval_batches: 1}
log: {dir: $tmp/runs, progress: false}
YAML
"$bin" train --config "$tmp/m.yaml" 2>"$tmp/log" && "$bin" export --model "$tmp/runs/m/ckpt-00000001.h5" --to "$tmp/hf" 2>>"$tmp/log"
check "random model exported" test -f "$tmp/hf/config.json"
cp "$tok" "$tmp/hf/tokenizer.json"
mkdir -p "$tmp/data" && cp "$tmp/text.txt" "$tmp/data/text.txt"
"$bin" eval --model "$tmp/hf" --data "$tmp/data/text.txt" --seqlen 32 --max-batches 2 >"$tmp/eval1.json" 2>"$tmp/eval1.log"
check "eval --data TEXT exits 0" test $? -eq 0
check "eval tokenized through the tokenizer" grep -q "tokenized through the model's tokenizer" "$tmp/eval1.log"
check "one cached token file beside the data" test "$(ls "$tmp/data/.mambaprune-cache" | wc -l)" -eq 1
"$bin" tokenize --tokenizer "$tok" --in "$tmp/data/text.txt" --out "$tmp/direct.bin" 2>/dev/null
check "the cache holds what tokenize writes" cmp -s "$tmp/direct.bin" "$tmp/data/.mambaprune-cache/"*.tokens.bin
"$bin" eval --model "$tmp/hf" --data "$tmp/data/text.txt" --seqlen 32 --max-batches 2 >"$tmp/eval2.json" 2>"$tmp/eval2.log"
check "second eval reuses the cache" grep -q "already tokenized" "$tmp/eval2.log"
check "same result from the cache" test "$(json_field nll "$(cat "$tmp/eval1.json")")" = "$(json_field nll "$(cat "$tmp/eval2.json")")"
"$bin" eval --model "$tmp/hf" --data "$tmp/direct.bin" --seqlen 32 --max-batches 2 >"$tmp/eval3.json" 2>/dev/null
check "eval of the token file gives the same nll" test "$(json_field nll "$(cat "$tmp/eval1.json")")" = "$(json_field nll "$(cat "$tmp/eval3.json")")"
echo "more text" >>"$tmp/data/text.txt"
"$bin" eval --model "$tmp/hf" --data "$tmp/data/text.txt" --seqlen 32 --max-batches 2 >/dev/null 2>"$tmp/eval4.log"
check "a changed text is tokenized again" grep -q ": tokenized through" "$tmp/eval4.log"
check "two cached token files now" test "$(ls "$tmp/data/.mambaprune-cache" | wc -l)" -eq 2
cp "$tmp/big.json" "$tmp/hf/tokenizer.json"  # another tokenizer: another key
"$bin" eval --model "$tmp/hf" --data "$tmp/data/text.txt" --seqlen 32 --max-batches 2 >/dev/null 2>"$tmp/eval5.log"
check "a changed tokenizer re-tokenizes" test "$(ls "$tmp/data/.mambaprune-cache" | wc -l)" -eq 3
cp "$tok" "$tmp/hf/tokenizer.json"
echo '{"model_max_length": 2048}' >"$tmp/hf/tokenizer_config.json"

# 5. train with data.kind text from that folder: tokens cached in the run, tokenizer copied.
cat >"$tmp/ft.yaml" <<YAML
model: {init: $tmp/hf}
data: {kind: text, path: $tmp/text.txt}
train: {steps: 1, batch_size: 2, seqlen: 32, eval_batches: 1}
log: {dir: $tmp/runs, progress: false}
YAML
"$bin" train --config "$tmp/ft.yaml" 2>"$tmp/ft.log"
check "train from the folder on text exits 0" test $? -eq 0 || cat "$tmp/ft.log"
check "the run caches the token file" test "$(ls "$tmp/runs/ft/tokens" | wc -l)" -eq 1
check "the run trained on the tokenizer's ids" cmp -s "$tmp/direct.bin" "$tmp/runs/ft/tokens/"*.tokens.bin
check "the run holds the tokenizer" cmp -s "$tok" "$tmp/runs/ft/tokenizer.json"
"$bin" export --model "$tmp/runs/ft/ckpt-00000001.h5" --to "$tmp/out" 2>"$tmp/export.log"
check "export copies tokenizer.json" cmp -s "$tok" "$tmp/out/tokenizer.json"
check "export copies tokenizer_config.json" test -f "$tmp/out/tokenizer_config.json"
check "export says so" grep -q "tokenizer files" "$tmp/export.log"

# 6. generate through the model folder's tokenizer: the prompt is encoded by it and the
#    output decoded by it, streamed. The same model without tokenizer.json, given the
#    prompt's ids, prints ids; decoded by `tokenize --decode` they are the same text.
printf 'To be, or not to be: that is' >"$tmp/prompt.txt"
"$bin" generate --model "$tmp/out" --prompt "$(cat "$tmp/prompt.txt")" --tokens 12 --temperature 0 \
    >"$tmp/gen_text" 2>"$tmp/gen.log"
check "generate with a tokenizer: exit 0" test $? -eq 0
"$bin" tokenize --tokenizer "$tok" --in "$tmp/prompt.txt" --out "$tmp/prompt.bin" 2>/dev/null
ids=$(python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(); n=struct.unpack("<i",d[8:12])[0]; print(",".join(str(v) for v in struct.unpack("<%dH"%n, d[1024:1024+2*n])))' "$tmp/prompt.bin")
mkdir -p "$tmp/notok" && cp "$tmp/out/config.json" "$tmp/out/model.safetensors" "$tmp/notok/"
"$bin" generate --model "$tmp/notok" --prompt-tokens "$ids" --tokens 12 --temperature 0 >"$tmp/gen_ids" 2>/dev/null
check "generate without a tokenizer prints 12 ids" test "$(wc -w <"$tmp/gen_ids")" -eq 12
python3 -c 'import struct,sys; v=[int(x) for x in open(sys.argv[1]).read().split()]; h=[20240520,1,len(v)]+[0]*253; open(sys.argv[2],"wb").write(struct.pack("<256i",*h)+struct.pack("<%dH"%len(v),*v))' \
    "$tmp/gen_ids" "$tmp/gen_ids.bin"
"$bin" tokenize --tokenizer "$tok" --in "$tmp/gen_ids.bin" --out "$tmp/gen_decoded" --decode 2>/dev/null
check "generate's streamed text = the decode of the same ids" python3 -c 'import sys; a=open(sys.argv[1],"rb").read()[:-1].decode("utf-8","replace"); b=open(sys.argv[2],"rb").read().decode("utf-8","replace"); sys.exit(a!=b)' "$tmp/gen_text" "$tmp/gen_decoded"

check_summary
