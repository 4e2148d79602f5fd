#!/usr/bin/env bash
# Installs what mambaprune needs on a fresh Debian 12 machine (as root, or with sudo);
# Open MPI only for the data-parallel build (cmake -DMP_MPI=ON).
set -euo pipefail
packages=(build-essential cmake pkg-config libdnnl-dev libopenblas-openmp-dev libhdf5-dev hdf5-tools libyaml-dev libcjson-dev libpcre2-dev libcsv-dev ocl-icd-opencl-dev opencl-c-headers clang-14 libclang-rt-14-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
