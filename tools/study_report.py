"""tools/study_report.py: the collecting and reporting half of tools/study (not a program of
its own): study.csv, curves.csv, figures/*.png and report.md from a study directory."""
import csv
import glob
import json
import math
import os
import platform
import time

import numpy as np


class ReportError(Exception):
    pass


FIXED = ["group", "variant", "seed", "point", "family", "data", "config", "step", "final", "status", "rollbacks"]
TRAIN_STATS = {"gan": [("losses", ["d_loss", "g_loss"]), ("D(x) and D(G(z))", ["d_real", "d_fake"]),
                       ("gradient norms", ["d_grad_norm", "g_grad_norm"])],
               "vae": [("loss (-ELBO per example)", ["loss"]), ("reconstruction and KL", ["recon", "kl"]),
                       ("gradient norms", ["enc_grad_norm", "dec_grad_norm"])]}
# final metrics in the summary tables: (column, label, format, better)
IMAGE_SUMMARY = [("fid_train", "FID", "{:.1f}", "low"), ("kid_train", "KID", "{:.3f}", "low"),
                 ("precision_train", "precision", "{:.2f}", "high"), ("recall_train", "recall", "{:.2f}", "high"),
                 ("density_train", "density", "{:.2f}", "high"), ("coverage_train", "coverage", "{:.2f}", "high"),
                 ("classes_covered", "classes", "{:.1f}", "high"), ("class_kl", "class KL", "{:.3f}", "low")]
IMAGE_SUMMARY2 = [("nn_feature_gen", "NN distance samples→train", "{:.2f}", None),
                  ("nn_feature_test", "NN distance test→train", "{:.2f}", None),
                  ("closer_to_train", "closer to train", "{:.2f}", None), ("ct", "C_T", "{:.1f}", None),
                  ("d_gap", "D(train) − D(test)", "{:+.4f}", None),
                  ("neg_elbo_train", "−ELBO train", "{:.1f}", "low"), ("neg_elbo_test", "−ELBO test", "{:.1f}", "low"),
                  ("neg_elbo_gap", "−ELBO gap", "{:.2f}", None)]
TOY_SUMMARY = [("modes_covered", "modes", "{:.1f}", "high"), ("high_quality_share", "high-quality share", "{:.2f}", "high"),
               ("mode_reverse_kl", "reverse KL", "{:.3f}", "low"), ("neg_elbo_test", "−ELBO test", "{:.2f}", "low"),
               ("neg_elbo_gap", "−ELBO gap", "{:.3f}", None)]


def model_of(p):
    s = p["group"] + ("" if p["variant"] == "base" else "/" + p["variant"])
    for k, v in sorted(p["grid"].items()):
        s += f" {k.split('.')[-1]}={v}"
    return s


def finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def mean_std(xs):
    xs = [x for x in xs if finite(x)]
    if not xs:
        return None, None, 0
    a = np.array(xs, float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0, len(a)


def read_jsonl(path):
    rows = []
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    return rows


def collect(s):
    rows, curves, runs = [], [], []
    mcols = []
    for p in s.points:
        status = s.status(p)
        # a run trained further than the study's train.steps (e.g. a study shortened afterwards) is
        # bitwise the shorter run up to there: keep its lines up to train.steps
        ml = [r for r in read_jsonl(os.path.join(s.run_dir(p), "metrics.jsonl")) if r.get("step", 0) <= p["steps"]]
        rollbacks = sum(1 for r in ml if r.get("event") == "rollback")
        base = {"group": p["group"], "variant": p["variant"], "seed": p["seed"], "point": p["name"],
                "family": p["family"], "data": p["data"], "config": os.path.relpath(p["config"], os.getcwd()),
                "status": status, "rollbacks": rollbacks}
        for k in s.st["grid_keys"]:
            base[k] = p["grid"].get(k, "")
        evals = {}
        for step in p["eval_steps"]:
            path = s.eval_path(p, step)
            if not os.path.exists(path):
                continue
            obj = json.load(open(path))
            evals[step] = obj
            r = dict(base, step=step, final=int(step == p["steps"]))
            for k, v in obj["metrics"].items():
                if k not in mcols:
                    mcols.append(k)
                r[k] = v
            rows.append(r)
        for r in ml:
            if "split" in r or "event" in r or "step" not in r:
                continue
            c = {"point": p["name"], "group": p["group"], "variant": p["variant"], "seed": p["seed"], "family": p["family"],
                 "data": p["data"]}
            for k in s.st["grid_keys"]:
                c[k] = p["grid"].get(k, "")
            c.update({k: v for k, v in r.items() if k != "epoch"})
            curves.append(c)
        test = [r for r in ml if r.get("split") == "test"]
        runs.append({"p": p, "status": status, "rollbacks": rollbacks, "evals": evals, "train": [r for r in ml if "split" not in r and "event" not in r and "step" in r],
                     "test": test[-1] if test else None, "model": model_of(p)})
    cols = FIXED[:7] + s.st["grid_keys"] + FIXED[7:] + mcols
    with open(os.path.join(s.dir, "study.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, restval="")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    ccols = []
    for c in curves:
        for k in c:
            if k not in ccols:
                ccols.append(k)
    with open(os.path.join(s.dir, "curves.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ccols, restval="")
        w.writeheader()
        w.writerows(curves)
    return rows, runs, cols


def final_metrics(run):
    st = run["p"]["steps"]
    return run["evals"][st]["metrics"] if st in run["evals"] else None


def collapsed(run):
    m = final_metrics(run)
    if not m:
        return False
    if finite(m.get("modes_covered")) and finite(m.get("modes")):
        return m["modes_covered"] < m["modes"] / 2
    if finite(m.get("classes_covered")) and finite(m.get("classes")):
        return m["classes_covered"] < m["classes"] / 2
    return False


# ---------------------------------------------------------------------------------------------
# figures

def plt_setup():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportError("no matplotlib for this python: apt-get install -y python3-matplotlib (use /usr/bin/python3)")
    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10})
    return plt


def models_in(runs):
    out = []
    for r in runs:
        if r["model"] not in out:
            out.append(r["model"])
    return out


def band(ax, xs_list, ys_list, color, label, ls="-", marker=None):
    """the mean over seeds (on the steps all share) with a min-max band"""
    if not xs_list:
        return
    common = sorted(set.intersection(*[set(x) for x in xs_list]))
    if not common:
        return
    Y = np.array([[dict(zip(x, y))[c] for c in common] for x, y in zip(xs_list, ys_list)], float)
    ax.plot(common, np.nanmean(Y, 0), color=color, ls=ls, label=label, lw=1.3, marker=marker, ms=4)
    if len(Y) > 1:
        ax.fill_between(common, np.nanmin(Y, 0), np.nanmax(Y, 0), color=color, alpha=0.18, lw=0)


def fig_curves(s, plt, runs, group, out):
    gr = [r for r in runs if r["p"]["group"] == group and r["train"]]
    if not gr:
        return None
    fam = gr[0]["p"]["family"]
    panels = TRAIN_STATS[fam]
    models = models_in(gr)
    fig, axs = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, stats) in zip(axs, panels):
        for mi, m in enumerate(models):
            rs = [r for r in gr if r["model"] == m]
            for si, stat in enumerate(stats):
                xs = [[t["step"] for t in r["train"] if finite(t.get(stat))] for r in rs]
                ys = [[t[stat] for t in r["train"] if finite(t.get(stat))] for r in rs]
                xs_ys = [(x, y) for x, y in zip(xs, ys) if x]
                if xs_ys:
                    band(ax, [a for a, _ in xs_ys], [b for _, b in xs_ys], colors[mi % len(colors)],
                         f"{m}: {stat} ({len(xs_ys)} seeds)", ls=["-", "--"][si % 2])
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if "grad" in title or title.startswith("reconstruction"):
            ax.set_yscale("log")
        ax.legend(fontsize=6.5)
    fig.suptitle(f"{group}: training curves (mean over seeds, band = min to max)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


EVAL_PANELS = {
    "images": [("fid_train", "FID vs train (lower is better)"), ("kid_train", "KID vs train"),
               ("precision_train", "precision"), ("recall_train", "recall")],
    "toy": [("modes_covered", "modes covered"), ("high_quality_share", "high-quality share"),
            ("mode_reverse_kl", "reverse KL to uniform modes")],
}


def fig_evals(s, plt, runs, data, out):
    dr = [r for r in runs if r["p"]["data"] == data and r["evals"]]
    if not dr:
        return None
    panels = EVAL_PANELS["images" if dr[0]["p"]["images"] else "toy"]
    models = models_in(dr)
    fig, axs = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, title) in zip(axs, panels):
        for mi, m in enumerate(models):
            rs = [r for r in dr if r["model"] == m]
            xs = [[st for st in sorted(r["evals"]) if finite(r["evals"][st]["metrics"].get(key))] for r in rs]
            ys = [[r["evals"][st]["metrics"][key] for st in x] for r, x in zip(rs, xs)]
            xy = [(x, y) for x, y in zip(xs, ys) if x]
            if xy:
                band(ax, [a for a, _ in xy], [b for _, b in xy], colors[mi % len(colors)], f"{m} ({len(xy)})", marker="o")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if key in ("fid_train", "kid_train", "modes_covered"):
            ax.set_ylim(bottom=0)
    axs[0].legend(fontsize=7)
    fig.suptitle(f"{data}: evaluation over training (mean over seeds, band = min to max; legend: runs)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def fig_samples(s, plt, runs, group, out):
    gr = [r for r in runs if r["p"]["group"] == group]
    models = models_in(gr)
    seeds = sorted({r["p"]["seed"] for r in gr})
    cells = {(r["model"], r["p"]["seed"]): os.path.join(s.dir, "samples", r["p"]["name"] + ".png") for r in gr}
    if not any(os.path.exists(c) for c in cells.values()):
        return None
    fig, axs = plt.subplots(len(models), len(seeds), figsize=(2.9 * len(seeds), 3.0 * len(models)), squeeze=False)
    for i, m in enumerate(models):
        for j, sd in enumerate(seeds):
            ax = axs[i][j]
            ax.axis("off")
            c = cells.get((m, sd))
            if c and os.path.exists(c):
                ax.imshow(plt.imread(c), cmap="gray")
            else:
                ax.text(0.5, 0.5, "no samples (not trained yet?)", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(f"{m}, seed {sd}", fontsize=7)
    fig.suptitle(f"{group}: samples at the final step (gentrain sample)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def centres(data):
    if data == "ring8":
        a = 2 * np.pi * np.arange(8) / 8
        return np.stack([np.cos(a), np.sin(a)], 1)
    g = np.arange(5) * 2 - 4.0
    return np.array([(x, y) for x in g for y in g])


def fig_scatter(s, plt, runs, data, out):
    import h5py
    dr = [r for r in runs if r["p"]["data"] == data]
    models = models_in(dr)
    seeds = sorted({r["p"]["seed"] for r in dr})
    fig, axs = plt.subplots(len(models), len(seeds), figsize=(2.2 * len(seeds), 2.3 * len(models)), squeeze=False)
    c = centres(data)
    lim = 1.6 if data == "ring8" else 5.5
    any_ = False
    for i, m in enumerate(models):
        for j, sd in enumerate(seeds):
            ax = axs[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            r = next((r for r in dr if r["model"] == m and r["p"]["seed"] == sd), None)
            path = os.path.join(s.run_dir(r["p"]), "samples.h5") if r else None
            ax.scatter(c[:, 0], c[:, 1], marker="x", color="red", s=14, lw=1, zorder=3)
            fm = final_metrics(r) if r else None
            title = f"{m}, seed {sd}"
            if fm and finite(fm.get("modes_covered")):
                title += f"\n{fm['modes_covered']:.0f}/{fm['modes']:.0f} modes"
            ax.set_title(title, fontsize=6.5)
            if path and os.path.exists(path):
                with h5py.File(path, "r") as f:
                    keys = sorted(k for k in f.keys() if k.startswith("step-"))
                    if keys:
                        x = f[keys[-1]][:].reshape(-1, 2)
                        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5, color="tab:blue", zorder=2)
                        any_ = True
    if not any_:
        plt.close(fig)
        return None
    fig.suptitle(f"{data}: final samples (blue: {len(x)} fixed latents)\nover the mixture's centres (red)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def test_nn_reference(s, limit):
    """the test set's nearest-training-neighbour feature distances from the evaluation cache"""
    import h5py
    cache = os.environ.get("GENTRAIN_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                             os.path.expanduser("~/.cache"), "gentrain")
    want = limit or 60000
    for path in sorted(glob.glob(os.path.join(cache, "features-*.h5"))):
        try:
            with h5py.File(path, "r") as f:
                if "memorization/test_nn_feature" in f and f["train/features"].shape[0] == want:
                    return f["memorization/test_nn_feature"][:]
        except OSError:
            continue
    return None


def fig_memorization(s, plt, runs, out):
    import h5py
    ir = [r for r in runs if r["p"]["images"] and final_metrics(r) and "nn_feature_gen" in final_metrics(r)]
    if not ir:
        return None
    models = models_in(ir)
    ref = test_nn_reference(s, ir[0]["p"]["data_limit"])
    fig, axs = plt.subplots(1, len(models) + 1, figsize=(3.3 * (len(models) + 1), 3.2), squeeze=False)
    axs = axs[0]
    allv = []
    per = {}
    for m in models:
        vals = []
        for r in ir:
            if r["model"] != m:
                continue
            with h5py.File(os.path.join(s.run_dir(r["p"]), "metrics.h5"), "r") as f:
                g = f.get(f"eval/step-{r['p']['steps']:08d}")
                if g is not None and "nn_feature_gen" in g:
                    vals.append(g["nn_feature_gen"][:])
        if vals:
            per[m] = np.concatenate(vals)
            allv.append(per[m])
    if ref is not None:
        allv.append(ref)
    if not allv:
        plt.close(fig)
        return None
    hi = float(np.percentile(np.concatenate(allv), 99.5))
    bins = np.linspace(0, hi, 50)
    for ax, m in zip(axs, models):
        if ref is not None:
            ax.hist(ref, bins, density=True, alpha=0.5, color="gray", label="test → train")
        if m in per:
            ax.hist(per[m], bins, density=True, alpha=0.6, color="tab:red", label="samples → train")
        ct = [final_metrics(r).get("ct") for r in ir if r["model"] == m]
        mu, sd, n = mean_std(ct)
        ax.set_title(f"{m}\nC_T {mu:.1f} ± {sd:.1f}" if mu is not None else m, fontsize=8)
        ax.set_xlabel("feature distance to the nearest training image")
        ax.legend(fontsize=7)
    ax = axs[-1]
    labels = models
    ctm = [mean_std([final_metrics(r).get("ct") for r in ir if r["model"] == m]) for m in labels]
    ax.bar(range(len(labels)), [c[0] or 0 for c in ctm], yerr=[c[1] or 0 for c in ctm], color="tab:purple", alpha=0.7)
    ax.axhline(-3, color="k", ls=":", lw=1)
    ax.text(0, -3, "data copying below −3", fontsize=6.5, va="bottom")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
    ax.set_title("C_T (mean ± std over seeds)")
    fig.suptitle("memorization: nearest-training-neighbour distances at the final step (seeds pooled)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def fig_vae_nll(s, plt, runs, out):
    vr = [r for r in runs if r["p"]["family"] == "vae" and any("neg_elbo_test" in e["metrics"] for e in r["evals"].values())]
    if not vr:
        return None
    datas = []
    for r in vr:
        if r["p"]["data"] not in datas:
            datas.append(r["p"]["data"])
    fig, axs = plt.subplots(1, len(datas), figsize=(4.4 * len(datas), 3.4), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, d in zip(axs[0], datas):
        dr = [r for r in vr if r["p"]["data"] == d]
        for mi, m in enumerate(models_in(dr)):
            rs = [r for r in dr if r["model"] == m]
            for key, ls in (("neg_elbo_train", "-"), ("neg_elbo_test", "--")):
                xs = [[st for st in sorted(r["evals"]) if finite(r["evals"][st]["metrics"].get(key))] for r in rs]
                ys = [[r["evals"][st]["metrics"][key] for st in x] for r, x in zip(rs, xs)]
                xy = [(x, y) for x, y in zip(xs, ys) if x]
                if xy:
                    band(ax, [a for a, _ in xy], [b for _, b in xy], colors[mi % len(colors)],
                         f"{m}: {key.replace('neg_elbo_', '')}", ls=ls, marker="o")
        ax.set_title(f"{d}: −ELBO (nats), train vs test")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("VAE −ELBO, train vs test\n(band: min to max over seeds)" if len(datas) < 2 else
                 "VAE −ELBO on training and test examples (band: min to max over seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


# ---------------------------------------------------------------------------------------------
# the report

def fmt_ms(mu, sd, f):
    if mu is None:
        return "–"
    return f"{f.format(mu)} ± {f.format(sd).lstrip('+')}"


def summary_tables(runs, datas):
    """-> markdown lines, {data: {model: {metric: (mean, std, n)}}}"""
    lines, stats = [], {}
    tables = []
    for d in datas:
        dr = [r for r in runs if r["p"]["data"] == d]
        if dr[0]["p"]["images"]:
            tables += [(d, IMAGE_SUMMARY, "quality and diversity"), (d, IMAGE_SUMMARY2, "memorization and likelihood")]
        else:
            tables.append((d, TOY_SUMMARY, "modes"))
    for d, spec, what in tables:
        dr = [r for r in runs if r["p"]["data"] == d]
        models = models_in(dr)
        cols = [c for c in spec if any(final_metrics(r) and finite(final_metrics(r).get(c[0])) for r in dr)]
        stats.setdefault(d, {})
        if not cols:
            lines += [f"**{d}**, {what}: no final evaluation yet.", ""]
            continue
        lines += [f"**{d}**, {what} (final step; mean ± std over seeds)", "",
                  "| model | runs | diverged | collapsed | " + " | ".join(c[1] for c in cols) + " |",
                  "| --- | --- | --- | --- | " + " | ".join("---" for _ in cols) + " |"]
        for m in models:
            rs = [r for r in dr if r["model"] == m]
            fm = [final_metrics(r) for r in rs]
            div = sum(1 for r in rs if r["status"] == "diverged")
            rb = sum(r["rollbacks"] for r in rs)
            col = sum(1 for r in rs if collapsed(r))
            stats[d].setdefault(m, {}).update({"family": rs[0]["p"]["family"], "runs": len(rs), "diverged": div,
                                               "collapsed": col, "group": rs[0]["p"]["group"]})
            cells = []
            for key, _, f, _ in cols:
                ms = mean_std([x.get(key) for x in fm if x])
                stats[d][m][key] = ms
                cells.append(fmt_ms(ms[0], ms[1], f) + (f" ({ms[2]})" if ms[2] and ms[2] < len(rs) else ""))
            lines.append(f"| {m} | {len(rs)} | {div}{f' ({rb} rollbacks)' if rb else ''} | {col} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines, stats


def separated(a, b):
    """two (mean, std, n): is the difference larger than the sum of the standard deviations?"""
    return a[0] is not None and b[0] is not None and a[2] > 1 and b[2] > 1 and abs(a[0] - b[0]) > (a[1] + b[1])


def conclusions(stats, runs):
    out = []
    for d, ms in stats.items():
        images = any(r["p"]["images"] for r in runs if r["p"]["data"] == d)
        key, name, better = ("fid_train", "final FID", "low") if images else ("modes_covered", "modes covered", "high")
        have = {m: v for m, v in ms.items() if v.get(key) and v[key][0] is not None}
        if len(have) >= 2:
            order = sorted(have, key=lambda m: have[m][key][0], reverse=(better == "high"))
            b, nxt = order[0], order[1]
            claim = (f"On {d}, **{b}** has the best mean {name} ({have[b][key][0]:.3g} ± {have[b][key][1]:.2g}), "
                     f"ahead of {nxt} ({have[nxt][key][0]:.3g} ± {have[nxt][key][1]:.2g})")
            if separated(have[b][key], have[nxt][key]):
                out.append(claim + "; the gap is larger than the two standard deviations together.")
            else:
                out.append(claim + "; the spread over seeds overlaps, so the ranking of these two is **not** supported.")
            w = order[-1]
            if w not in (b, nxt):
                out.append(f"On {d}, the worst mean {name} is {w}'s ({have[w][key][0]:.3g} ± {have[w][key][1]:.2g})"
                           + (", apart from the best beyond the spread" if separated(have[b][key], have[w][key])
                              else ", though even this is within the spread of the best") + ".")
            # GAN versus VAE: every GAN model against every VAE model
            for vm in [m for m in order if have[m]["family"] == "vae"]:
                parts = []
                for gm in [m for m in order if have[m]["family"] == "gan"]:
                    a, v = have[gm][key], have[vm][key]
                    better_ = (a[0] < v[0]) if better == "low" else (a[0] > v[0])
                    parts.append(f"{gm} {a[0]:.3g} ± {a[1]:.2g} ({'better' if better_ else 'worse'}"
                                 + (", beyond the spread)" if separated(a, v) else ", within the spread)"))
                if parts:
                    out.append(f"GAN versus VAE on {d}, {name}: {vm} {have[vm][key][0]:.3g} ± {have[vm][key][1]:.2g} against "
                               + "; ".join(parts) + ".")
        # seed variability by family
        fams = {}
        for m, v in have.items():
            fams.setdefault(v["family"], []).append((m, v[key]))
        if len(fams) == 2 and images:
            sds = {f: float(np.mean([x[1][1] for x in l])) for f, l in fams.items()}
            cvs = {f: float(np.mean([x[1][1] / abs(x[1][0]) for x in l if x[1][0]])) for f, l in fams.items()}
            hi = max(sds, key=sds.get)
            lo = min(sds, key=sds.get)
            n = min(x[1][2] for l in fams.values() for x in l)
            ratio = sds[hi] / sds[lo] if sds[lo] > 0 else float("inf")
            txt = (f"On {d}, the {name} of the {hi.upper()}s varies more across seeds than the {lo.upper()}s' "
                   f"(mean standard deviation {sds[hi]:.3g} vs {sds[lo]:.3g}, relative {cvs[hi]:.0%} vs {cvs[lo]:.0%})")
            if ratio >= 3 and n >= 3:
                out.append(txt + f"; a factor of {ratio:.1f} with {n} seeds per model is large enough to report.")
            else:
                out.append(txt + f"; a factor of {ratio:.1f} with only {n} seeds per model is **not** a reliable difference "
                           "(a standard deviation from so few seeds is itself uncertain by ±50 % or more).")
        if not images:
            for f in ("gan", "vae"):
                rs = [r for r in runs if r["p"]["data"] == d and r["p"]["family"] == f and final_metrics(r)]
                if rs:
                    cov = [final_metrics(r)["modes_covered"] for r in rs if finite(final_metrics(r).get("modes_covered"))]
                    hq = [final_metrics(r).get("high_quality_share") for r in rs]
                    mu, sd, n = mean_std(cov)
                    hmu, hsd, _ = mean_std(hq)
                    col = sum(1 for r in rs if collapsed(r))
                    if mu is not None:
                        out.append(f"On {d}, the {f.upper()} runs ({n}) cover {mu:.1f} ± {sd:.1f} of "
                                   f"{final_metrics(rs[0])['modes']:.0f} modes, with {hmu:.0%} ± {hsd:.0%} of the samples "
                                   f"within 3σ of a centre; {col} collapsed (fewer than half the modes)"
                                   + (". So few samples land within 3σ of any centre that a low mode count here means "
                                      "imprecise samples (not yet converged to the narrow components), not mode collapse: "
                                      "see the scatter plots" if hmu is not None and hmu < 0.05 else "") + ".")
        # memorization
        if images:
            ct = {m: v["ct"] for m, v in ms.items() if v.get("ct") and v["ct"][0] is not None}
            ctt = {m: v["closer_to_train"] for m, v in ms.items() if v.get("closer_to_train") and v["closer_to_train"][0] is not None}
            if ct:
                lo = min(ct, key=lambda m: ct[m][0])
                copying = [m for m in ct if ct[m][0] < -3]
                out.append(f"Memorization on {d}: the lowest C_T is {lo}'s ({ct[lo][0]:.1f} ± {ct[lo][1]:.1f}); "
                           + (f"C_T < −3 (data copying) for {', '.join(copying)}." if copying else
                              "no model reaches C_T < −3, so none is flagged as copying its training data. "
                              + ("Positive C_T means the samples are farther from the training set than held-out data "
                                 "is: under-fitting, not memorizing." if all(v[0] > 0 for v in ct.values()) else "")))
                fam = {}
                for m, v in ctt.items():
                    fam.setdefault(ms[m]["family"], []).append(v[0])
                if len(fam) == 2:
                    a, b = (float(np.mean(fam["gan"])), float(np.mean(fam["vae"])))
                    out.append(f"The share of samples closer to a training image than to any test image is {a:.2f} for "
                               f"the GANs and {b:.2f} for the VAE (0.5 for fresh samples of the data distribution, 1 for "
                               "copies): " + ("neither family sits clearly above 0.5, so neither shows a pull "
                                             "towards its training images." if max(a, b) < 0.55 else
                                             f"the {'GANs' if a > b else 'VAE'} sit{'' if a > b else 's'} closer to the "
                                             "training set."))
                # which family memorizes more: C_T per family (runs pooled)
                fam_ct = {}
                for r in runs:
                    m_ = final_metrics(r)
                    if r["p"]["data"] == d and m_ and finite(m_.get("ct")):
                        fam_ct.setdefault(r["p"]["family"], []).append(m_["ct"])
                if len(fam_ct) == 2:
                    g, v = mean_std(fam_ct["gan"]), mean_std(fam_ct["vae"])
                    more = "GANs" if g[0] < v[0] else "VAE"
                    txt = (f"C_T by family on {d}: GANs {g[0]:.1f} ± {g[1]:.1f} ({g[2]} runs), VAE {v[0]:.1f} ± {v[1]:.1f} "
                           f"({v[2]} runs): the {'GANs' if more == 'GANs' else 'VAE'}{chr(39) if more == 'GANs' else chr(39) + 's'} samples lie nearer to the training set, relative to held-out data"
                           + (", beyond the spread over runs" if separated(g, v) else
                              ", but within the spread over runs: no family is shown to memorize more"))
                    if min(g[0], v[0]) > 0:
                        txt += "; both are positive, so this ranks under-fitting, not copying"
                    out.append(txt + ".")
        # stabilizers: every non-base variant vs the group's plain/base variant
        groups = {}
        for m, v in ms.items():
            groups.setdefault(v["group"], []).append(m)
        for g, mods in groups.items():
            if len(mods) < 2:
                continue
            base = next((m for m in mods if m.endswith("/plain") or m == g), mods[0])
            for m in mods:
                if m == base or not ms[m].get(key) or ms[m][key][0] is None or not ms[base].get(key) or ms[base][key][0] is None:
                    continue
                a, b = ms[base][key], ms[m][key]
                better_ = (b[0] < a[0]) if better == "low" else (b[0] > a[0])
                out.append(f"{m} vs {base} on {d}: {name} {b[0]:.3g} ± {b[1]:.2g} vs {a[0]:.3g} ± {a[1]:.2g}: "
                           + (f"{'better' if better_ else 'worse'}, beyond the spread over seeds." if separated(a, b)
                              else "within the spread over seeds: no effect shown at this length."))
    # VAE gap
    for d, ms in stats.items():
        for m, v in ms.items():
            if v.get("neg_elbo_gap") and v["neg_elbo_gap"][0] is not None and v.get("neg_elbo_test") and v["neg_elbo_test"][0]:
                g, t = v["neg_elbo_gap"], v["neg_elbo_test"]
                epochs = [r["train"][-1].get("epoch") for r in runs if r["model"] == m and r["p"]["data"] == d and r["train"]]
                ep = max((e for e in epochs if isinstance(e, int)), default=None)
                seen = (" The runs ended in their first pass over the training data, so the gap is at most the "
                        "beginning of overfitting (some of the 1000 training examples were never seen)."
                        if ep == 0 else f" The runs ended in epoch {ep}." if ep is not None else "")
                out.append(f"{m} on {d}: test −ELBO {t[0]:.3g} ± {t[1]:.2g} nats, test minus train {g[0]:.3g} ± {g[1]:.2g} "
                           f"({abs(g[0]) / abs(t[0]):.1%}): "
                           + ("no sign of overfitting." if abs(g[0]) < max(2 * g[1], 0.01 * abs(t[0])) else
                              ("the test examples are fitted worse than the training examples." + seen if g[0] > 0 else
                               "the test examples score better than the training examples.")))
    div = sum(1 for r in runs if r["status"] == "diverged")
    failed = sum(1 for r in runs if r["status"] in ("failed", "partial", "new"))
    col = sum(1 for r in runs if collapsed(r))
    out.append(f"Of {len(runs)} runs, {div} diverged, {col} collapsed (fewer than half the modes or classes covered)"
               + (f" and {failed} did not finish" if failed else "") + ".")
    return out


def wall_time(s):
    """the wall-clock time of the invocations that trained or evaluated (overlapping ones once)"""
    try:
        hist = json.load(open(os.path.join(s.dir, "status.json")))["invocations"]
    except (OSError, ValueError, KeyError):
        return None, []
    hist = [h for h in hist if h.get("kind") != "report"]
    iv = sorted((time.mktime(time.strptime(h["start"], "%Y-%m-%dT%H:%M:%SZ")), h["seconds"]) for h in hist)
    total, end = 0.0, None
    for a, d in iv:
        b = a + d
        if end is None or a >= end:
            total += d
            end = b
        elif b > end:
            total += b - end
            end = b
    return (total if hist else None), hist


def report(s):
    plt = plt_setup()
    rows, runs, cols = collect(s)
    figdir = os.path.join(s.dir, "figures")
    os.makedirs(figdir, exist_ok=True)
    for f in glob.glob(os.path.join(figdir, "*.png")):
        os.unlink(f)
    groups, datas = [], []
    for r in runs:
        if r["p"]["group"] not in groups:
            groups.append(r["p"]["group"])
        if r["p"]["data"] not in datas:
            datas.append(r["p"]["data"])
    figs = []   # (section, path, caption)
    for d in datas:
        p = fig_evals(s, plt, runs, d, os.path.join(figdir, f"eval-{d}.png"))
        if p:
            figs.append(("eval", p, f"{d}: evaluation metrics over training"))
    for g in groups:
        p = fig_curves(s, plt, runs, g, os.path.join(figdir, f"curves-{g}.png"))
        if p:
            figs.append(("curves", p, f"{g}: training curves"))
    for g in groups:
        p = fig_samples(s, plt, runs, g, os.path.join(figdir, f"samples-{g}.png"))
        if p:
            figs.append(("samples", p, f"{g}: samples per model and seed"))
    for d in datas:
        if not any(r["p"]["images"] for r in runs if r["p"]["data"] == d):
            p = fig_scatter(s, plt, runs, d, os.path.join(figdir, f"scatter-{d}.png"))
            if p:
                figs.append(("samples", p, f"{d}: 2-D samples per model and seed"))
    p = fig_memorization(s, plt, runs, os.path.join(figdir, "memorization.png"))
    if p:
        figs.append(("memorization", p, "memorization"))
    p = fig_vae_nll(s, plt, runs, os.path.join(figdir, "vae-nll.png"))
    if p:
        figs.append(("nll", p, "VAE train and test −ELBO"))

    table, stats = summary_tables(runs, datas)
    concl = conclusions(stats, runs)
    wall, hist = wall_time(s)
    st = s.st
    n_eval = sum(len(r["evals"]) for r in runs)
    rel = os.path.relpath(st["file"], os.getcwd()) if st["file"].startswith(os.getcwd()) else st["file"]
    L = [f"# Study `{st['name']}`: GANs versus VAEs", "",
         f"Generated by `tools/study` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from "
         f"`{os.path.basename(st['file'])}` (copied into the study directory as `study.ini`).", "",
         "## Size and cost", ""]
    L.append(f"- {len(runs)} runs: " + "; ".join(
        f"{g} ({len({r['model'] for r in runs if r['p']['group'] == g})} model(s) × "
        f"{len({r['p']['seed'] for r in runs if r['p']['group'] == g})} seeds, {runs[[r['p']['group'] for r in runs].index(g)]['p']['steps']} steps, "
        f"evaluated at steps {' '.join(map(str, runs[[r['p']['group'] for r in runs].index(g)]['p']['eval_steps']))})"
        for g in groups))
    L.append(f"- {n_eval} evaluations (`gentrain eval --json --n {st['eval_n']}`), {len(rows)} rows in `study.csv`")
    L.append(f"- {st['np']} rank(s) per run, {st['jobs']} run(s) at a time")
    if wall is not None:
        L.append(f"- wall-clock time: {wall / 60:.1f} min of training and evaluation over {len(hist)} invocation(s) "
                 f"of `tools/study` (" + ", ".join(f"{h['start'][11:16]} UTC {h['seconds'] / 60:.1f} min" for h in hist)
                 + f"; stopped ones were resumed) on {os.cpu_count()} cores of `{platform.node()}`, "
                 f"load average {os.getloadavg()[0]:.1f} when this report was written: the machine is shared, "
                 "and the times would be several times shorter on an idle one")
    L += ["", "## Setup", "", "| group | config | data | family | model: overrides | seeds | steps |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    common = None
    for g in groups:
        gp = [r["p"] for r in runs if r["p"]["group"] == g]
        first = gp[0]
        common = first["overrides"] if common is None else [o for o in common if o in first["overrides"]]
    for g in groups:
        gp = [r["p"] for r in runs if r["p"]["group"] == g]
        first = gp[0]
        cells = []
        for m in models_in([r for r in runs if r["p"]["group"] == g]):
            p0 = next(r["p"] for r in runs if r["model"] == m)
            extra = [o for o in p0["overrides"] if o not in common and not o.startswith(("checkpoint.", "samples."))]
            cells.append(f"{m}: " + (", ".join(f"`{o}`" for o in extra) or "(none)"))
        L.append(f"| {g} | `{os.path.relpath(first['config'], os.getcwd())}` | {first['data']} | {first['family']} | "
                 + "<br>".join(cells) + f" | {' '.join(str(x) for x in sorted({q['seed'] for q in gp}))} | {first['steps']} |")
    L += ["", "Every run also gets " + ", ".join(f"`{o}`" for o in common if not o.startswith(("checkpoint.", "samples.")))
          + ", `run.seed`, `run.dir`, and `checkpoint.every` = `samples.every` = the evaluation interval with "
          "`checkpoint.keep=0` (the evaluated checkpoints are kept)." if common else ""]
    L += ["", "Reproduce (one command; a rerun skips finished runs and evaluations):", "", "```sh",
          f"tools/study {rel}                        # locally: mpirun, {st['jobs']} run(s) at a time",
          f"tools/study --slurm --sbatch \"-p PARTITION -A ACCOUNT\" {rel}   # one Slurm job array + a collector job",
          "```", "",
          "## Summary", "",
          "Final-step metrics (FID, KID, precision/recall, density/coverage vs the training set, in the feature space of "
          "gentrain's own Fashion-MNIST classifier; 2-D data: modes within 3σ of a centre). "
          "*Collapsed*: fewer than half the modes or classes covered. *Diverged*: training stopped on a non-finite "
          "value (rollbacks are counted beside it). Numbers in parentheses: runs with a value, when fewer than all.", ""]
    L += table
    L += ["## Conclusions", "", "Generated from the numbers above: a difference is called supported only when the two means "
          "differ by more than the sum of their standard deviations over seeds.", ""]
    L += [f"- {c}" for c in concl]
    L += [""]
    titles = {"eval": "Evaluation over training", "curves": "Training curves", "samples": "Samples",
              "memorization": "Memorization", "nll": "VAE likelihood: train versus test"}
    notes = {
        "eval": "Mean over seeds, band from the lowest to the highest seed.",
        "curves": "The statistics of `metrics.jsonl` (averaged over the logged interval): losses, D's mean output on real "
                  "(`d_real`) and generated (`d_fake`) data, gradient norms; mean over seeds, band min to max.",
        "samples": "Images: `gentrain sample` of each run's final checkpoint (the EMA generator where there is one); 2-D data: "
                   "the run's `samples.h5` at the final step.",
        "memorization": "Distance in classifier-feature space from each generated sample to its nearest training image "
                        "(red, `nn_feature_gen` in metrics.h5) beside the same for the test images (grey, the evaluation "
                        "cache's reference); red to the left of grey would mean samples closer to the training set than "
                        "fresh data: copying. Right: the data-copying statistic C_T (≪ 0: copying).",
        "nll": "−ELBO in nats from `gentrain eval --metrics elbo` on the first `eval.likelihood_n` training and test examples "
               "(1000 unless the study file sets it); solid train, dashed test.",
    }
    for sec in ("eval", "curves", "samples", "memorization", "nll"):
        fs = [f for f in figs if f[0] == sec]
        if not fs:
            continue
        L += [f"## {titles[sec]}", "", notes[sec], ""]
        for _, path, cap in fs:
            L += [f"![{cap}](figures/{os.path.basename(path)})", ""]
    L += ["## Files", "",
          "- `study.csv`: one row per run × evaluated step: " + ", ".join(f"`{c}`" for c in cols[:len(FIXED) + len(st['grid_keys'])])
          + ", then every metric `gentrain eval --json` reported (README, \"Evaluation\").",
          "- `curves.csv`: every logged training step of every run (`metrics.jsonl`).",
          "- `figures/`: the PNGs above.", ""]
    with open(os.path.join(s.dir, "report.md"), "w") as f:
        f.write("\n".join(L))
    print(f"study: wrote {s.dir}/study.csv ({len(rows)} rows), curves.csv, report.md and {len(figs)} figures in {figdir}")
