#!/usr/bin/env bash
# shellcheck disable=SC2015  # ok and fail (tests/common.bash) always return 0, so "A && ok || fail" is if-then-else here
# The GAN stabilizers through the gentrain program (the unit tests, gradient
# checks and PyTorch parity are in test_*.c and parity.sh; world-size
# invariance in mpi_invariance.sh):
#  1. toygan with all of them at once (spectral norm, minibatch_std, packing,
#     instance noise, label smoothing, EMA generator) on 2 ranks: the replicas
#     stay bitwise identical, checked after every step (u, v and the EMA too);
#  2. resume is bit-exact with them: 4 + resume + 4 steps = 8 steps at 2 ranks
#     (parameters, spectral-norm vectors, optimizer state and the EMA generator);
#  3. the EMA generator gives the samples (samples.h5 /step-*, samples.png) and
#     `gentrain sample`; the live one is kept beside it (/live/step-*,
#     samples-live.png, sample --live); PyTorch reproduces both from the
#     checkpoint (tools/load_checkpoint.py); the test line reports both;
#  4. wasserstein with clipping: every parameter of D in the checkpoint lies
#     in [-clip, clip]; hinge trains;
#  5. bad settings are one clear error: pack not dividing the batch, label
#     smoothing with hinge, clip without wasserstein, a minibatch_std whose
#     features do not divide the channels;
#  6. a checkpoint whose config predates the stabilizer keys (an older
#     gentrain's) resumes: keys it lacks that are left at their defaults do
#     not count as another architecture.
set -euo pipefail
build=$1 src=$2
source "$src/tests/common.bash"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1
ck() { printf '%s/checkpoints/step-%08d.h5' "$1" "$2"; }
T=("$src/configs/toygan.ini" data.n=4096 train.batch_size=32 log.every=2 eval.n=256 samples.n=64
   model.g_ema=0.95 model.instance_noise=0.2 model.instance_noise_steps=10 model.pack=2 model.label_smoothing=0.1
   "discriminator.layer1=dense out=200 sn=true" "discriminator.layer2=minibatch_std group=4"
   "generator.layer13=dense out=2 sn=true")

# 1. two ranks, every stabilizer, replicas checked after every step
if mpirun -np 2 "$bin" train "${T[@]}" run.dir="$tmp"/rep train.steps=12 dist.check_every=1 checkpoint.every=6 \
     samples.every=6 > "$tmp"/rep.log 2>&1; then
  ok "2 ranks with spectral norm, minibatch_std, pack 2, instance noise, label smoothing, EMA: replicas identical after every step"
else fail "2 ranks with every stabilizer: $(tail -3 "$tmp"/rep.log)"; fi
grep -q "noise_sigma" "$tmp"/rep/metrics.jsonl && ok "instance noise's sigma is logged (noise_sigma)" || fail "no noise_sigma in metrics.jsonl"

# 2. bit-exact resume at 2 ranks
same_state() {
  for g in /params /optim /ema /data /rng; do h5diff "$1" "$2" "$g" > /dev/null || return 1; done
}
R=(train.steps=8 checkpoint.every=4 samples.every=4 checkpoint.keep=0)
mpirun -np 2 "$bin" train "${T[@]}" "${R[@]}" run.dir="$tmp"/straight > "$tmp"/s.log 2>&1 || fail "straight run: $(tail -3 "$tmp"/s.log)"
mpirun -np 2 "$bin" train "${T[@]}" "${R[@]}" run.dir="$tmp"/resumed train.steps=4 > "$tmp"/r1.log 2>&1 || fail "first half"
mpirun -np 2 "$bin" train "${T[@]}" "${R[@]}" run.dir="$tmp"/resumed > "$tmp"/r2.log 2>&1 || fail "resume: $(tail -3 "$tmp"/r2.log)"
if same_state "$(ck "$tmp"/straight 8)" "$(ck "$tmp"/resumed 8)"; then
  ok "2 ranks: 4 + resume + 4 steps == 8 steps bitwise with the stabilizers (params, u/v, Adam, EMA generator)"
else fail "resume with the stabilizers is not bit-exact"; fi
h5diff "$(ck "$tmp"/straight 4)" "$(ck "$tmp"/straight 8)" /ema > /dev/null && fail "the EMA generator does not move" \
  || ok "(the EMA generator moves between steps 4 and 8)"

# 3. samples from the EMA generator, the live one beside it
s=$tmp/straight
if $py - "$s/samples.h5" "$(ck "$s" 8)" <<'PY'
import sys, h5py, numpy as np
f, c = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
a, b = f["step-00000008"], f["live/step-00000008"]
g = a.attrs["generator"]
assert (g.decode() if isinstance(g, bytes) else g) == "ema", a.attrs["generator"]
assert a.shape == b.shape == (64, 2, 1, 1) and not np.array_equal(a[()], b[()]), "EMA and live samples"
assert "ema/generator/00_dense/weight" in c and abs(c["ema/generator"].attrs["decay"] - 0.95) < 1e-6
assert "params/discriminator/00_dense/weight_orig" in c and "params/discriminator/00_dense/weight_u" in c
PY
then ok "samples.h5: /step-* from the EMA generator, /live/step-* from the live one; the checkpoint has /ema and weight_orig/u/v"
else fail "samples.h5 or the checkpoint lack the EMA layout"; fi
[ -s "$s"/samples.png ] && [ -s "$s"/samples-live.png ] && ok "samples.png (EMA) and samples-live.png" || fail "PNGs missing"
if "$bin" sample "$(ck "$s" 8)" --n 16 --out "$tmp"/ema.png > "$tmp"/e.log 2>&1 && grep -q "(EMA generator)" "$tmp"/e.log &&
   "$bin" sample "$(ck "$s" 8)" --n 16 --out "$tmp"/live.png --live > "$tmp"/l.log 2>&1 && grep -q "(live generator)" "$tmp"/l.log &&
   ! cmp -s "$tmp"/ema.png "$tmp"/live.png; then
  ok "gentrain sample: the EMA generator by default, --live the live one"
else fail "gentrain sample: $(cat "$tmp"/e.log "$tmp"/l.log)"; fi
if "$py" "$src/tools/load_checkpoint.py" "$(ck "$s" 8)" --check-samples "$s"/samples.h5 --tol 1e-4 > "$tmp"/lc.txt 2>&1 &&
   grep -q "^ok /step-00000008 (EMA generator)" "$tmp"/lc.txt && grep -q "^ok /live/step-00000008" "$tmp"/lc.txt; then
  ok "PyTorch reproduces the EMA and the live samples from the checkpoint (spectral norm and packing loaded too)"
else fail "load_checkpoint: $(cat "$tmp"/lc.txt)"; fi
grep '"split": "test"' "$s"/metrics.jsonl | grep -q '"ema_g_loss"' && grep '"split": "test"' "$s"/metrics.jsonl | grep -q '"g_loss"' \
  && ok "the test line reports the live and the EMA generator (g_loss, ema_g_loss, ema_d_fake)" || fail "test line lacks ema_*"

# 4. wasserstein with clipping; hinge
if "$bin" train "$src/configs/toygan.ini" run.dir="$tmp"/wgan data.n=4096 train.batch_size=32 train.steps=20 \
     model.loss=wasserstein model.clip=0.02 log.every=10 eval.n=256 > "$tmp"/w.log 2>&1 &&
   $py - "$(ck "$tmp"/wgan 20)" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
g = f["params/discriminator"]
m = max(float(np.abs(g[k][()]).max()) for k in ("00_dense/weight", "00_dense/bias", "02_dense/weight", "06_dense/weight"))
assert 0.019 < m <= 0.02, m
PY
then ok "wasserstein: every parameter of D within [-clip, clip] = 0.02 (and at the bound)"
else fail "wasserstein: $(tail -3 "$tmp"/w.log)"; fi
"$bin" train "$src/configs/toygan.ini" run.dir="$tmp"/hinge data.n=4096 train.batch_size=32 train.steps=10 \
  model.loss=hinge log.every=5 eval.n=256 > "$tmp"/h.log 2>&1 && ok "hinge trains" || fail "hinge: $(tail -3 "$tmp"/h.log)"

# 5. bad settings
bad() {  # WHAT NEEDLE... -- overrides
  local what=$1; shift
  local needles=()
  while [ "$1" != "--" ]; do needles+=("$1"); shift; done
  shift
  if "$bin" train "$src/configs/toygan.ini" run.dir="$tmp"/bad train.steps=1 "$@" > "$tmp"/bad.log 2>&1; then
    fail "$what: accepted"; return
  fi
  for n in "${needles[@]}"; do
    grep -qF -- "$n" "$tmp"/bad.log || { fail "$what: the message lacks '$n': $(cat "$tmp"/bad.log)"; return; }
  done
  if compgen -G "$tmp/bad/checkpoints/*" > /dev/null; then fail "$what: left a checkpoint"; return; fi
  ok "$what: $(grep -o 'error: .*' "$tmp"/bad.log | cut -c1-150)"
}
bad "pack 3 with batch 256" "[model] pack = 3 must divide [train] batch_size = 256" "command line" -- model.pack=3
bad "label smoothing with hinge" "unknown key [model] label_smoothing" -- model.loss=hinge model.label_smoothing=0.1
bad "clip without wasserstein" "unknown key [model] clip" -- model.clip=0.1
bad "label smoothing 0.7" "label_smoothing" "0.7" -- model.label_smoothing=0.7
bad "minibatch_std features=3 on 200 channels" "features=3 must divide the input's 200 channels" "[discriminator] layer2" -- \
  "discriminator.layer2=minibatch_std features=3"
bad "sn=maybe" "sn=maybe" "true or false" -- "discriminator.layer1=dense out=200 sn=maybe"

# 6. a checkpoint of an older gentrain (its config lacks the keys added since) resumes
"$bin" train "$src/configs/toygan.ini" run.dir="$tmp"/old data.n=4096 train.batch_size=32 train.steps=4 log.every=2 \
  eval.at_end=false > "$tmp"/o1.log 2>&1 || fail "old: first run"
$py - "$(ck "$tmp"/old 4)" <<'PY' || fail "could not rewrite the checkpoint's config"
# drop the keys that came with the stabilizers from the stored config and re-hash it
import sys, h5py, numpy as np
new = {"init", "label_smoothing", "instance_noise", "pack", "g_ema"}
with h5py.File(sys.argv[1], "r+") as f:
    text = f.attrs["config"].decode()
    kept = [l for l in text.split("\n") if l.split(" = ")[0] not in new]
    assert len(kept) < len(text.split("\n")) - 3, "no keys dropped"
    text = "\n".join(kept)
    h = 1469598103934665603
    for byte in (f.attrs["model"].decode() + "\n" + text).encode():
        h = ((h ^ byte) * 1099511628211) % (1 << 64)
    f.attrs["config"] = np.bytes_(text)
    f.attrs["text_hash"] = np.int64(h - (1 << 64) if h >= (1 << 63) else h)
PY
if "$bin" train "$src/configs/toygan.ini" run.dir="$tmp"/old data.n=4096 train.batch_size=32 train.steps=6 log.every=2 \
     eval.at_end=false > "$tmp"/o2.log 2>&1 && grep -q "resuming from" "$tmp"/o2.log; then
  ok "a checkpoint whose config lacks the new keys (left at their defaults) resumes"
else fail "old checkpoint: $(tail -3 "$tmp"/o2.log)"; fi
if "$bin" train "$src/configs/toygan.ini" run.dir="$tmp"/old data.n=4096 train.batch_size=32 train.steps=8 log.every=2 \
     eval.at_end=false model.g_ema=0.9 > "$tmp"/o3.log 2>&1; then fail "resuming with g_ema set was accepted"
else grep -q "another architecture: \[model\] g_ema" "$tmp"/o3.log && ok "... but not with g_ema set (another architecture)" \
  || fail "g_ema on resume: $(tail -2 "$tmp"/o3.log)"; fi

finish stabilizers
