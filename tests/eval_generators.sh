#!/usr/bin/env bash
# Known answers of "generators" made of real data (gentrain eval --samples):
#  1. one training image repeated covers one class of ten and is flagged as
#     data copying; one point repeated covers one mode of a 2-D mixture
#     (ring8, grid25), all of its samples high quality, reverse KL log K;
#  2. memorization, with a training set of 10000 images (data.limit) and the
#     10000 test images: a "generator" that returns training images is
#     flagged (C_T < -3, closer to train than to test: 1, nearest training
#     image at distance 0), one that returns test images is not, and one
#     that returns unseen images (training-file rows beyond the limit) is not
#     either, with a closer-to-train share of about 1/2.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export GENTRAIN_CACHE=$build/eval-cache
images() { "$py" "$src/tests/eval_images.py" "$@"; }
run() {  # name args...: gentrain eval ... --json > $tmp/name.json
  local name=$1; shift
  "$bin" eval "$@" --json > "$tmp/$name.json" 2> "$tmp/$name.log" || { cat "$tmp/$name.log"; return 1; }
}
check() {  # name description python-assertions (m = metrics)
  if "$py" -c "import json,math,sys
rs = [json.loads(l) for l in open(sys.argv[1])]
for r in rs:
    m = r['metrics']; print(sys.argv[2], {k: round(v, 4) for k, v in m.items() if v is not None})
    $3" "$tmp/$1.json" "$1"; then ok "$2"; else fail "$2"; fi
}

# 1. one image, one point
images repeat "$tmp/one-image.h5" train 0 1000
run one-image --samples "$tmp/one-image.h5" --metrics classes,memorization
check one-image "one training image: one class of ten, flagged as data copying" \
  "assert m['classes_covered'] == 1 and m['classes'] == 10 and m['class_entropy'] == 0; assert m['data_copying'] == 1 and m['ct'] < -3; assert m['nn_pixel_gen'] == 0"
images points "$tmp/ring-point.h5" 0 1 1000
run ring --samples "$tmp/ring-point.h5" --metrics modes data.kind=toy data.toy=ring8 data.n=10000 data.n_test=2000
check ring "one point of ring8: one mode of 8, high quality, reverse KL log 8" \
  "assert m['modes_covered'] == 1 and m['modes'] == 8 and m['high_quality_share'] == 1; assert abs(m['mode_reverse_kl'] - math.log(8)) < 1e-7"
images points "$tmp/grid-point.h5" 2 -2 1000
run grid --samples "$tmp/grid-point.h5" --metrics modes,fid data.kind=toy data.toy=grid25 data.n=10000 data.n_test=2000
check grid "one point of grid25: one mode of 25" \
  "assert m['modes_covered'] == 1 and m['modes'] == 25 and abs(m['mode_reverse_kl'] - math.log(25)) < 1e-7 and m['fid_train'] > 1"

# 2. memorization against 10000 training images
limit=(data.limit=10000)
images rows "$tmp/train.h5" train 0 2000
images rows "$tmp/test.h5" test 0 2000
images rows "$tmp/unseen.h5" train 20000 22000
run memorization --samples "$tmp/train.h5" --samples "$tmp/test.h5" --samples "$tmp/unseen.h5" \
    --metrics memorization,fid "${limit[@]}"
if "$py" - "$tmp/memorization.json" <<'PY'
import json, sys
copier, test, unseen = (json.loads(l)["metrics"] for l in open(sys.argv[1]))
for name, m in (("training images", copier), ("test images", test), ("unseen images", unseen)):
    print(f"{name:16s} C_T {m['ct']:8.2f}  closer-to-train {m['closer_to_train']:.3f}  nearest train (pixels) "
          f"{m['nn_pixel_gen']:.3f} (test set {m['nn_pixel_test']:.3f})  copying {m['data_copying']:.0f}")
assert copier["data_copying"] == 1 and copier["ct"] < -3 and copier["closer_to_train"] == 1, copier
assert copier["nn_pixel_gen"] == 0 and copier["nn_feature_gen"] < 1e-3, copier
assert test["data_copying"] == 0 and test["ct"] > -3, test
assert unseen["data_copying"] == 0 and abs(unseen["ct"]) < 3, unseen
assert 0.4 < unseen["closer_to_train"] < 0.6, unseen
assert unseen["nn_pixel_gen"] > 0.8 * unseen["nn_pixel_test"], unseen
PY
then ok "memorization: training images flagged, test images and unseen images not"
else fail "memorization"; fi

finish eval_generators
