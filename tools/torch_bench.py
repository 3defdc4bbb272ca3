"""PyTorch side of tools/bench: times the same training step as gentrain
(same config, same architecture, batch, optimizer) on CPU with --threads
threads (default 1), plain and wrapped in DistributedDataParallel (gloo, world
size 1), each after --warmup untimed steps (default 25: the DDP-wrapped path
reaches its best only after about 25), and prints one JSON line per model:
{"model", "batch", "threads", "plain_img_s", "ddp_img_s", "flop_per_step",
"blas_threads" (OPENBLAS_NUM_THREADS or "default"), "malloc", "flush_denormal",
"plain_faults_per_step", "ddp_faults_per_step"
(minor page faults per timed step), "max_rss_mb"} (the peak resident memory of the
whole process). The process first gets what gentrain sets up for itself:
denormals flushed to zero and glibc's malloc keeping freed memory
(torch_ref.gentrain_process_settings; --malloc glibc keeps glibc's defaults).

Run with Debian's interpreter:
  /usr/bin/python3 tools/torch_bench.py CONFIG [--steps N] [--batch B] [--threads T] [--warmup W] [--malloc M]
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref  # noqa: E402


def gemm_flops(net, batch):
    """Multiply-add FLOPs of one forward pass (2 per MAC) of dense/conv/convt layers."""
    total = 0
    x = torch.zeros((batch,) + tuple(net.in_shape))
    hooks = []

    def count(mod, inp, out):
        nonlocal total
        if isinstance(mod, torch.nn.Linear):
            total += 2 * inp[0].shape[0] * mod.in_features * mod.out_features
        elif isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total += 2 * out.numel() * mod.in_channels * k
        elif isinstance(mod, torch.nn.ConvTranspose2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total += 2 * inp[0].numel() * mod.out_channels * k
    for m in net.modules():
        hooks.append(m.register_forward_hook(count))
    with torch.no_grad():
        net.eval()
        net(x)
        net.train()
    for h in hooks:
        h.remove()
    return total


def make_step(kind, nets, info, opts, batch):
    names = list(nets)
    if kind == "gan":
        G, D = nets[names[0]], nets[names[1]]
        oG, oD = opts
        ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

        def step(x):
            z = torch.randn(batch, info["z_dim"])
            fake = G(z)
            oD.zero_grad(set_to_none=False)
            lossD = F.binary_cross_entropy_with_logits(D(x), ones) + \
                F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
            lossD.backward()
            oD.step()
            oG.zero_grad(set_to_none=False)
            lossG = F.binary_cross_entropy_with_logits(D(fake), ones)
            lossG.backward()
            oG.step()
        return step
    E, Dec = nets[names[0]], nets[names[1]]
    z_dim = info["z_dim"]

    def step(x):
        for o in opts:
            o.zero_grad(set_to_none=False)
        h = E(x)
        mu, logvar = h[:, :z_dim], h[:, z_dim:]
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = Dec(z)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu * mu - logvar.exp())
        ((rec + kl) / x.shape[0]).backward()
        for o in opts:
            o.step()
    return step


def time_steps(step, x, steps, warmup):
    """Seconds of `steps` steps after `warmup` untimed ones, and the page faults per timed step."""
    for _ in range(warmup):
        step(x)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter()
    for _ in range(steps):
        step(x)
    t = time.perf_counter() - t
    return t, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=25,
                    help="untimed steps first (the DDP-wrapped path reaches its best after about 25)")
    ap.add_argument("--malloc", choices=("gentrain", "glibc"), default="gentrain",
                    help="glibc malloc's settings: gentrain's (freed memory kept, as gentrain keeps its own; the "
                         "default) or glibc's defaults (torch_ref.gentrain_process_settings)")
    args = ap.parse_args()
    settings = torch_ref.gentrain_process_settings(args.malloc)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = torch_ref.load_config(args.config)
    kind, nets, info = torch_ref.build_model(cfg, (1, 28, 28))
    x = torch.rand(args.batch, 1, 28, 28)
    if kind == "gan":
        x = x * 2 - 1
    flops = [gemm_flops(n, args.batch) for n in nets.values()]
    # forward+backward FLOPs of one step: GAN = G fwd+bwd (3), D: 3 forwards,
    # 2 backwards with weight gradients (2 each), 1 backward for the input only
    # (1); VAE: both nets forward and backward (3 each).
    step_flops = 3 * flops[0] + (8 * flops[1] if kind == "gan" else 3 * flops[1])
    out = {"model": os.path.basename(args.config).split(".")[0], "batch": args.batch, "threads": args.threads,
           "flop_per_step": step_flops, "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"), **settings}
    opts = [torch_ref.make_optimizer(cfg, n) for n in nets.values()]
    t, out["plain_faults_per_step"] = time_steps(make_step(kind, nets, info, opts, args.batch), x, args.steps,
                                                  args.warmup)
    out["plain_img_s"] = args.batch * args.steps / t
    import torch.distributed as dist
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    dist.init_process_group("gloo", rank=0, world_size=1)
    wrapped = {k: torch.nn.parallel.DistributedDataParallel(n) for k, n in nets.items()}
    opts = [torch_ref.make_optimizer(cfg, n) for n in nets.values()]
    t, out["ddp_faults_per_step"] = time_steps(make_step(kind, wrapped, info, opts, args.batch), x, args.steps,
                                                args.warmup)
    out["ddp_img_s"] = args.batch * args.steps / t
    dist.destroy_process_group()
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
