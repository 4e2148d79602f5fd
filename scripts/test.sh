#!/usr/bin/env bash
# Builds mambaprune twice — Release, and Debug with AddressSanitizer+UndefinedBehaviorSanitizer —
# and runs the whole CTest suite on both; then the fuzz targets' smoke runs (clang, libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
# With Open MPI's mpirun present (scripts/setup.sh installs it), the Release build is the MPI
# one, which adds the data-parallel test (tests/mpi/test_mpi_train.sh).
mpi=OFF
command -v mpirun >/dev/null && mpi=ON
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMP_MPI=$mpi >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")
if [ "${MP_SKIP_SANITIZE:-0}" != 1 ]; then
  cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DMP_SANITIZE=ON >/dev/null
  cmake --build build-sanitize -j"$jobs"
  # OpenBLAS and oneDNN keep thread pools alive at exit; their memory is not ours to free.
  (cd build-sanitize && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$jobs")
fi
# The fuzz targets (tests/fuzz), built alone with clang and libFuzzer: a short smoke run of
# each from its seed corpus (MP_FUZZ_SMOKE_SECONDS, default 12 s each).
if [ "${MP_SKIP_FUZZ:-0}" != 1 ]; then
  CC=clang-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DMP_FUZZ=ON >/dev/null
  cmake --build build-fuzz -j"$jobs"
  (cd build-fuzz && ctest --output-on-failure)
fi
