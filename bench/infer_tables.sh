#!/usr/bin/env bash
# The table of issue 10's item 6 (README, "Running a pruned model") for one shape and one
# thread count, in one run of bench_infer: dense against 50/70/90% unstructured, 2:4,
# d_state 8, 3/4 of the blocks, and 70%/90% with the opt-in int8 head; decode tok/s at
# batch 1 and 8, prompt tok/s at 1 x 512, file size and RSS, each as a ratio to dense
# measured side by side (medians, the models taking turns in every repeat), and the dense
# decode's bandwidth against a memcpy and a read-only pass measured in the same run.
#
#   bash bench/infer_tables.sh [--shape 130m|370m|small] [--threads N] [--repeats 3]
#                              [--decode-tokens 16] [--bench PATH] [--quick]
#
# --bench: the bench_infer to run (default build/bench_infer beside this script's tree;
# on the device machine, e.g. ".device/infer/run.sh bench_infer"). --quick: the small
# shape, one repeat, 4 decode steps and a prompt of 64 (a check that it runs, not a figure).
# 130m at 2 threads with the defaults takes about 5 minutes on the 2-core machine, idle.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
shape=130m threads=2 repeats=3 decode=16 prompt=512 bench="$here/build/bench_infer"
while [ $# -gt 0 ]; do
  case "$1" in
    --shape) shape="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --decode-tokens) decode="$2"; shift 2 ;;
    --bench) bench="$2"; shift 2 ;;
    --quick) shape=small repeats=1 decode=4 prompt=64; shift ;;
    *) echo "infer_tables.sh: unknown option '$1' (expected --shape, --threads, --repeats, --decode-tokens, --bench, --quick)" >&2
       exit 2 ;;
  esac
done
models=dense,50,70,90,2:4,dstate8,blocks,70+int8,90+int8
echo "infer_tables.sh: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
# Threads pinned one per core, and idle ones sleep instead of spinning between kernels.
export OMP_PROC_BIND="${OMP_PROC_BIND:-close}" OMP_PLACES="${OMP_PLACES:-cores}"
start=$(date +%s)
# shellcheck disable=SC2086  # --bench may be a command with arguments
$bench --shape "$shape" --threads "$threads" --repeats "$repeats" --decode-tokens "$decode" --prompt-len "$prompt" \
  --models "$models"
echo
echo "infer_tables.sh: $shape, $threads threads: $(($(date +%s) - start)) s"
