#!/usr/bin/env bash
# Self-requeue on a real one-machine Slurm (tools/slurm-local): a 2-rank
# mlpvae run (srun --mpi=pmix) with a one-minute time limit and
# --signal=B:USR1@20 is signalled, checkpoints, requeues itself at least once
# and completes; its final parameters are bitwise equal to those of an
# uninterrupted run of the same steps (mpirun, outside Slurm, run first).
# The run's length is calibrated on this machine first, so that it needs
# more than the 40 s after which the warning has certainly arrived
# (slurmctld checks every 30 s and warns when 20 + 30 s or less are left).
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/slurm_common.bash
source "$src/tests/slurm_common.bash"
"$py" -c 'import h5py, numpy' 2>/dev/null || die "h5py missing for /usr/bin/python3: apt-get install -y python3-h5py"

base=("$src/configs/mlpvae.ini" train.epochs=0 data.limit=6000 eval.n=500 samples.every=0)

# 1. calibrate: steps per second of 2 ranks here, now
mpirun -np 2 "$bin" train "${base[@]}" run.dir="$work/calib" train.steps=400 log.every=100 checkpoint.every=0 \
    > "$work/calib.log" 2>&1 || { cat "$work/calib.log"; die "calibration run failed"; }
steps=$("$py" - "$work/calib/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"img_per_s"' in l]
ips = sorted(r["img_per_s"] for r in rows[1:])[len(rows[1:]) // 2]   # median after warm-up; 2 ranks x batch 100
per_s = ips / 200
# ~45 s of steps at the calibrated rate (the warning comes at most 40 s
# after the start), in whole 500s
print(int(min(30000, max(1000, per_s * 45)) // 500 * 500))
PY
)
echo "calibrated: $steps steps (about 45 s for 2 ranks here)"
args=("${base[@]}" train.steps="$steps" log.every=250 checkpoint.every=500 checkpoint.keep=2)

# 2. the uninterrupted reference run of the same steps, first: alone on the
# cores, so that the requeued run then trains at the calibrated speed
ref_rc=0
mpirun -np 2 "$bin" train "${args[@]}" run.dir="$work/reference" > "$work/reference.log" 2>&1 || ref_rc=$?
# 3. the requeued run
id=$(MAX_RESTARTS=12 sbatch --parsable -J t-req -N 1 --ntasks-per-node=2 --time=1 --signal=B:USR1@20 \
        "$src/jobs/train.sbatch" "${args[@]}")
echo "submitted job $id"
st=$(wait_job "$id" 330) || true
log=$work/t-req-$id.out
rd=$work/runs/t-req-$id
restarts=$(job_restarts "$id")
echo "job $id: $st, exit $(job_exit "$id"), restarts $restarts"
grep -a '^\[train.sbatch\|resuming\|stopping at\|^checkpoint:' "$log" | sed 's/^/  | /' || true

if [ "$ref_rc" -eq 0 ]; then ok "uninterrupted reference run finished"
else fail "reference run exit $ref_rc"; tail "$work/reference.log"; fi
if [ "$st" = COMPLETED ] && [ "$(job_exit "$id")" = 0:0 ]; then ok "job $id completed"
else fail "job $id ended $st, exit $(job_exit "$id")"; fi
if [ "${restarts:-0}" -ge 1 ]; then ok "job requeued itself $restarts time(s)"
else fail "job was never requeued (restarts ${restarts:-?})"; fi
n_sig=$(grep -c "got SIGUSR1" "$log" || true)
n_req=$(grep -c "requeueing job $id" "$log" || true)
n_res=$(grep -ac "^resuming from " "$log" || true)
if [ "$n_sig" -ge 1 ] && [ "$n_req" -ge 1 ] && [ "$n_req" -eq "${restarts:-0}" ]; then
    ok "signalled $n_sig time(s), requeued after each checkpoint ($n_req)"
else fail "signals $n_sig, requeues $n_req, restarts $restarts"; fi
if [ "$n_res" -ge 1 ] && [ "$n_res" -eq "$n_req" ]; then ok "every restart resumed from a checkpoint ($n_res)"
else fail "resumed $n_res times for $n_req requeues"; fi
if grep -q "run finished" "$log" && [ -f "$rd/slurm-done" ]; then ok "the finished run did not requeue"
else fail "no 'run finished'"; fi

final=$(printf 'step-%08d.h5' "$steps")
if [ -f "$rd/checkpoints/$final" ] && [ -f "$work/reference/checkpoints/$final" ] &&
   "$py" - "$rd/checkpoints/$final" "$work/reference/checkpoints/$final" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
def tensors(f):
    out = {}
    f["params"].visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out
ta, tb = tensors(a), tensors(b)
assert ta and sorted(ta) == sorted(tb), (sorted(ta), sorted(tb))
bad = [k for k in ta if ta[k].dtype != tb[k].dtype or ta[k].shape != tb[k].shape or ta[k].tobytes() != tb[k].tobytes()]
n = sum(v.size for v in ta.values())
print(f"  {len(ta)} parameter tensors, {n} values; differing: {bad or 'none'}; steps {a.attrs['step']} / {b.attrs['step']}")
assert not bad
PY
then ok "final parameters bitwise equal to the uninterrupted run ($final)"
else fail "final parameters differ from the uninterrupted run, or $final is missing"; ls "$rd/checkpoints" "$work/reference/checkpoints" || true; fi
finish
