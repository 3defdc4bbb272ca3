#!/usr/bin/env bash
# jobs/train.sbatch on a real one-machine Slurm (tools/slurm-local): a short
# 2-rank mlpvae run completes through `srun --mpi=pmix` and through `mpirun`,
# jobs/chain runs links one after the other (the first stopped by USR1, the
# second resuming, the third skipping the finished run), and a job stopped
# with scancel checkpoints but does not requeue itself.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/slurm_common.bash
source "$src/tests/slurm_common.bash"

args=("$src/configs/mlpvae.ini" train.steps=40 train.epochs=0 log.every=10 data.limit=2000 eval.n=500)
declare -A jid
for l in srun mpirun; do
    jid[$l]=$(LAUNCHER=$l sbatch --parsable -J "t-$l" -N 1 --ntasks-per-node=2 --time=10 \
              "$src/jobs/train.sbatch" "${args[@]}")
done
for l in srun mpirun; do
    id=${jid[$l]}
    st=$(wait_job "$id" 120) || true
    log=$work/t-$l-$id.out
    if [ "$st" = COMPLETED ] && [ "$(job_exit "$id")" = 0:0 ]; then ok "$l: job $id completed"; else fail "$l: job $id ended $st, exit $(job_exit "$id")"; fi
    if grep -q "vae model, 2 ranks x batch 100 = global batch 200" "$log" 2>/dev/null; then
        ok "$l: gentrain ran on 2 ranks"; else fail "$l: no 2-rank start line in $log"; fi
    m=$work/runs/t-$l-$id/metrics.jsonl
    if [ -f "$m" ] && "$py" -c 'import json,sys
rows=[json.loads(l) for l in open(sys.argv[1])]
assert [r["step"] for r in rows if "split" not in r] == [10,20,30,40], rows
assert any(r.get("split") == "test" for r in rows)' "$m"; then
        ok "$l: metrics.jsonl in the derived run dir runs/t-$l-$id"; else fail "$l: bad or missing $m"; fi
    if [ -f "$work/runs/t-$l-$id/slurm-done" ]; then ok "$l: run marked done"; else fail "$l: no slurm-done marker"; fi
done
# the launcher line shows one BLAS thread per rank and the pmix plugin
if grep -q -- "srun --mpi=pmix --cpus-per-task=1 " "$work/t-srun-${jid[srun]}.out" && grep -q "run.threads=1 " "$work/t-srun-${jid[srun]}.out"; then
    ok "srun --mpi=pmix, one thread per rank"
else fail "launcher line not as expected"; fi

# jobs/chain: three links on one run dir, launched with mpirun. Link 1 is
# sent the time-limit warning by hand (scancel --signal=USR1 --batch) once
# gentrain has started: it checkpoints and exits 75 without requeueing; link 2 starts
# only after it (afterany), resumes and finishes; link 3 sees the run done.
mapfile -t chain < <(LAUNCHER=mpirun RUN_DIR=$work/runs/chained "$src/jobs/chain" 3 -J t-chain -N 1 --ntasks-per-node=2 --time=10 -- \
                     "$src/jobs/train.sbatch" "$src/configs/mlpvae.ini" train.steps=800 train.epochs=0 log.every=100 \
                     data.limit=2000 eval.n=500 samples.every=0 checkpoint.every=0)
if [ ${#chain[@]} -eq 3 ]; then ok "chain submitted 3 jobs"; else fail "chain printed ${#chain[@]} ids"; fi
dep=$(scontrol show job "${chain[1]}" | sed -n 's/.*Dependency=\([^ ]*\).*/\1/p')
case "$dep" in afterany:${chain[0]}*) ok "link 2 depends on link 1 ($dep)" ;; *) fail "link 2 dependency '$dep'" ;; esac
# gentrain has its signal handlers once it says how it starts the run
for _ in $(seq 600); do grep -aq "^starting a new run" "$work/t-chain-${chain[0]}.out" 2>/dev/null && break; sleep 0.1; done
scancel --signal=USR1 --batch "${chain[0]}"
st=$(wait_job "${chain[0]}" 60) || true
if [ "$st" = FAILED ] && [ "$(job_exit "${chain[0]}")" = 75:0 ]; then ok "link 1 stopped with 75 on USR1 (via mpirun)"
else fail "link 1 ended $st, exit $(job_exit "${chain[0]}")"; fi
if grep -q "REQUEUE=0: not requeueing" "$work/t-chain-${chain[0]}.out"; then ok "link 1 did not requeue"
else fail "link 1 requeue message missing"; fi
for id in "${chain[@]:1}"; do
    st=$(wait_job "$id" 150) || true
    [ "$st" = COMPLETED ] || fail "chain job $id ended $st, exit $(job_exit "$id")"
done
if grep -aq "^resuming from .*step-" "$work/t-chain-${chain[1]}.out" && grep -q "run finished" "$work/t-chain-${chain[1]}.out"; then
    ok "link 2 resumed from link 1's checkpoint and finished the run"
else fail "link 2 did not resume and finish"; fi
if grep -q "already finished" "$work/t-chain-${chain[2]}.out"; then ok "link 3 saw the run finished"; else fail "link 3 did not skip"; fi
e1=$(scontrol show job "${chain[0]}" | sed -n 's/.* EndTime=\([^ ]*\).*/\1/p'); s2=$(scontrol show job "${chain[1]}" | sed -n 's/.* StartTime=\([^ ]*\).*/\1/p')
if [[ "$s2" > "$e1" || "$s2" == "$e1" ]]; then ok "link 2 started ($s2) after link 1 ended ($e1)"
else fail "link 2 started $s2 before link 1 ended $e1"; fi

# scancel means stop: gentrain checkpoints on the SIGTERM, the script does not requeue
id=$(sbatch --parsable -J t-cancel -N 1 --ntasks-per-node=2 --time=10 "$src/jobs/train.sbatch" \
        "$src/configs/mlpvae.ini" train.steps=100000 train.epochs=0 log.every=1000 data.limit=2000 samples.every=0 checkpoint.every=0)
for _ in $(seq 600); do grep -aq "^starting a new run" "$work/t-cancel-$id.out" 2>/dev/null && break; sleep 0.1; done
sleep 1
scancel "$id"
st=$(wait_job "$id" 60) || true
sleep 1
if [ "$st" = CANCELLED ] && [ "$(job_restarts "$id")" = 0 ] && grep -q "not requeueing" "$work/t-cancel-$id.out" &&
   grep -aq "^stopping at step .* on SIGTERM" "$work/t-cancel-$id.out"; then
    ok "scancel: checkpointed on SIGTERM and not requeued"
else fail "scancel: state $st, restarts $(job_restarts "$id")"; fi
finish
