#!/usr/bin/env bash
# Installs every Debian package gentrain, its tests and its benchmarks need,
# then configures and builds into build/ (and build-asan/ with --asan).
# Idempotent and non-interactive; run as root (or with sudo available).
#   tools/setup.sh            packages + release build
#   tools/setup.sh --asan     also the AddressSanitizer/UBSan build used by the tests
#   tools/setup.sh --no-build packages only
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin openssh-client  # MPI (mpirun wants an rsh agent even on one node)
  libopenblas-dev liblapacke-dev      # sgemm; LAPACK's C interface (FID's eigensolver)
  libhdf5-dev hdf5-tools              # checkpoints, samples, metrics
  zlib1g-dev libpng-dev libinih-dev   # gzip IDX files, PNG grids, INI configs
  dataset-fashion-mnist               # the real data
  python3 python3-torch python3-h5py python3-numpy  # parity reference (tests, benchmarks)
  slurmctld slurmd slurm-client munge libpmix-dev   # tools/slurm-local and tests/slurm_*.sh
  shellcheck                          # tests/lint_shell.sh
  python3-matplotlib                  # tools/scaling-collect plot
  python3-scipy                       # tests/eval_parity.py (metric parity)
  time util-linux                     # tools/bench: /usr/bin/time (peak memory), taskset; unshare
  iproute2 hostname                   # tools/netns-cluster: ip, tc (simulated hosts); hostnames
  clang libclang-rt-14-dev libomp-dev # tools/fuzz, tests/fuzz.sh: libFuzzer (build-fuzz/), OpenMP for clang
  valgrind                            # tests/valgrind.sh
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

build() {  # build DIR [cmake options]
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}
case "${1:-}" in
  --no-build) ;;
  --asan) build build; build build-asan -DGENTRAIN_SANITIZE=ON ;;
  *) build build ;;
esac
