#!/usr/bin/env bash
# Evaluation during training ([eval] every):
#  1. a dcgan run with eval.every=10 logs FID, the class histogram's KL and
#     D's train/test gap at steps 10 and 20 into metrics.jsonl ("split":
#     "eval", with the classifier's hash and accuracy) and metrics.h5
#     (/eval/training); a vae run logs its test ELBO;
#  2. the evaluation does not change training: the final parameters equal
#     those of the same run without it, bit for bit (2 ranks);
#  3. a GAN with an EMA generator (model.g_ema) is evaluated twice: the EMA
#     generator's numbers are the main ones, the live generator's are logged
#     as live_* (metrics.jsonl, /eval/training) and equal the numbers of the
#     same run without g_ema (the EMA does not change training), the EMA's
#     differ; the run's parameters (live and EMA) are bitwise those of the
#     run without evaluation; gentrain eval of its checkpoint reports
#     "metrics" (EMA) and "metrics_live" (JSON), two table blocks, and
#     /eval/step-X with its subgroup live in metrics.h5;
#  4. a run that needs the classifier and finds none in its cache stops
#     before it starts, naming the command that makes it, and leaves no run
#     directory.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export GENTRAIN_CACHE=$build/eval-cache
short=(train.steps=20 train.batch_size=16 log.every=10 samples.every=0 eval.at_end=false)

mpirun --oversubscribe -np 2 "$bin" train "$src/configs/dcgan.ini" run.dir="$tmp/with" "${short[@]}" \
    eval.every=10 eval.samples=500 eval.metrics=fid,classes,discriminator debug.dump_params="$tmp/with.params" \
    > "$tmp/with.log" 2>&1 || { cat "$tmp/with.log"; exit 1; }
mpirun --oversubscribe -np 2 "$bin" train "$src/configs/dcgan.ini" run.dir="$tmp/without" "${short[@]}" \
    debug.dump_params="$tmp/without.params" > "$tmp/without.log" 2>&1 || { cat "$tmp/without.log"; exit 1; }
"$bin" train "$src/configs/vae.ini" run.dir="$tmp/vae" "${short[@]}" eval.every=20 eval.samples=200 \
    eval.metrics=fid,elbo eval.likelihood_n=50 > "$tmp/vae.log" 2>&1 || { cat "$tmp/vae.log"; exit 1; }
ema=(model.g_ema=0.9 eval.every=10 eval.samples=500 "eval.metrics=fid,classes,discriminator")
mpirun --oversubscribe -np 2 "$bin" train "$src/configs/dcgan.ini" run.dir="$tmp/ema" "${short[@]}" "${ema[@]}" \
    debug.dump_params="$tmp/ema.params" > "$tmp/ema.log" 2>&1 || { cat "$tmp/ema.log"; exit 1; }
mpirun --oversubscribe -np 2 "$bin" train "$src/configs/dcgan.ini" run.dir="$tmp/ema-without" "${short[@]}" \
    model.g_ema=0.9 debug.dump_params="$tmp/ema-without.params" > "$tmp/ema-without.log" 2>&1 ||
  { cat "$tmp/ema-without.log"; exit 1; }
grep "^eval at step" "$tmp/with.log" "$tmp/vae.log" "$tmp/ema.log" || true

if "$py" - "$tmp/with" "$tmp/vae" <<'PY'
import h5py, json, sys
for run, steps, keys in ((sys.argv[1], [10, 20], ["fid_train", "fid_test", "class_kl", "classes_covered", "d_train",
                                                   "d_test", "d_gap", "d_gen"]),
                         (sys.argv[2], [20], ["fid_train", "neg_elbo_train", "neg_elbo_test", "neg_elbo_gap"])):
    rows = [json.loads(l) for l in open(run + "/metrics.jsonl")]
    ev = [r for r in rows if r.get("split") == "eval"]
    assert [r["step"] for r in ev] == steps, ev
    for r in ev:
        assert all(isinstance(r[k], (int, float)) for k in keys), r
        assert len(r["classifier_hash"]) == 16 and r["classifier_accuracy"] >= 0.92 and r["n"] in (200, 500), r
    with h5py.File(run + "/metrics.h5", "r") as f:
        t = f["eval/training"]
        assert list(t["step"][:]) == steps, list(t["step"][:])
        assert t.attrs["classifier_hash"] == ev[0]["classifier_hash"]
        for k in keys:
            assert abs(t[k][-1] - ev[-1][k]) <= 1e-6 * abs(ev[-1][k]), (k, t[k][-1], ev[-1][k])
    print(run, {k: round(ev[-1][k], 3) for k in keys})
PY
then ok "eval lines in metrics.jsonl and /eval/training in metrics.h5 (dcgan: FID, class KL, D gap; vae: ELBO)"
else fail "evaluation during training"; fi

if cmp -s "$tmp/with.params.rank0" "$tmp/without.params.rank0" && cmp -s "$tmp/with.params.rank1" "$tmp/without.params.rank1"; then
  ok "evaluation during training leaves the parameters bitwise unchanged (2 ranks)"
else fail "evaluation during training changed the parameters"; fi

if GENTRAIN_CACHE="$tmp/empty-cache" "$bin" train "$src/configs/dcgan.ini" run.dir="$tmp/nocls" "${short[@]}" eval.every=10 \
    > "$tmp/nocls.log" 2>&1; then fail "a run without its classifier started"
elif grep -q "gentrain: error: .*gentrain eval --prepare" "$tmp/nocls.log" && [ ! -d "$tmp/nocls" ] &&
     [ "$(grep -c 'gentrain: error' "$tmp/nocls.log")" -eq 1 ]; then
  ok "no classifier in the cache: one error naming gentrain eval --prepare, no run directory"
else fail "no classifier: $(cat "$tmp/nocls.log")"; fi

if "$py" - "$tmp/with" "$tmp/ema" <<'PY'
import h5py, json, sys
keys = ["fid_train", "fid_test", "class_kl", "class_entropy", "d_train", "d_test", "d_gen"]
def rows(run):
    return [r for r in map(json.loads, open(run + "/metrics.jsonl")) if r.get("split") == "eval"]
plain, ema = rows(sys.argv[1]), rows(sys.argv[2])
assert [r["step"] for r in ema] == [10, 20], ema
for p, e in zip(plain, ema):
    assert "generator" not in p and e["generator"] == "ema", (p, e)
    assert not any(k.startswith("live_") for k in p), p
    for k in keys:  # the live generator is the plain run's (bitwise the same training)
        assert e["live_" + k] == p[k], (e["step"], k, e["live_" + k], p[k])
    # the main numbers are another generator's (D's on real images are the same D's)
    assert e["fid_train"] != e["live_fid_train"] and e["d_gen"] != e["live_d_gen"], e
    assert e["d_train"] == e["live_d_train"], e
with h5py.File(sys.argv[2] + "/metrics.h5", "r") as f:
    t = f["eval/training"]
    for k in keys:
        assert list(t[k][:]) == [r[k] for r in ema] or abs(t[k][-1] - ema[-1][k]) <= 1e-6 * abs(ema[-1][k]), k
        assert abs(t["live_" + k][-1] - ema[-1]["live_" + k]) <= 1e-6 * abs(ema[-1]["live_" + k]), k
print("ema", {k: (round(ema[-1][k], 3), round(ema[-1]["live_" + k], 3)) for k in ("fid_train", "class_kl", "d_gen")})
PY
then ok "g_ema: evaluation during training reports the EMA generator and live_* (= the run without g_ema)"
else fail "g_ema: evaluation during training"; fi

if cmp -s "$tmp/ema.params.rank0" "$tmp/ema-without.params.rank0" && cmp -s "$tmp/ema.params.rank1" "$tmp/ema-without.params.rank1" &&
   grep -q "ema_generator" "$tmp/ema.params.rank0"; then
  ok "g_ema: evaluation during training leaves the parameters and the EMA generator bitwise unchanged (2 ranks)"
else fail "g_ema: evaluation during training changed the parameters"; fi

ck=$tmp/ema/checkpoints/step-00000020.h5
if "$bin" eval "$ck" --n 300 --metrics fid,classes,discriminator --json > "$tmp/ema.json" 2> "$tmp/ema-eval.log" &&
   "$bin" eval "$ck" --n 300 --metrics fid,classes --h5 none > "$tmp/ema.table" 2>> "$tmp/ema-eval.log" &&
   "$py" - "$tmp/ema.json" "$tmp/ema/metrics.h5" "$tmp/ema.table" <<'PY'
import h5py, json, sys
j = json.loads(open(sys.argv[1]).read())
assert j["generator"] == "ema" and set(j["metrics"]) == set(j["metrics_live"]), j
assert j["metrics"]["fid_train"] != j["metrics_live"]["fid_train"], j
assert sum(j["arrays"]["class_hist"]) == 300 and sum(j["arrays_live"]["class_hist"]) == 300, j
with h5py.File(sys.argv[2], "r") as f:
    g = f["eval/step-00000020"]
    gen = g.attrs["generator"]
    assert (gen.decode() if isinstance(gen, bytes) else gen) == "ema", gen
    close = lambda a, b: abs(a - b) <= 1e-6 * abs(b)  # JSON has 9 digits
    assert close(g.attrs["fid_train"], j["metrics"]["fid_train"]), (g.attrs["fid_train"], j["metrics"])
    assert close(g["live"].attrs["fid_train"], j["metrics_live"]["fid_train"])
    assert list(g["live/class_hist"][:]) == j["arrays_live"]["class_hist"]
t = open(sys.argv[3]).read()
assert "EMA generator" in t and "live generator" in t and t.count("FID ") == 2, t
print("eval of a g_ema checkpoint: FID", round(j["metrics"]["fid_train"], 2), "(EMA),",
      round(j["metrics_live"]["fid_train"], 2), "(live)")
PY
then ok "g_ema: gentrain eval reports metrics (EMA) and metrics_live, two table blocks, /eval/step-X and its live"
else cat "$tmp/ema-eval.log"; fail "g_ema: gentrain eval"; fi

finish eval_train
