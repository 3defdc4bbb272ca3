#!/usr/bin/python3
"""The IWAE bound of a gentrain VAE checkpoint in PyTorch, for tools/bench --eval.

    tools/torch_iwae.py CHECKPOINT [--n 20] [--k 5000] [--chunk 250]

Loads the checkpoint into the PyTorch reference model (tools/load_checkpoint.py)
and computes, for the first N test images of Fashion-MNIST (grey levels in
[0,1]), the IWAE bound L_k = log 1/k sum_i p(x|z_i) p(z_i) / q(z_i|x) (Burda et
al. 2016) with the decoder in chunks of `chunk` latents, as gentrain's
gt_model_iwae does (Bernoulli likelihood of the grey levels; Gaussian with unit
variance and its normalizing constant). Prints one JSON object: seconds per
image (one thread, with gentrain's process settings: torch_ref.gentrain_process_settings)
and the mean -L_k in nats, which agrees with gentrain's on
the same images up to Monte Carlo noise (the noise draws differ).
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load_checkpoint as lc  # noqa: E402

TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def test_images(n):
    with gzip.open(TEST) as f:
        magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051
        x = np.frombuffer(f.read(n * rows * cols), np.uint8).reshape(n, 1, rows, cols)
    return torch.from_numpy(x.astype(np.float32) / 255.0)


@torch.no_grad()
def iwae(ck, x, k, chunk, gen):
    z_dim = ck.info["z_dim"]
    bernoulli = ck.info.get("recon", "bernoulli") == "bernoulli"
    h = ck.nets["encoder"](x[None]).reshape(-1)
    mu, logvar = h[:z_dim].double(), h[z_dim:].double()
    sd = torch.exp(0.5 * logvar)
    logw = []
    xf = x.reshape(1, -1)
    for i0 in range(0, k, chunk):
        nb = min(chunk, k - i0)
        eps = torch.randn(nb, z_dim, generator=gen, dtype=torch.float64)
        z = (mu + sd * eps).float()
        out = ck.nets["decoder"](z).reshape(nb, -1)
        if bernoulli:
            ll = (xf * out - torch.nn.functional.softplus(out)).double().sum(1)
        else:
            ll = -0.5 * ((xf - out).double() ** 2).sum(1) - 0.5 * xf.shape[1] * math.log(2 * math.pi)
        zd = z.double()
        log_p = -0.5 * (zd ** 2).sum(1) - 0.5 * z_dim * math.log(2 * math.pi)
        log_q = -0.5 * (((zd - mu) ** 2) * torch.exp(-logvar) + logvar).sum(1) - 0.5 * z_dim * math.log(2 * math.pi)
        logw.append(ll + log_p - log_q)
    logw = torch.cat(logw)
    return (torch.logsumexp(logw, 0) - math.log(k)).item()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--chunk", type=int, default=250)
    a = p.parse_args()
    torch.set_num_threads(1)
    lc.tr.gentrain_process_settings()  # what gentrain's process has: denormals flushed, freed memory kept
    ck = lc.load(a.checkpoint)
    if ck.kind != "vae":
        sys.exit("torch_iwae.py: %s holds a %s, not a vae" % (a.checkpoint, ck.kind))
    x = test_images(a.n)
    gen = torch.Generator().manual_seed(1)
    t0 = time.perf_counter()
    bounds = [iwae(ck, x[i], a.k, a.chunk, gen) for i in range(a.n)]
    s = time.perf_counter() - t0
    print(json.dumps({"n": a.n, "k": a.k, "seconds_per_image": s / a.n, "iwae_nll": -sum(bounds) / a.n}))


if __name__ == "__main__":
    main()
