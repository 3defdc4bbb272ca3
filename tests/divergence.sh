#!/usr/bin/env bash
# shellcheck disable=SC2015  # ok and fail (tests/common.bash) always return 0, so "A && ok || fail" is if-then-else here
# Divergence handling ([train] on_divergence, loss_bound, rollback_lr_factor,
# max_rollbacks), with a NaN injected by the test hook [debug] nan_rank /
# nan_step / nan_times into one rank's batch, at 1 and at 2 ranks (the NaN on
# rank 1: every rank must see it through the one collective of the step):
#  1. stop (the default): exit 1, one message naming the step, the network
#     and the first bad value (and the rank), nothing written after the
#     divergence, every checkpoint finite, metrics.jsonl valid JSON;
#  2. rollback: the run goes back to the newest checkpoint, multiplies the
#     learning rates by rollback_lr_factor, logs a "rollback" line in
#     metrics.jsonl (the lines of the abandoned steps dropped), completes; the
#     checkpoints carry rollbacks and lr_scale and the optimizer's lr; a
#     resumed run keeps the lower rates;
#  3. a NaN at every pass of the step: gives up after max_rollbacks;
#  4. loss_bound: a finite loss beyond the bound counts as divergence;
#  5. a GAN names the discriminator (its gradient norm, the same on both ranks).
set -euo pipefail
build=$1 src=$2
source "$src/tests/common.bash"
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1
M=("$src/configs/mlpvae.ini" data.limit=3000 train.steps=30 log.every=5 checkpoint.every=10 checkpoint.keep=0
   samples.every=10 samples.n=16 eval.n=200)

run() {  # NP DIR [overrides]: exit status in $rc, output in DIR.log
  local np=$1 dir=$2; shift 2
  rc=0
  if [ "$np" = 1 ]; then "$bin" train "${M[@]}" run.dir="$dir" "$@" > "$dir.log" 2>&1 || rc=$?
  else mpirun -np "$np" "$bin" train "${M[@]}" run.dir="$dir" "$@" > "$dir.log" 2>&1 || rc=$?; fi
}
# every checkpoint of DIR holds finite parameters, state and moments; metrics.jsonl is JSON
files_ok() {
  $py - "$1" <<'PY'
import glob, json, sys, h5py, numpy as np
d = sys.argv[1]
for path in glob.glob(d + "/checkpoints/step-*.h5"):
    with h5py.File(path, "r") as f:
        def visit(name, item):
            if isinstance(item, h5py.Dataset) and item.dtype.kind == "f":
                assert np.isfinite(item[()]).all(), (path, name)
        f.visititems(visit)
for line in open(d + "/metrics.jsonl"):
    json.loads(line)  # NaN would be invalid JSON
PY
}

for np in 1 2; do
  nr=$((np - 1))
  # 1. stop
  d=$tmp/stop$np
  run $np "$d" debug.nan_rank="$nr" debug.nan_step=17
  msg=$(grep -m1 "error:" "$d".log || true)
  want="training diverged at step 17: loss (the model) is nan"
  [ "$np" = 2 ] && want="$want on rank 1"
  if [ "$rc" != 0 ] && [[ "$msg" == *"$want"* ]] && [[ "$msg" == *"on_divergence = stop"* ]]; then
    ok "$np rank(s), stop: exit $rc, '$(echo "$msg" | grep -o 'training diverged.*saw a bad value)\|training diverged[^(]*')'"
  else fail "$np rank(s), stop: exit $rc, message: $msg"; fi
  [ "$(grep -c "error:" "$d".log)" = 1 ] && ok "$np rank(s), stop: one error line" || fail "$np rank(s): $(grep -c error: "$d".log) error lines"
  if [ "$(cd "$d"/checkpoints && ls)" = "step-00000010.h5" ] && files_ok "$d"; then
    ok "$np rank(s), stop: only the checkpoint before the divergence, finite; metrics.jsonl valid"
  else fail "$np rank(s), stop: checkpoints $(cd "$d"/checkpoints && echo *) or files not clean"; fi

  # 2. rollback
  d=$tmp/roll$np
  run $np "$d" debug.nan_rank="$nr" debug.nan_step=17 train.on_divergence=rollback train.rollback_lr_factor=0.25
  if [ "$rc" = 0 ] && grep -q "rollback 1 of at most 3: back to step 10, learning rates x 0.25" "$d".log &&
     files_ok "$d" && $py - "$d" <<'PY'
import json, sys, h5py
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/metrics.jsonl")]
ev = [r for r in rows if r.get("event") == "rollback"]
assert len(ev) == 1 and ev[0]["step"] == 10 and ev[0]["diverged_step"] == 17 and ev[0]["lr_scale"] == 0.25, ev
assert "loss (the model) is nan" in ev[0]["reason"], ev
steps = [r["step"] for r in rows if "event" not in r and "split" not in r]
assert steps == [5, 10, 15, 20, 25, 30], steps  # the abandoned step 15 dropped, then done again
with h5py.File(d + "/checkpoints/step-00000030.h5", "r") as f:
    assert f.attrs["rollbacks"] == 1 and f.attrs["lr_scale"] == 0.25, dict(f.attrs)
    assert abs(f["optim/encoder"].attrs["lr"] - 0.25e-3) < 1e-9, f["optim/encoder"].attrs["lr"]
with h5py.File(d + "/checkpoints/step-00000010.h5", "r") as f:
    assert "rollbacks" not in f.attrs
with h5py.File(d + "/metrics.h5", "r") as f:
    assert list(f["train/step"][:]) == steps, list(f["train/step"][:])
PY
  then ok "$np rank(s), rollback: back to step 10 with the rates x 0.25, completed; metrics.jsonl/h5 and checkpoints say so"
  else fail "$np rank(s), rollback: exit $rc: $(grep -E 'error|rollback' "$d".log | head -5)"; fi
done

# a resumed run keeps the lower rates
d=$tmp/roll1
run 1 "$d" train.steps=40 train.on_divergence=rollback train.rollback_lr_factor=0.25
if [ "$rc" = 0 ] && grep -q "the run rolled back 1 time before: learning rates x 0.25" "$d".log && $py - "$d" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1] + "/checkpoints/step-00000040.h5", "r") as f:
    assert f.attrs["rollbacks"] == 1 and abs(f["optim/decoder"].attrs["lr"] - 0.25e-3) < 1e-9
PY
then ok "resume after a rollback keeps the lower learning rates (and the count)"
else fail "resume after a rollback: $(tail -3 "$d".log)"; fi

# 3. give up after max_rollbacks
d=$tmp/giveup
run 2 "$d" debug.nan_rank=1 debug.nan_step=17 debug.nan_times=100 train.on_divergence=rollback train.max_rollbacks=2
msg=$(grep -m1 "error:" "$d".log || true)
if [ "$rc" != 0 ] && [[ "$msg" == *"training diverged at step 17"*"after 2 rollbacks ([train] max_rollbacks = 2): giving up"* ]] &&
   [ "$(grep -c 'rollback [12] of at most 2' "$d".log)" = 2 ] && files_ok "$d"; then
  ok "2 ranks: a NaN at every pass gives up after max_rollbacks = 2: '$(echo "$msg" | grep -o 'after 2 rollbacks.*giving up')'"
else fail "give up: exit $rc: $msg"; fi

# 4. loss_bound
d=$tmp/bound
run 1 "$d" train.loss_bound=300
msg=$(grep -m1 "error:" "$d".log || true)
if [ "$rc" != 0 ] && [[ "$msg" == *"training diverged at step 1: loss (the model) is "*", beyond [train] loss_bound = 300"* ]]; then
  ok "loss_bound = 300: a finite loss above it stops the run: '$(echo "$msg" | grep -o 'loss (the model).*300')'"
else fail "loss_bound: exit $rc: $msg"; fi

# rollback without checkpoints is refused at the start
"$bin" train "${M[@]}" run.dir="$tmp"/nock train.on_divergence=rollback checkpoint.every=0 > "$tmp"/nock.log 2>&1 || true
grep -q "on_divergence = rollback needs checkpoints to go back to, but \[checkpoint\] every = 0" "$tmp"/nock.log \
  && ok "rollback with checkpoint.every = 0: $(grep -o 'error: .*every = 0' "$tmp"/nock.log)" || fail "rollback without checkpoints: $(cat "$tmp"/nock.log)"

# 5. a GAN names the network
d=$tmp/gan
mpirun -np 2 "$bin" train "$src/configs/toygan.ini" run.dir="$d" data.n=4096 train.batch_size=32 train.steps=10 \
  log.every=5 debug.nan_rank=1 debug.nan_step=4 > "$d".log 2>&1 || true
msg=$(grep -m1 "error:" "$d".log || true)
# (D's ReLUs turn the NaN input into 0, so the loss stays finite; D's weight
# gradient does not, and the allreduce carries it to every rank)
[[ "$msg" == *"training diverged at step 4: d_grad_norm (discriminator) is nan on rank 0 (2 of 2 ranks"* ]] \
  && ok "GAN: '$(echo "$msg" | grep -o 'd_grad_norm (discriminator) is nan.*saw a bad value)')'" || fail "GAN: $msg"

finish divergence
