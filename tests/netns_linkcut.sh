#!/usr/bin/env bash
# A host's link is cut mid-run (tools/netns-cluster link HOST down: its
# switch port goes down, packets are dropped silently, as when a cable or a
# switch port fails), on simulated hosts:
#  A. 4 hosts, host 2 cut;  B. 2 hosts, host 0 cut (the head: mpirun and
#     rank 0, which writes the checkpoints).
# In both, after the run's first checkpoint:
#  1. the launcher exits non-zero, with Open MPI's "lost communication with a
#     remote daemon" error, within 30 s of the cut, and within the same 30 s
#     every process on every host (ranks, orteds) is gone, the cut host's
#     too: its orted loses mpirun and kills its rank on its own;
#  2. right after `link HOST up` the cut host reaches every other host (the
#     tool waits for that: a run started while an address resolution begun
#     during the cut fails would hang at launch);
#  3. with the link restored, the same command resumes from the newest
#     checkpoint and completes; in A the final parameters are bitwise those
#     of an uninterrupted run of the same world size (plain mpirun).
# The bounds come from tools/netns-cluster's failure detection (Open MPI's
# oob_tcp_keepalive_* and the hosts' tcp_retries2); without them the job hangs
# for many minutes.
set -euo pipefail
build=$1 src=$2
# shellcheck source=tests/common.bash
source "$src/tests/common.bash"
test_name=netns_linkcut
# shellcheck source=tests/netns_common.bash
source "$src/tests/netns_common.bash"
export OMPI_MCA_rmaps_base_oversubscribe=1

STEPS=500
C=("$src/configs/mlpvae.ini" train.epochs=0 "train.steps=$STEPS" train.batch_size=16 data.limit=2000 log.every=50
   checkpoint.every=50 checkpoint.keep=3 samples.every=0 eval.n=100 dist.check_every=50)
final() { printf '%s/checkpoints/step-%08d.h5' "$1" "$STEPS"; }

cluster_up 4

# the uninterrupted reference for A
if ! timeout -k 5 300 mpirun -np 4 "$bin" train "${C[@]}" run.dir="$tmp/ref" debug.dump_params="$tmp/ref" \
    </dev/null >"$tmp/ref.log" 2>&1; then
  fail "uninterrupted 4-rank run: $(tail -n 5 "$tmp/ref.log")"
fi

scenario() {  # NAME N_HOSTS CUT_INDEX
  local name=$1 n=$2 ci=$3 dir=$tmp/$1 hosts cut t_cut dt_exit="" dt_all="" rc=0 left
  hosts=$(ncl hosts | sed -n "1,${n}p" | paste -sd,)   # sed reads to the end: head would close the pipe early (SIGPIPE, and pipefail fails the test)
  cut=$(host "$ci")
  "$nc" run --prefix "$prefix" --np "$n" --hosts "$hosts" -- "$bin" train "${C[@]}" run.dir="$dir" \
      debug.dump_params="$dir" </dev/null >"$dir.log" 2>&1 &
  launcher=$!
  for _ in $(seq 1200); do
    compgen -G "$dir/checkpoints/step-*.h5" >/dev/null && break
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.1
  done
  sleep 0.5
  if ! kill -0 "$launcher" 2>/dev/null || ! compgen -G "$dir/checkpoints/step-*.h5" >/dev/null; then
    fail "$name: the run ended or wrote no checkpoint before the cut: $(tail -n 3 "$dir.log")"
    wait "$launcher" || true; launcher=""
    return
  fi
  local at
  at=$(sed -n 's/^step *\([0-9]*\)\/.*/\1/p' "$dir.log" | tail -n 1)
  t_cut=$(date +%s.%N)
  ncl link "$cut" down
  # poll until the launcher has ended and no process is left on any host (60 s at most)
  while :; do
    if [ -z "$dt_exit" ] && ! kill -0 "$launcher" 2>/dev/null; then
      dt_exit=$(since "$t_cut")
      wait "$launcher" || rc=$?
      launcher=""
    fi
    left=$(ncl pids | awk '{ print $1 ":" $3 }' | paste -sd' ')
    if [ -n "$dt_exit" ] && [ -z "$left" ]; then dt_all=$(since "$t_cut"); break; fi
    lt "$(since "$t_cut")" 60 || break
    sleep 0.2
  done
  ncl link "$cut" up
  # `link up` returns once the host reaches the others: one try must do
  local unreached  # what `reach` says it does not reach (empty: every host)
  unreached=$(ncl reach "$cut" 2>&1) && unreached=""
  if [ -z "$dt_exit" ]; then
    fail "$name: the launcher still runs 60 s after the cut of $cut (left: $left)"
    kill -KILL "$launcher" 2>/dev/null || true; wait "$launcher" 2>/dev/null || true; launcher=""
  elif [ "$rc" = 0 ]; then
    fail "$name: the launcher exited 0 after the cut"
  elif [ -z "$dt_all" ]; then
    fail "$name: processes left on the hosts 60 s after the cut: $left"
  elif ! lt "$dt_all" 30; then
    fail "$name: the job took $dt_exit s (launcher) and $dt_all s (every process) to end after the cut"
  elif ! grep -q "ORTE has lost communication with a remote daemon" "$dir.log"; then
    fail "$name: no clear error: $(grep -v '^step\|^checkpoint' "$dir.log" | tail -n 8)"
  else
    ok "$name: $cut cut at step ~$at: launcher exit $rc after $dt_exit s, every rank and orted gone after $dt_all s:" \
       "$(grep -A 3 'lost communication' "$dir.log" | grep -o 'Remote daemon.*' | head -n 1)"
  fi
  if grep -q '^done:' "$dir.log" || [ -f "$(final "$dir")" ]; then fail "$name: the run completed despite the cut"; fi
  if [ -z "$unreached" ]; then ok "$name: link of $cut up: it reaches every other host at once"
  else fail "$name: link of $cut up, but: $unreached"; fi
  # the same command again, link restored
  if timeout -k 5 300 "$nc" run --prefix "$prefix" --np "$n" --hosts "$hosts" -- "$bin" train "${C[@]}" run.dir="$dir" \
      debug.dump_params="$dir" </dev/null >"$dir.log2" 2>&1 &&
     grep -q "resuming from" "$dir.log2" && "$bin" inspect "$(final "$dir")" >/dev/null 2>&1; then
    ok "$name: resumed ($(grep -o 'resuming from [^:]*: step [0-9]*' "$dir.log2" | sed 's|from .*/|from |')) and completed $STEPS steps"
  else
    fail "$name: resume after the cut: $(grep -v '^step\|^checkpoint\|^ ' "$dir.log2" | tail -n 5)"
  fi
}

scenario "4 hosts, host 2 cut" 4 2
if cmp -s "$tmp/4 hosts, host 2 cut.rank0" "$tmp/ref.rank0" && cmp -s "$tmp/4 hosts, host 2 cut.rank3" "$tmp/ref.rank3"; then
  ok "4 hosts: cut, resumed: final parameters bitwise those of an uninterrupted 4-rank run"
else fail "4 hosts: cut and resumed run ends with other parameters than an uninterrupted run"; fi
scenario "2 hosts, host 0 (mpirun, rank 0) cut" 2 0

finish netns_linkcut
