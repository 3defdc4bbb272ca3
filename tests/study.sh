#!/usr/bin/env bash
# tools/study end to end at a tiny size, locally (mpirun, 2 runs at a time):
# toygan on ring8 (plain, and a variant that diverges: a NaN injected at step
# 25), toyvae on grid25, and a few steps of dcgan and vae on 2000
# Fashion-MNIST images, two seeds each.
#  1. the study finishes; study.csv has one row per run x evaluated step with
#     the documented columns and finite metrics where they apply; curves.csv
#     has the training statistics; every figure is a valid PNG; report.md has
#     the summary table, the diverged and collapsed counts and conclusions;
#  2. a rerun skips every finished point and evaluation; a point whose final
#     checkpoint and evaluation are gone resumes from its newest checkpoint
#     and only the missing evaluation runs;
#  3. bad study files (unknown key, missing config, unknown override key,
#     no train.steps) fail with one clear error naming the file and line.
# Needs the evaluation's classifier in build/eval-cache (the eval_classifier
# fixture).
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
"$py" -c 'import matplotlib, h5py' 2>/dev/null ||
  { echo "FAIL: matplotlib or h5py missing for $py: apt-get install -y python3-matplotlib python3-h5py"; exit 1; }
export GENTRAIN=$bin GENTRAIN_CACHE=$build/eval-cache OPENBLAS_NUM_THREADS=1
study=$src/tools/study
t0=$(date +%s)

cat > "$tmp/tiny.ini" <<EOF
; tests/study.sh: the smallest study that exercises everything
[study]
name = tiny
dir = $tmp/study
seeds = 1 2            ; an inline comment
jobs = 2
eval_n = 250
set = eval.at_end=false log.every=5

[group toygan]
config = $src/configs/toygan.ini
set = train.steps=40 train.batch_size=64 data.n=2000 data.n_test=500
eval_every = 20
variant.plain =
; a NaN in the batch at step 25: "training diverged", deterministically
variant.nan = debug.nan_rank=0 debug.nan_step=25

[group toyvae]
config = $src/configs/toyvae.ini
set = train.steps=40 data.toy=grid25 data.n=2000 data.n_test=500 eval.likelihood_n=200
eval_every = 20

[group dcgan]
config = $src/configs/dcgan.ini
set = train.steps=6 train.batch_size=16 data.limit=2000
eval_every = 6
final_metrics = fid,kid,pr,dc,classes,memorization

[group vae]
config = $src/configs/vae.ini
set = train.steps=6 train.batch_size=16 data.limit=2000 eval.likelihood_n=100
eval_every = 3
EOF

# 1. the study
if "$study" "$tmp/tiny.ini" > "$tmp/run1.log" 2>&1; then ok "tools/study ran ($(( $(date +%s) - t0 )) s)"
else fail "tools/study failed: $(tail -n 20 "$tmp/run1.log")"; fi
grep -E "training|diverged|evaluated|wrote" "$tmp/run1.log" | head -n 40 || true
if grep -q "toygan-nan-s1: diverged (training diverged at step 25" "$tmp/run1.log"; then
  ok "the NaN variant is reported as diverged"; else fail "no divergence line: $(cat "$tmp/run1.log")"; fi

if "$py" - "$tmp/study" <<'PY'
import csv, json, math, os, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(d, "study.csv"))))
cols = list(rows[0].keys())
fixed = ["group", "variant", "seed", "point", "family", "data", "config", "step", "final", "status", "rollbacks"]
assert cols[:len(fixed)] == fixed, cols
# toygan plain 2 seeds x steps 20, 40; nan 2 seeds x step 20 (diverged at 25); toyvae 2 x 2; dcgan 2 x 1; vae 2 x 2
want = {("toygan", "plain"): [20, 40], ("toygan", "nan"): [20], ("toyvae", "base"): [20, 40],
        ("dcgan", "base"): [6], ("vae", "base"): [3, 6]}
got = {}
for r in rows:
    got.setdefault((r["group"], r["variant"], r["seed"]), []).append(int(r["step"]))
assert len(got) == 10, sorted(got)
for (g, v, s), steps in got.items():
    assert steps == want[(g, v)], (g, v, s, steps)
def f(r, k):
    x = float(r[k])
    assert math.isfinite(x), (r["point"], r["step"], k, r[k])
    return x
for r in rows:
    assert r["seed"] in ("1", "2") and r["final"] == ("1" if int(r["step"]) == max(want[(r["group"], r["variant"])]) and r["variant"] != "nan" else "0"), r
    assert r["status"] == ("diverged" if r["variant"] == "nan" else "finished"), r
    if r["data"] == "fashion-mnist":
        for k in ("fid_train", "fid_test", "kid_train", "precision_train", "recall_train", "classes_covered", "class_kl"):
            f(r, k)
        assert f(r, "fid_train") > 0 and 0 <= f(r, "precision_train") <= 1
        if r["final"] == "1":
            for k in ("density_train", "coverage_train", "nn_feature_gen", "nn_feature_test", "closer_to_train", "ct"):
                f(r, k)
    else:
        assert 0 <= f(r, "modes_covered") <= f(r, "modes") == (8 if r["data"] == "ring8" else 25), r
        f(r, "high_quality_share")
    if r["family"] == "vae":
        assert f(r, "neg_elbo_test") > 0 and math.isfinite(f(r, "neg_elbo_gap")), r
print(f"  study.csv: {len(rows)} rows, {len(cols)} columns")
curves = list(csv.DictReader(open(os.path.join(d, "curves.csv"))))
pts = {c["point"] for c in curves}
assert len(pts) == 10, pts
for c in curves:
    if c["family"] == "gan" and c["variant"] == "plain":
        for k in ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"):
            assert math.isfinite(float(c[k])), (c, k)
    if c["family"] == "vae":
        for k in ("loss", "recon", "kl"):
            assert math.isfinite(float(c[k])), (c, k)
nan = sorted(int(c["step"]) for c in curves if c["point"] == "toygan-nan-s1")
assert nan == [5, 10, 15, 20], nan   # nothing logged after the divergence
print(f"  curves.csv: {len(curves)} rows")
PY
then ok "study.csv: one row per run x evaluated step, the fixed columns, finite metrics where they apply; curves.csv"
else fail "study.csv or curves.csv wrong"; fi

figs=("$tmp"/study/figures/*.png)
if [ "${#figs[@]}" -ge 12 ] && "$py" - "${figs[@]}" <<'PY'
import os, struct, sys, zlib
for p in sys.argv[1:]:
    data = open(p, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", p
    w, h = struct.unpack(">II", data[16:24])
    assert data[12:16] == b"IHDR" and w > 100 and h > 100 and data[-8:-4] == b"IEND", (p, w, h)
    print(f"  {os.path.basename(p)}: {w}x{h}, {len(data)} bytes")
PY
then ok "${#figs[@]} figures, all valid PNGs"; else fail "figures: ${figs[*]}"; fi
for f in eval-fashion-mnist eval-ring8 eval-grid25 curves-toygan curves-toyvae curves-dcgan curves-vae samples-dcgan \
         samples-vae scatter-ring8 scatter-grid25 memorization vae-nll; do
  [ -s "$tmp/study/figures/$f.png" ] || fail "no figure $f.png"
done
rep=$tmp/study/report.md
if [ -s "$rep" ] && grep -q '^| toygan/nan | 2 | 2 ' "$rep" && grep -q '^| dcgan | 2 | 0 ' "$rep" &&
   grep -q '^## Conclusions' "$rep" && grep -q 'Of 10 runs, 2 diverged' "$rep" && grep -q 'tools/study --slurm' "$rep" &&
   grep -q 'wall-clock time' "$rep"; then
  ok "report.md: summary tables (2 of 2 NaN runs diverged), conclusions, wall time, how to reproduce"
else fail "report.md: $(head -c 3000 "$rep")"; fi

# 2. rerun: nothing to do; then resume one point
t1=$(date +%s)
"$study" "$tmp/tiny.ini" > "$tmp/run2.log" 2>&1 || fail "the rerun failed: $(tail -n 5 "$tmp/run2.log")"
if grep -q "10 points (10 done already)" "$tmp/run2.log" && ! grep -qE "training|evaluated" "$tmp/run2.log"; then
  ok "a rerun skips every finished point and evaluation ($(( $(date +%s) - t1 )) s)"
else fail "the rerun did work: $(cat "$tmp/run2.log")"; fi
rm "$tmp/study/runs/toyvae-base-s2/checkpoints/step-00000040.h5" "$tmp/study/evals/toyvae-base-s2/step-00000040.json"
"$study" "$tmp/tiny.ini" > "$tmp/run3.log" 2>&1 || fail "the resume failed: $(tail -n 5 "$tmp/run3.log")"
if grep -q "toyvae-base-s2: training 40 steps (resuming)" "$tmp/run3.log" &&
   grep -q "toyvae-base-s2: evaluated step 40" "$tmp/run3.log" &&
   [ "$(grep -cE "training|evaluated" "$tmp/run3.log")" = 2 ] &&
   grep -q "resuming from .*step-00000020.h5" "$tmp/study/logs/toyvae-base-s2.train.log"; then
  ok "an unfinished point resumes from its newest checkpoint (step 20) and only its missing evaluation runs"
else fail "resume: $(cat "$tmp/run3.log"; tail -n 5 "$tmp/study/logs/toyvae-base-s2.train.log")"; fi

# 3. bad study files: one clear error each, nothing run
bad() {  # NAME PATTERN: the study file $tmp/bad.ini fails with one line matching PATTERN
  local rc=0
  "$study" "$tmp/bad.ini" > "$tmp/bad.out" 2> "$tmp/bad.err" || rc=$?
  if [ "$rc" -eq 1 ] && [ "$(wc -l < "$tmp/bad.err")" -eq 1 ] && grep -qE "$2" "$tmp/bad.err" && [ ! -e "$tmp/badstudy" ]; then
    ok "$1: $(cat "$tmp/bad.err")"
  else fail "$1: exit $rc: $(cat "$tmp/bad.err" "$tmp/bad.out")"; fi
}
head="[study]
name = bad
dir = $tmp/badstudy"
printf '%s\n[group g]\nconfig = %s\nset = train.steps=4\nseed = 3\n' "$head" "$src/configs/toyvae.ini" > "$tmp/bad.ini"
bad "unknown key" "^study: error: .*/bad.ini:7: unknown key seed in \[group g\]; keys allowed: .*seeds"
printf '%s\n[group g]\nconfig = configs/nope.ini\n' "$head" > "$tmp/bad.ini"
bad "missing config" "^study: error: .*/bad.ini:5: config configs/nope.ini not found"
printf '%s\n[group g]\nconfig = %s\nset = train.steps=4 train.batchsize=8\n' "$head" "$src/configs/toyvae.ini" > "$tmp/bad.ini"
bad "unknown override key" "bad.ini:6: override 'train.batchsize=8': unknown key \[train\] batchsize; keys allowed in \[train\]: .*batch_size"
printf '%s\n[group g]\nconfig = %s\nset = train.steps=0 train.epochs=1\n' "$head" "$src/configs/toyvae.ini" > "$tmp/bad.ini"
bad "no train.steps" "bad.ini:4: \[group g\] needs train.steps"
printf '%s\n[grop g]\n' "$head" > "$tmp/bad.ini"
bad "unknown section" "bad.ini:4: unknown section \[grop g\]"
"$study" --help > "$tmp/help.txt" 2>&1 || fail "--help: exit non-zero"
if grep -q "variant.sn = " "$tmp/help.txt" && grep -q "grid.optim.lr" "$tmp/help.txt"; then ok "--help documents the study file"
else fail "--help: $(cat "$tmp/help.txt")"; fi

echo "($(( $(date +%s) - t0 )) s)"
finish study
