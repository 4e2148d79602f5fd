#!/usr/bin/env bash
# Data-parallel training (docs/DESIGN.md#data-parallel-training), built with -DMP_MPI=ON:
# 40 steps of the main job, pruning from step 10 to 30, under `mpirun -np 2` against a
# single process with the same global batch (every parameter within 1e-5 of its tensor's
# largest magnitude), two -np 2 runs against each other (the same bits), a -np 2 run
# resumed from its step-20 checkpoint (the same bits), one-shot SparseGPT with its
# calibration split over the processes, SIGTERM and SIGINT (all processes stop after the
# same step; exit 143 or 130; resume to the same bits), the evaluation split over the
# processes (the same figures as one process), and the refusals.
set -uo pipefail
source "$(dirname "$0")/../check.sh"
compare=${MP_COMPARE:?set by CTest}
mpirun=${MP_MPIRUN:?set by CTest}
launch=("$mpirun" --oversubscribe -x OMP_NUM_THREADS=1)
[ "$(id -u)" -eq 0 ] && launch+=(--allow-run-as-root)
job=(train --config "$src/configs/prune_cubic.yaml" --set train.steps=40 --set prune.start_step=10
     --set prune.end_step=30 --set prune.prune_every=10 --set train.eval_every=20 --set checkpoint.every=20
     --set log.progress=false)
run_dir() { echo "$tmp/$1/prune_cubic"; }

OMP_NUM_THREADS=1 "$bin" "${job[@]}" --set log.dir="$tmp/one" 2>"$tmp/one.log"
check "one process (no mpirun) exits 0" test $? -eq 0
for run in a b; do
    "${launch[@]}" -np 2 "$bin" "${job[@]}" --set log.dir="$tmp/$run" >"$tmp/$run.log" 2>&1
    check "mpirun -np 2, run $run, exits 0" test $? -eq 0
done

# Two -np 2 runs: the same parameters, masks, moments and logged losses, bit for bit.
"$compare" "$(run_dir a)/ckpt-00000040.h5" "$(run_dir b)/ckpt-00000040.h5" 0
check "two -np 2 runs: the same parameters to the bit" test $? -eq 0
h5diff -q "$(run_dir a)/ckpt-00000040.h5" "$(run_dir b)/ckpt-00000040.h5" /masks &&
    h5diff -q "$(run_dir a)/ckpt-00000040.h5" "$(run_dir b)/ckpt-00000040.h5" /optim
check "two -np 2 runs: the same masks and AdamW moments to the bit" test $? -eq 0
losses() { grep -o '"loss":[^,]*,"lr":[^,]*,"grad_norm":[^,]*' "$1/metrics.jsonl"; }
check "two -np 2 runs: the same losses and gradient norms" diff <(losses "$(run_dir a)") <(losses "$(run_dir b)")

# Against one process: the same sums in another order.
"$compare" "$(run_dir one)/ckpt-00000040.h5" "$(run_dir a)/ckpt-00000040.h5" 1e-5
check "-np 2 against one process: every parameter within 1e-5 relative" test $? -eq 0
h5diff -q "$(run_dir one)/ckpt-00000040.h5" "$(run_dir a)/ckpt-00000040.h5" /masks
check "-np 2 against one process: the same masks" test $? -eq 0
pruned=$(json_field sparsity "$(grep '"summary":true' "$(run_dir a)/metrics.jsonl")")
check "the masks prune (sparsity $pruned)" awk -v s="$pruned" 'BEGIN { exit !(s > 0.4) }'
check "rank 0 alone writes: one metrics line per event" \
    test "$(wc -l <"$(run_dir a)/metrics.jsonl")" -eq "$(wc -l <"$(run_dir one)/metrics.jsonl")"
check "rank 0 alone prints: one done line" test "$(grep -c '^done:' "$tmp/a.log")" -eq 1

# Resume with the same N: from run a's step-20 checkpoint to step 40, the same bits.
mkdir -p "$(run_dir r)"
cp "$(run_dir a)/ckpt-00000020.h5" "$(run_dir r)/"
"${launch[@]}" -np 2 "$bin" "${job[@]}" --set log.dir="$tmp/r" --resume "$(run_dir r)/ckpt-00000020.h5" \
    >"$tmp/r.log" 2>&1
check "mpirun -np 2 --resume exits 0" test $? -eq 0
"$compare" "$(run_dir a)/ckpt-00000040.h5" "$(run_dir r)/ckpt-00000040.h5" 0
check "-np 2 resumed at step 20: the same parameters to the bit" test $? -eq 0
h5diff -q "$(run_dir a)/ckpt-00000040.h5" "$(run_dir r)/ckpt-00000040.h5" /optim
check "-np 2 resumed at step 20: the same AdamW moments to the bit" test $? -eq 0

# One-shot SparseGPT with its calibration windows split over the processes and the X Xᵀ
# statistics summed: two -np 2 runs are the same bits; against one process the statistics
# agree to rounding, which moves only near-ties of the masks.
oneshot=(train --config "$src/configs/prune_cubic.yaml" --set train.steps=0 --set prune.method=sparsegpt
         --set prune.nsamples=6 --set prune.calib_seqlen=50 --set log.progress=false)
OMP_NUM_THREADS=1 "$bin" "${oneshot[@]}" --set log.dir="$tmp/os1" 2>"$tmp/os1.log"
check "one-shot, one process, exits 0" test $? -eq 0
for run in a b; do
    "${launch[@]}" -np 2 "$bin" "${oneshot[@]}" --set log.dir="$tmp/os2$run" >"$tmp/os2$run.log" 2>&1
    check "one-shot, mpirun -np 2, run $run, exits 0" test $? -eq 0
done
"$compare" "$(run_dir os2a)/ckpt-00000000.h5" "$(run_dir os2b)/ckpt-00000000.h5" 0 &&
    h5diff -q "$(run_dir os2a)/ckpt-00000000.h5" "$(run_dir os2b)/ckpt-00000000.h5" /masks
check "one-shot: two -np 2 runs, the same parameters and masks to the bit" test $? -eq 0
flipped=$(h5diff -c "$(run_dir os1)/ckpt-00000000.h5" "$(run_dir os2a)/ckpt-00000000.h5" /masks |
          awk '/differences found/ { n += $1 } END { print n + 0 }')
check "one-shot: -np 2 against one process, $flipped of 231424 mask entries differ (< 0.5%)" test "$flipped" -lt 1157

# Evaluation split over the processes (each evaluates every second batch, the per-batch sums
# added in batch order): from the same weights, the same figures as one process, to the
# digit. The one-process run's trained model, 5 validation batches (an odd count).
evaluated=(train --config "$src/configs/prune_cubic.yaml" --set train.steps=0 --set train.eval_batches=5
           --set model.init="$(run_dir one)/ckpt-00000040.h5" --set log.progress=false)
OMP_NUM_THREADS=1 "$bin" "${evaluated[@]}" --set log.dir="$tmp/ev1" 2>"$tmp/ev1.log"
check "evaluation, one process, exits 0" test $? -eq 0
"${launch[@]}" -np 2 "$bin" "${evaluated[@]}" --set log.dir="$tmp/ev2" >"$tmp/ev2.log" 2>&1
check "evaluation, mpirun -np 2, exits 0" test $? -eq 0
figures() { grep '"summary":true' "$1/metrics.jsonl" | grep -o '"val_[a-z]*":[^,]*'; }
check "evaluation split over 2 processes: the same val_loss, perplexity, accuracy and count as one process" \
    diff <(figures "$(run_dir ev1)") <(figures "$(run_dir ev2)")
accuracy=$(json_field val_accuracy "$(grep '"summary":true' "$(run_dir ev2)/metrics.jsonl")")
check "  (a trained model: accuracy $accuracy > 0)" awk -v a="$accuracy" 'BEGIN { exit !(a > 0) }'

# SIGTERM that reaches one process of the two (as a node's signal can): both stop after the
# same step, rank 0 writes that step's checkpoint, mpirun exits 143, and the run resumed with
# the same N ends with the same bits as a straight one. The tiny model, 8000 steps (about
# 1.5 s here; 1000 steps took 0.2 s, a window that a loaded machine's poll could miss),
# polled every 10 ms, so that the signal lands mid-run.
echo "" >"$tmp/e.yaml"
tiny=(train --config "$tmp/e.yaml" --set model.d_model=16 --set model.n_layer=1 --set train.batch_size=2
      --set train.seqlen=48 --set train.eval_batches=1 --set data.val_sequences=2 --set log.progress=false
      --set train.steps=8000 --set train.log_every=1 --set checkpoint.every=0 --set train.eval_every=0)
"${launch[@]}" -np 2 "$bin" "${tiny[@]}" --set log.dir="$tmp/straight" >"$tmp/straight.log" 2>&1
check "tiny model, mpirun -np 2, straight to step 8000, exits 0" test $? -eq 0
stop_one() {  # stop_one NAME SIGNAL WHOM: a -np 2 run, signalled when it has logged step 3
    "${launch[@]}" -np 2 "$bin" "${tiny[@]}" --set log.dir="$tmp/$1" >"$tmp/$1.log" 2>&1 &
    local pid=$! ranks
    for _ in $(seq 1000); do grep -q '"step":3,' "$tmp/$1"/*/metrics.jsonl 2>/dev/null && break; sleep 0.01; done
    ranks=$(ps -o pid= --ppid "$pid" | tr -d ' ')
    if [ "$3" = one ]; then kill "-$2" "$(echo "$ranks" | tail -n 1)"; else kill "-$2" $ranks; fi
    wait "$pid"
}
stop_one term TERM one
rc=$?
check "SIGTERM to one process: mpirun exits 143 (got $rc)" test "$rc" -eq 143
steps=$(sed -n 's/.*stopped by SIGTERM after step \([0-9]*\) of 8000; wrote the checkpoint.*/\1/p' "$tmp/term.log" | sort -u)
check "SIGTERM to one process: both processes stopped after the same step ($(echo $steps))" \
    test "$(grep -c 'stopped by SIGTERM after step' "$tmp/term.log")" -eq 2 -a "$(echo "$steps" | wc -l)" -eq 1
term_dir=$(dirname "$(ls "$tmp"/term/*/metrics.jsonl)")
check "SIGTERM to one process: rank 0 wrote the checkpoint of step $steps, and no temporary" \
    test "$(ls "$term_dir" | grep -c -E "^ckpt-0*$steps\.h5$")" -eq 1 -a -z "$(ls "$term_dir" | grep tmp)"
"${launch[@]}" -np 2 "$bin" "${tiny[@]}" --set log.dir="$tmp/term" --resume latest >"$tmp/term_resume.log" 2>&1
check "SIGTERM to one process: -np 2 --resume latest finishes" test $? -eq 0
straight_dir=$(dirname "$(ls "$tmp"/straight/*/metrics.jsonl)")
"$compare" "$straight_dir/ckpt-00008000.h5" "$term_dir/ckpt-00008000.h5" 0 &&
    h5diff -q "$straight_dir/ckpt-00008000.h5" "$term_dir/ckpt-00008000.h5" /optim
check "SIGTERM + resume: the same parameters and AdamW moments as straight, to the bit" test $? -eq 0
tiny_losses() { grep -o '"step":[0-9]*,"loss":[^,]*,"lr":[^,]*,"grad_norm":[^,]*' "$1/metrics.jsonl"; }
check "SIGTERM + resume: the same logged losses as straight" diff <(tiny_losses "$straight_dir") <(tiny_losses "$term_dir")
stop_one int INT both
rc=$?
check "SIGINT to both processes: mpirun exits 130 (got $rc)" test "$rc" -eq 130
check "SIGINT to both processes: both stopped after the same step" \
    test "$(sed -n 's/.*stopped by SIGINT after step \([0-9]*\) of.*/\1/p' "$tmp/int.log" | sort -u | wc -l)" -eq 1

# A batch that does not split over the processes is refused, naming the key.
"${launch[@]}" -np 3 "$bin" "${job[@]}" --set log.dir="$tmp/three" >"$tmp/three.log" 2>&1
check "-np 3 with a batch of 32 fails" test $? -ne 0
check "  naming train.batch_size" grep -q "train.batch_size: 32 sequences do not split over 3 processes" "$tmp/three.log"
check_summary
