#!/usr/bin/env bash
# Two or more builds of bench_train side by side, taking turns, so that a change is measured
# against the code before it on the same machine in the same minutes (a shared machine's
# speed moves by more than most changes): for each round, each thread count, each build.
# Builds are device bundles (scripts/device_bundle.sh OUT_DIR bench_train), named by their
# folder; prints each run's tokens/s line and the profile's matmul, scan and optimizer rows.
#
#   bash bench/ab_train.sh [--threads "16 1"] [--rounds 3] .device/A .device/B
#
# BENCH_ARGS replaces the default workload, mamba-130m's shape at batch 4 x 256.
set -euo pipefail
threads="16"
rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --) shift; break ;;
    -*) echo "ab_train.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: ab_train.sh [--threads \"16 1\"] [--rounds N] BUNDLE_DIR ..." >&2; exit 2; }
for b in "$@"; do
  [ -f "$b/run.sh" ] || { echo "ab_train.sh: $b has no run.sh (make it with scripts/device_bundle.sh)" >&2; exit 2; }
done
args=${BENCH_ARGS:-"--d-model 768 --n-layer 24 --vocab 50280 --batch 4 --seqlen 256 --matmul onednn --warmup 1 --steps 3"}
for r in $(seq "$rounds"); do
  for t in $threads; do
    for b in "$@"; do
      # shellcheck disable=SC2086
      OMP_NUM_THREADS=$t bash "$b/run.sh" bench_train $args 2>&1 |
        grep -E "tokens/s|^  (matmul|selective_scan|zero_grad|clip_grad_norm|adamw) " |
        sed "s|^|$(basename "$b") t$t r$r |"
    done
  done
done
