#!/usr/bin/env bash
# PyTorch parity of one training step of the reference dcgan, vae and classifier:
#   bash tests/parity.sh BUILD_DIR SOURCE_DIR
# tool_parity (tests/tool_parity.c) runs the gentrain step and dumps it to HDF5;
# tests/parity.py redoes it in PyTorch 1.13 (Debian's /usr/bin/python3) and
# compares. Exit status non-zero if anything fails.
set -euo pipefail

build=${1:?usage: parity.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: parity.sh BUILD_DIR SOURCE_DIR}
py=/usr/bin/python3
images=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

fail() { echo "parity.sh: $*" >&2; exit 1; }

[ -x "$build/tool_parity" ] || fail "$build/tool_parity not found: build the project first"
[ -r "$images" ] || fail "$images is missing: install the dataset (apt-get install -y dataset-fashion-mnist)"
[ -x "$py" ] || fail "$py not found: install python3-torch python3-h5py (apt-get install -y python3-torch python3-h5py)"
"$py" -c 'import torch, h5py' 2>/dev/null ||
    fail "PyTorch or h5py missing for $py: install python3-torch python3-h5py (apt-get install -y python3-torch python3-h5py)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gentrain-parity.XXXXXX") || fail "cannot make a temporary directory"
trap 'rm -rf "$tmp"' EXIT

status=0
# name, config, overrides: the reference models, and the vae with a layernorm
# in its encoder (on 32x14x14: nn.LayerNorm([32, 14, 14])) and on a vector
# (fields separated by |); dcgan-mbstd: a minibatch_std layer in D (batch 8:
# 2 groups of 4, 2 features)
# dcgan-stab: one-sided label smoothing, instance noise, packing (D on 4 packs
# of 2), the EMA generator and a minibatch_std in D; mlpgan-wgan: the
# wasserstein loss with D's weights clipped; mlpgan-hinge: hinge with noise
# and packs of 4 (SGD: with 2 packs of dropout-masked examples some gradient
# elements are tiny by cancellation, see below).
# dcgan-sn: spectral norm on every weight layer of D and on G's dense, convt2d
# (dim 1) and conv2d, three power iterations of D in the step (D(x), D(G(z))
# twice) as in PyTorch; with SGD, because Adam's first step (about lr * sign(g))
# turns the rounding of gradient elements that are tiny by cancellation into
# full-size differences of those elements (see tests/parity.py)
# dcgan-resize: configs/dcgan-resize.ini, the resize-convolution generator
# (upsample + conv2d for each convt2d); its last conv's bias gradient is small
# by cancellation (4e-4 against dcgan's 1.7e-2), so its relative error (5e-5)
# is the closest to the tolerance of all its tensors.
# dcgan-paper: configs/dcgan-paper.ini, the quickstart's model (ReLU in G,
# batch norm in D, normal init).
# The classifier too: its dense layer before a batch norm has many such
# elements (Adam's end-to-end update there is off by 1.5e-3 with correct
# gradients, which are checked elementwise all the same).
cases=("dcgan|dcgan" "vae|vae" "classifier|classifier|optim.kind=sgd|optim.lr=0.05|optim.beta1=0.9"
       "vae-layernorm|vae|encoder.layer2=layernorm|encoder.layer7=layernorm eps=1e-3"
       "dcgan-sn|dcgan|discriminator.layer1=conv2d out=64 kernel=4 stride=2 pad=1 sn=true|discriminator.layer4=conv2d out=128 kernel=4 stride=2 pad=1 sn=true|discriminator.layer8=dense out=1 sn=true|generator.layer1=dense out=12544 bias=false sn=true|generator.layer5=convt2d out=128 kernel=4 stride=2 pad=1 bias=false sn=true|generator.layer11=conv2d out=1 kernel=3 stride=1 pad=1 sn=true|optim.kind=sgd|optim.lr=0.05|optim.beta1=0.5"
       "dcgan-resize|dcgan-resize" "dcgan-paper|dcgan-paper"
       "dcgan-mbstd|dcgan|discriminator.layer6=minibatch_std group=4 features=2"
       "dcgan-stab|dcgan|model.label_smoothing=0.1|model.instance_noise=0.1|model.pack=2|model.g_ema=0.9|discriminator.layer6=minibatch_std group=2"
       "mlpgan-wgan|mlpgan|model.loss=wasserstein|model.clip=0.02"
       "mlpgan-hinge|mlpgan|model.loss=hinge|model.instance_noise=0.2|model.pack=4|optim.kind=sgd|optim.lr=0.05|optim.beta1=0.5")
for c in "${cases[@]}"; do
    IFS='|' read -r -a f <<<"$c"
    model=${f[0]} config=${f[1]}
    echo "== $model ${f[*]:2}"
    if ! OPENBLAS_NUM_THREADS=1 "$build/tool_parity" "$src/configs/$config.ini" "$tmp/$model.h5" "${f[@]:2}"; then
        echo "parity.sh: tool_parity failed for $model" >&2
        status=1
        continue
    fi
    if ! OMP_NUM_THREADS=1 "$py" "$src/tests/parity.py" "$tmp/$model.h5"; then
        echo "parity.sh: $model differs from PyTorch" >&2
        status=1
    fi
done

# Initialization statistics against torch.nn.init (tests/init_parity.py) on
# the freshly built networks of tool_parity's dumps: PyTorch's defaults (the
# dcgan and vae-layernorm dumps above) and every other scheme.
init_cases=("dcgan-init-normal|dcgan|generator.init=normal|discriminator.init=normal|discriminator.init_std=0.05"
            "dcgan-init-xavier-kaiming|dcgan|generator.init=xavier|discriminator.init=kaiming"
            "vae-init|vae|encoder.init=normal|decoder.init=xavier|encoder.layer2=layernorm")
for c in "${init_cases[@]}"; do
    IFS='|' read -r -a f <<<"$c"
    model=${f[0]} config=${f[1]}
    echo "== $model ${f[*]:2}"
    if ! OPENBLAS_NUM_THREADS=1 "$build/tool_parity" "$src/configs/$config.ini" "$tmp/$model.h5" "${f[@]:2}" >/dev/null; then
        echo "parity.sh: tool_parity failed for $model" >&2
        status=1
    fi
done
for model in dcgan vae-layernorm dcgan-sn dcgan-init-normal dcgan-init-xavier-kaiming vae-init; do
    [ -f "$tmp/$model.h5" ] || continue
    echo "== init statistics: $model"
    if ! OMP_NUM_THREADS=1 "$py" "$src/tests/init_parity.py" "$tmp/$model.h5"; then
        echo "parity.sh: $model: initialization differs from torch.nn.init" >&2
        status=1
    fi
done
exit "$status"
