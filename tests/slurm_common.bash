# Sourced by tests/slurm_*.sh: checks the prerequisites (failing loudly with
# an install hint, never skipping), starts tools/slurm-local in a temporary
# directory and always stops it on exit, and offers helpers to wait for jobs.
# Usage: set -euo pipefail; build=$1 src=$2; source "$src/tests/slurm_common.bash"
# (the shell options are the sourcing test's own).
# shellcheck shell=bash
# shellcheck disable=SC2154  # build, src: set by the sourcing test
build=$(cd "$build" && pwd) src=$(cd "$src" && pwd)
bin=$build/gentrain
# shellcheck disable=SC2034  # used by the sourcing test
py=/usr/bin/python3
die() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "the Slurm tests run slurmd and must run as root"
PATH=$PATH:/usr/sbin:/sbin
for t in munged slurmctld slurmd sbatch squeue scontrol srun; do
    command -v "$t" >/dev/null ||
        die "$t missing: apt-get install -y slurmctld slurmd slurm-client munge libpmix-dev (tools/setup.sh --no-build does it)"
done
[ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so ] || ls /usr/lib/*/slurm-wlm/mpi_pmix*.so >/dev/null 2>&1 ||
    die "Slurm's pmix plugin missing: apt-get install -y libpmix-dev"
command -v mpirun >/dev/null || die "mpirun missing: apt-get install -y openmpi-bin"
[ -x "$bin" ] || die "$bin not built"
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
    die "Fashion-MNIST missing: apt-get install -y dataset-fashion-mnist"

tmp=$(mktemp -d /tmp/gentrain-slurm.XXXXXX)
chmod 755 "$tmp"
cluster=$tmp/cluster
work=$tmp/work
mkdir -p "$work"
t_begin=$(date +%s)
test_failed=0
cleanup() {
    local rc=$?
    "$src/tools/slurm-local" stop "$cluster" 2>/dev/null || true
    if [ "$rc" -ne 0 ] || [ "$test_failed" -ne 0 ]; then
        echo "--- job logs"; for f in "$work"/*.out "$work"/*/*.out; do [ -f "$f" ] && { echo "== $f"; tail -n 40 "$f"; }; done
        echo "--- slurmctld.log (tail)"; tail -n 30 "$cluster/log/slurmctld.log" 2>/dev/null || true
        echo "--- slurmd.log (errors, tail)"; grep -a 'error' "$cluster/log/slurmd.log" 2>/dev/null | tail -n 30 || true
    fi
    rm -rf "$tmp"
    echo "($(( $(date +%s) - t_begin )) s)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eval "$("$src/tools/slurm-local" start "$cluster")"
export SLURM_CONF
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export GENTRAIN=$bin
cd "$work" || die "cannot cd to $work"

passed=0 failed=0
ok()   { echo "ok: $*"; passed=$((passed+1)); }
fail() { echo "FAIL: $*"; failed=$((failed+1)); test_failed=1; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; }

job_state() { squeue -h -j "$1" -t all -o %T 2>/dev/null | head -n 1; }
job_exit() { scontrol show job "$1" 2>/dev/null | sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p' | head -n 1; }
job_restarts() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p' | head -n 1; }
# wait_job ID SECONDS: poll until the job has ended for good; prints its final state
wait_job() {
    local id=$1 deadline=$(( $(date +%s) + $2 )) s
    while :; do
        s=$(job_state "$id")
        case "$s" in
            COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) echo "$s"; return 0 ;;
        esac
        if [ "$(date +%s)" -ge "$deadline" ]; then echo "STUCK:${s:-unknown}"; return 1; fi
        sleep 1
    done
}
