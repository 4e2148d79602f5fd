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
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: device_bundle.sh OUT_DIR [TARGET ...]}"
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(mambaprune)
  for b in "$src"/bench/*.c; do targets+=("$(basename "$b" .c)"); done
fi
cmake -S "$src" -B "$src/build-portable" -DCMAKE_BUILD_TYPE=Release -DMP_NATIVE=OFF \
  -DCMAKE_C_FLAGS=-march="${MP_DEVICE_MARCH:-x86-64-v3}" >/dev/null
cmake --build "$src/build-portable" -j"$(nproc)" --target "${targets[@]}" >/dev/null

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$out"
for t in "${targets[@]}"; do
  cp "$src/build-portable/$t" "$stage/bin/"
  # glibc's own libraries stay behind: the device has a newer glibc than Debian 12's.
  ldd "$src/build-portable/$t" | awk '/=> \//{print $3}' |
    grep -v -E '/(libc|libm|libpthread|libdl|librt|libresolv)\.so' |
    while read -r lib; do cp -L -n "$lib" "$stage/lib/"; done
done
tar -C "$stage" -cJf "$out/bundle.tar.xz" bin lib
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
LD_LIBRARY_PATH="$root/lib" exec "$root/bin/$cmd" "$@"
EOF
chmod +x "$out/run.sh"
echo "device_bundle: $out/bundle.tar.xz ($(du -h "$out/bundle.tar.xz" | cut -f1)), targets: ${targets[*]}"
