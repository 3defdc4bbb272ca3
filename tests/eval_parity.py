"""NumPy/SciPy parity of the metrics of src/eval (run by tests/eval_parity.sh):
   python3 tests/eval_parity.py TOOL_EVAL TMPDIR

Generates correlated feature sets (train = "real", gen = "fake", test),
runs tool_eval on them and recomputes every metric with plain NumPy and
SciPy: FID with scipy.linalg.sqrtm as pytorch-fid does, KID on the same
subsets as torch-fidelity's formula, precision/recall/density/coverage by
full distance matrices, nearest neighbours by sorting, the closer-to-train
share, and C_T with scipy.stats.mannwhitneyu on the tool's cells."""
import json
import os
import subprocess
import sys

try:
    import numpy as np
    import scipy.linalg
    import scipy.stats
except ImportError as e:
    sys.exit(f"eval_parity.py: {e}: install NumPy and SciPy for {sys.executable} "
             "(apt-get install -y python3-numpy python3-scipy)")

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {what}")
    else:
        failed += 1
        print(f"FAIL: {what}")


def close(a, b, rtol, atol=0.0):
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


def features(rng, n, dim, mix, shift):
    """n rows of z @ mix + shift, z standard normal: correlated features (float32)."""
    return (rng.standard_normal((n, dim)) @ mix + shift).astype(np.float32)


def sqdist(a, b):
    """Squared Euclidean distances in float64, [len(a), len(b)]."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d2, 0.0)


def kth_radius(x, k):
    d2 = sqdist(x, x)
    np.fill_diagonal(d2, np.inf)
    return np.sqrt(np.partition(d2, k - 1, axis=1)[:, k - 1])


def fid_scipy(a, b):
    """pytorch-fid's calculate_frechet_distance on float64 moments."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = scipy.linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def mmd2_poly3(x, y):
    """torch-fidelity's unbiased MMD^2 with k(x,y) = (x.y/d + 1)^3, in float64."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    d = x.shape[1]
    m = x.shape[0]
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    return ((k_xx.sum() - np.trace(k_xx)) + (k_yy.sum() - np.trace(k_yy))) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m)


def main():
    tool, tmp = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(2024)
    dim, n_train, n_gen, n_test = 64, 2000, 1500, 1000
    mix_data = np.eye(dim) + 0.3 * rng.standard_normal((dim, dim)) / np.sqrt(dim) * 4
    mix_gen = 0.9 * mix_data + 0.2 * rng.standard_normal((dim, dim)) / np.sqrt(dim)
    shift = rng.standard_normal(dim)
    train = features(rng, n_train, dim, mix_data, shift)
    test = features(rng, n_test, dim, mix_data, shift)
    gen = features(rng, n_gen, dim, mix_gen, shift + 0.1)
    for name, x in (("train", train), ("gen", gen), ("test", test)):
        x.tofile(os.path.join(tmp, f"{name}.f32"))
    out = subprocess.run([tool, tmp, str(n_train), str(n_gen), str(n_test), str(dim)], check=True,
                         capture_output=True, text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    res = json.loads(out.stdout)

    def load(name, dtype, shape):
        return np.fromfile(os.path.join(tmp, name), dtype=dtype).reshape(shape)

    # FID
    ref = fid_scipy(train, gen)
    check(close(res["fid"], ref, 1e-4), f"FID {res['fid']:.10g} vs scipy.linalg.sqrtm {ref:.10g} "
          f"(relative difference {abs(res['fid'] - ref) / ref:.2g})")
    self_fid = fid_scipy(train, train)
    check(abs(self_fid) < 1e-6, f"(reference sanity) scipy FID of a set with itself {self_fid:.3g}")

    # KID on the tool's subsets
    m = res["kid_subset_size"]
    rows_a = load("kid_rows_a.i32", np.int32, (-1, m))
    rows_b = load("kid_rows_b.i32", np.int32, (-1, m))
    check(all(len(set(r)) == m and r.min() >= 0 and r.max() < n_train for r in rows_a) and
          all(len(set(r)) == m and r.min() >= 0 and r.max() < n_gen for r in rows_b),
          f"KID subsets: {len(rows_a)} subsets of {m} distinct rows")
    ref_mmd = np.array([mmd2_poly3(train[a], gen[b]) for a, b in zip(rows_a, rows_b)])
    got_mmd = np.array(res["kid_mmd2"])
    worst = np.max(np.abs(got_mmd - ref_mmd) / np.maximum(np.abs(ref_mmd), 1e-3))
    check(worst < 1e-9, f"KID per subset: largest relative difference {worst:.2g} "
          f"(mean {got_mmd.mean():.6g} vs {ref_mmd.mean():.6g})")
    check(close(res["kid_mean"], ref_mmd.mean(), 1e-9) and close(res["kid_std"], ref_mmd.std(), 1e-7),
          f"KID mean {res['kid_mean']:.8g} / std {res['kid_std']:.6g} vs NumPy {ref_mmd.mean():.8g} / "
          f"{ref_mmd.std():.6g} (np.std, as torch-fidelity)")

    # precision, recall, density, coverage
    rpr, rdc, fpr = kth_radius(train, 3), kth_radius(train, 5), kth_radius(gen, 3)
    c_rpr = load("real_radius_pr.f32", np.float32, (-1,))
    c_rdc = load("real_radius_dc.f32", np.float32, (-1,))
    c_fpr = load("fake_radius_pr.f32", np.float32, (-1,))
    worst = max(np.max(np.abs(c - r) / r) for c, r in ((c_rpr, rpr), (c_rdc, rdc), (c_fpr, fpr)))
    check(worst < 1e-6, f"k-NN radii (k = 3, 5) against sorting: largest relative difference {worst:.2g}")
    d = np.sqrt(sqdist(train, gen))  # [real, fake]

    def prdc(dist, r_pr, r_dc, f_pr):
        return {"precision": float((dist <= r_pr[:, None]).any(axis=0).mean()),
                "recall": float((dist <= f_pr[None, :]).any(axis=1).mean()),
                "density": float((dist < r_dc[:, None]).sum(axis=0).mean() / 5),
                "coverage": float((dist.min(axis=1) < r_dc).mean())}

    # with the tool's float radii and distances rounded to float as the tool does: the same counts exactly
    same = prdc(d.astype(np.float32), c_rpr, c_rdc, c_fpr)
    check(all(res[k] == same[k] for k in same),
          "PRDC counts with the same radii: " + ", ".join(f"{k} {res[k]:.6g} vs {same[k]:.6g}" for k in same))
    # all in float64: equal up to a flip at a ball's boundary
    f64 = prdc(d, rpr, rdc, fpr)
    check(all(abs(res[k] - f64[k]) <= 2.0 / min(n_train, n_gen) for k in f64),
          "PRDC all in float64: " + ", ".join(f"{k} {res[k]:.6g} vs {f64[k]:.6g}" for k in f64))
    check(0.05 < f64["precision"] < 0.95 and 0.05 < f64["recall"] < 0.95,
          "(the data is a real test: neither all nor nothing inside)")

    # nearest neighbours of gen in train
    c_ni = load("knn_index.i32", np.int32, (n_gen, 3))
    c_nd = load("knn_dist.f32", np.float32, (n_gen, 3))
    order = np.argsort(d.T, axis=1, kind="stable")[:, :3]
    nd = np.take_along_axis(d.T, order, axis=1)
    check(np.array_equal(order, c_ni) and np.max(np.abs(c_nd - nd) / nd) < 1e-6,
          f"3 nearest neighbours: {np.sum(order != c_ni)} indices differ, distances within "
          f"{np.max(np.abs(c_nd - nd) / nd):.2g}")

    # closer-to-train share on the tool's references
    s = res["memorization_ref_size"]
    tr = load("mem_train_rows.i32", np.int32, (-1,))
    te = load("mem_test_rows.i32", np.int32, (-1,))
    check(s == min(n_train, n_test) and len(set(tr)) == s and len(set(te)) == s and tr.max() < n_train and
          te.max() < n_test, f"memorization references: {s} distinct rows of each set")
    d_tr = np.sqrt(sqdist(gen, train[tr]).min(axis=1)).astype(np.float32)
    d_te = np.sqrt(sqdist(gen, test[te]).min(axis=1)).astype(np.float32)
    share = float(np.mean(d_tr < d_te) + 0.5 * np.mean(d_tr == d_te))
    check(abs(res["closer_to_train_share"] - share) <= 2.0 / n_gen,
          f"closer-to-train share {res['closer_to_train_share']:.6g} vs NumPy {share:.6g}")

    # C_T on the tool's k-means centroids, with scipy.stats.mannwhitneyu
    cells = res["cells"]
    cent = load("centroids.f32", np.float32, (cells, dim))
    cell = {}
    for name, x in (("train", train), ("test", test), ("gen", gen)):
        cell[name] = np.argmin(sqdist(x, cent), axis=1)
        c_cell = load(f"cell_{name}.i32", np.int32, (-1,))
        check(np.array_equal(cell[name], c_cell), f"cells of {name}: {np.sum(cell[name] != c_cell)} differ")
    z_ref = [None] * cells
    num = den = 0.0
    for c in range(cells):
        t_c, g_c, p_c = train[cell["train"] == c], gen[cell["gen"] == c], test[cell["test"] == c]
        if len(g_c) <= res["min_gen"] or len(p_c) == 0 or len(t_c) == 0:
            continue
        lg = np.sqrt(sqdist(g_c, t_c).min(axis=1)).astype(np.float32)
        lp = np.sqrt(sqdist(p_c, t_c).min(axis=1)).astype(np.float32)
        u = scipy.stats.mannwhitneyu(lg, lp, alternative="two-sided").statistic  # U of the first sample
        mm, nn = len(lg), len(lp)
        z = (u - mm * nn / 2) / np.sqrt(mm * nn * (mm + nn + 1) / 12)
        z_ref[c] = z
        num += len(p_c) / n_test * z
        den += len(p_c) / n_test
    ct = num / den
    zs_ok = all((a is None and b is None) or (a is not None and b is not None and close(a, b, 1e-9, 1e-12))
                for a, b in zip(res["z"], z_ref))
    check(zs_ok, f"per-cell Z_U: {res['z']} vs {z_ref}")
    check(close(res["c_t"], ct, 1e-9, 1e-12) and res["cells_used"] == sum(z is not None for z in z_ref),
          f"C_T {res['c_t']:.10g} ({res['cells_used']} cells) vs scipy.stats.mannwhitneyu {ct:.10g}")

    print(f"eval_parity: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
