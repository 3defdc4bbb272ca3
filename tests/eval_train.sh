#!/usr/bin/env bash
# Evaluation during training ([eval] every):
#  1. a dcgan run with eval.every=10 logs FID, the class histogram's KL and
#     D's train/test gap at steps 10 and 20 into metrics.jsonl ("split":
#     "eval", with the classifier's hash and accuracy) and metrics.h5
#     (/eval/training); a vae run logs its test ELBO;
#  2. the evaluation does not change training: the final parameters equal
#     those of the same run without it, bit for bit (2 ranks);
#  3. a run that needs the classifier and finds none in its cache stops
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
grep "^eval at step" "$tmp/with.log" "$tmp/vae.log" || true

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

finish eval_train
