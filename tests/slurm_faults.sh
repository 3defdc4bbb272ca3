#!/usr/bin/env bash
# jobs/train.sbatch under faults, on a real one-machine Slurm
# (tools/slurm-local); the reliability issue:
#  1. the time limit's SIGTERM (no USR1 warning: --time=1 --signal=B:CONT@5)
#     with both launchers at once: mpirun with 2 ranks (--overcommit: on one
#     core), srun with 1 (on the other); gentrain checkpoints and exits 75, and
#     the script requeues.
#     With LAUNCHER=mpirun the launcher itself exits 1 on SIGTERM (Open MPI
#     aborts the job on SIGTERM, whatever the ranks return); the script reads
#     RUN_DIR/stopped, gentrain's word that every rank checkpointed and exits
#     75, and acts on 75. (Before: exit 1, "gentrain failed", no requeue.)
#  2. the run directory given elsewhere than RUN_DIR: run.dir= among the
#     arguments (mpirun job) and [run] dir in the config file (srun job); the
#     script finds the progress there and requeues (before: it looked in its
#     own derived directory, saw no checkpoint and refused to requeue);
#  3. each requeued job resumes from its checkpoint in that directory; then
#     scancel stops it: checkpoint, exit 75 (mpirun: through the marker),
#     not requeued;
#  4. RUN_DIR and a run.dir= argument that disagree: the script refuses at
#     once, naming both;
#  5. a step that fails to launch (srun's pmix plugin finds the step's
#     directory TmpFS/spmix_appdir_<uid>_<job>.0 already there, as a killed
#     step leaves it): srun exits 0 all the same; train.sbatch and
#     scaling.sbatch exit 1 saying gentrain never started (before: "run
#     finished", slurm-done written, and an empty scaling point).
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/slurm_common.bash
source "$src/tests/slurm_common.bash"

# long enough not to finish in one allocation; only the stops checkpoint
args=(train.steps=100000000 train.epochs=0 log.every=500 data.limit=2000 eval.n=500 samples.every=0 checkpoint.every=0)
sed 's|^\[run\]$|[run]\ndir = runs/from-config   ; relative to the submit directory|' "$src/configs/mlpvae.ini" > "$work/withdir.ini"
grep -q '^dir = runs/from-config' "$work/withdir.ini" || die "no [run] section in configs/mlpvae.ini"
override=$work/runs/override
m=$(LAUNCHER=mpirun sbatch --parsable -J t-mpirun -O -N 1 --ntasks-per-node=2 --time=1 --signal=B:CONT@5 \
      "$src/jobs/train.sbatch" "$src/configs/mlpvae.ini" "${args[@]}" run.dir="$override")
s=$(LAUNCHER=srun sbatch --parsable -J t-srun -N 1 --ntasks-per-node=1 --time=1 --signal=B:CONT@5 \
      "$src/jobs/train.sbatch" "$work/withdir.ini" "${args[@]}")
echo "submitted $m (mpirun, run.dir= argument) and $s (srun, [run] dir in the config)"
declare -A dir=([$m]=$override [$s]=$work/runs/from-config) name=([$m]=mpirun [$s]=srun)

# 1-3. wait for the time limit's requeue and the resume, then scancel (at
# once: another time limit would requeue again). The mpirun job, 2 tasks on
# one core, starts only on an empty node: after the srun job is cancelled.
declare -A done_=()
for _ in $(seq 420); do
    for id in "$m" "$s"; do
        [ -n "${done_[$id]:-}" ] && continue
        resumed=$(grep -ac '^resuming from' "$work/t-${name[$id]}-$id.out" 2> /dev/null || true)
        if [ "${resumed:-0}" -ge 1 ]; then
            sleep 2; scancel "$id"; done_[$id]=1
        fi
    done
    [ "${#done_[@]}" = 2 ] && break
    sleep 1
done
for id in "$m" "$s"; do
    l=${name[$id]} d=${dir[$id]} log=$work/t-${name[$id]}-$id.out
    st=$(wait_job "$id" 120) || true
    echo "job $id ($l): $st, restarts $(job_restarts "$id")"
    grep -a '^\[train.sbatch\|^resuming\|^stopping at\|^checkpoint:' "$log" | sed 's/^/  | /' | cut -c1-260 || true
    # the srun job's directory is the config's relative "runs/from-config"
    if grep -q "run dir \($d\|runs/from-config\) (" "$log" && [ -n "$(find "$d/checkpoints" -name 'step-*.h5' 2> /dev/null)" ]; then
        ok "$l: the script and gentrain use the same run dir ($d): its checkpoints are there"
    else fail "$l: run dir: $(grep 'run dir' "$log" | head -2)"; fi
    if grep -q "got SIGTERM" "$log" && grep -q "checkpoint at step [0-9]* is on disk: requeueing job $id" "$log" &&
       [ "$(job_restarts "$id")" = 1 ]; then
        ok "$l: the time limit's SIGTERM: checkpoint, exit 75, requeued once"
    else fail "$l: no requeue after the time limit (restarts $(job_restarts "$id"))"; fi
    if [ "$l" = mpirun ]; then
        # (mpirun drops its ranks' last output when it aborts: the marker is the word)
        if grep -q "launcher exited with 1; " "$log" && grep -q "gentrain wrote $d/stopped (step [0-9]* signal SIGTERM exit 75 ).*taking 75" "$log"; then
            ok "mpirun: exit 1 on SIGTERM, the stop marker turned it into 75"
        else fail "mpirun: $(grep 'launcher exited' "$log" | head -2)"; fi
    else
        if grep -aq "^stopping at step [0-9]* on SIGTERM: checkpoint written" "$log" && grep -q "launcher exited with 75" "$log"; then
            ok "srun: exit 75 on SIGTERM"
        else fail "srun: $(grep 'launcher exited' "$log" | head -2)"; fi
    fi
    if grep -aq "^resuming from \($d\|runs/from-config\)/checkpoints/step-" "$log"; then ok "$l: the requeued job resumed from its checkpoint"
    else fail "$l: no resume after the requeue"; fi
    if [ "$st" = CANCELLED ] && [ "$(job_restarts "$id")" = 1 ] &&
       grep -q "stopped by SIGTERM before the time limit (scancel or preemption): not requeueing" "$log"; then
        ok "$l: scancel: checkpoint, exit 75, not requeued"
    else fail "$l: scancel: state $st, restarts $(job_restarts "$id"): $(grep 'launcher exited\|requeu' "$log" | tail -2)"; fi
done
# no directory of the script's own making
if ! ls -d "$work"/runs/t-* > /dev/null 2>&1; then ok "no derived run directory was created"
else fail "derived run directories: $(ls -d "$work"/runs/t-*)"; fi

# 4. RUN_DIR and run.dir= that disagree: refused before anything starts
# (the script run as a job would run it: only the job id is needed so far)
rc=0
SLURM_JOB_ID=999 SLURM_SUBMIT_DIR=$work RUN_DIR=$work/runs/a bash "$src/jobs/train.sbatch" "$src/configs/mlpvae.ini" \
    run.dir="$work/runs/b" > "$work/bad.out" 2>&1 || rc=$?
if [ "$rc" = 1 ] && grep -q "RUN_DIR=$work/runs/a and run.dir=$work/runs/b among the arguments disagree" "$work/bad.out" &&
   [ ! -e "$work/runs/a" ] && [ ! -e "$work/runs/b" ]; then
    ok "RUN_DIR and run.dir= disagree: refused at once naming both"
else fail "RUN_DIR vs run.dir=: exit $rc: $(cat "$work/bad.out")"; fi

# 5. held, the step's pmix directory made, released
nolaunch=$work/runs/nolaunch
t=$(sbatch --parsable --hold -J t-nolaunch -o "$work/t-nolaunch.out" -N 1 -n 1 --time=2 \
      "$src/jobs/train.sbatch" "$src/configs/mlpvae.ini" "${args[@]}" run.dir="$nolaunch")
c=$(sbatch --parsable --hold -J t-nolaunch-scaling -o "$work/t-nolaunch-scaling.out" -N 1 -n 1 --time=2 \
      "$src/jobs/scaling.sbatch" "$work/scaling" nolaunch 100 "$src/configs/mlpvae.ini" data.limit=2000)
for id in "$t" "$c"; do mkdir -p "$cluster/tmp/spmix_appdir_$(id -u)_$id.0"; scontrol release "$id"; done
st=$(wait_job "$t" 120) || true
if [ "$st" = FAILED ] && [ "$(job_exit "$t")" = 1:0 ] && [ "$(job_restarts "$t")" = 0 ] &&
   grep -q "launch failed" "$work/t-nolaunch.out" &&
   grep -q "srun exited 0 but gentrain never started: it did not take its lock $nolaunch/gentrain.lock" "$work/t-nolaunch.out" &&
   ! grep -q "run finished" "$work/t-nolaunch.out" && [ ! -e "$nolaunch/slurm-done" ]; then
    ok "train.sbatch: a step that failed to launch (srun exit 0): exit 1, no slurm-done, not requeued"
else fail "train.sbatch, step launch failure: $st, exit $(job_exit "$t"): $(cat "$work/t-nolaunch.out")"; fi
st=$(wait_job "$c" 120) || true
if [ "$st" = FAILED ] && [ "$(job_exit "$c")" = 1:0 ] && grep -q "launch failed" "$work/t-nolaunch-scaling.out" &&
   grep -q "srun exited 0 but gentrain wrote no $work/scaling/runs/nolaunch/metrics.jsonl" "$work/t-nolaunch-scaling.out"; then
    ok "scaling.sbatch: a step that failed to launch (srun exit 0): exit 1"
else fail "scaling.sbatch, step launch failure: $st, exit $(job_exit "$c"): $(cat "$work/t-nolaunch-scaling.out")"; fi
finish
