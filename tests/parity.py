#!/usr/bin/python3
"""PyTorch parity of one gentrain training step.

usage: /usr/bin/python3 tests/parity.py DUMP.h5

DUMP.h5 is written by tool_parity (tests/tool_parity.c documents its layout):
gentrain's parameters before a step, the batch, the step's latents / noise /
dropout masks, and the statistics, gradients and parameters after the step.
This script rebuilds the same networks in PyTorch (tools/torch_ref.py, from
the config text stored in the dump), loads the same weights, redoes the step
in float32 with the same inputs and masks, and compares every tensor.

Tolerances (float32 on both sides, different summation orders):
  * per tensor, the relative error of the whole tensor,
        rel = ||got - ref||_2 / ||ref||_2  <=  1e-4;
    a norm-wise measure is what float32 rounding bounds well: a sum of K
    terms is off by about sqrt(K) * 6e-8 of its terms' size, i.e. ~1e-5 for
    the K of a few thousand in these layers, with margin to 1e-4, while a
    real bug (wrong index, missing term, wrong scale) shows up as 1e-2..1;
  * elementwise, |got - ref| <= 1e-4 |ref| + 1e-5 max|ref|: the absolute
    part scales with the tensor, because elements that are small only by
    cancellation (e.g. a gradient summed over a batch) carry the rounding
    error of their large terms, so a pure relative test would fail on them
    spuriously; it still catches a single wrong element the norm might hide.
Scalars (losses) use the relative test alone.

Parameters after the step are compared end to end (PyTorch's gradients and
PyTorch's optimizer) norm-wise only, and the update (after - before) norm-wise
to 1e-3: Adam's first step moves each weight by about lr * g / (|g| + eps),
which turns a gradient element that is tiny by cancellation (|g| ~ 1e-8, off
by rounding) into a visibly different update of that one element, so an
elementwise end-to-end test would fail on correct code; and subtracting two
~1e-1 numbers to get a ~1e-4 update loses ~3e-5 relative by itself. The
elementwise check of the update is done where it is meaningful: PyTorch's
optimizer is run on gentrain's own gradients (from the dump) and must give
gentrain's parameters elementwise ("optim" lines), while the gradients
themselves are checked elementwise above. BN running statistics are compared
elementwise.

Prints one line per compared tensor and ends with
  parity: N passed, M failed
exit status 1 when anything failed (2 for a usage or setup problem).
"""

import copy
import os
import sys

try:
    import h5py
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - setup problem
    print("parity: %s: install python3-torch python3-h5py (apt-get install -y python3-torch python3-h5py)"
          " and run with /usr/bin/python3" % e)
    sys.exit(2)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import torch_ref as tr  # noqa: E402

REL_TOL = 1e-4
ELEM_RTOL = 1e-4
ELEM_ATOL = 1e-5  # times max|ref|
UPDATE_TOL = 1e-3


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.worst = (0.0, "", 0.0, 1.0)  # (rel / tolerance, label, rel, tolerance)

    def _record(self, ok, rel, label, detail, tol=REL_TOL):
        print("%-4s %-58s rel %.2e%s" % ("ok" if ok else "FAIL", label, rel, detail))
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        if rel / tol > self.worst[0]:
            self.worst = (rel / tol, label, rel, tol)

    def tensor(self, label, got, ref, rel_tol=REL_TOL, elementwise=True):
        got = np.asarray(got, dtype=np.float64)
        ref = ref.detach().double().numpy() if torch.is_tensor(ref) else np.asarray(ref, dtype=np.float64)
        if got.size != ref.size:
            self._record(False, float("inf"), label, "  shape %s vs reference %s" % (got.shape, ref.shape))
            return
        got = got.reshape(ref.shape)
        diff = got - ref
        nref = np.linalg.norm(ref)
        ndiff = np.linalg.norm(diff)
        rel = ndiff / nref if nref > 0 else (0.0 if ndiff == 0 else float("inf"))
        ok = bool(np.isfinite(got).all()) and rel <= rel_tol
        detail = ""
        if elementwise and ref.size:
            scale = np.abs(ref).max()
            bad = np.abs(diff) > ELEM_RTOL * np.abs(ref) + ELEM_ATOL * scale
            nbad = int(bad.sum())
            if nbad:
                ok = False
                i = np.unravel_index(np.argmax(np.abs(diff) - ELEM_RTOL * np.abs(ref)), ref.shape)
                detail = "  %d elements off, e.g. at %s: %.6g vs reference %.6g" % (
                    nbad, tuple(int(k) for k in i), got[i], ref[i])
        self._record(ok, rel, label, detail, rel_tol)

    def scalar(self, label, got, ref):
        ref = float(ref)
        err = abs(float(got) - ref)
        rel = err / abs(ref) if ref != 0 else err
        self._record(rel <= REL_TOL, rel, label, "  %.8g vs reference %.8g" % (got, ref))


def tensor_dict(group):
    """{gentrain tensor name: array} of an h5py group, recursively."""
    out = {}
    group.visititems(lambda name, item: out.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return out


def masks_for(f, net, call):
    """{layer index: mask tensor} of /masks/<net>/call<c>."""
    path = "masks/%s/call%d" % (net, call)
    if path not in f:
        return {}
    return {int(k): torch.from_numpy(f[path][k][()]) for k in f[path]}


def check_optimizer(rep, f, cfg, net):
    """The optimizer gentrain built must be the config's (torch_ref reads it the same way)."""
    want = tr.optimizer_settings(cfg, net)
    attrs = f["before/params/" + net].attrs
    kind = attrs["kind"]
    kind = kind.decode() if isinstance(kind, bytes) else kind
    ok = kind == want["kind"]
    for k in ("lr", "beta1", "beta2", "eps", "weight_decay"):
        # gentrain keeps float32 settings
        ok = ok and abs(float(attrs[k]) - want[k]) <= 1e-6 * max(abs(want[k]), 1e-30)
    rep._record(ok, 0.0, "%s optimizer settings" % net,
                "" if ok else "  gentrain %s, config %s" % (dict(attrs), want))


def compare_nets(rep, f, what, nets, names):
    """what = 'after/params' or 'grads'."""
    for name in names:
        refs = tr.tensor_refs(nets[name])
        got = tensor_dict(f["%s/%s" % (what, name)])
        for tname, (t, trainable) in refs.items():
            if what == "grads" and not trainable:
                continue
            label = "%s %s/%s" % (what.split("/")[0], name, tname)
            if tname not in got:
                rep._record(False, float("inf"), label, "  missing in the dump")
                continue
            ref = t.grad if what == "grads" else t
            if ref is None:
                ref = torch.zeros_like(t)
            # end-to-end parameters after an optimizer step: norm-wise only (see the top)
            rep.tensor(label, got[tname], ref, elementwise=not (what == "after/params" and trainable))
        if what == "after/params":
            before = tensor_dict(f["before/params/" + name])
            for tname, (t, trainable) in refs.items():
                if trainable and tname in got:
                    rep.tensor("update %s/%s" % (name, tname), got[tname] - before[tname],
                               t.detach().double() - torch.from_numpy(before[tname]).double(),
                               rel_tol=UPDATE_TOL, elementwise=False)


def check_optimizer_step(rep, f, cfg, nets, name):
    """PyTorch's optimizer applied to gentrain's parameters and gradients must
    give gentrain's parameters after the step, elementwise."""
    net = tr.copy_net(nets[name])
    tr.load_tensors(net, f["before/params/" + name])
    grads = tensor_dict(f["grads/" + name])
    refs = tr.tensor_refs(net)
    for tname, (t, trainable) in refs.items():
        if trainable:
            t.grad = torch.from_numpy(grads[tname]).reshape(t.shape).clone()
    tr.make_optimizer(cfg, net).step()
    after = tensor_dict(f["after/params/" + name])
    for tname, (t, trainable) in refs.items():
        if trainable:
            rep.tensor("optim %s/%s" % (name, tname), after[tname], t)


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def gan_d_loss(kind, real, fake, smooth=0.0):
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wasserstein":
        return fake.mean() - real.mean()
    return bce(real, 1.0 - smooth) + bce(fake, 0.0)


def gan_g_loss(kind, fake):
    if kind == "nonsaturating":
        return bce(fake, 1.0)
    if kind == "minimax":
        return -bce(fake, 0.0)
    return -fake.mean()


def attr(f, name, default):
    return f.attrs[name] if name in f.attrs else default


def run_gan(rep, f, cfg, nets, stats):
    """One GAN step with the stabilizers tool_parity dumps: one-sided label
    smoothing, instance noise (the dumped noise added to D's real and generated
    inputs, the G phase reusing the D phase's), packing (D on x.reshape(B/P,
    P*C, H, W)), wasserstein with D's parameters clamped after its step, and
    the EMA generator."""
    G, D = nets["generator"], nets["discriminator"]
    kind = cfg.get("model", "loss", fallback="nonsaturating")
    smooth = float(attr(f, "label_smoothing", 0.0))
    pack = int(attr(f, "pack", 1))
    clip = float(attr(f, "clip", 0.0))
    g_ema = float(attr(f, "g_ema", 0.0))
    x = torch.from_numpy(f["x"][()])
    z = torch.from_numpy(f["z"][()])
    noise_real = torch.from_numpy(f["noise/real"][()]) if "noise" in f else None
    noise_fake = torch.from_numpy(f["noise/fake"][()]) if "noise" in f else None

    def packed(t):
        return t.reshape(t.shape[0] // pack, pack * t.shape[1], *t.shape[2:])

    # Forward outputs of a fresh model (train mode), on copies so the step's BN statistics stay untouched.
    Gc, Dc = tr.copy_net(G), tr.copy_net(D)
    tr.set_dropout_masks(Gc, masks_for(f, "generator", 3))
    tr.set_dropout_masks(Dc, masks_for(f, "discriminator", 0))
    with torch.no_grad():
        rep.tensor("forward G(z)", f["forward/G_z"][()], Gc(z))
        rep.tensor("forward D(x)", f["forward/D_x"][()], Dc(packed(x)))

    optG, optD = tr.make_optimizer(cfg, G), tr.make_optimizer(cfg, D)
    g_before = {k: t.detach().clone() for k, (t, _) in tr.tensor_refs(G).items()}
    tr.set_dropout_masks(G, masks_for(f, "generator", 3))
    fake = G(z)
    x_in = x if noise_real is None else x + noise_real
    fake_in = fake if noise_fake is None else fake + noise_fake
    # D phase
    tr.set_dropout_masks(D, masks_for(f, "discriminator", 0))
    real_logits = D(packed(x_in)).flatten()
    tr.set_dropout_masks(D, masks_for(f, "discriminator", 1))
    fake_logits = D(packed(fake_in.detach())).flatten()
    d_loss = gan_d_loss(kind, real_logits, fake_logits, smooth)
    optD.zero_grad()
    d_loss.backward()
    d_norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in D.parameters()))
    rep.scalar("stat d_loss", stats["d_loss"], d_loss.item())
    rep.scalar("stat d_real", stats["d_real"], torch.sigmoid(real_logits).double().mean().item())
    rep.scalar("stat d_fake", stats["d_fake"], torch.sigmoid(fake_logits).double().mean().item())
    rep.scalar("stat d_grad_norm", stats["d_grad_norm"], d_norm.item())
    compare_nets(rep, f, "grads", nets, ["discriminator"])
    optD.step()
    if kind == "wasserstein":
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-clip, clip)
    # G phase, with the updated D
    tr.set_dropout_masks(D, masks_for(f, "discriminator", 2))
    g_loss = gan_g_loss(kind, D(packed(fake_in)).flatten())
    optG.zero_grad()
    g_loss.backward()
    g_norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in G.parameters()))
    rep.scalar("stat g_loss", stats["g_loss"], g_loss.item())
    rep.scalar("stat g_grad_norm", stats["g_grad_norm"], g_norm.item())
    compare_nets(rep, f, "grads", nets, ["generator"])
    optG.step()
    compare_nets(rep, f, "after/params", nets, ["generator", "discriminator"])
    if kind != "wasserstein":  # the clamp is not an optimizer step
        for name in nets:
            check_optimizer_step(rep, f, cfg, nets, name)
    else:
        check_optimizer_step(rep, f, cfg, nets, "generator")
    if g_ema > 0:
        # ema = g_ema * (the weights before the step) + (1 - g_ema) * gentrain's weights after it;
        # the state is a copy of G's
        after = tensor_dict(f["after/params/generator"])
        ema = tensor_dict(f["after/ema/generator"])
        for tname, (t, trainable) in tr.tensor_refs(G).items():
            a = torch.from_numpy(after[tname])
            want = g_ema * g_before[tname] + (1 - g_ema) * a if trainable else a
            rep.tensor("ema generator/" + tname, ema[tname], want)


def run_vae(rep, f, cfg, nets, stats):
    E, Dec = nets["encoder"], nets["decoder"]
    Z = cfg.getint("model", "z_dim", fallback=20)
    recon_kind = cfg.get("model", "recon", fallback="bernoulli")
    kl_weight = cfg.getfloat("model", "kl_weight", fallback=1.0)
    x = torch.from_numpy(f["x"][()])
    eps = torch.from_numpy(f["eps"][()])
    B = x.shape[0]
    tr.set_dropout_masks(E, masks_for(f, "encoder", 0))
    tr.set_dropout_masks(Dec, masks_for(f, "decoder", 1))

    def forward(enc, dec):
        h = enc(x).flatten(1)
        mu, logvar = h[:, :Z], h[:, Z:]
        z = mu + torch.exp(0.5 * logvar) * eps
        return h, z, dec(z)

    Ec, Dc = tr.copy_net(E), tr.copy_net(Dec)
    with torch.no_grad():
        h, z, logits = forward(Ec, Dc)
        rep.tensor("forward encoder(x) = (mu, logvar)", f["forward/enc"][()], h)
        rep.tensor("forward z = mu + exp(logvar/2) eps", f["forward/z"][()], z)
        # gentrain's decoder ran on gentrain's z; feed it the same z to isolate the decoder.
        rep.tensor("forward decoder(z) logits", f["forward/dec"][()],
                   Dc(torch.from_numpy(f["forward/z"][()])))

    optE, optD = tr.make_optimizer(cfg, E), tr.make_optimizer(cfg, Dec)
    h, z, out = forward(E, Dec)
    mu, logvar = h[:, :Z], h[:, Z:]
    if recon_kind == "bernoulli":
        recon = F.binary_cross_entropy_with_logits(out.flatten(1), x.flatten(1), reduction="sum") / B
    else:
        recon = ((out.flatten(1) - x.flatten(1)) ** 2).sum() / B
    kl = -0.5 * (1 + logvar - mu ** 2 - torch.exp(logvar)).sum() / B
    loss = recon + kl_weight * kl
    optE.zero_grad()
    optD.zero_grad()
    loss.backward()
    rep.scalar("stat loss", stats["loss"], loss.item())
    rep.scalar("stat recon", stats["recon"], recon.item())
    rep.scalar("stat kl", stats["kl"], kl.item())
    for name, key in (("encoder", "enc_grad_norm"), ("decoder", "dec_grad_norm")):
        n = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in nets[name].parameters()))
        rep.scalar("stat " + key, stats[key], n.item())
    compare_nets(rep, f, "grads", nets, ["encoder", "decoder"])
    optE.step()
    optD.step()
    compare_nets(rep, f, "after/params", nets, ["encoder", "decoder"])
    for name in nets:
        check_optimizer_step(rep, f, cfg, nets, name)


def run_classifier(rep, f, cfg, nets, stats):
    C = nets["classifier"]
    x = torch.from_numpy(f["x"][()])
    labels = torch.from_numpy(f["labels"][()]).long()
    Cc = tr.copy_net(C)
    tr.set_dropout_masks(Cc, masks_for(f, "classifier", 0))
    with torch.no_grad():
        rep.tensor("forward logits", f["forward/logits"][()], Cc(x))
    opt = tr.make_optimizer(cfg, C)
    tr.set_dropout_masks(C, masks_for(f, "classifier", 0))
    logits = C(x)
    loss = F.cross_entropy(logits, labels)
    opt.zero_grad()
    loss.backward()
    rep.scalar("stat loss", stats["loss"], loss.item())
    rep.scalar("stat accuracy", stats["accuracy"], (logits.argmax(1) == labels).double().mean().item())
    compare_nets(rep, f, "grads", nets, ["classifier"])
    opt.step()
    compare_nets(rep, f, "after/params", nets, ["classifier"])
    check_optimizer_step(rep, f, cfg, nets, "classifier")


def main():
    if len(sys.argv) != 2:
        print("usage: /usr/bin/python3 tests/parity.py DUMP.h5 (written by tool_parity)")
        return 2
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with h5py.File(sys.argv[1], "r") as f:
        text = f.attrs["config"]
        text = text.decode() if isinstance(text, bytes) else text
        cfg = tr.load_config(text=text)
        x = f["x"]
        kind, nets, _ = tr.build_model(cfg, x.shape[1:])
        print("parity: %s (%s), batch %d, seed %d" % (os.path.basename(sys.argv[1]), kind, x.shape[0],
                                                       int(f.attrs["seed"])))
        tr.load_params_group(nets, f, "before/params")
        for net in nets.values():
            net.train()
        stats = {k: float(v) for k, v in f["stats"].attrs.items()}
        rep = Report()
        for name in nets:
            check_optimizer(rep, f, cfg, name)
        if kind == "gan":
            run_gan(rep, f, cfg, nets, stats)
        elif kind == "vae":
            run_vae(rep, f, cfg, nets, stats)
        elif kind == "classifier":
            run_classifier(rep, f, cfg, nets, stats)
        else:
            print("parity: model type %r is not covered" % kind)
            return 2
    print("worst: %s (rel %.2e, tolerance %.0e)" % rep.worst[1:])
    print("parity: %d passed, %d failed" % (rep.passed, rep.failed))
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
