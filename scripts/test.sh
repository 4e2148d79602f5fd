#!/usr/bin/env bash
# Builds mambaprune twice — Release, and Debug with AddressSanitizer+UndefinedBehaviorSanitizer —
# and runs the whole CTest suite on both.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")
if [ "${MP_SKIP_SANITIZE:-0}" != 1 ]; then
  cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DMP_SANITIZE=ON >/dev/null
  cmake --build build-sanitize -j"$jobs"
  # OpenBLAS and oneDNN keep thread pools alive at exit; their memory is not ours to free.
  (cd build-sanitize && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$jobs")
fi
