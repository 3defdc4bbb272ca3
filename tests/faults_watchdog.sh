#!/usr/bin/env bash
# The step watchdog ([dist] step_timeout; the reliability issue: a stalled
# rank used to hang the job forever, the others spinning at 100% CPU without
# a word):
#  1. 2 ranks, step_timeout = 5 s, rank 1 SIGSTOPped while training: rank 0
#     prints the step, what it waits in, and that rank 1 does not answer; the
#     job ends non-zero within the timeout plus the watchdog's grace periods
#     (5 + 5 s) and a margin for this shared machine; no process is left;
#  2. 3 ranks, rank 0 stopped: both live ranks say they wait for rank 0.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1
T=5
C=("$src/configs/mlpvae.ini" train.epochs=0 train.steps=100000000 train.batch_size=16 data.limit=1024 log.every=20
   eval.n=16 checkpoint.every=0 samples.every=0 dist.step_timeout="$T")
rank_pid() {  # MPIRUN_PID RANK: the PID of that rank's gentrain process
  local c env
  for c in $(pgrep -P "$1" -x gentrain); do
    env=$(tr '\0' '\n' 2>/dev/null < "/proc/$c/environ") || continue
    if grep -qx "OMPI_COMM_WORLD_RANK=$2" <<<"$env"; then echo "$c"; return 0; fi
  done
  return 1
}
stopped=""
cleanup() { [ -n "$stopped" ] && kill -KILL "$stopped" 2> /dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

stall() {  # NAME RANKS STOP_RANK EXPECTED_MESSAGE_RANKS...
  local name=$1 np=$2 victim=$3 rc=0 t0 dt pid; shift 3
  local d=$tmp/$np-$victim log=$tmp/$np-$victim.log
  # the watchdog must end the job: timeout gives up (and the test fails) after 120 s
  timeout -k 5 120 mpirun -np "$np" "$bin" train "${C[@]}" run.dir="$d" > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do grep -q '"step": 20,' "$d/metrics.jsonl" 2> /dev/null && break; sleep 0.05; done
  if ! stopped=$(rank_pid "$(pgrep -P "$pid" -x mpirun)" "$victim"); then
    fail "$name: no rank $victim"; kill "$pid"; wait "$pid" || true; return 0
  fi
  kill -STOP "$stopped"
  t0=$(date +%s.%N)
  wait "$pid" || rc=$?
  dt=$("$py" -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
  if [ "$rc" = 0 ] || [ "$rc" = 124 ] || [ "$rc" = 137 ]; then fail "$name: exit $rc after $dt s (124/137: hung)"; return 0; fi
  local r all=1
  for r in "$@"; do
    grep -qE "gentrain\[rank $r\]: error: step [0-9]+: watchdog: waited [0-9.]+ s in .*; rank $victim did not answer within 5 s .*\[dist\] step_timeout = $T s" "$log" || all=0
  done
  if [ "$all" = 1 ]; then ok "$name: rank(s) $* name rank $victim, the step and what they wait in"
  else fail "$name: messages: $(grep -E 'error|watchdog' "$log" | head -5)"; fi
  if "$py" -c "import sys; sys.exit(0 if float(sys.argv[1]) < $T + 30 else 1)" "$dt"; then
    ok "$name: the job ended with exit $rc $dt s after the stop (step_timeout $T s + 5 s grace + up to 5 s for the others' lines)"
  else fail "$name: the job took $dt s to end (exit $rc)"; fi
  local state=""
  for _ in $(seq 100); do  # gone, or a zombie waiting for its new parent to reap it
    state=$(awk '{print $3}' "/proc/$stopped/stat" 2> /dev/null) || state=""
    case "$state" in ""|Z) break ;; esac
    sleep 0.1
  done
  case "$state" in
    ""|Z) ok "$name: no process left" ;;
    *) fail "$name: the stopped rank $stopped is still there (state $state)"; kill -KILL "$stopped" ;;
  esac
  stopped=""
  grep -E "watchdog" "$log" | sed 's/^/    /' | cut -c1-300
}

stall "2 ranks, rank 1 stopped" 2 1 0
stall "3 ranks, rank 0 stopped" 3 0 1 2

finish faults_watchdog
