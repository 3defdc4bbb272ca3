#!/usr/bin/python3
"""Sample files for the end-to-end evaluation tests (tests/eval_*.sh).

Writes HDF5 files with a dataset "samples" [N,1,28,28] (float32 in [0,1]) or
[N,2] (2-D points) that `gentrain eval --samples FILE` evaluates, made from
the real Fashion-MNIST files: a range of training or test images, one image
repeated, blurred or noised test images; and small IDX files of another
image size (for a classifier that does not fit the data).

  eval_images.py rows OUT.h5 train|test FIRST LAST
  eval_images.py repeat OUT.h5 train|test ROW N
  eval_images.py blur OUT.h5 SIGMA FIRST LAST          (test images, Gaussian blur of SIGMA pixels)
  eval_images.py noise OUT.h5 SIGMA FIRST LAST         (test images + N(0, SIGMA^2), clipped to [0,1])
  eval_images.py points OUT.h5 X Y N                   (N copies of the point (X, Y))
  eval_images.py idx PREFIX SIZE N                     (PREFIX-images.gz, PREFIX-labels.gz: N training
                                                        images shrunk to SIZE x SIZE, their labels)
"""
import gzip
import struct
import sys

import h5py
import numpy as np

FASHION = "/usr/share/datasets/fashion-mnist/"
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def images(which):
    with gzip.open(FASHION + FILES[which][0]) as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051, magic
        return np.frombuffer(f.read(), np.uint8).reshape(n, rows, cols)


def labels(which):
    with gzip.open(FASHION + FILES[which][1]) as f:
        magic, n = struct.unpack(">II", f.read(8))
        assert magic == 2049, magic
        return np.frombuffer(f.read(), np.uint8)


def write(path, x):
    with h5py.File(path, "w") as f:
        f.create_dataset("samples", data=np.ascontiguousarray(x, dtype=np.float32))


def unit(x):
    return x.astype(np.float32)[:, None, :, :] / 255.0


def main(argv):
    cmd, out = argv[1], argv[2]
    if cmd == "rows":
        write(out, unit(images(argv[3])[int(argv[4]):int(argv[5])]))
    elif cmd == "repeat":
        one = unit(images(argv[3])[int(argv[4]):int(argv[4]) + 1])
        write(out, np.repeat(one, int(argv[5]), axis=0))
    elif cmd == "blur":
        from scipy.ndimage import gaussian_filter
        x = unit(images("test")[int(argv[4]):int(argv[5])])
        sigma = float(argv[3])
        write(out, gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="constant") if sigma > 0 else x)
    elif cmd == "noise":
        x = unit(images("test")[int(argv[4]):int(argv[5])])
        rng = np.random.default_rng(12345)
        write(out, np.clip(x + float(argv[3]) * rng.standard_normal(x.shape), 0.0, 1.0))
    elif cmd == "points":
        write(out, np.tile(np.array([[float(argv[3]), float(argv[4])]], np.float32), (int(argv[5]), 1)))
    elif cmd == "idx":
        size, n = int(argv[3]), int(argv[4])
        x = images("train")[:n].astype(np.float32)
        step = 28 // size
        small = x[:, :size * step, :size * step].reshape(n, size, step, size, step).mean(axis=(2, 4))
        with gzip.open(out + "-images.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, size, size) + small.round().astype(np.uint8).tobytes())
        with gzip.open(out + "-labels.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, n) + labels("train")[:n].tobytes())
    else:
        sys.exit("eval_images.py: unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
