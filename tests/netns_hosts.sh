#!/usr/bin/env bash
# Multi-host runs on simulated hosts (tools/netns-cluster: network namespaces
# on a bridge, TCP only):
#  1. the launch: one rank per host, each with its host's name and address;
#     the program's exit code comes back through `netns-cluster run`;
#  2. vae training on 2 and on 4 hosts: the gradient traffic really crosses
#     the hosts' links (each host's byte counters grow by at least
#     steps x gradient bytes x (N-1)/N both ways, the least any allreduce
#     algorithm moves; hosts outside the run see none of it), and every rank
#     ends with bitwise the parameters of the same world size on shared
#     memory (plain mpirun): the same collective algorithms run over either
#     transport, so the sums are formed in the same order;
#  3. a rate limit (--rate 1gbit, tc tbf) really limits: an 8 MB allreduce
#     between 2 hosts takes at least the 64 ms that 8 MB need at 1 Gbit/s.
set -euo pipefail
build=$1 src=$2
# shellcheck source=tests/common.bash
source "$src/tests/common.bash"
test_name=netns_hosts
# shellcheck source=tests/netns_common.bash
source "$src/tests/netns_common.bash"
export OMPI_MCA_rmaps_base_oversubscribe=1   # 4 ranks on 2 cores for the shared-memory runs

cluster_up 4
h0=$(host 0) h1=$(host 1) h2=$(host 2) h3=$(host 3)

# 1. launch
# shellcheck disable=SC2016  # expanded by the ranks' shell
if out=$(ncl run --np 4 -- sh -c 'echo "$OMPI_COMM_WORLD_RANK $(hostname) $(ip -4 -o addr show dev eth0 | awk "{ print \$4 }")"' \
         </dev/null 2>&1 | sort); then
  expect=$(printf '0 %s 10.213.57.1/24\n1 %s 10.213.57.2/24\n2 %s 10.213.57.3/24\n3 %s 10.213.57.4/24' "$h0" "$h1" "$h2" "$h3")
  if [ "$out" = "$expect" ]; then ok "4 ranks on 4 hosts, each with its host's name and address"
  else fail "launch: expected '$expect', got '$out'"; fi
else fail "launch failed: $out"; fi
rc=0; ncl run --np 2 -- sh -c 'exit 3' </dev/null >/dev/null 2>&1 || rc=$?
if [ "$rc" = 3 ]; then ok "the program's exit code (3) is run's exit code"; else fail "exit code: expected 3, got $rc"; fi

# 2. training across hosts == training on shared memory
STEPS=20
C=("$src/configs/vae.ini" train.epochs=0 "train.steps=$STEPS" train.batch_size=16 data.limit=2000 log.every=5
   eval.at_end=false checkpoint.every=0 samples.every=0 dist.check_every=10)
counter() { awk -v h="$2" -v c="$3" '$1 == h { print (c == "rx" ? $2 : $3) }' "$1"; }
for n in 2 4; do
  if ! timeout -k 5 300 mpirun -np "$n" "$bin" train "${C[@]}" run.dir="$tmp/shm$n" debug.dump_params="$tmp/shm$n" \
      </dev/null >"$tmp/shm$n.log" 2>&1; then
    fail "$n ranks on shared memory: $(tail -n 5 "$tmp/shm$n.log")"; continue
  fi
  hosts=$(ncl hosts | sed -n "1,${n}p" | paste -sd,)   # sed reads to the end: head would close the pipe early (SIGPIPE, and pipefail fails the test)
  ncl counters >"$tmp/c0"
  t0=$(date +%s.%N)
  if ! timeout -k 5 300 "$nc" run --prefix "$prefix" --np "$n" --hosts "$hosts" -- "$bin" train "${C[@]}" run.dir="$tmp/ns$n" \
      debug.dump_params="$tmp/ns$n" </dev/null >"$tmp/ns$n.log" 2>&1; then
    fail "$n hosts: $(tail -n 5 "$tmp/ns$n.log")"; continue
  fi
  dt=$(since "$t0")
  ncl counters >"$tmp/c1"
  params=$(sed -n 's/^network [a-z]*: .*, \([0-9]*\) parameters$/\1/p' "$tmp/ns$n.log" | paste -sd+ | bc)
  least=$(( STEPS * 4 * params * (n - 1) / n ))
  bad="" report=""
  for h in $(ncl hosts); do
    rx=$(( $(counter "$tmp/c1" "$h" rx) - $(counter "$tmp/c0" "$h" rx) ))
    tx=$(( $(counter "$tmp/c1" "$h" tx) - $(counter "$tmp/c0" "$h" tx) ))
    if [[ ",$hosts," == *",$h,"* ]]; then
      report+=" $h $((tx / 1000000))/$((rx / 1000000))"
      if [ "$tx" -lt "$least" ] || [ "$rx" -lt "$least" ]; then bad+=" $h sent $tx and received $rx bytes;"; fi
    elif [ "$tx" -gt 1000000 ] || [ "$rx" -gt 1000000 ]; then
      bad+=" $h is not in the run but moved $tx/$rx bytes;"
    fi
  done
  if [ -z "$bad" ]; then
    ok "$n hosts, $STEPS steps of vae ($params parameters, $((4 * params)) bytes of gradients per step) in $dt s:" \
       "MB sent/received per host:$report (at least $((least / 1000000)) expected)"
  else fail "$n hosts: too little traffic (at least $least bytes each way expected):$bad"; fi
  same=1
  for r in $(seq 0 $((n - 1))); do cmp -s "$tmp/ns$n.rank$r" "$tmp/shm$n.rank$r" || same=0; done
  if [ "$same" = 1 ]; then ok "$n hosts (TCP) and $n ranks on shared memory: every rank's parameters bitwise equal"
  else fail "$n hosts (TCP) and shared memory differ: $($py "$src/tests/mpi_params.py" diff "$tmp/ns$n.rank0" "$tmp/shm$n.rank0" | tail -n 1) (relative L2)"; fi
done

# 3. the rate limit
median() { sed -n 's/.*median \([0-9.]*\) ms.*/\1/p' "$1"; }
allreduce() {  # NAME: 8 MB allreduce between hosts 0 and 1
  timeout -k 5 120 "$nc" run --prefix "$prefix" --hosts "$h0,$h1" -- "$build/tool_allreduce" 8 10 </dev/null >"$tmp/$1.log" 2>&1
}
if allreduce free && ncl rate 1gbit "$h0" "$h1" && allreduce shaped; then
  free=$(median "$tmp/free.log") shaped=$(median "$tmp/shaped.log")
  if lt 57 "$shaped"; then ok "8 MB allreduce between 2 hosts: $free ms unshaped, $shaped ms at 1 Gbit/s (>= 64 ms on the wire)"
  else fail "8 MB allreduce at 1 Gbit/s took $shaped ms (unshaped $free ms): the rate limit does not hold"; fi
else fail "allreduce timing: $(tail -n 3 "$tmp/free.log" "$tmp/shaped.log" 2>/dev/null)"; fi
ncl rate none "$h0" "$h1" || fail "removing the rate limit"

finish netns_hosts
