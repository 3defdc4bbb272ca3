"""PyTorch reference implementations of gentrain's networks, built from the
same INI configs that gentrain reads (configs/*.ini).

Used by the parity tests (tests/parity.py) and meant to be reused to load
gentrain checkpoints into PyTorch. Needs python3-torch (1.13) and, for HDF5
files, python3-h5py; run it with the Debian interpreter /usr/bin/python3.

Layer lines
-----------
A network is a config section ([generator], [discriminator], [encoder],
[decoder], [classifier]) whose keys ``layer1``, ``layer2``, ... (taken in
increasing number order, gaps allowed) are ``KIND opt=value ...``::

    dense     out=N [bias=true] [sn=false]
    conv2d    out=C kernel=K [stride=1] [pad=0] [bias=true] [sn=false]
    convt2d   out=C kernel=K [stride=1] [pad=0] [output_pad=0] [bias=true] [sn=false]
    batchnorm [eps=1e-5] [momentum=0.1]      (BatchNorm1d on vectors, 2d on images)
    layernorm [eps=1e-5]                     (LayerNorm over the per-example shape)
    relu | tanh | sigmoid
    leakyrelu [slope=0.01]
    dropout   [p=0.5]
    reshape   shape=CxHxW | shape=N
    flatten
    minibatch_std [group=4] [features=1]     (MinibatchStd below)
    upsample  [scale=2]                      (nn.Upsample(scale_factor=S, mode="nearest"))

Each network is an ``nn.Sequential`` in which module ``i`` is the ``i``-th
layer (0-based), so gentrain's tensor ``"07_dense/weight"`` is
``net[7].weight``. Weight layouts are PyTorch's in gentrain too (dense
``[out,in]``, conv ``[out,in,K,K]``, conv-transpose ``[in,out,K,K]``), so
tensors load without any transposition.

HDF5 tensors
------------
gentrain stores a network's tensors as ``/params/<net>/<NN>_<kind>/<tensor>``
(``weight``, ``bias``; batch norm also ``running_mean``, ``running_var``).
``load_tensors(net, group)`` loads such a group (or a dict of arrays) into a
network, checking names and shapes strictly; ``tensor_refs(net)`` gives the
gentrain names of a network's tensors.

Dropout
-------
``MaskedDropout`` behaves like ``nn.Dropout`` unless a mask is set with
``set_dropout_masks``; then, in training mode, it multiplies its input by
that mask (gentrain's masks hold 0 or 1/(1-p) per element), which lets a test
reproduce gentrain's random draws exactly.
"""

import configparser
import copy
import re
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "load_config", "parse_layers", "build_net", "build_model", "MaskedDropout", "set_dropout_masks",
    "tensor_refs", "load_tensors", "load_params_group", "optimizer_settings", "make_optimizer",
    "init_settings", "init_module", "init_net", "copy_net", "LAYER_KINDS", "NET_SECTIONS",
]

# Networks of each model type, in gentrain's order (model.h: net[0], net[1]).
NET_SECTIONS = {
    "gan": ("generator", "discriminator"),
    "vae": ("encoder", "decoder"),
    "classifier": ("classifier",),
}

# kind -> {option: (parser, default)}; None = required. Mirrors the layer kinds of
# src/nn/layers/ (tests/docs.sh checks that they agree with `gentrain help layers --json`).
def _bool(s):
    v = s.strip().lower()
    if v in ("true", "yes", "on", "1"):
        return True
    if v in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected true|false, got %r" % s)


def _shape(s):
    dims = [int(d) for d in s.split("x")]
    if len(dims) == 1:
        return (dims[0], 1, 1)
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError("expected CxHxW or N, got %r" % s)
    return tuple(dims)


_CONV_OPTS = {"out": (int, None), "kernel": (int, None), "stride": (int, 1), "pad": (int, 0), "bias": (_bool, True),
              "sn": (_bool, False)}
LAYER_KINDS = {
    "dense": {"out": (int, None), "bias": (_bool, True), "sn": (_bool, False)},
    "conv2d": dict(_CONV_OPTS),
    "convt2d": dict(_CONV_OPTS, output_pad=(int, 0)),
    "batchnorm": {"eps": (float, 1e-5), "momentum": (float, 0.1)},
    "layernorm": {"eps": (float, 1e-5)},
    "relu": {},
    "leakyrelu": {"slope": (float, 0.01)},
    "tanh": {},
    "sigmoid": {},
    "dropout": {"p": (float, 0.5)},
    "reshape": {"shape": (_shape, None)},
    "flatten": {},
    "minibatch_std": {"group": (int, 4), "features": (int, 1)},
    "upsample": {"scale": (int, 2)},
}


def load_config(path=None, text=None, overrides=()):
    """A ConfigParser from an INI file or text (e.g. a checkpoint's ``config``
    attribute), with gentrain's ``section.key=value`` overrides applied. Keys
    keep their case; ';' and '#' start comments, as in inih."""
    cfg = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",),
                                    comment_prefixes=(";", "#"), strict=True)
    cfg.optionxform = str
    if path is not None:
        with open(path) as f:
            cfg.read_file(f, source=path)
    if text is not None:
        cfg.read_string(text, source="<config text>")
    for o in overrides:
        key, _, value = o.partition("=")
        section, _, name = key.partition(".")
        if not _ or not name:
            raise ValueError("override %r is not section.key=value" % o)
        if not cfg.has_section(section):
            cfg.add_section(section)
        cfg.set(section, name, value)
    return cfg


def parse_layers(cfg, section):
    """[(kind, {option: value})] of a section's layer lines, in layer-number order."""
    if not cfg.has_section(section):
        raise ValueError("config has no [%s] section" % section)
    numbered = []
    for key, value in cfg.items(section):
        m = re.fullmatch(r"layer(\d+)", key)
        if m:
            numbered.append((int(m.group(1)), key, value))
    if not numbered:
        raise ValueError("[%s] has no layer lines (layer1 = ...)" % section)
    numbered.sort()
    layers = []
    for _, key, value in numbered:
        words = value.split()
        if not words or words[0] not in LAYER_KINDS:
            raise ValueError("[%s] %s = %r: unknown layer kind" % (section, key, value))
        kind, spec = words[0], LAYER_KINDS[words[0]]
        opts = {}
        for w in words[1:]:
            name, eq, val = w.partition("=")
            if not eq or name not in spec or name in opts:
                raise ValueError("[%s] %s = %r: bad option %r" % (section, key, value, w))
            opts[name] = spec[name][0](val)
        for name, (_, default) in spec.items():
            if name not in opts:
                if default is None:
                    raise ValueError("[%s] %s = %r: missing %s=" % (section, key, value, name))
                opts[name] = default
        layers.append((kind, opts))
    return layers


# ---- modules ---------------------------------------------------------------
# Thin subclasses so that a layer accepts what gentrain's accepts: gentrain
# keeps per-example shapes {C,H,W} over one flat buffer, so a dense layer on an
# image flattens it, and a conv or batch norm on a vector sees {N,1,1}.

class Dense(nn.Linear):
    def forward(self, x):
        return super().forward(x.flatten(1))


def _as_image(x):
    return x if x.dim() == 4 else x.reshape(x.shape[0], -1, 1, 1)


class Conv2d(nn.Conv2d):
    def forward(self, x):
        return super().forward(_as_image(x))


class ConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x):
        return super().forward(_as_image(x))


class Reshape(nn.Module):
    """Per-example reshape to (C,H,W) (a vector when H = W = 1)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        if self.shape[1:] == (1, 1):
            return x.reshape(x.shape[0], self.shape[0])
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self):
        return "shape=%s" % (self.shape,)


class Upsample(nn.Upsample):
    """nn.Upsample(scale_factor=S, mode="nearest") that takes a vector as a
    1x1 image, as gentrain's upsample does (a vector stays one at S = 1)."""

    def __init__(self, scale):
        super().__init__(scale_factor=scale, mode="nearest")

    def forward(self, x):
        if x.dim() != 4 and self.scale_factor == 1:
            return x
        return super().forward(_as_image(x))


class MinibatchStd(nn.Module):
    """gentrain's minibatch_std (src/nn/layers/minibatch_std.c), StyleGAN2's
    MinibatchStdLayer generalized to any batch: G = min(group, N) examples
    per group, M = ceil(N / G) groups, example n in group n mod M (StyleGAN2's
    x.reshape(G, -1, ...) when G divides N); appends `features` channels, the
    mean over channel groups and pixels of sqrt(var + 1e-8), the biased
    variance over the group."""

    def __init__(self, group, features):
        super().__init__()
        self.group, self.features = group, features

    def forward(self, x):
        x4 = _as_image(x)
        n, c, h, w = x4.shape
        g = min(self.group, n)
        m = (n + g - 1) // g
        f = self.features
        out = x4.new_empty(n, f, h, w)
        for j in range(m):
            idx = torch.arange(j, n, m)
            y = x4[idx]                                    # [G_j, C, H, W]
            y = y - y.mean(dim=0)
            y = (y.square().mean(dim=0) + 1e-8).sqrt()     # [C, H, W]
            y = y.reshape(f, c // f, h, w).mean(dim=[1, 2, 3])  # [F]
            out[idx] = y.reshape(1, f, 1, 1).expand(len(idx), f, h, w)
        y = torch.cat([x4, out], dim=1)
        return y if x.dim() == 4 else y.reshape(n, -1)

    def extra_repr(self):
        return "group=%d, features=%d" % (self.group, self.features)


class MaskedDropout(nn.Module):
    """nn.Dropout(p), or, when a mask is set (``set_mask``), ``x * mask`` in
    training mode; the mask has the input's shape (or [B, numel]) and holds
    the kept elements' scale 1/(1-p) and zeros. Eval mode is the identity."""

    def __init__(self, p):
        super().__init__()
        self.p = p
        self.mask = None

    def set_mask(self, mask):
        self.mask = mask

    def forward(self, x):
        if not self.training:
            return x
        if self.mask is None:
            return F.dropout(x, self.p, True)
        return x * self.mask.reshape(x.shape).to(x.dtype)

    def extra_repr(self):
        return "p=%g%s" % (self.p, ", external mask" if self.mask is not None else "")


class GentrainNet(nn.Sequential):
    """A gentrain network: module i is layer i. Attributes: name, in_shape,
    out_shape (per-example (C,H,W)), kinds (the layer kinds)."""

    def __init__(self, name, in_shape, layers):
        mods, kinds = [], []
        shape = tuple(in_shape)
        for i, (kind, o) in enumerate(layers):
            c, h, w = shape
            if kind == "dense":
                mod = Dense(c * h * w, o["out"], bias=o["bias"])
                shape = (o["out"], 1, 1)
            elif kind == "conv2d":
                k, s, p = o["kernel"], o["stride"], o["pad"]
                mod = Conv2d(c, o["out"], k, stride=s, padding=p, bias=o["bias"])
                shape = (o["out"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
            elif kind == "convt2d":
                k, s, p, q = o["kernel"], o["stride"], o["pad"], o["output_pad"]
                mod = ConvTranspose2d(c, o["out"], k, stride=s, padding=p, output_padding=q, bias=o["bias"])
                shape = (o["out"], (h - 1) * s - 2 * p + k + q, (w - 1) * s - 2 * p + k + q)
            elif kind == "batchnorm":
                bn = nn.BatchNorm1d if (h, w) == (1, 1) else nn.BatchNorm2d
                mod = bn(c, eps=o["eps"], momentum=o["momentum"])
            elif kind == "layernorm":
                mod = nn.LayerNorm([c] if (h, w) == (1, 1) else [c, h, w], eps=o["eps"])
            elif kind == "relu":
                mod = nn.ReLU()
            elif kind == "leakyrelu":
                mod = nn.LeakyReLU(o["slope"])
            elif kind == "tanh":
                mod = nn.Tanh()
            elif kind == "sigmoid":
                mod = nn.Sigmoid()
            elif kind == "dropout":
                mod = MaskedDropout(o["p"])
            elif kind == "flatten":
                mod = nn.Flatten()
                shape = (c * h * w, 1, 1)
            elif kind == "minibatch_std":
                if c % o["features"]:
                    raise ValueError("%s layer %d: features=%d must divide %d channels" % (name, i, o["features"], c))
                mod = MinibatchStd(o["group"], o["features"])
                shape = (c + o["features"], h, w)
            elif kind == "upsample":
                mod = Upsample(o["scale"])
                shape = (c, h * o["scale"], w * o["scale"])
            elif kind == "reshape":
                new = o["shape"]
                if new[0] * new[1] * new[2] != c * h * w:
                    raise ValueError("%s layer %d: cannot reshape %s to %s" % (name, i, shape, new))
                if (h, w) == (1, 1) and new[1:] != (1, 1):
                    mod = nn.Unflatten(1, new)
                elif new[1:] == (1, 1):
                    mod = nn.Flatten()
                else:
                    mod = Reshape(new)
                shape = new
            else:  # parse_layers rejects unknown kinds
                raise AssertionError(kind)
            if o.get("sn"):  # dim 1 for ConvTranspose2d, as spectral_norm chooses by itself
                mod = nn.utils.spectral_norm(mod)
            mods.append(mod)
            kinds.append(kind)
        super().__init__(*mods)
        self.name = name
        self.in_shape = tuple(in_shape)
        self.out_shape = shape
        self.kinds = kinds


def build_net(cfg, section, in_shape):
    """The network of one config section for per-example input shape (C,H,W)."""
    return GentrainNet(section, in_shape, parse_layers(cfg, section))


def build_model(cfg, data_shape, n_classes=10):
    """(model type, OrderedDict net name -> GentrainNet, info dict) as
    gt_model_build builds them for data of shape (C,H,W)."""
    kind = cfg.get("model", "type")
    if kind not in NET_SECTIONS:
        raise ValueError("[model] type = %r: expected one of %s" % (kind, ", ".join(NET_SECTIONS)))
    data_shape = tuple(data_shape)
    nets = OrderedDict()
    info = {"type": kind}
    if kind == "gan":
        z = cfg.getint("model", "z_dim", fallback=100)
        pack = cfg.getint("model", "pack", fallback=1)  # PacGAN: D sees pack samples along channels
        info.update(z_dim=z, loss=cfg.get("model", "loss", fallback="nonsaturating"), pack=pack,
                    g_ema=cfg.getfloat("model", "g_ema", fallback=0.0))
        nets["generator"] = build_net(cfg, "generator", (z, 1, 1))
        nets["discriminator"] = build_net(cfg, "discriminator", (pack * data_shape[0],) + data_shape[1:])
    elif kind == "vae":
        z = cfg.getint("model", "z_dim", fallback=20)
        info.update(z_dim=z, recon=cfg.get("model", "recon", fallback="bernoulli"),
                    binarize=_bool(cfg.get("model", "binarize", fallback="false")),
                    kl_weight=cfg.getfloat("model", "kl_weight", fallback=1.0))
        nets["encoder"] = build_net(cfg, "encoder", data_shape)
        nets["decoder"] = build_net(cfg, "decoder", (z, 1, 1))
    else:
        nets["classifier"] = build_net(cfg, "classifier", data_shape)
        info["n_classes"] = n_classes
    return kind, nets, info


def copy_net(net):
    """A deep copy of a network; spectral norm's computed ``weight`` (not a
    leaf after a forward, which deepcopy refuses) is detached first (the next
    forward recomputes it)."""
    for mod in net:
        if hasattr(mod, "weight_orig"):
            setattr(mod, "weight", mod.weight.detach())
    return copy.deepcopy(net)


def set_dropout_masks(net, masks):
    """masks: {layer index: tensor or None}; dropout layers not named get None
    (ordinary random dropout)."""
    for i, mod in enumerate(net):
        if isinstance(mod, MaskedDropout):
            mod.set_mask(masks.get(i))


# ---- tensors -----------------------------------------------------------------

def tensor_refs(net):
    """OrderedDict gentrain name -> (tensor, trainable) in checkpoint order
    (layer by layer; weight (spectral norm: weight_orig), bias, weight_u,
    weight_v, running_mean, running_var)."""
    refs = OrderedDict()
    for i, mod in enumerate(net):
        prefix = "%02d_%s/" % (i, net.kinds[i])
        for pname in ("weight", "weight_orig", "bias"):
            t = getattr(mod, pname, None)
            if isinstance(t, nn.Parameter):
                refs[prefix + pname] = (t, True)
        if hasattr(mod, "weight_u"):  # spectral norm's power-iteration vectors (buffers)
            refs[prefix + "weight_u"] = (mod.weight_u, False)
            refs[prefix + "weight_v"] = (mod.weight_v, False)
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            refs[prefix + "running_mean"] = (mod.running_mean, False)
            refs[prefix + "running_var"] = (mod.running_var, False)
    return refs


def _walk(group, prefix=""):
    """Flattens an h5py group (or nested dicts) to {relative name: array}."""
    out = {}
    for key in group:
        item = group[key]
        if hasattr(item, "keys"):
            out.update(_walk(item, prefix + key + "/"))
        else:
            out[prefix + key] = item[()]
    return out


def _canonical(name):
    """'7_dense/weight' and '007_dense/weight' -> (7, 'dense', 'weight')."""
    m = re.fullmatch(r"(\d+)_([a-z0-9]+)/(\w+)", name)
    if not m:
        raise ValueError("tensor name %r is not <NN>_<kind>/<tensor>" % name)
    return int(m.group(1)), m.group(2), m.group(3)


def load_tensors(net, group, strict=True):
    """Copies gentrain tensors (an h5py group such as f['/params/generator'],
    or a dict name -> array) into net. Shapes must match exactly; with strict,
    every tensor of the net must be given and nothing else."""
    given = {_canonical(k): v for k, v in _walk(group).items()}
    refs = {_canonical(k): (k, t) for k, (t, _) in tensor_refs(net).items()}
    missing = [refs[k][0] for k in refs if k not in given]
    extra = ["%02d_%s/%s" % k for k in given if k not in refs]
    if strict and (missing or extra):
        raise ValueError("%s: tensors missing %s, unexpected %s" % (net.name, missing, extra))
    with torch.no_grad():
        for key, value in given.items():
            if key not in refs:
                continue
            name, t = refs[key]
            v = torch.as_tensor(value)
            if tuple(v.shape) != tuple(t.shape):
                raise ValueError("%s %s: shape %s in the file, %s in the network"
                                 % (net.name, name, tuple(v.shape), tuple(t.shape)))
            t.copy_(v.to(t.dtype))


def load_params_group(nets, h5file, root="/params"):
    """Loads every network of build_model's dict from h5file[root/<net>]
    (e.g. a gentrain checkpoint opened with h5py)."""
    for name, net in nets.items():
        load_tensors(net, h5file[root + "/" + name])


# ---- initialization -----------------------------------------------------------

def init_settings(cfg, net_name):
    """(scheme, std) of a network section's ``init`` and ``init_std`` keys, with
    gentrain's defaults (pytorch, 0.02)."""
    return (cfg.get(net_name, "init", fallback="pytorch"), cfg.getfloat(net_name, "init_std", fallback=0.02))


def init_module(mod, scheme, std=0.02):
    """Initializes one module as gentrain's ``init = scheme`` does (src/nn/net.c),
    with torch.nn.init: pytorch is the module's own reset_parameters(); normal
    draws weights from N(0, std) and norm scales from N(1, std); xavier is
    xavier_uniform_, kaiming is kaiming_normal_ (fan_in, ReLU); biases and
    shifts 0 for all but pytorch. Spectral norm's weight_orig counts as the
    weight (its u and v are left alone)."""
    if scheme not in ("pytorch", "normal", "xavier", "kaiming"):
        raise ValueError("init = %r: expected pytorch, normal, xavier or kaiming" % scheme)
    w = getattr(mod, "weight_orig", None)
    if w is None:
        w = getattr(mod, "weight", None)
    if not isinstance(w, nn.Parameter):
        return mod
    with torch.no_grad():
        if scheme == "pytorch":
            if hasattr(mod, "weight_orig"):  # reset_parameters would look for .weight
                bound = 1.0 / (nn.init._calculate_fan_in_and_fan_out(w)[0] ** 0.5)
                nn.init.kaiming_uniform_(w, a=5 ** 0.5)
                if isinstance(getattr(mod, "bias", None), nn.Parameter):
                    nn.init.uniform_(mod.bias, -bound, bound)
            else:
                mod.reset_parameters()
            return mod
        if isinstance(mod, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)):
            if scheme == "normal":
                nn.init.normal_(w, 1.0, std)
            else:
                nn.init.ones_(w)
        elif scheme == "normal":
            nn.init.normal_(w, 0.0, std)
        elif scheme == "xavier":
            nn.init.xavier_uniform_(w)
        else:
            nn.init.kaiming_normal_(w, nonlinearity="relu")
        if isinstance(getattr(mod, "bias", None), nn.Parameter):
            nn.init.zeros_(mod.bias)
    return mod


def init_net(net, scheme, std=0.02):
    """init_module on every module of net; pytorch leaves the fresh defaults."""
    if scheme != "pytorch":
        for mod in net:
            init_module(mod, scheme, std)
    return net


# ---- optimizers ---------------------------------------------------------------

def optimizer_settings(cfg, net_name):
    """[optim] as gentrain reads it (src/models/model.c): kind, lr (or
    lr_<net>), beta1, beta2, eps, weight_decay, with gentrain's defaults."""
    kind = cfg.get("optim", "kind", fallback="adam")
    lr = cfg.getfloat("optim", "lr", fallback=1e-3)
    lr = cfg.getfloat("optim", "lr_" + net_name, fallback=lr)
    return {
        "kind": kind,
        "lr": lr,
        "beta1": cfg.getfloat("optim", "beta1", fallback=0.9 if kind == "adam" else 0.0),
        "beta2": cfg.getfloat("optim", "beta2", fallback=0.999),
        "eps": cfg.getfloat("optim", "eps", fallback=1e-8),
        "weight_decay": cfg.getfloat("optim", "weight_decay", fallback=0.0),
    }


def gentrain_process_settings(malloc="gentrain"):
    """What gentrain sets up in its own process before it trains (src/core/
    error.c), for benchmarks that time PyTorch beside it: denormals flushed to
    zero, and glibc's malloc told to keep freed memory (mmap threshold 32 MiB,
    trim threshold 256 MiB, gt_keep_freed_memory). PyTorch allocates its
    tensors anew every step; with glibc's defaults, blocks above the (growing)
    mmap threshold are mapped and unmapped every step and freed heap is
    trimmed, so every step faults its pages in again: on the benchmark machine
    (a VM with slow page faults) that made PyTorch's dcgan step up to 1.7x and
    its vae step up to 3x slower, varying from run to run. malloc="glibc"
    keeps glibc's defaults (to show that). Returns what was set."""
    import ctypes
    import ctypes.util
    torch.set_flush_denormal(True)
    if malloc == "glibc":
        return {"malloc": "glibc", "flush_denormal": True}
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
    if libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 or libc.mallopt(M_TRIM_THRESHOLD, 256 << 20) != 1:
        raise RuntimeError("mallopt failed: cannot give PyTorch gentrain's malloc settings")
    return {"malloc": "gentrain", "flush_denormal": True}


def make_optimizer(cfg, net):
    """torch.optim.Adam or SGD with the config's settings (optim.h semantics)."""
    s = optimizer_settings(cfg, net.name)
    if s["kind"] == "adam":
        return torch.optim.Adam(net.parameters(), lr=s["lr"], betas=(s["beta1"], s["beta2"]), eps=s["eps"],
                                weight_decay=s["weight_decay"])
    if s["kind"] == "sgd":
        return torch.optim.SGD(net.parameters(), lr=s["lr"], momentum=s["beta1"], weight_decay=s["weight_decay"])
    raise ValueError("[optim] kind = %r: expected adam or sgd" % s["kind"])


if __name__ == "__main__":
    import sys

    if len(sys.argv) < 2:
        sys.exit("usage: torch_ref.py CONFIG.ini [section.key=value ...]   (prints the networks)")
    c = load_config(sys.argv[1], overrides=sys.argv[2:])
    _, ns, inf = build_model(c, (1, 28, 28))
    print(inf)
    for n in ns.values():
        print(n.name, n.in_shape, "->", n.out_shape)
        print(n)
