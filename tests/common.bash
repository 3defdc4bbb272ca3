# shellcheck shell=bash
# Sourced by the shell tests (tests/*.sh) right after `build=$1 src=$2`:
# the program, Debian's Python (with torch and h5py), a temporary directory
# removed on exit, MPI allowed as root, and ok/fail counters whose closing
# line ("NAME: N passed, N failed") CI reads. The shell options are the
# sourcing test's own (set -euo pipefail).
# shellcheck disable=SC2154  # build: set by the sourcing test
# shellcheck disable=SC2034  # bin: used by the sourcing test
bin=$build/gentrain
# shellcheck disable=SC2034  # used by the sourcing test
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
passed=0 failed=0
ok()   { echo "ok: $*"; passed=$((passed+1)); }
fail() { echo "FAIL: $*"; failed=$((failed+1)); }
finish() { echo "$1: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; }
