#!/usr/bin/python3
"""Scores every checkpoint of a training run with `mpigan eval`: FID, IS, KID, class coverage
and, with --coverage, factor coverage, as curves over the training steps.

  tools/study/eval_checkpoints.py RUN_DIR --extractor FILE.h5 [--coverage FILE.h5 ...]
        [--np 2] [-n 5000] [--ema] [--out OUT_DIR]

Each checkpoint RUN_DIR/checkpoints/ckpt_<step>.h5 is evaluated once (its report,
OUT_DIR/ckpt_<step>.eval.json, is kept and reused on a second call), on the same noise seed,
so the curves differ only by the generator. Writes OUT_DIR/curves.tsv (one row per step:
fid, is, kid, classes >= 1%, and per factor the values >= 1% and the TV to the real test
set) and OUT_DIR/curves.png (FID, IS and the factors' TV over steps). OUT_DIR defaults to
RUN_DIR/eval-curves. A run keeps only checkpoint.keep_last checkpoints: set it high (and
checkpoint.interval to the curve's resolution) for a run meant to be scored this way.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def die(msg):
    sys.stderr.write("eval_checkpoints: error: %s\n" % msg)
    sys.exit(1)


def evaluate(a, ckpt, report):
    cmd = [os.path.join(ROOT, "tools", "mpirun.sh"), str(a.np), a.mpigan, "eval", ckpt, "-n", str(a.n),
           "--extractor", a.extractor, "-o", report]
    for c in a.coverage:
        cmd += ["--coverage", c]
    if a.ema:
        cmd.append("--ema")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0 or not os.path.exists(report):
        die("%s failed (exit %d): %s" % (" ".join(cmd), r.returncode, (r.stderr or r.stdout).strip()[-600:]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--extractor", required=True)
    p.add_argument("--coverage", action="append", default=[], help="a factor classifier (repeatable)")
    p.add_argument("--np", type=int, default=2)
    p.add_argument("-n", type=int, default=5000, help="samples per checkpoint (5000)")
    p.add_argument("--ema", action="store_true", help="score the checkpoints' EMA generators")
    p.add_argument("--mpigan", default=os.path.join(ROOT, "build", "mpigan"))
    p.add_argument("--out", default=None)
    a = p.parse_args()
    out = a.out or os.path.join(a.run_dir, "eval-curves")
    os.makedirs(out, exist_ok=True)
    ckpts = []
    for path in glob.glob(os.path.join(a.run_dir, "checkpoints", "ckpt_*.h5")):
        m = re.search(r"ckpt_(\d+)\.h5$", path)
        if m:
            ckpts.append((int(m.group(1)), path))
    if not ckpts:
        die("no checkpoints in %s/checkpoints" % a.run_dir)
    rows, factors = [], []
    for step, path in sorted(ckpts):
        report = os.path.join(out, "ckpt_%09d.eval.json" % step)
        if not os.path.exists(report):
            evaluate(a, os.path.abspath(path), report)
        r = json.load(open(report))
        fc = {f["factor"]: f for f in r.get("factor_coverage", [])}
        for name in fc:
            if name not in factors:
                factors.append(name)
        rows.append((step, r, fc))
        print("step %7d  FID %7.3f  IS %.3f  KID %.5f  classes >= 1%%: %d  %s" % (
            step, r["fid"], r["is_mean"], r["kid_mean"], r["coverage"]["classes_over_1pct"],
            "  ".join("%s %d/%d (%.3f)" % (k, f["values_over_1pct"], f["values"], f["tv_to_real"])
                      for k, f in fc.items())), flush=True)
    with open(os.path.join(out, "curves.tsv"), "w") as t:
        t.write("\t".join(["step", "fid", "is", "kid", "classes_over_1pct"]
                          + ["%s_%s" % (k, c) for k in factors for c in ("values_over_1pct", "tv")]) + "\n")
        for step, r, fc in rows:
            cells = [str(step), "%.4f" % r["fid"], "%.4f" % r["is_mean"], "%.6f" % r["kid_mean"],
                     str(r["coverage"]["classes_over_1pct"])]
            for k in factors:
                f = fc.get(k)
                cells += [str(f["values_over_1pct"]) if f else "", "%.4f" % f["tv_to_real"] if f else ""]
            t.write("\t".join(cells) + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("eval_checkpoints: no matplotlib (use /usr/bin/python3): wrote only curves.tsv")
        return
    steps = [s for s, _, _ in rows]
    n_plots = 3 if factors else 2
    fig, ax = plt.subplots(1, n_plots, figsize=(5 * n_plots, 3.6))
    ax[0].plot(steps, [r["fid"] for _, r, _ in rows], marker="o")
    ax[0].set_yscale("log")
    ax[0].set_title("FID (%d samples)" % a.n)
    ax[1].plot(steps, [r["is_mean"] for _, r, _ in rows], marker="o")
    ax[1].set_title("IS")
    if factors:
        for k in factors:
            ax[2].plot(steps, [fc[k]["tv_to_real"] if k in fc else float("nan") for _, _, fc in rows], marker=".",
                       label=k)
        ax[2].set_title("factor TV to the real test set")
        ax[2].legend(fontsize=7)
    for x in ax:
        x.set_xlabel("step")
        x.grid(alpha=0.3)
    fig.suptitle(os.path.basename(os.path.normpath(a.run_dir)))
    fig.tight_layout()
    fig.savefig(os.path.join(out, "curves.png"), dpi=110)
    print("wrote %s/curves.tsv and curves.png" % out)


if __name__ == "__main__":
    main()
