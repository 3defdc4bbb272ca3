#!/usr/bin/env bash
# Interop (issue 4): tools/load_checkpoint.py loads a gentrain checkpoint into
# the PyTorch reference model (tools/torch_ref.py); PyTorch's generator (GAN)
# or decoder (VAE) in eval mode on samples.h5 /noise must reproduce the images
# gentrain stored for that step (and the VAE's reconstructions of
# /test_batch), to 1e-4; h5py reads every file; the Adam state loads into
# torch.optim.Adam.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
"$py" -c 'import torch, h5py' 2>/dev/null ||
  { echo "FAIL: PyTorch or h5py missing for $py: apt-get install -y python3-torch python3-h5py"; exit 1; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

for model in dcgan vae; do
  "$bin" train "$src/configs/$model.ini" run.dir="$tmp/$model" train.steps=10 train.epochs=0 train.batch_size=16 \
    data.limit=512 log.every=5 eval.n=32 checkpoint.every=5 samples.every=5 samples.n=32 > "$tmp/$model.log" 2>&1 \
    || { fail "$model: training failed: $(tail -3 "$tmp/$model.log")"; continue; }
  for step in 5 10; do
    ck=$(printf '%s/%s/checkpoints/step-%08d.h5' "$tmp" "$model" "$step")
    if "$py" "$src/tools/load_checkpoint.py" "$ck" --check-samples "$tmp/$model/samples.h5" --tol 1e-4 > "$tmp/out.txt" 2>&1; then
      ok "$model step $step: PyTorch reproduces gentrain's samples: $(grep -c '^ok' "$tmp/out.txt") checks, $(grep -o 'max.*= [^ ]*' "$tmp/out.txt" | tr '\n' ' ')"
    else fail "$model step $step: $(cat "$tmp/out.txt")"; fi
  done
done

# as a library: Adam state into torch.optim, and one more step with the loaded optimizer runs
if "$py" - "$src/tools" "$tmp/dcgan/checkpoints/step-00000010.h5" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import h5py, torch
import load_checkpoint as lc
ck = lc.load(sys.argv[2])
assert ck.kind == "gan" and ck.step == 10 and ck.data_shape == (1, 28, 28)
opt = lc.optimizer(ck, "generator")
f = h5py.File(sys.argv[2], "r")
w = ck.nets["generator"][0].weight
st = opt.state[w]
assert int(st["step"]) == 10
assert torch.equal(st["exp_avg_sq"], torch.from_numpy(f["/optim/generator/v/00_dense/weight"][()]))
assert torch.equal(ck.nets["generator"][1].running_var, torch.from_numpy(f["/params/generator/01_batchnorm/running_var"][()]))
G = ck.nets["generator"].train()
loss = G(torch.randn(4, 100)).square().mean()
loss.backward()
opt.step()
print("library use ok")
PY
then ok "load_checkpoint as a library: tensors, BN statistics and Adam state load into PyTorch"; else fail "library use"; fi
if "$py" "$src/tools/load_checkpoint.py" "$tmp/dcgan/samples.h5" > "$tmp/o.txt" 2>&1; then fail "load_checkpoint.py accepted a samples file"
elif grep -q "not a gentrain checkpoint" "$tmp/o.txt"; then ok "load_checkpoint.py rejects a file that is not a checkpoint"
else fail "message: $(cat "$tmp/o.txt")"; fi

finish ckpt_interop
