#!/usr/bin/env bash
# Times the Release CTest suite of two commits side by side: builds each in a clean clone,
# then runs the suites one test at a time (ctest -j1), taking turns (A, B, A, B, ...), and
# prints each test's best time of the rounds for both, with the sums over the tests they
# share. Run it on an idle machine; the figures are wall-clock.
#
#   bash bench/bench_suite.sh OLD_COMMIT NEW_COMMIT [ROUNDS]      (default 2 rounds)
#
# "Changed" marks a test whose source (tests/<name>.*) differs between the two commits:
# its time may differ because it checks more, not because the code got slower.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
old="${1:?usage: bench_suite.sh OLD_COMMIT NEW_COMMIT [ROUNDS]}"
new="${2:?usage: bench_suite.sh OLD_COMMIT NEW_COMMIT [ROUNDS]}"
rounds="${3:-2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for side in old new; do
  commit=${!side}
  git clone -q "$src" "$work/$side"
  git -C "$work/$side" checkout -q "$commit"
  cmake -S "$work/$side" -B "$work/$side/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$work/$side/build" -j"$(nproc)" >/dev/null
done
for r in $(seq "$rounds"); do
  for side in old new; do
    (cd "$work/$side/build" && ctest -j1 >"$work/$side.$r.log" 2>&1) || {
      echo "bench_suite: the $side suite failed in round $r:" >&2; tail -20 "$work/$side.$r.log" >&2; exit 1; }
  done
done
changed="$(git -C "$src" diff --name-only "$old" "$new" -- tests/ | sed -n 's|^tests/\([^/.]*\)\..*|\1|p' | sort -u | tr '\n' ' ')"
python3 - "$work" "$rounds" "$old" "$new" "$changed" <<'EOF'
import re, sys
work, rounds, old, new, changed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], set(sys.argv[5].split())
def times(side):
    best = {}
    for r in range(1, rounds + 1):
        for line in open(f"{work}/{side}.{r}.log"):
            m = re.search(r"Test\s+#\d+: (\S+) \.+\s+Passed\s+([\d.]+) sec", line)
            if m:
                best[m.group(1)] = min(best.get(m.group(1), 1e9), float(m.group(2)))
    return best
a, b = times("old"), times("new")
shared = sorted(set(a) & set(b), key=lambda t: -a[t])
print(f"| test | {old} s | {new} s | ratio | source |")
print("|---|---:|---:|---:|---|")
for t in shared:
    ratio = f"{b[t] / a[t]:.2f}" if a[t] >= 0.1 else ""
    print(f"| {t} | {a[t]:.2f} | {b[t]:.2f} | {ratio} | {'changed' if t in changed else ''} |")
for label, pick in (("unchanged sources", lambda t: t not in changed), ("changed sources", lambda t: t in changed), ("all shared", lambda t: True)):
    ts = [t for t in shared if pick(t)]
    sa, sb = sum(a[t] for t in ts), sum(b[t] for t in ts)
    if ts:
        print(f"| **sum, {label} ({len(ts)})** | {sa:.2f} | {sb:.2f} | {sb / sa:.3f} | |")
only_new = sorted(set(b) - set(a))
if only_new:
    print(f"\nonly in {new}: " + ", ".join(f"{t} {b[t]:.2f} s" for t in only_new))
print(f"\nbest of {rounds} interleaved rounds, ctest -j1, one test at a time")
EOF
