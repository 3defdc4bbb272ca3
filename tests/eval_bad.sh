#!/usr/bin/env bash
# Bad input to gentrain eval: one clear error each (exit 1, one
# "gentrain: error:" line naming what is wrong), nothing half-done:
#  - a checkpoint with no generator or decoder (the classifier's own);
#  - a classifier checkpoint trained on images of another shape (14x14);
#  - N larger than the data there is (--n beyond a samples file; IWAE
#    examples beyond the test set);
#  - a classifier that does not exist; a checkpoint that does not exist;
#  - unknown metrics, metrics that do not apply, unknown options.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export GENTRAIN_CACHE=$build/eval-cache
images() { "$py" "$src/tests/eval_images.py" "$@"; }
expect_error() {  # name pattern command...
  local name=$1 pattern=$2; shift 2
  local rc=0
  "$@" > "$tmp/err.out" 2> "$tmp/err.txt" || rc=$?
  if [ "$rc" -eq 0 ]; then fail "$name: exit 0"; return; fi
  local lines
  lines=$(grep -c "gentrain: error:" "$tmp/err.txt" || true)
  if grep -qE -- "$pattern" "$tmp/err.txt" && [ "$lines" -eq 1 ]; then ok "$name (exit $rc): $(grep 'gentrain: error:' "$tmp/err.txt" | cut -c1-160)"
  else fail "$name: exit $rc, $lines error lines: $(cat "$tmp/err.txt")"; fi
}

short=(train.batch_size=8 log.every=2 samples.every=0 eval.at_end=false)
"$bin" train "$src/configs/dcgan.ini" run.dir="$tmp/gan" train.steps=2 "${short[@]}" > /dev/null
"$bin" train "$src/configs/vae.ini" run.dir="$tmp/vae" train.steps=2 "${short[@]}" > /dev/null
gan=$tmp/gan/checkpoints/step-00000002.h5 vae=$tmp/vae/checkpoints/step-00000002.h5
cls=$("$bin" eval --prepare --json 2> /dev/null | "$py" -c 'import json,sys; print(json.load(sys.stdin)["classifier"]["path"])')

expect_error "a checkpoint without generator or decoder" "holds a classifier: it has no generator or decoder" \
  "$bin" eval "$cls"
images idx "$tmp/small" 14 256
"$bin" train "$src/configs/classifier.ini" run.dir="$tmp/small-cls" train.epochs=0 train.steps=2 \
    data.train_images="$tmp/small-images.gz" data.train_labels="$tmp/small-labels.gz" \
    data.test_images="$tmp/small-images.gz" data.test_labels="$tmp/small-labels.gz" "${short[@]}" > /dev/null
expect_error "a classifier of another input shape" "takes inputs of shape 1x14x14, but the data .* are 1x28x28" \
  "$bin" eval "$gan" eval.classifier="$tmp/small-cls/checkpoints/step-00000002.h5"
expect_error "a classifier checkpoint that is no classifier" "holds a gan model, not a classifier" \
  "$bin" eval "$gan" eval.classifier="$gan"
images rows "$tmp/hundred.h5" test 0 100
expect_error "N larger than the samples there are" "--n 500: .*hundred.h5 holds only 100 samples" \
  "$bin" eval --samples "$tmp/hundred.h5" --n 500
expect_error "IWAE examples beyond the test set" "likelihood_n = 20000 is more than the data has .*10000 test" \
  "$bin" eval "$vae" --metrics iwae eval.likelihood_n=20000
expect_error "a missing classifier" "classifier = $tmp/nowhere.h5: No such file" \
  "$bin" eval "$gan" eval.classifier="$tmp/nowhere.h5"
expect_error "a missing checkpoint" "cannot evaluate $tmp/nothing.h5: No such file" "$bin" eval "$tmp/nothing.h5"
expect_error "an unknown metric" "unknown metric 'fidd'; metrics: fid, kid, pr, dc, classes, memorization, discriminator" \
  "$bin" eval "$gan" --metrics fid,fidd
expect_error "a metric that does not apply" "metric 'iwae' does not apply here \(it needs a VAE\)" \
  "$bin" eval "$gan" --metrics iwae
expect_error "a model key on the command line" "only data.\*, eval.\* and run.threads can be set here" \
  "$bin" eval "$gan" model.z_dim=3
expect_error "samples of another shape" "hundred.h5:samples has shape of rank 4 .* but the data are 2x1x1" \
  "$bin" eval --samples "$tmp/hundred.h5" data.kind=toy
images points "$tmp/points.h5" 0 1 100
expect_error "2-D samples against images" "points.h5:samples has shape of rank 2 \(100 x 2 values\), but the data are 1x28x28" \
  "$bin" eval --samples "$tmp/points.h5"

finish eval_bad
