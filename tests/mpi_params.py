#!/usr/bin/env python3
"""Compare parameter dumps written by `gentrain train ... debug.dump_params=PATH`
(PATH.rank<R>: per network a 32-byte name, uint64 n_params and n_state, then
float32 params and state). Used by tests/mpi_*.sh.

    mpi_params.py diff A B     prints, per network, the relative L2 difference
                               ||a - b|| / ||a|| of params (and of state), and
                               as the last line the largest of them
    mpi_params.py check F ...  every value of every dump is finite
    mpi_params.py selftest     checks diff and check on hand-made dumps

A NaN or an infinity in a dump, or a difference that is not finite, is an
error, not a number to compare: diff and check then print one line per
offending network and part (params or state) on stderr, naming the file, and
exit 1 (so is a dump that is truncated or whose networks do not match the
other's). NaN must never pass a bound: `max(0.0, nan)` is 0.0 and
`nan <= 1e-5` is False, so a NaN would slip through a "largest difference"
as well as through a "must differ" check.
"""
import math
import os
import struct
import subprocess
import sys
import tempfile
from array import array


class DumpError(Exception):
    """A dump that cannot be compared: unreadable, truncated, mismatched or not finite."""


def load(path):
    try:
        with open(path, "rb") as f:
            b = f.read()
    except OSError as e:
        raise DumpError(f"{path}: cannot read: {e.strerror}") from None
    nets, o = {}, 0
    while o < len(b):
        if o + 48 > len(b):
            raise DumpError(f"{path}: truncated at byte {o}: a network header needs 48 bytes, {len(b) - o} left")
        name = b[o:o + 32].rstrip(b"\0").decode(errors="replace")
        n_params, n_state = struct.unpack_from("<QQ", b, o + 32)
        o += 48
        if o + 4 * (n_params + n_state) > len(b):
            raise DumpError(f"{path}: network {name}: truncated: {n_params} params + {n_state} state values "
                            f"need {4 * (n_params + n_state)} bytes, {len(b) - o} left")
        if name in nets:
            raise DumpError(f"{path}: network {name} appears twice")
        p = array("f"); p.frombytes(b[o:o + 4 * n_params]); o += 4 * n_params
        s = array("f"); s.frombytes(b[o:o + 4 * n_state]); o += 4 * n_state
        nets[name] = (p, s)
    if not nets:
        raise DumpError(f"{path}: empty dump")
    return nets


PARTS = (("params", 0), ("state", 1))


def not_finite(path, nets):
    """One message per network and part holding a NaN or an infinity."""
    errors = []
    for k, v in nets.items():
        for what, i in PARTS:
            x = v[i]
            if all(map(math.isfinite, x)):
                continue
            bad = [j for j, u in enumerate(x) if not math.isfinite(u)]
            kinds = sorted({"NaN" if math.isnan(x[j]) else "Inf" for j in bad})
            errors.append(f"{path}: network {k} {what}: {len(bad)} of {len(x)} values are not finite "
                          f"({'/'.join(kinds)}; first at index {bad[0]}: {x[bad[0]]})")
    return errors


def rel(x, y):
    try:
        d = math.sqrt(math.fsum((u - v) * (u - v) for u, v in zip(x, y)))
        n = math.sqrt(math.fsum(u * u for u in x))
    except (OverflowError, ValueError):   # fsum's intermediate overflow, inf - inf
        return math.nan
    return d / n if n else d


def compare(a, b, name_a="A", name_b="B"):
    """[(network, part, relative L2 difference)] of two loaded dumps; DumpError
    if their layouts differ, a value is not finite, or a difference is not."""
    if a.keys() != b.keys():
        raise DumpError(f"{name_a} holds networks {sorted(a)}, {name_b} holds {sorted(b)}")
    errors = not_finite(name_a, a) + not_finite(name_b, b)
    if errors:
        raise DumpError("\n".join(errors))
    out = []
    for k in a:
        for what, i in PARTS:
            x, y = a[k][i], b[k][i]
            if len(x) != len(y):
                raise DumpError(f"network {k} {what}: {len(x)} values in {name_a}, {len(y)} in {name_b}")
            if not len(x):
                continue
            r = rel(x, y)
            if not math.isfinite(r):
                raise DumpError(f"{name_a} vs {name_b}: network {k} {what}: the relative L2 difference is {r}, not a finite number")
            out.append((k, what, r))
    return out


def cmd_diff(pa, pb):
    diffs = compare(load(pa), load(pb), pa, pb)
    for k, what, r in diffs:
        print(f"  {k} {what}: relative L2 difference {r:.3g}")
    print(f"{max(r for _, _, r in diffs):.6g}" if diffs else "0")


def cmd_check(paths):
    errors = []
    for p in paths:
        try:
            nets = load(p)
        except DumpError as e:
            errors.append(str(e))
            continue
        e = not_finite(p, nets)
        errors += e
        if not e:
            print(f"  {p}: " + ", ".join(f"{k} {len(v[0])}+{len(v[1])} values" for k, v in nets.items()) + ", all finite")
    if errors:
        raise DumpError("\n".join(errors))


def write(path, nets):
    """Write a dump: nets = [(name, params, state)]."""
    with open(path, "wb") as f:
        for name, p, s in nets:
            f.write(name.encode().ljust(32, b"\0"))
            f.write(struct.pack("<QQ", len(p), len(s)))
            f.write(array("f", p).tobytes())
            f.write(array("f", s).tobytes())


def selftest():
    nan, inf = float("nan"), float("inf")
    failures = []

    def expect(what, cond, detail=""):
        print(("ok: " if cond else "FAIL: ") + what + ("" if cond else f": {detail}"))
        if not cond:
            failures.append(what)

    def run(*args):
        r = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True)
        return r.returncode, r.stdout, r.stderr

    base = [("encoder", [3.0, 4.0], []), ("decoder", [1.0, 0.0, 0.0, 0.0], [0.5, 2.0])]

    def variant(net, part, index, value):
        out = []
        for name, p, s in base:
            p, s = list(p), list(s)
            if name == net:
                (p if part == "params" else s)[index] = value
            out.append((name, p, s))
        return out

    with tempfile.TemporaryDirectory() as d:
        f = {n: os.path.join(d, n) for n in ("a", "a2", "b", "pnan", "sinf", "pninf", "one", "trunc")}
        write(f["a"], base)
        write(f["a2"], base)
        write(f["b"], variant("encoder", "params", 1, 4.5))      # ||(0, 0.5)|| / ||(3, 4)|| = 0.1
        write(f["pnan"], variant("decoder", "params", 2, nan))
        write(f["sinf"], variant("decoder", "state", 1, inf))
        write(f["pninf"], variant("encoder", "params", 0, -inf))
        write(f["one"], base[:1])
        with open(f["a"], "rb") as src, open(f["trunc"], "wb") as dst:
            dst.write(src.read()[:-3])

        rc, out, err = run("diff", f["a"], f["a2"])
        expect("diff of equal dumps: exit 0, largest difference 0", rc == 0 and float(out.split()[-1]) == 0.0, (rc, out, err))
        rc, out, err = run("diff", f["a"], f["b"])
        expect("diff: relative L2 difference 0.1 of the changed network, 0 of the others",
               rc == 0 and abs(float(out.split("\n")[-2]) - 0.1) < 1e-7 and "encoder params: relative L2 difference 0.1" in out
               and "decoder state: relative L2 difference 0" in out, (rc, out, err))
        for name, other, net_part in (("a NaN parameter in B", f["pnan"], "network decoder params"),
                                      ("an infinite BN state value in B", f["sinf"], "network decoder state"),
                                      ("a -Inf parameter in B", f["pninf"], "network encoder params")):
            rc, out, err = run("diff", f["a"], other)
            expect(f"diff: {name} fails (exit 1) naming the file, the network and the part",
                   rc == 1 and f"{other}: {net_part}: 1 of" in err and out.strip() == "", (rc, out, err))
            rc, out, err = run("diff", other, f["a"])
            expect(f"diff: {name.replace(' in B', ' in A')} fails too", rc == 1 and f"{other}: {net_part}" in err, (rc, out, err))
        rc, out, err = run("diff", f["pnan"], f["pnan"])
        expect("diff: two bitwise-equal dumps holding the same NaN fail", rc == 1 and "NaN" in err, (rc, out, err))
        rc, out, err = run("diff", f["a"], f["one"])
        expect("diff: dumps of different networks fail", rc == 1 and "networks" in err, (rc, out, err))
        rc, out, err = run("diff", f["a"], f["trunc"])
        expect("diff: a truncated dump fails", rc == 1 and "truncated" in err, (rc, out, err))
        rc, out, err = run("check", f["a"], f["b"])
        expect("check: finite dumps pass", rc == 0, (rc, out, err))
        rc, out, err = run("check", f["a"], f["pnan"], f["sinf"])
        expect("check: NaN and Inf fail, each named", rc == 1 and "pnan: network decoder params" in err
               and "sinf: network decoder state" in err and f["a"] not in err, (rc, out, err))
        # finite float32 values cannot give a non-finite difference in double
        # precision; doubles can, and compare() must not return it as a number
        big = {"g": (array("d", [1e300]), array("d"))}
        neg = {"g": (array("d", [-1e300]), array("d"))}
        try:
            compare(big, neg)
            expect("a non-finite difference is an error", False, "compare() returned")
        except DumpError as e:
            expect("a non-finite difference is an error", "network g params" in str(e) and "not a finite number" in str(e), str(e))
    if failures:
        sys.exit(f"mpi_params.py selftest: {len(failures)} check(s) failed")
    print("mpi_params.py selftest: all checks passed")


def main():
    args = sys.argv[1:]
    try:
        if len(args) == 3 and args[0] == "diff":
            cmd_diff(args[1], args[2])
        elif len(args) >= 2 and args[0] == "check":
            cmd_check(args[1:])
        elif args == ["selftest"]:
            selftest()
        else:
            sys.stderr.write(__doc__)
            sys.exit(2)
    except DumpError as e:
        for line in str(e).split("\n"):
            print(f"mpi_params.py: error: {line}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
