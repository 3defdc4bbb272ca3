#!/usr/bin/env bash
# tools/study --slurm on a real one-machine Slurm (tools/slurm-local): a tiny
# study (toygan on ring8 and toyvae on grid25, two seeds, 40 steps) is
# submitted as one job array (jobs/study.sbatch: a task trains its point
# with srun --mpi=pmix and evaluates it) plus a collector job; --wait returns
# when the collector has written the report. Checks: every task completed,
# study.csv has one row per run x evaluated step with finite metrics, the
# figures are valid PNGs, report.md says how to reproduce on Slurm; a second
# submission finds every point done (the tasks train and evaluate nothing).
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/slurm_common.bash
source "$src/tests/slurm_common.bash"
"$py" -c 'import matplotlib, h5py' 2>/dev/null || die "matplotlib or h5py missing for $py: apt-get install -y python3-matplotlib python3-h5py"
export GENTRAIN_CACHE=$build/eval-cache OPENBLAS_NUM_THREADS=1

cat > "$work/tiny.ini" <<EOF2
[study]
name = tiny-slurm
dir = $work/study
seeds = 1 2
eval_n = 500
set = eval.at_end=false log.every=10 train.steps=40 data.n=2000 data.n_test=500

[group toygan]
config = $src/configs/toygan.ini
set = train.batch_size=64
eval_every = 20

[group toyvae]
config = $src/configs/toyvae.ini
set = data.toy=grid25 eval.likelihood_n=200
eval_every = 20
EOF2

if "$src/tools/study" --slurm --wait --time 5 "$work/tiny.ini" > "$work/submit.log" 2>&1; then
  ok "tools/study --slurm --wait: the collector wrote the report"
else fail "tools/study --slurm failed: $(cat "$work/submit.log")"; fi
cat "$work/submit.log"
array=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["array"])' "$work/study/slurm.json" 2>/dev/null || echo none)
states=$(squeue -h -j "$array" -t all -o "%i %T" 2>/dev/null | sort || true)
if [ "$(grep -c COMPLETED <<<"$states")" = 4 ]; then ok "job array $array: 4 tasks completed"
else fail "job array $array: $states"; fi
if grep -q "^# .*: srun --mpi=pmix -n 1 .*gentrain train " "$work/study/logs/toygan-base-s1.train.log" &&
   grep -q "^# .*: srun --mpi=pmix -n 1 .*gentrain eval " "$work/study/logs/toygan-base-s1.eval.log"; then
  ok "the tasks train and evaluate through srun --mpi=pmix"
else fail "no srun in the task's logs: $(head -n 3 "$work/study/logs/toygan-base-s1.train.log")"; fi
if "$py" - "$work/study" <<'PY'
import csv, math, os, sys
rows = list(csv.DictReader(open(os.path.join(sys.argv[1], "study.csv"))))
assert len(rows) == 8, len(rows)
assert sorted({(r["group"], r["seed"]) for r in rows}) == [("toygan", "1"), ("toygan", "2"), ("toyvae", "1"), ("toyvae", "2")]
for r in rows:
    assert r["status"] == "finished" and int(r["step"]) in (20, 40), r
    assert math.isfinite(float(r["modes_covered"])) and math.isfinite(float(r["high_quality_share"])), r
    if r["family"] == "vae":
        assert math.isfinite(float(r["neg_elbo_test"])), r
print(f"  study.csv: {len(rows)} rows")
PY
then ok "study.csv: 4 runs x 2 evaluated steps, finite metrics"; else fail "study.csv wrong"; fi
figs=("$work"/study/figures/*.png)
if [ "${#figs[@]}" -ge 6 ] && "$py" - "${figs[@]}" <<'PY'
import sys
for p in sys.argv[1:]:
    d = open(p, "rb").read()
    assert d[:8] == b"\x89PNG\r\n\x1a\n" and len(d) > 1000 and d[-8:-4] == b"IEND", p
PY
then ok "${#figs[@]} figures, valid PNGs"; else fail "figures: ${figs[*]}"; fi
if grep -q "tools/study --slurm" "$work/study/report.md" && grep -q '^| toygan | 2 | 0 ' "$work/study/report.md"; then
  ok "report.md: summary and the Slurm command"; else fail "report.md: $(head -c 2000 "$work/study/report.md")"; fi

# again: every point is done; the tasks only say so
rm -f "$work/study/report.md"
if "$src/tools/study" --slurm --wait --time 5 "$work/tiny.ini" > "$work/submit2.log" 2>&1 && [ -s "$work/study/report.md" ] &&
   ! grep -lE "training|evaluated step" "$work"/study/logs/task-*-"$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["array"])' "$work/study/slurm.json")".out; then
  ok "a second submission: every task finds its point trained and evaluated, the report is written again"
else fail "second submission: $(cat "$work/submit2.log"; tail -n 5 "$work"/study/logs/task-*.out)"; fi
finish
