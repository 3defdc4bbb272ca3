#!/usr/bin/env python3
"""Compare parameter dumps written by `gentrain train ... debug.dump_params=PATH`
(PATH.rank<R>: per network a 32-byte name, uint64 n_params and n_state, then
float32 params and state). Used by tests/mpi_*.sh.

    mpi_params.py diff A B     prints, per network, the relative L2 difference
                               ||a - b|| / ||a|| of params (and of state), and
                               as the last line the largest of them
"""
import math
import struct
import sys
from array import array


def load(path):
    nets, b, o = {}, open(path, "rb").read(), 0
    while o < len(b):
        name = b[o:o + 32].rstrip(b"\0").decode()
        n_params, n_state = struct.unpack_from("<QQ", b, o + 32)
        o += 48
        p = array("f"); p.frombytes(b[o:o + 4 * n_params]); o += 4 * n_params
        s = array("f"); s.frombytes(b[o:o + 4 * n_state]); o += 4 * n_state
        nets[name] = (p, s)
    return nets


def rel(x, y):
    d = math.sqrt(math.fsum((u - v) ** 2 for u, v in zip(x, y)))
    n = math.sqrt(math.fsum(u * u for u in x))
    return d / n if n else d


def main():
    a, b = load(sys.argv[2]), load(sys.argv[3])
    assert a.keys() == b.keys(), (a.keys(), b.keys())
    worst = 0.0
    for k in a:
        for what, i in (("params", 0), ("state", 1)):
            x, y = a[k][i], b[k][i]
            assert len(x) == len(y), (k, what, len(x), len(y))
            if not len(x):
                continue
            r = rel(x, y)
            print(f"  {k} {what}: relative L2 difference {r:.3g}")
            worst = max(worst, r)
    print(f"{worst:.6g}")


if __name__ == "__main__":
    main()
