#!/usr/bin/env bash
# The evaluation classifier (configs/classifier.ini, built into gentrain),
# trained once into the build tree's cache ($build/eval-cache) and shared by
# the other tests/eval_*.sh (a ctest fixture):
#  1. `gentrain eval --prepare` trains it (unless cached), makes the data's
#     features and the memorization reference, and reports its hash and test
#     accuracy, which must be at least 92%;
#  2. a second call reuses the cache: same hash and accuracy, in seconds;
#  3. the cached run is configs/classifier.ini on the full Fashion-MNIST.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export GENTRAIN_CACHE=$build/eval-cache

start=$(date +%s)
"$bin" eval --prepare --json > "$tmp/first.json" 2> "$tmp/first.log" || { cat "$tmp/first.log"; exit 1; }
first_s=$(( $(date +%s) - start ))
start=$(date +%s)
"$bin" eval --prepare --json > "$tmp/second.json" 2> "$tmp/second.log" || { cat "$tmp/second.log"; exit 1; }
second_s=$(( $(date +%s) - start ))
echo "prepare: ${first_s} s (training if it was not cached), then ${second_s} s"
grep -E "trained in|features made|reference made" "$tmp/first.log" || true

if "$py" - "$tmp/first.json" "$tmp/second.json" <<'PY'
import json, re, sys
a, b = (json.load(open(p))["classifier"] for p in sys.argv[1:3])
print(f"classifier {a['hash']}: test accuracy {a['accuracy']:.4f} ({a['path']})")
assert re.fullmatch(r"[0-9a-f]{16}", a["hash"]), a
assert a["accuracy"] >= 0.92, a
assert a == b, (a, b)
PY
then ok "classifier: accuracy >= 92%, the same hash and accuracy from the cache"
else fail "classifier: $(cat "$tmp/first.json" "$tmp/second.json")"; fi
if [ "$second_s" -le 60 ] && ! grep -q "training it now" "$tmp/second.log"; then ok "second prepare reuses the cache (${second_s} s)"
else fail "second prepare took ${second_s} s: $(cat "$tmp/second.log")"; fi

run_dir=$(dirname "$(dirname "$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["classifier"]["path"])' "$tmp/first.json")")")
if grep -q "^epochs = 5" "$run_dir/config.ini" && grep -q "^train_images = /usr/share/datasets/fashion-mnist/train-images" "$run_dir/config.ini" &&
   grep -q "^limit = 0" "$run_dir/config.ini"; then
  ok "the cached classifier is configs/classifier.ini on the full training set"
else fail "cached classifier config: $(cat "$run_dir/config.ini")"; fi

finish eval_classifier
