#!/usr/bin/env bash
# kill -9 at random moments (tools/soak-kill; `tools/soak-kill --help`): in
# each trial a short run with a checkpoint after every step loses one process
# after its first checkpoint, alternately rank 0 while it writes a checkpoint
# and another rank at a random moment. Asserted for every trial: the launcher
# ends non-zero, the newest checkpoint verifies (`gentrain inspect` exits 0),
# and the same command resumes from it and completes. 50 trials in all, in
# three concurrent streams: two with plain mpirun (shared memory, 2 ranks)
# and one across 2 simulated hosts (tools/netns-cluster), where the killed
# rank is a remote host's. Run directories on /dev/shm: a kill -9 does not
# lose the page cache, and the trials are faster without fsync.
set -euo pipefail
build=$1 src=$2
# shellcheck source=tests/common.bash
source "$src/tests/common.bash"
test_name=netns_kill
# shellcheck source=tests/netns_common.bash
source "$src/tests/netns_common.bash"

work=/dev/shm
[ -d "$work" ] && [ -w "$work" ] || work=$tmp
streams=("shm-a --trials 22 --seed 11" "shm-b --trials 22 --seed 12" "hosts --trials 6 --seed 13 --netns --prefix $prefix")
pids=()
for s in "${streams[@]}"; do
  read -r -a a <<<"$s"
  "$src/tools/soak-kill" --np 2 --steps 12 --workdir "$work" --keep "$tmp/failed-${a[0]}" --gentrain "$bin" "${a[@]:1}" \
      </dev/null >"$tmp/${a[0]}.log" 2>&1 &
  pids+=("$!")
  helpers+=("$!")
done
total=0 hits=0
for i in "${!streams[@]}"; do
  name=${streams[$i]%% *}
  rc=0; wait "${pids[$i]}" || rc=$?
  summary=$(grep '^soak-kill: .* trials in' "$tmp/$name.log" || true)
  n=$(sed -n 's/^soak-kill: \([0-9]*\) trials in.*/\1/p' <<<"$summary")
  h=$(sed -n 's/.*(\([0-9]*\) left a write in progress).*/\1/p' <<<"$summary")
  total=$((total + ${n:-0})) hits=$((hits + ${h:-0}))
  if [ "$rc" = 0 ] && [ -n "$summary" ]; then
    ok "$name: ${summary#soak-kill: }"
  else
    fail "$name: exit $rc: ${summary:-$(tail -n 3 "$tmp/$name.log")}"
    grep -A1 'FAIL' "$tmp/$name.log" | head -n 20 || true
    for f in "$tmp/failed-$name"/*.log2; do
      [ -f "$f" ] && { echo "--- $f"; grep -v '^step\|^checkpoint\|^ ' "$f" | tail -n 8; }
    done
  fi
done
if [ "$total" -ge 50 ]; then ok "$total kill -9 trials in all ($hits interrupted a checkpoint write in progress)"
else fail "only $total kill -9 trials ran (50 wanted)"; fi
[ "$hits" -ge 1 ] || fail "no kill interrupted a checkpoint write (no .tmp left behind in any trial)"

finish netns_kill
