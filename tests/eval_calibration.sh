#!/usr/bin/env bash
# Calibration of the image metrics on real data (gentrain eval --samples):
#  1. FID of 2000 held-out test images against the training set is far below
#     the FID of trained models (a vae and a dcgan trained briefly here);
#  2. FID grows strictly with every level of Gaussian blur (sigma 0.5 ... 2
#     pixels) and of additive Gaussian noise (sigma 0.05 ... 0.4);
#  3. the other metrics of the clean test images are what real data gives:
#     precision and recall high, class KL near 0, no data copying.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export GENTRAIN_CACHE=$build/eval-cache
images() { "$py" "$src/tests/eval_images.py" "$@"; }

images rows "$tmp/clean.h5" test 0 2000
blurs=(0.5 1 1.5 2) noises=(0.05 0.1 0.2 0.4)
for s in "${blurs[@]}"; do images blur "$tmp/blur-$s.h5" "$s" 0 2000; done
for s in "${noises[@]}"; do images noise "$tmp/noise-$s.h5" "$s" 0 2000; done
args=(--samples "$tmp/clean.h5")
for s in "${blurs[@]}"; do args+=(--samples "$tmp/blur-$s.h5"); done
for s in "${noises[@]}"; do args+=(--samples "$tmp/noise-$s.h5"); done
"$bin" eval "${args[@]}" --metrics fid --json > "$tmp/levels.json" 2> "$tmp/levels.log" || { cat "$tmp/levels.log"; exit 1; }
"$bin" eval --samples "$tmp/clean.h5" --json > "$tmp/clean.json" 2> "$tmp/clean.log" || { cat "$tmp/clean.log"; exit 1; }

# briefly trained models, evaluated on as many samples
"$bin" train "$src/configs/vae.ini" run.dir="$tmp/vae" train.steps=300 log.every=100 samples.every=0 \
    eval.at_end=false > "$tmp/vae.log"
"$bin" train "$src/configs/dcgan.ini" run.dir="$tmp/dcgan" train.steps=100 log.every=50 samples.every=0 \
    eval.at_end=false > "$tmp/dcgan.log"
"$bin" eval "$tmp/vae/checkpoints/step-00000300.h5" "$tmp/dcgan/checkpoints/step-00000100.h5" --n 2000 --metrics fid --json > "$tmp/models.json" 2> "$tmp/models.log" ||
  { cat "$tmp/models.log"; exit 1; }

if "$py" - "$tmp/levels.json" "$tmp/models.json" "${blurs[*]}" "${noises[*]}" <<'PY'
import json, sys
levels = [json.loads(l) for l in open(sys.argv[1])]
models = [json.loads(l) for l in open(sys.argv[2])]
blurs, noises = sys.argv[3].split(), sys.argv[4].split()
fid = lambda r: r["metrics"]["fid_train"]
clean = fid(levels[0])
b = [clean] + [fid(r) for r in levels[1:1 + len(blurs)]]
n = [clean] + [fid(r) for r in levels[1 + len(blurs):]]
print("FID vs train, test images: clean %.3f" % clean)
print("  blur  sigma 0 " + " ".join(blurs) + ": " + " ".join("%.2f" % v for v in b))
print("  noise sigma 0 " + " ".join(noises) + ": " + " ".join("%.2f" % v for v in n))
for r in models: print("  trained %s (step %d): FID %.2f" % (r["model"], r["step"], fid(r)))
assert all(x < y for x, y in zip(b, b[1:])), ("blur", b)
assert all(x < y for x, y in zip(n, n[1:])), ("noise", n)
assert all(clean < fid(r) / 5 for r in models), (clean, [fid(r) for r in models])
assert all(r["classifier"]["hash"] == levels[0]["classifier"]["hash"] for r in levels + models)
PY
then ok "FID: test images far below trained models, strictly growing with blur and with noise"
else fail "FID calibration"; fi

if "$py" - "$tmp/clean.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); m = r["metrics"]
print({k: round(v, 4) for k, v in m.items() if v is not None})
assert m["precision_test"] > 0.6 and m["recall_test"] > 0.6, m
assert m["precision_train"] > 0.6 and m["recall_train"] > 0.6, m
assert m["classes_covered"] == 10 and m["class_kl"] < 0.02, m
assert m["data_copying"] == 0 and abs(m["ct"]) < 3, m
assert abs(m["nn_feature_gen"] - m["nn_feature_test"]) < 0.05 * m["nn_feature_test"], m
PY
then ok "clean test images: high precision and recall, the data's classes, no copying"
else fail "metrics of clean test images"; fi

finish eval_calibration
