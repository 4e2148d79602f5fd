#!/usr/bin/env bash
# What the machine gives when nothing is shared: the ceiling of thread scaling (issue 16).
# One process of one thread alone, then N processes of one thread each at once, each pinned
# to its own core and doing the same work with nothing shared between them; their summed
# rate over the lone process's rate is the most that any threading of that work can reach
# on N cores of this machine (clock under load, memory bandwidth, shared caches).
# For each of:
#   - bench_matmul: every product of a training step at mamba-130m's shapes (GFLOP/s of
#     "all products once", oneDNN);
#   - bench_train: the whole training step at mamba-130m's shape, batch 4 x 256 (tokens/s),
#     beside one process of N threads (the figure the issue's 10x is about).
#
#   bash bench/scaling_ceiling.sh [--cores 16] [--rounds 2] [--bench-dir DIR] [--run CMD]
#
# --bench-dir: where bench_matmul and bench_train are (default build/); --run: a command
# prefix that runs them (on the device machine: "bash .device/new/run.sh"). N processes
# of bench_train at batch 4 x 256 hold about 6 GB each: 16 need about 100 GB.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cores=16 rounds=2 dir="$here/build" run=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cores) cores="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --bench-dir) dir="$2"; shift 2 ;;
    --run) run="$2"; shift 2 ;;
    *) echo "scaling_ceiling.sh: unknown option '$1' (expected --cores, --rounds, --bench-dir, --run)" >&2
       exit 2 ;;
  esac
done
bin() { if [ -n "$run" ]; then echo "$run $1"; else echo "$dir/$1"; fi; }
matmul="$(bin bench_matmul) --matmul onednn --reps 3"
train="$(bin bench_train) --d-model 768 --n-layer 24 --vocab 50280 --batch 4 --seqlen 256 --matmul onednn --warmup 1 --steps 3 --no-profile"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "scaling_ceiling.sh: $(date -u +%FT%TZ), $(nproc) cores, $cores used, load $(cut -d' ' -f1-3 /proc/loadavg)"

# rate FILE: the figure of one run's output (GFLOP/s of all products, or tokens/s).
rate() {
  if grep -q "all products once" "$1"; then
    sed -n 's/.*all products once: .*ms, \([0-9.]*\) GFLOP\/s.*/\1/p' "$1"
  else
    sed -n 's/.*, \([0-9.]*\) tokens\/s.*/\1/p' "$1"
  fi
}

# alone NAME CMD: one process of one thread on core 0.
alone() {
  OMP_NUM_THREADS=1 taskset -c 0 $2 > "$tmp/$1.alone" 2>&1
  rate "$tmp/$1.alone"
}
# together NAME CMD: $cores processes of one thread, process i on core i; prints the sum
# of their rates and the slowest one's.
together() {
  local pids=()
  for ((i = 0; i < cores; i++)); do
    OMP_NUM_THREADS=1 taskset -c "$i" $2 > "$tmp/$1.$i" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  for ((i = 0; i < cores; i++)); do rate "$tmp/$1.$i"; done | awk '{s += $1; if (min == "" || $1 < min) min = $1} END {printf "%.1f %.1f\n", s, min}'
}
threads() {
  OMP_NUM_THREADS="$cores" OMP_PROC_BIND=close OMP_PLACES=cores $2 > "$tmp/$1.threads" 2>&1
  rate "$tmp/$1.threads"
}

echo
echo "| work | round | 1 process, 1 thread | $cores processes x 1 thread: sum | slowest | sum / alone | 1 process x $cores threads | / alone |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for ((r = 1; r <= rounds; r++)); do
  for work in matmul train; do
    cmd="$matmul"
    unit="GFLOP/s"
    if [ "$work" = train ]; then cmd="$train"; unit="tokens/s"; fi
    a=$(alone "$work" "$cmd")
    read -r sum slow < <(together "$work" "$cmd")
    t=$(threads "$work" "$cmd")
    awk -v w="$work ($unit)" -v r="$r" -v a="$a" -v s="$sum" -v m="$slow" -v t="$t" -v n="$cores" \
      'BEGIN {printf "| %s | %d | %.1f | %.1f | %.1f | %.2fx | %.1f | %.2fx |\n", w, r, a, s, m, s / a, t, t / a}'
  done
done
