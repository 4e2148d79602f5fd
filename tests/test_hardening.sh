#!/usr/bin/env bash
# Hostile input and hostile conditions, through the binary: sizes that overflow or cannot
# fit, files that are not files, out-of-range flags, bad run names, non-UTF-8 configs,
# non-finite weights, SIGTERM/SIGINT (checkpoint, exit 130/143, exact resume), the run
# folder lock, stale temporaries, and a full disk (an LD_PRELOAD shim that fails writes
# with ENOSPC) whose run resumes to the same result as a straight run.
set -uo pipefail
source "$(dirname "$0")/check.sh"
echo "" >"$tmp/e.yaml"
small=(--set model.d_model=16 --set model.n_layer=1 --set train.batch_size=2 --set train.seqlen=48
       --set train.eval_batches=1 --set data.val_sequences=2 --set log.progress=false --set log.dir="$tmp/runs")

wait_until() {  # wait_until PID COMMAND...: polls every 10 ms until COMMAND succeeds, for up to 120 s
    # (a loaded machine, the sanitized build) or until process PID is gone; fails in the last two cases
    local pid=$1
    shift
    for _ in $(seq 12000); do
        "$@" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}
refused() {  # refused NAME PATTERN COMMAND...: exits non-zero, not by a signal, message matches
    local name=$1 pattern=$2
    shift 2
    "$@" >"$tmp/out" 2>&1
    local rc=$?
    check "$name: refused (exit $rc)" test "$rc" -ge 1 -a "$rc" -le 2
    check "$name: says why" grep -q -- "$pattern" "$tmp/out" || cat "$tmp/out"
}
refused "expand overflow" "model.expand, model.d_model: d_inner" "$bin" train --config "$tmp/e.yaml" "${small[@]}" --set model.expand=1000000000
refused "d_state overflow" "model.d_state" "$bin" train --config "$tmp/e.yaml" "${small[@]}" --set model.d_state=2000000000
refused "a vocabulary too large" "model.vocab_size" "$bin" train --config "$tmp/e.yaml" "${small[@]}" --set model.vocab_size=2000000000
refused "100000 layers" "needs about .* GB, more than" "$bin" train --config "$tmp/e.yaml" "${small[@]}" --set model.n_layer=100000
refused "a batch too large" "train.batch_size, train.seqlen.*needs about" "$bin" train --config "$tmp/e.yaml" "${small[@]}" --set train.batch_size=65536 --set train.seqlen=65536
refused "max_memory_gb" "that train.max_memory_gb allows" "$bin" train --config "$tmp/e.yaml" "${small[@]}" --set train.max_memory_gb=0.000001
# train.recompute in the estimate: 8 layers of d_model 64 on 8 x 128 tokens need about 0.084 GB
# estimated, 0.020 GB with recompute; a limit of 0.05 GB refuses the first and runs the second.
deep=("${small[@]}" --set model.d_model=64 --set model.n_layer=8 --set train.batch_size=8 --set train.seqlen=128
      --set train.steps=2 --set train.max_memory_gb=0.05)
refused "max_memory_gb without recompute" "8 x 128 tokens needs about 0.08" "$bin" train --config "$tmp/e.yaml" "${deep[@]}"
"$bin" train --config "$tmp/e.yaml" "${deep[@]}" --set train.recompute=true --set log.name=recompute_fits >"$tmp/out" 2>&1
check "max_memory_gb 0.05 with train.recompute: runs (its estimate 0.020 GB)" test $? -eq 0 || cat "$tmp/out"
refused "a directory as data.path" "is a directory, expected a regular file" "$bin" train --config "$tmp/e.yaml" "${small[@]}" --set data.kind=text --set data.path="$tmp"
refused "a directory as config" "is a directory" "$bin" train --config "$tmp"
refused "eval --seqlen past int" "--seqlen: 99999999999 is out of range" "$bin" eval --model x --seqlen 99999999999
refused "eval --batch negative" "--batch: -3 is out of range" "$bin" eval --model x --batch -3
refused "eval --max-batches text" "--max-batches: expected an integer" "$bin" eval --model x --max-batches 1e3
refused "log.name with ../" "log.name: expected one folder name" "$bin" train --config "$tmp/e.yaml" "${small[@]}" --set log.name=../escape
refused "log.name too long" "log.name: is 300 bytes long, at most 200" "$bin" train --config "$tmp/e.yaml" "${small[@]}" --set log.name="$(printf 'a%.0s' $(seq 300))"
printf 'train:\n  steps: 1 \xff\n' >"$tmp/bad_utf8.yaml"
refused "a non-UTF-8 byte on line 2" "bad_utf8.yaml:2:.*byte 0xff" "$bin" train --config "$tmp/bad_utf8.yaml"
python3 -c 'import struct,sys; h=b"{\"a\x1b[31m\": 1}"; open(sys.argv[1],"wb").write(struct.pack("<Q",len(h))+h)' "$tmp/raw.safetensors"
mkdir -p "$tmp/rawmodel" && cp "$src/tests/fixtures/hf_tiny/config.json" "$tmp/rawmodel/" && cp "$tmp/raw.safetensors" "$tmp/rawmodel/model.safetensors"
"$bin" eval --model "$tmp/rawmodel" --data "$tmp/e.yaml" >"$tmp/out" 2>&1
check "untrusted bytes escaped in messages" bash -c "! grep -q $'\x1b' '$tmp/out' && grep -q 'x1b' '$tmp/out'"

# Non-finite weights: a trained checkpoint, exported, with one weight made NaN.
"$bin" train --config "$tmp/e.yaml" "${small[@]}" --set train.steps=2 --set log.name=tiny 2>/dev/null
"$bin" export --model "$tmp/runs/tiny/ckpt-00000002.h5" --to "$tmp/exported" 2>/dev/null
python3 - "$tmp/exported/model.safetensors" <<'PY'
import json, struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
begin = header["backbone.layers.0.mixer.A_log"]["data_offsets"][0]
data[8 + n + begin + 4 * 5:8 + n + begin + 4 * 6] = struct.pack("<f", float("nan"))
open(sys.argv[1], "wb").write(data)
PY
refused "eval of a NaN weight" "backbone.layers.0.mixer.A_log: element 5 is NaN" "$bin" eval --model "$tmp/exported" --data "$tmp/e.yaml"
refused "generate with a NaN weight" "backbone.layers.0.mixer.A_log: element 5 is NaN" "$bin" generate --model "$tmp/exported" --prompt-tokens 1,2

# SIGTERM: checkpoint after the current step, exit 143; the resumed run equals a straight one.
# 2000 steps of the tiny model, polled every 10 ms, so that the signal lands mid-run on an
# idle machine too (it finishes 40 steps before a 0.1 s poll). The sanitized build is more
# than ten times slower per step: 300 steps last longer there than 2000 do here.
long_steps=2000
if [ "${MP_SANITIZED:-0}" = 1 ]; then long_steps=300; fi
last_ckpt=$(printf 'ckpt-%08d.h5' "$long_steps")
run=(--config "$tmp/e.yaml" "${small[@]}" --set train.steps=$long_steps --set train.log_every=1 --set checkpoint.every=0
     --set train.eval_every=0)
"$bin" train "${run[@]}" --set log.name=straight 2>/dev/null
"$bin" train "${run[@]}" --set log.name=term 2>"$tmp/term.log" &
pid=$!
check "SIGTERM: the run reached step 3" wait_until $pid grep -q '"step":3,' "$tmp/runs/term/metrics.jsonl"
kill -TERM $pid
wait $pid
rc=$?
check "SIGTERM: exit 143 (got $rc)" test "$rc" -eq 143
check "SIGTERM: says so and where the checkpoint is" grep -q "stopped by SIGTERM after step [0-9]* of $long_steps; wrote the checkpoint" "$tmp/term.log"
check "SIGTERM: a checkpoint of the step written" test -n "$(ls "$tmp/runs/term" | grep '^ckpt-.*\.h5$')"
touch "$tmp/runs/term/ckpt-00000007.h5.tmp-999999"   # left by a process that no longer runs
"$bin" train "${run[@]}" --set log.name=term --resume latest 2>"$tmp/resume.log"
check "resume after SIGTERM finishes" test $? -eq 0
check "stale temporary removed, and said" grep -q "removed 1 temporary file" "$tmp/resume.log"
check "no temporary files left" test -z "$(ls "$tmp/runs/term" | grep tmp)"
losses() { grep -o '"step":[0-9]*,"loss":[^,]*,"lr":[^,]*,"grad_norm":[^,]*' "$1/metrics.jsonl"; }
check "SIGTERM + resume: same parameters as straight" h5diff "$tmp/runs/straight/$last_ckpt" "$tmp/runs/term/$last_ckpt" /params
check "SIGTERM + resume: same logged losses" diff <(losses "$tmp/runs/straight") <(losses "$tmp/runs/term")

refused "resume with another seed (/state/rng checked)" "/state/rng is not the state of train.seed = 99" \
    "$bin" train "${run[@]}" --set log.name=term --set train.seed=99 --resume latest

# SIGINT twice: the second stops at once.
"$bin" train "${run[@]}" --set train.steps=100000 --set log.name=int 2>"$tmp/int.log" &
pid=$!
check "SIGINT: the run reached step 2" wait_until $pid grep -q '"step":2,' "$tmp/runs/int/metrics.jsonl"
kill -INT $pid; kill -INT $pid
wait $pid
rc=$?
check "SIGINT twice: ends at once with 130 (got $rc)" test "$rc" -eq 130 || tail -n 20 "$tmp/int.log"

# The lock: a second run into a live run's folder is refused with the holder's pid.
"$bin" train "${run[@]}" --set train.steps=100000 --set log.name=busy 2>/dev/null &
pid=$!
check "lock: the run has started" wait_until $pid test -s "$tmp/runs/busy/metrics.jsonl"
refused "a second run into a live run's folder" "in use by process $pid" "$bin" train "${run[@]}" --set log.name=busy --resume latest
# One thread takes SIGINT and SIGTERM, the others block both (docs/DESIGN.md#signals):
# a handler that ran inside oneDNN's sgemm could corrupt the heap. SigBlk is a hex mask
# with bit n-1 for signal n: 0x4002 = SIGINT (2) and SIGTERM (15).
open=0
for status in /proc/$pid/task/*/status; do
    blocked=$(awk '/^SigBlk:/ {print $2}' "$status")
    (( (0x$blocked & 0x4002) == 0x4002 )) || open=$((open + 1))
done
check "one thread of $(ls /proc/$pid/task | wc -l) takes SIGINT and SIGTERM (got $open)" test "$open" -eq 1
kill -TERM $pid; wait $pid

# A full disk: writes into the run folder fail with ENOSPC after some bytes.
if [ -n "${MP_FAIL_SHIM:-}" ] && [ -e "$MP_FAIL_SHIM" ]; then
    full=(--config "$tmp/e.yaml" "${small[@]}" --set train.steps=40 --set train.log_every=1 --set checkpoint.every=5
          --set checkpoint.keep=50 --set train.eval_every=0)
    "$bin" train "${full[@]}" --set log.name=straight40 2>/dev/null   # the same run, with space
    one_checkpoint=$(stat -c %s "$tmp/runs/straight40/ckpt-00000040.h5")
    check "full disk: the straight run's checkpoint" test -n "$one_checkpoint"
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" LD_PRELOAD="$MP_FAIL_SHIM" \
        MP_FAIL_WRITE_PATH="$tmp/runs/full/" MP_FAIL_WRITE_AFTER=$(( ${one_checkpoint:-0} * 7 / 2 )) \
        "$bin" train "${full[@]}" --set log.name=full 2>"$tmp/full.log"
    rc=$?
    check "full disk: exit 1 (got $rc)" test "$rc" -eq 1
    check "full disk: the message names the file" grep -Eq "runs/full/(metrics.jsonl|ckpt-[0-9]*\.h5)[^ ]*: .*No space left on device" "$tmp/full.log"
    check "full disk: no library noise" bash -c "! grep -qi 'hdf5' '$tmp/full.log'"
    cat "$tmp/full.log" | tail -2
    last=$(ls "$tmp/runs/full" | grep '^ckpt-.*\.h5$' | tail -1)
    check "full disk: the last good checkpoint reads" "$bin" eval --model "$tmp/runs/full/$last" --max-batches 1 
    "$bin" train "${full[@]}" --set log.name=full --resume latest 2>/dev/null
    check "full disk: resume once there is space finishes" test $? -eq 0
    check "full disk + resume: same parameters as straight" h5diff "$tmp/runs/straight40/ckpt-00000040.h5" "$tmp/runs/full/ckpt-00000040.h5" /params
    check "full disk + resume: same logged losses" diff <(losses "$tmp/runs/straight40") <(losses "$tmp/runs/full")
else
    echo "skip: MP_FAIL_SHIM not set (the full-disk shim)"
fi
check_summary
