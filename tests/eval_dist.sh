#!/usr/bin/env bash
# gentrain eval over MPI ranks, and its files:
#  1. every metric of a dcgan and of a vae checkpoint (all metrics, IWAE with
#     k = 50 on 100 examples) is the same on 1 and 2 ranks: the work is
#     split in fixed chunks, counts are summed as integers and sums of doubles
#     are taken in row order, so the numbers agree to the last printed digit
#     (the test allows 1e-9 relative, "summation rounding", and reports how
#     many are bitwise equal);
#  2. the results land in the run's metrics.h5 as /eval/step-XXXXXXXX, which
#     h5py reads (attributes, histograms, per-sample distances) and
#     `gentrain inspect` verifies; a second evaluation replaces the group.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export GENTRAIN_CACHE=$build/eval-cache

"$bin" train "$src/configs/dcgan.ini" run.dir="$tmp/dcgan" train.steps=30 train.batch_size=32 log.every=30 \
    samples.every=0 eval.at_end=false > "$tmp/dcgan.log"
"$bin" train "$src/configs/vae.ini" run.dir="$tmp/vae" train.steps=100 log.every=100 samples.every=0 \
    eval.at_end=false > "$tmp/vae.log"
ckpts=("$tmp/dcgan/checkpoints/step-00000030.h5" "$tmp/vae/checkpoints/step-00000100.h5")
common=(--n 1000 --json eval.iwae_k=50 eval.likelihood_n=100)
"$bin" eval "${ckpts[@]}" "${common[@]}" > "$tmp/np1.json" 2> "$tmp/np1.log" || { cat "$tmp/np1.log"; exit 1; }
mpirun --oversubscribe -np 2 "$bin" eval "${ckpts[@]}" "${common[@]}" --h5 none > "$tmp/np2.json" 2> "$tmp/np2.log" ||
  { cat "$tmp/np2.log"; exit 1; }

if "$py" - "$tmp/np1.json" "$tmp/np2.json" <<'PY'
import json, math, sys
runs = [[json.loads(l) for l in open(p)] for p in sys.argv[1:]]
for ck in range(2):
    base = runs[0][ck]
    assert base["world_size"] == 1
    for other in runs[1:]:
        o = other[ck]
        assert o["world_size"] > 1 and o["checkpoint"] == base["checkpoint"]
        assert o["metrics"].keys() == base["metrics"].keys(), (o["metrics"].keys(), base["metrics"].keys())
        same = 0
        for k, a in base["metrics"].items():
            b = o["metrics"][k]
            if a == b: same += 1; continue
            assert a is not None and b is not None and abs(a - b) <= 1e-9 * max(abs(a), abs(b)), (k, a, b)
        assert o["arrays"] == base["arrays"]
        print(f"{base['model']}: {len(base['metrics'])} values on {o['world_size']} ranks, {same} bitwise equal to 1 rank")
m = runs[0][1]["metrics"]
print("vae:", {k: round(m[k], 3) for k in ("neg_elbo_train", "neg_elbo_test", "iwae_nll_train", "iwae_nll_test")})
assert m["iwae_nll_test"] <= m["neg_elbo_test"] and m["iwae_nll_train"] <= m["neg_elbo_train"], m
assert "d_gap" in runs[0][0]["metrics"] and "ct" in runs[0][0]["metrics"]
PY
then ok "every metric the same on 1 and 2 ranks (dcgan, vae)"
else fail "metrics depend on the number of ranks"; fi

# 2. metrics.h5 /eval/step-XXXXXXXX
if "$py" - "$tmp/dcgan/metrics.h5" "$tmp/vae/metrics.h5" "$tmp/np1.json" <<'PY'
import h5py, json, sys
runs = [json.loads(l) for l in open(sys.argv[3])]
for path, r, step in ((sys.argv[1], runs[0], 30), (sys.argv[2], runs[1], 100)):
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "gentrain-metrics"
        g = f[f"eval/step-{step:08d}"]
        assert g.attrs["step"] == step and g.attrs["n"] == 1000
        assert g.attrs["classifier_hash"] == r["classifier"]["hash"]
        for k, v in r["metrics"].items():
            assert v is None or abs(g.attrs[k] - v) <= 1e-8 * abs(v), (k, g.attrs[k], v)
        assert list(g["class_hist"][:]) == r["arrays"]["class_hist"] and sum(g["class_hist"][:]) == 1000
        assert g["nn_feature_gen"].shape == (1000,) and g["nn_pixel_gen"].shape == (1000,)
        print(path, "eval/step-%08d:" % step, len(g.attrs), "attributes,", list(g))
PY
then ok "metrics.h5 /eval/step-XXXXXXXX read by h5py equals the JSON"
else fail "metrics.h5 /eval groups"; fi
if "$bin" inspect "$tmp/vae/metrics.h5" > "$tmp/inspect.txt" && grep -q "eval/step-00000100/class_hist" "$tmp/inspect.txt"; then
  ok "gentrain inspect verifies metrics.h5 with its /eval group"
else fail "inspect: $(cat "$tmp/inspect.txt")"; fi
"$bin" eval "${ckpts[1]}" --n 500 --metrics fid > "$tmp/again.txt" 2>&1
if "$py" -c "import h5py,sys; g = h5py.File(sys.argv[1])['eval/step-00000100']; assert g.attrs['n'] == 500 and 'class_hist' not in g, dict(g.attrs)" "$tmp/vae/metrics.h5"; then
  ok "evaluating a checkpoint again replaces its group"
else fail "the group was not replaced"; fi
if grep -q "classifier [0-9a-f]\{16\}, test accuracy" "$tmp/again.txt"; then ok "the table names the classifier's hash and accuracy"
else fail "table: $(cat "$tmp/again.txt")"; fi

finish eval_dist
