#!/usr/bin/env bash
# World size 3 and failures (issue 3), with real mpirun (--oversubscribe on a
# small machine):
#  1. 3 ranks on 1000 examples with batch 16 per rank: the global batch is 48,
#     an epoch is floor(1000/48) = 20 steps (the 40 left over are skipped),
#     2 epochs = 40 steps, the replicas stay identical (check every 10 steps),
#     the start line says so and the metrics reach step 40 in epoch 1;
#  2. one failing rank ends all ranks within 30 s with its message and a
#     non-zero exit: (a) rank 1 fails at step 5 through the documented test
#     hook [debug] fail_rank/fail_step while the others wait in the gradient
#     allreduce, (b) only rank 2 cannot open its data file (as on a node that
#     lacks it) while ranks 0 and 1 wait at the start-up check, (c) a bad
#     key on all ranks.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export OMPI_MCA_rmaps_base_oversubscribe=1
cfg=$src/configs/mlpvae.ini

# 1. world size 3, uneven dataset
if timeout -k 5 300 mpirun -np 3 "$bin" train "$cfg" run.dir="$tmp/w3" data.limit=1000 train.batch_size=16 \
    train.steps=0 train.epochs=2 log.every=10 eval.n=500 dist.check_every=10 checkpoint.every=0 samples.every=0 > "$tmp/w3.log" 2>&1; then
  if grep -q "3 ranks x batch 16 = global batch 48; 1000 train" "$tmp/w3.log" &&
     grep -q "20 steps per epoch, 40 steps" "$tmp/w3.log" &&
     "$py" - "$tmp/w3/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in rows if "split" not in r]
assert [r["step"] for r in train] == [10, 20, 30, 40], train
assert [r["epoch"] for r in train] == [0, 0, 1, 1], train
assert all(0 <= r["comm_wait_frac"] < 1 for r in train), train
assert [r for r in rows if r.get("split") == "test"], rows
PY
  then ok "3 ranks, 1000 examples, batch 16: 20 steps per epoch, 2 epochs, replicas checked"
  else fail "3 ranks: $(grep -v '^ ' "$tmp/w3.log" | head -5)"; fi
else fail "3 ranks on an uneven dataset failed: $(tail -5 "$tmp/w3.log")"; fi

# 2. failures end the job
expect_abort() {  # NAME PATTERN mpirun-args...
  local name=$1 pattern=$2; shift 2
  local t0 dt rc=0
  t0=$(date +%s.%N)
  timeout -k 5 60 mpirun "$@" > "$tmp/$name.log" 2>&1 || rc=$?
  dt=$("$py" -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
  if [ "$rc" -eq 0 ]; then fail "$name: exit 0"; return; fi
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then fail "$name: hung (killed after 60 s)"; return; fi
  if ! "$py" -c "import sys; sys.exit(0 if float(sys.argv[1]) < 30 else 1)" "$dt"; then
    fail "$name: took $dt s"; return; fi
  if grep -qE "$pattern" "$tmp/$name.log"; then ok "$name: all ranks ended in $dt s, exit $rc"
  else fail "$name: no message matching '$pattern': $(grep -v '^ ' "$tmp/$name.log" | tail -5)"; fi
}
expect_abort "rank 1 fails at step 5" \
  "gentrain\[rank 1\]: error: \[debug\] fail_rank = 1, fail_step = 5: failing on purpose" \
  -np 3 "$bin" train "$cfg" run.dir="$tmp/f1" data.limit=2000 train.steps=100000 train.batch_size=16 \
  debug.fail_rank=1 debug.fail_step=5
expect_abort "only rank 2 lacks its data file" "gentrain\[rank 2\]: error: .*/nowhere/train-images.gz" \
  -np 2 "$bin" train "$cfg" run.dir="$tmp/f2" data.limit=2000 train.steps=1000 : \
  -np 1 "$bin" train "$cfg" run.dir="$tmp/f2" data.limit=2000 train.steps=1000 \
  data.train_images=/nowhere/train-images.gz
expect_abort "a bad key on every rank" "batchsize" \
  -np 3 "$bin" train "$cfg" run.dir="$tmp/f3" train.batchsize=16

finish mpi_failure
