#!/usr/bin/python3
"""Initialization statistics of gentrain against torch.nn.init.

usage: /usr/bin/python3 tests/init_parity.py DUMP.h5

DUMP.h5 is written by tool_parity (its /before/params are the freshly
initialized networks of the config it stores). For every tensor, PyTorch
initializes a tensor of the same shape the same way (tools/torch_ref.py
init_net: torch.nn.init.normal_, xavier_uniform_, kaiming_normal_ or the
modules' own defaults), and the two samples must agree:
  * PyTorch's draws are repeated on a copy of the module until there are at
    least 2000 values (so that a bias of one element is compared with a
    distribution, not with one draw);
  * constants (biases 0, scales 1, running statistics) exactly;
  * otherwise mean and standard deviation within 6 standard errors of each
    other and a two-sample Kolmogorov-Smirnov test p > 1e-4 (SciPy), for
    tensors of at least 50 values; smaller ones (from 10) the moments only,
    below 10 values the largest |value| within the range of PyTorch's draws.
Unit vectors (spectral norm's u and v) must have norm 1.
Prints one line per tensor; exit status 1 if any fails.
"""
import copy
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import torch_ref as tr  # noqa: E402

try:
    from scipy.stats import ks_2samp
except ImportError:  # pragma: no cover
    ks_2samp = None


def compare(ours, ref, constant):
    """ours: gentrain's tensor; ref: PyTorch's draws of it, pooled over several
    initializations (at least 2000 values); constant: PyTorch's draws are all
    the same value."""
    ours = np.asarray(ours, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    if constant:
        ok = bool(np.all(ours == ref[0]))
        return ok, "constant %g%s" % (ref[0], "" if ok else " but gentrain has %g..%g" % (ours.min(), ours.max()))
    n, m = ours.size, ref.size
    ao, ar = np.abs(ours).max(), np.abs(ref).max()
    if n < 10:  # too few to test moments: within the range PyTorch's draws span
        ok = ao <= ar
        return ok, "max|x| %.4g within PyTorch's %.4g" % (ao, ar)
    mo, mr, so, sr = ours.mean(), ref.mean(), ours.std(ddof=1), ref.std(ddof=1)
    s = max(so, sr)
    se = np.sqrt(1.0 / n + 1.0 / m)
    ok = abs(mo - mr) <= 6 * s * se and abs(so - sr) <= 6 * s * se
    detail = "mean %.4g/%.4g std %.4g/%.4g max|x| %.4g/%.4g" % (mo, mr, so, sr, ao, ar)
    if ks_2samp is not None and n >= 50:
        p = ks_2samp(ours, ref).pvalue
        ok = ok and p > 1e-4
        detail += " KS p %.3g" % p
    return ok, detail


def reference_draws(mod, attr, scheme, std, want=2000):
    """PyTorch's initialization of mod.<attr>, drawn repeatedly on a copy until
    there are at least `want` values; (values, constant)."""
    mod = copy.deepcopy(mod)
    draws = []
    while sum(d.size for d in draws) < want:
        tr.init_module(mod, scheme, std)
        draws.append(getattr(mod, attr).detach().numpy().copy().ravel())
    values = np.concatenate(draws)
    return values, bool(np.all(values == values[0]))


def main():
    if len(sys.argv) != 2:
        print("usage: /usr/bin/python3 tests/init_parity.py DUMP.h5 (written by tool_parity)")
        return 2
    torch.manual_seed(12345)
    failed = passed = 0
    with h5py.File(sys.argv[1], "r") as f:
        text = f.attrs["config"]
        cfg = tr.load_config(text=text.decode() if isinstance(text, bytes) else text)
        _, nets, _ = tr.build_model(cfg, f["x"].shape[1:])
        for name, net in nets.items():
            scheme, std = tr.init_settings(cfg, name)
            for tname, (t, _) in tr.tensor_refs(net).items():
                ours = f["before/params/%s/%s" % (name, tname)][()]
                index, attr = int(tname.split("_", 1)[0]), tname.split("/")[1]
                if attr in ("weight_u", "weight_v"):
                    norm = float(np.linalg.norm(ours.astype(np.float64)))
                    ok, detail = abs(norm - 1) < 1e-5, "unit vector, norm %.7f" % norm
                elif attr in ("running_mean", "running_var"):
                    want = 0.0 if attr == "running_mean" else 1.0
                    ok, detail = bool(np.all(ours == want)), "constant %g" % want
                else:
                    ref, constant = reference_draws(net[index], attr, scheme, std)
                    ok, detail = compare(ours, ref, constant)
                print("%-4s init %s %s/%s (%s): %s" % ("ok" if ok else "FAIL", scheme, name, tname,
                                                      "x".join(map(str, t.shape)), detail))
                passed += ok
                failed += not ok
    print("init_parity: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
