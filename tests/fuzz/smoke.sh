#!/bin/bash
# A short run of one fuzz target from its committed seed corpus: fails if the fuzzer finds a
# crash, a leak, undefined behaviour, a timeout or an out-of-memory input.
# usage: smoke.sh FUZZER CORPUS_DIR [SECONDS (default 12)]
set -euo pipefail
fuzzer=$1 corpus=$2 seconds=${3:-12}
export LSAN_OPTIONS="suppressions=$(dirname "$0")/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# New inputs go to $work/corpus; the committed corpus is only read. Crash inputs go to $work.
mkdir "$work/corpus"
if ! "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$work/" "$work/corpus" "$corpus" > "$work/log" 2>&1; then
    tail -n 60 "$work/log"
    for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
        [ -e "$f" ] && { echo "input that failed ($f):"; od -c "$f" | head -20; }
    done
    echo "FAIL: $(basename "$fuzzer") found a failing input"
    exit 1
fi
grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work/log" || true
echo "ok: $(basename "$fuzzer"), $seconds s, no failure"
