# Sourced by tests/netns_*.sh after tests/common.bash: checks the
# prerequisites (failing with an install hint, never skipping), brings up a
# tools/netns-cluster of its own (a prefix derived from the test's PID) and
# always removes it on exit, with every process still running in it, the
# launcher the test started in the background ($launcher, if set: SIGKILL) and
# background tools that clean up after themselves ($helpers: SIGTERM first).
# Usage: source "$src/tests/common.bash"; source "$src/tests/netns_common.bash"; cluster_up N [--rate R]
# shellcheck shell=bash disable=SC2154  # bin, src, tmp, passed, failed: from tests/common.bash
die() { echo "FAIL: $*"; echo "${test_name:-netns}: $passed passed, $((failed + 1)) failed"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "the netns tests create network namespaces and must run as root"
PATH=$PATH:/usr/sbin:/sbin
for t in ip tc; do command -v "$t" >/dev/null || die "$t missing: apt-get install -y iproute2"; done
command -v unshare >/dev/null || die "unshare missing: apt-get install -y util-linux"
command -v hostname >/dev/null || die "hostname missing: apt-get install -y hostname"
command -v mpirun >/dev/null || die "mpirun missing: apt-get install -y openmpi-bin"
[ -x "$bin" ] || die "$bin not built"
ip netns list >/dev/null 2>&1 || die "ip netns does not work here (needs CAP_SYS_ADMIN and CAP_NET_ADMIN)"

nc=$src/tools/netns-cluster
prefix=$(printf 'gtt%05d' $(( $$ % 100000 )))
export OPENBLAS_NUM_THREADS=1
launcher=""
helpers=()
t_begin=$(date +%s)
netns_cleanup() {
    local rc=$?
    if [ -n "$launcher" ] && kill -0 "$launcher" 2>/dev/null; then
        kill -KILL "$launcher" 2>/dev/null || true
        wait "$launcher" 2>/dev/null || true
    fi
    local p
    for p in "${helpers[@]+"${helpers[@]}"}"; do
        kill -0 "$p" 2>/dev/null || continue
        kill -TERM "$p" 2>/dev/null || true
        for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    "$nc" down --kill --prefix "$prefix" >/dev/null 2>&1 || "$nc" down --kill --prefix "$prefix" || true
    rm -rf "$tmp"
    echo "($(( $(date +%s) - t_begin )) s)"
    exit "$rc"
}
trap netns_cleanup EXIT
trap 'exit 130' INT TERM

cluster_up() { "$nc" up "$@" --prefix "$prefix" >/dev/null || die "netns-cluster up $* failed"; }
ncl() { "$nc" "$1" --prefix "$prefix" "${@:2}"; }   # ncl COMMAND ARGS...: this test's cluster
host() { echo "$prefix$1"; }                        # host I: the name of host I

# seconds since $1 (date +%s.%N), to 0.1 s
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
# lt A B: A < B as numbers
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
