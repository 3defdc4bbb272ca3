#!/usr/bin/python3
"""Load a gentrain checkpoint into the PyTorch reference model (tools/torch_ref.py).

As a library (run with Debian's /usr/bin/python3, which has python3-torch and
python3-h5py)::

    import sys; sys.path.insert(0, "tools")
    import load_checkpoint as lc
    ck = lc.load("runs/dcgan/checkpoints/step-00000300.h5")
    ck.kind, ck.step, ck.nets["generator"], ck.cfg, ck.data_shape, ck.attrs
    images = lc.generate(ck, torch.randn(16, ck.info["z_dim"]))    # eval mode, data range
    # (a GAN trained with [model] g_ema: the EMA generator ck.ema, as gentrain's
    # samples; lc.generate(ck, z, live=True) for the live one)
    opt = lc.optimizer(ck, "generator")    # torch.optim.Adam/SGD with the saved moments and step

As a command::

    tools/load_checkpoint.py CHECKPOINT                       # what it holds, loaded into PyTorch
    tools/load_checkpoint.py CHECKPOINT --check-samples run/samples.h5 [--tol 1e-4]
        # PyTorch's generator (eval mode) on samples.h5 /noise must reproduce the
        # images gentrain stored for the checkpoint's step (/step-XXXXXXXX; with
        # an EMA generator that one, and the live one /live/step-XXXXXXXX), and,
        # for a VAE, the reconstructions of /test_batch (/recon/step-XXXXXXXX).
        # Exit status 1 if the largest difference exceeds --tol.

Checkpoint layout: include/gentrain/checkpoint.h (and the README). Tensors are
stored in PyTorch's shapes under /params/<net>/<NN>_<kind>/<tensor>, so they
load without transposition; Adam's moments are /optim/<net>/{m,v}/<same names>
and the step count /optim/<net>/t; a GAN trained with g_ema also has the EMA
generator under /ema/generator/<same names>.
"""

import argparse
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref as tr  # noqa: E402

__all__ = ["Checkpoint", "load", "generate", "reconstruct", "optimizer"]

FORMAT = "gentrain-checkpoint"


def _str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


class Checkpoint:
    """kind ("gan"/"vae"/"classifier"), step, epoch, attrs (root attributes),
    cfg (ConfigParser of the stored config), data_shape (C,H,W), nets
    (OrderedDict name -> torch_ref.GentrainNet, weights loaded, eval mode),
    info (torch_ref.build_model's dict: z_dim, ...), path, ema (the EMA
    generator, a GentrainNet in eval mode, or None)."""


def load(path, strict=True):
    """Reads a checkpoint; checks its format; builds and loads the networks."""
    ck = Checkpoint()
    ck.path = path
    with h5py.File(path, "r") as f:
        attrs = {k: (_str(v) if isinstance(v, (bytes, str)) else v.item() if hasattr(v, "item") else v)
                 for k, v in f.attrs.items()}
        if attrs.get("format") != FORMAT:
            raise ValueError("%s is not a gentrain checkpoint (format %r)" % (path, attrs.get("format")))
        ck.attrs = attrs
        ck.kind, ck.step, ck.epoch = attrs["model"], int(attrs["step"]), int(attrs["epoch"])
        ck.cfg = tr.load_config(text=attrs["config"])
        ck.data_shape = tuple(int(d) for d in f["/data/shape"][()])
        n_classes = int(f["/data/n_classes"][0])
        kind, ck.nets, ck.info = tr.build_model(ck.cfg, ck.data_shape, n_classes=max(n_classes, 1))
        if kind != ck.kind:
            raise ValueError("%s: config says %s, the file says %s" % (path, kind, ck.kind))
        for name, net in ck.nets.items():
            tr.load_tensors(net, f["/params/" + name], strict=strict)
            net.eval()
        ck.ema = None
        if "/ema/generator" in f:
            ck.ema = tr.build_model(ck.cfg, ck.data_shape)[1]["generator"]
            tr.load_tensors(ck.ema, f["/ema/generator"], strict=strict)
            ck.ema.eval()
        ck._optim = {}
        for name in ck.nets:
            g = f["/optim/" + name]
            ck._optim[name] = {
                "t": int(g["t"][0]),
                "m": {k: np.array(v) for k, v in tr._walk(g["m"]).items()},
                "v": {k: np.array(v) for k, v in tr._walk(g["v"]).items()} if "v" in g else None,
            }
    return ck


def optimizer(ck, net_name):
    """torch.optim.Adam (or SGD) for ck.nets[net_name] with the config's
    settings and the checkpoint's moments and step count, ready to continue."""
    net = ck.nets[net_name]
    opt = tr.make_optimizer(ck.cfg, net)
    saved = ck._optim[net_name]
    refs = tr.tensor_refs(net)
    for name, (t, trainable) in refs.items():
        if not trainable:
            continue
        st = {}
        if isinstance(opt, torch.optim.Adam):
            st["step"] = torch.tensor(float(saved["t"]))
            st["exp_avg"] = torch.from_numpy(saved["m"][name]).clone()
            st["exp_avg_sq"] = torch.from_numpy(saved["v"][name]).clone()
        else:
            st["momentum_buffer"] = torch.from_numpy(saved["m"][name]).clone()
        opt.state[t] = st
    return opt


def _decoder(ck):
    return ck.nets["generator"] if ck.kind == "gan" else ck.nets["decoder"]


@torch.no_grad()
def generate(ck, z, live=False):
    """Latents z [n, z_dim] -> samples [n, C, H, W] in the data range, eval
    mode, as gentrain's gt_model_generate (VAE: the decoder's mean); a GAN
    with an EMA generator uses it unless live."""
    if ck.kind not in ("gan", "vae"):
        raise ValueError("a %s does not generate" % ck.kind)
    net = ck.ema if ck.ema is not None and not live else _decoder(ck)
    out = net(torch.as_tensor(z, dtype=torch.float32))
    if ck.kind == "vae" and ck.info.get("recon", "bernoulli") == "bernoulli":
        out = torch.sigmoid(out)
    return out.reshape(out.shape[0], *ck.data_shape)


@torch.no_grad()
def reconstruct(ck, x):
    """VAE: x [n, C, H, W] -> decoder mean of the encoder's mu."""
    z_dim = ck.info["z_dim"]
    h = ck.nets["encoder"](torch.as_tensor(x, dtype=torch.float32))
    return generate(ck, h.reshape(h.shape[0], -1)[:, :z_dim])


def check_samples(ck, samples_path, tol):
    """Max |PyTorch - gentrain| over the stored samples (and VAE reconstructions) of ck.step."""
    name = "step-%08d" % ck.step
    results = []
    with h5py.File(samples_path, "r") as f:
        if _str(f.attrs.get("format", "")) != "gentrain-samples":
            raise ValueError("%s is not a gentrain samples file" % samples_path)
        if name not in f:
            raise ValueError("%s has no /%s (samples.every must divide the checkpoint's step)" % (samples_path, name))
        stored = np.array(f[name])
        got = generate(ck, np.array(f["noise"])).numpy()
        results.append(("/" + name + (" (EMA generator)" if ck.ema is not None else ""),
                        float(np.abs(got - stored).max()), stored.shape))
        if ck.ema is not None:
            stored = np.array(f["live/" + name])
            got = generate(ck, np.array(f["noise"]), live=True).numpy()
            results.append(("/live/" + name, float(np.abs(got - stored).max()), stored.shape))
        if ck.kind == "vae" and "recon/" + name in f:
            stored = np.array(f["recon/" + name])
            got = reconstruct(ck, np.array(f["test_batch"])).numpy()
            results.append(("/recon/" + name, float(np.abs(got - stored).max()), stored.shape))
    ok = True
    for what, diff, shape in results:
        good = diff <= tol
        ok &= good
        print("%s %s %s: max |pytorch - gentrain| = %.3g (tolerance %g)" % ("ok" if good else "FAIL", what,
                                                                           list(shape), diff, tol))
    return ok


def main(argv=None):
    p = argparse.ArgumentParser(description="Load a gentrain checkpoint into the PyTorch reference model.")
    p.add_argument("checkpoint")
    p.add_argument("--check-samples", metavar="SAMPLES_H5",
                   help="compare PyTorch's samples on /noise with the ones gentrain stored for this step")
    p.add_argument("--tol", type=float, default=1e-4, help="largest allowed absolute difference [1e-4]")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        ck = load(a.checkpoint)
    except (OSError, ValueError, KeyError) as e:
        print("load_checkpoint: error: %s" % e, file=sys.stderr)
        return 1
    print("%s: %s model, step %d, epoch %d, data %s" % (a.checkpoint, ck.kind, ck.step, ck.epoch,
                                                        "x".join(map(str, ck.data_shape))))
    for name, net in ck.nets.items():
        n = sum(p.numel() for p in net.parameters())
        print("  %s: %d layers, %d parameters, Adam/SGD step %d" % (name, len(net), n, ck._optim[name]["t"]))
    if a.check_samples:
        try:
            return 0 if check_samples(ck, a.check_samples, a.tol) else 1
        except (OSError, ValueError, KeyError) as e:
            print("load_checkpoint: error: %s" % e, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
