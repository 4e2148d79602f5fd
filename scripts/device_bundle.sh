#!/usr/bin/env bash
# Packs a portable build of mambaprune (x86-64-v3, no -march=native) with every shared
# library it links that is not glibc's, for a machine that has none of Debian's packages:
# the 16-core device machine that measures thread scaling and runs the PyTorch/tokenizers
# fixture scripts.
#
#   bash scripts/device_bundle.sh OUT_DIR [TARGET ...]
#
# Writes OUT_DIR/bundle.tar.xz (bin/ with the targets, default mambaprune and the
# benchmarks; lib/ with the libraries) and OUT_DIR/run.sh, which unpacks it under /tmp/mp
# and runs a command with the library path set. On the device, with OUT_DIR carried:
#
#   bash OUT_DIR/run.sh bench_infer --threads 16
#
# The build folder is build-portable/ in the source tree. MP_DEVICE_MARCH (default
# x86-64-v3) picks the target, e.g. x86-64-v4 for the AVX-512 kernels.
#
#   bash scripts/device_bundle.sh --mpi OUT_DIR [TARGET ...]
#
# builds with -DMP_MPI=ON (in build-portable-mpi/) and packs Debian's Open MPI beside the
# targets: mpirun, orted, their libraries, the MCA plugins (lib/openmpi/), PMIx's plugins
# (lib/pmix/) and the help texts (share/). run.sh then points Open MPI and PMIx at them
# (OPAL_PREFIX and the OPAL_*DIR / PMIX_*DIR variables), so that on a machine without Open
# MPI, also as root, one node:
#
#   bash OUT_DIR/run.sh mpirun --allow-run-as-root -np 4 --mca pml ob1 --mca btl self,vader \
#       --bind-to core --map-by slot:PE=4 -x OMP_NUM_THREADS=4 bench_train --batch 16
#
# (the program is found on the bundle's bin/, which run.sh puts first on PATH). Try it here
# first: the bundle runs from /tmp/mp whatever machine it is on.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
mpi=0
if [ "${1:-}" = "--mpi" ]; then
  mpi=1
  shift
fi
out="${1:?usage: device_bundle.sh [--mpi] OUT_DIR [TARGET ...]}"
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(mambaprune)
  for b in "$src"/bench/*.c; do targets+=("$(basename "$b" .c)"); done
fi
build="$src/build-portable"
flags=()
if [ $mpi -eq 1 ]; then
  build="$src/build-portable-mpi"
  flags=(-DMP_MPI=ON)
fi
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DMP_NATIVE=OFF \
  -DCMAKE_C_FLAGS=-march="${MP_DEVICE_MARCH:-x86-64-v3}" "${flags[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >/dev/null

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$out"
# The shared libraries a program or plugin links, into lib/: glibc's own libraries stay
# behind, the device has a newer glibc than Debian 12's.
copy_libraries() {
  ldd "$1" | awk '/=> \//{print $3}' | { grep -v -E '/(libc|libm|libpthread|libdl|librt|libresolv)\.so' || true; } |
    while read -r lib; do cp -L -n "$lib" "$stage/lib/"; done
}
for t in "${targets[@]}"; do
  cp "$build/$t" "$stage/bin/"
  copy_libraries "$build/$t"
done
if [ $mpi -eq 1 ]; then
  ompi_lib=/usr/lib/x86_64-linux-gnu/openmpi/lib
  pmix=/usr/lib/x86_64-linux-gnu/pmix2
  [ -d "$ompi_lib/openmpi3" ] && [ -d "$pmix/lib/pmix" ] ||
    { echo "device_bundle: --mpi needs Debian's Open MPI 4 (openmpi-bin, libopenmpi-dev)" >&2; exit 1; }
  cp -L "$(command -v orterun)" "$stage/bin/mpirun"
  cp -L "$(command -v orted)" "$stage/bin/orted"
  mkdir -p "$stage/lib/openmpi" "$stage/lib/pmix" "$stage/share/openmpi" "$stage/share/pmix" "$stage/etc"
  cp -L "$ompi_lib"/openmpi3/*.so "$stage/lib/openmpi/"
  cp -L "$pmix"/lib/pmix/*.so "$stage/lib/pmix/"
  cp -rL /usr/share/openmpi/. "$stage/share/openmpi/"
  cp -rL "$pmix"/share/pmix/. "$stage/share/pmix/"
  for f in "$stage/bin/mpirun" "$stage/bin/orted" "$stage"/lib/openmpi/*.so "$stage"/lib/pmix/*.so; do
    copy_libraries "$f"
  done
fi
tar -C "$stage" -cJf "$out/bundle.tar.xz" .
cat >"$out/run.sh" <<'EOF'
#!/usr/bin/env bash
# Unpacks the bundle beside this script once (to /tmp/mp/<its folder name>), then runs
# "$@" from its bin/ with its lib/ on the library path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="/tmp/mp/$(basename "$here")"
if [ ! -d "$root/bin" ]; then
  mkdir -p "$root" && tar -C "$root" -xJf "$here/bundle.tar.xz"
fi
cmd="$1"
shift
export LD_LIBRARY_PATH="$root/lib" PATH="$root/bin:$PATH"
if [ -d "$root/lib/openmpi" ]; then
  # Open MPI and PMIx moved from Debian's /usr: where their plugins and help texts are now.
  export OPAL_PREFIX="$root" OPAL_EXEC_PREFIX="$root" OPAL_BINDIR="$root/bin" OPAL_LIBDIR="$root/lib" \
    OPAL_PKGLIBDIR="$root/lib/openmpi" OPAL_DATAROOTDIR="$root/share" OPAL_DATADIR="$root/share" \
    OPAL_PKGDATADIR="$root/share/openmpi" OPAL_SYSCONFDIR="$root/etc" \
    PMIX_PREFIX="$root" PMIX_EXEC_PREFIX="$root" PMIX_BINDIR="$root/bin" PMIX_LIBDIR="$root/lib" \
    PMIX_PKGLIBDIR="$root/lib/pmix" PMIX_DATAROOTDIR="$root/share" PMIX_DATADIR="$root/share" \
    PMIX_PKGDATADIR="$root/share/pmix" PMIX_SYSCONFDIR="$root/etc"
  # hwloc's plugins (PCI, OpenCL, ...) are not packed: the same topology here as there.
  export HWLOC_PLUGINS_PATH="$root/lib/hwloc"
fi
exec "$root/bin/$cmd" "$@"
EOF
chmod +x "$out/run.sh"
echo "device_bundle: $out/bundle.tar.xz ($(du -h "$out/bundle.tar.xz" | cut -f1)), targets: ${targets[*]}"
