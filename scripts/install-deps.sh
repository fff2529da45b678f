#!/usr/bin/env bash
# Installs everything causeway builds and tests with, from Debian packages. Skips apt when
# every package is already present, so repeated runs are fast.
set -euo pipefail
packages=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools slurm-wlm
  qemu-user  # runs the binary as older CPUs (tests/mpi/portable_binary_test.sh)
  libopenblas-dev libopenblas-openmp-dev libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libgtest-dev libpcre2-dev libicu-dev
  libdnnl-dev  # oneDNN: bf16 compute on bf16 dot products (optional; CMake builds without it)
  python3-h5py python3-numpy python3-matplotlib python3-pytest chromium
  python3-xarray  # analysis.to_xarray (optional for users; its tests run in CI)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
