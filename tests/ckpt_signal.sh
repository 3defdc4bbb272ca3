#!/usr/bin/env bash
# Stop on signal (issue 4): SIGTERM or SIGUSR1 on any rank -> all ranks stop at
# the next step boundary, rank 0 writes a checkpoint, exit code 75
# (GT_EXIT_REQUEUE); the same command then resumes, and the final state is
# bitwise that of an uninterrupted run.
#  1. 1 rank, SIGTERM to the process;  2. 2 ranks, SIGUSR1 to mpirun (which
#  forwards it to every rank);  3. 2 ranks, SIGTERM to rank 1 only.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export OPENBLAS_NUM_THREADS=1
STEPS=250
C=("$src/configs/mlpvae.ini" train.epochs=0 train.steps="$STEPS" train.batch_size=16 data.limit=1024 log.every=1
   eval.n=16 checkpoint.every=0 samples.every=0)
same_state() { for g in /params /optim /data /rng; do h5diff "$1" "$2" "$g" > /dev/null || return 1; done; }
final() { printf '%s/checkpoints/step-%08d.h5' "$1" "$STEPS"; }
wait_started() { for _ in $(seq 300); do [ -s "$1/metrics.jsonl" ] && return 0; sleep 0.05; done; return 1; }

"$bin" train "${C[@]}" checkpoint.every="$STEPS" run.dir="$tmp/straight" > /dev/null 2>&1 || fail "straight run"
[ -f "$(final "$tmp/straight")" ] || fail "straight run wrote no final checkpoint"
mpirun -np 2 "$bin" train "${C[@]}" checkpoint.every="$STEPS" run.dir="$tmp/straight_np2" > /dev/null 2>&1 || fail "straight 2-rank run"

check() {  # name dir rc log pattern straight_dir [mpirun]
  local name=$1 dir=$2 rc=$3 log=$4 pattern=$5 ref=$6; shift 6
  local n
  # shellcheck disable=SC2012  # counts gentrain's checkpoints, named step-NNNNNNNN.h5
  n=$(ls "$dir/checkpoints" 2>/dev/null | wc -l) || true
  if [ "$rc" = 75 ] && grep -qE "$pattern" "$log" && [ "$n" = 1 ] && ! [ -f "$(final "$dir")" ]; then
    ok "$name: stopped early with exit 75 and one checkpoint ($(ls "$dir/checkpoints"))"
  else fail "$name: rc $rc, checkpoints '$(ls "$dir/checkpoints" 2>/dev/null)': $(grep -v "^  " "$log" | tail -5)"; return; fi
  "$@" "$bin" train "${C[@]}" checkpoint.every="$STEPS" run.dir="$dir" > "$log.2" 2>&1 || true   # checked below
  if grep -q "resuming from" "$log.2" && same_state "$(final "$ref")" "$(final "$dir")"; then
    ok "$name: the same command resumes; final state bitwise equal to an uninterrupted run"
  else fail "$name: resume: $(grep -v "^  " "$log.2" | head -3)"; fi
}

# 1. one rank, SIGTERM
"$bin" train "${C[@]}" run.dir="$tmp/a" > "$tmp/a.log" 2>&1 &
pid=$!; wait_started "$tmp/a" || true; kill -TERM "$pid" || true; rc=0; wait "$pid" || rc=$?
check "1 rank, SIGTERM" "$tmp/a" "$rc" "$tmp/a.log" "stopping at step [0-9]+ on SIGTERM" "$tmp/straight"

# 2. two ranks, SIGUSR1 to mpirun
mpirun -np 2 "$bin" train "${C[@]}" run.dir="$tmp/b" > "$tmp/b.log" 2>&1 &
pid=$!; wait_started "$tmp/b" || true; kill -USR1 "$pid" || true; rc=0; wait "$pid" || rc=$?
check "2 ranks, SIGUSR1 to mpirun" "$tmp/b" "$rc" "$tmp/b.log" "stopping at step [0-9]+ on SIGUSR1" "$tmp/straight_np2" mpirun -np 2

# 3. two ranks, SIGTERM to rank 1 only: rank 0 learns it through the allreduce
# (rank 0 says "on a signal on another rank": the signal did not reach rank 0).
# Rank 1 is the gentrain child of this mpirun whose environment says
# OMPI_COMM_WORLD_RANK=1 (mpirun sets it for every process it starts); PID
# order says nothing about rank order.
rank_pid() {  # MPIRUN_PID RANK: the PID of that rank's gentrain process
  local c env
  for c in $(pgrep -P "$1" -x gentrain); do
    env=$(tr '\0' '\n' 2>/dev/null < "/proc/$c/environ") || continue
    if grep -qx "OMPI_COMM_WORLD_RANK=$2" <<<"$env"; then echo "$c"; return 0; fi
  done
  return 1
}
mpirun -np 2 "$bin" train "${C[@]}" run.dir="$tmp/c" > "$tmp/c.log" 2>&1 &
pid=$!; wait_started "$tmp/c" || true
if r1=$(rank_pid "$pid" 1); then
  kill -TERM "$r1" || true; rc=0; wait "$pid" || rc=$?
  check "2 ranks, SIGTERM to rank 1 only" "$tmp/c" "$rc" "$tmp/c.log" "stopping at step [0-9]+ on a signal on another rank" \
    "$tmp/straight_np2" mpirun -np 2
else
  fail "2 ranks, SIGTERM to rank 1 only: no gentrain child of mpirun $pid has OMPI_COMM_WORLD_RANK=1: $(pgrep -a -P "$pid")"
  kill -TERM "$pid" || true; wait "$pid" || true   # mpirun ends its ranks
fi

finish ckpt_signal
