#!/usr/bin/env bash
# Data-parallel scaling on one machine: bench_train's step at mamba-130m's shape as
# -np 1 x 16 threads, 2 x 8 and 4 x 4 (processes x threads over 16 cores), ROUNDS rounds
# alternating the configurations so that machine noise hits them alike, with each
# process's peak RSS. Runs a bundle of scripts/device_bundle.sh --mpi (BUNDLE_DIR, with
# run.sh), as root too:
#
#   bash scripts/device_bundle.sh --mpi .device/mpi bench_train
#   bash scripts/bench_mpi_scaling.sh .device/mpi [ROUNDS] [BATCH] [CORES] | tee scaling.log
#
# Each process is bound to its own cores (--bind-to core --map-by slot:PE=threads); where
# hwloc sees fewer cores than that, to hardware threads, and failing that not bound (the
# log says which). Shared memory only (--mca btl self,vader): no network is needed.
set -uo pipefail
bundle="${1:?usage: bench_mpi_scaling.sh BUNDLE_DIR [ROUNDS] [BATCH] [CORES]}"
rounds="${2:-2}"
batch="${3:-8}"
cores="${4:-16}"
# SHAPE (words) replaces the 130m shape, for a try on a small machine first.
read -r -a shape <<<"${SHAPE:---d-model 768 --n-layer 24 --vocab 50280 --seqlen 256}"
shape+=(--batch "$batch" --matmul onednn --warmup 1 --steps 3 --no-profile)
mpirun=(bash "$bundle/run.sh" mpirun --allow-run-as-root --mca pml ob1 --mca btl self,vader
        --mca btl_vader_backing_directory /tmp)
echo "bench_mpi_scaling: $(nproc) CPUs, batch $batch x 256, $rounds rounds"
for round in $(seq "$rounds"); do
  for np in 1 2 4; do
    threads=$((cores / np))
    echo "== round $round: -np $np x $threads threads"
    for binding in "--bind-to core --map-by slot:PE=$threads" \
        "--use-hwthread-cpus --bind-to hwthread --map-by slot:PE=$threads" "--bind-to none --oversubscribe"; do
      # shellcheck disable=SC2086 # the binding is several words
      if "${mpirun[@]}" -np "$np" $binding -x OMP_NUM_THREADS="$threads" \
          bench_train "${shape[@]}" 2>&1; then
        echo "   (bound: $binding)"
        break
      fi
      echo "   ($binding failed)"
    done
  done
done
