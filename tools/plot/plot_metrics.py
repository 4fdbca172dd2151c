#!/usr/bin/env python3
"""Plots a training run's metrics.jsonl to PNG.

  tools/plot/plot_metrics.py RUN [RUN ...] [-o OUT.png] [--smooth N]

RUN is a run folder (its metrics.jsonl is read) or a metrics.jsonl file; several runs are
drawn on the same axes (labelled by folder) for comparison. Panels:
  losses          loss_d, loss_g
  D outputs       d_real, d_fake (mean D(x), mean D(G(z)))
  FID             every field whose name starts with fid (or kid, is_), except FID's
                  diagnostic terms (*term*, *trace*, *eig*, *clamped*): the evaluation's
                  scores over steps; says so when the run has none
  gradient norms  grad_norm_d, grad_norm_g (log scale)
  throughput      images_per_s
  step time       time_compute_s, time_allreduce_s, time_bn_sync_s, time_data_s,
                  time_wait_s per step (stacked; the parts a run has), with the window's
                  wall time per step (time_window_s) as a line
Default output: RUN/metrics.png for one run, metrics.png in the working folder for several.
--smooth N draws a running mean over N log lines (the raw values faintly behind).
Uses matplotlib (Debian: python3-matplotlib, installed by tools/deps.sh --run).
"""
import json
import os
import sys
sys.dont_write_bytecode = True  # no __pycache__ in tools/
from plot_common import need_matplotlib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def load(path):
    f = os.path.join(path, "metrics.jsonl") if os.path.isdir(path) else path
    rows = []
    try:
        with open(f) as fh:
            for i, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    sys.stderr.write("plot_metrics: %s:%d: not JSON (%s); line skipped\n" % (f, i, e))
    except OSError as e:
        sys.stderr.write("plot_metrics: cannot read %s: %s\n" % (f, e))
        sys.exit(1)
    if not rows:
        sys.stderr.write("plot_metrics: %s has no metrics lines\n" % f)
        sys.exit(1)
    # a resumed run appends: the last value of every field per step, in step order (a step
    # may have a training line and an evaluation line: their fields are merged)
    by_step = {}
    for r in rows:
        if "step" in r:
            by_step.setdefault(r["step"], {}).update(r)
    return [by_step[s] for s in sorted(by_step)], f


def smooth(ys, n):
    if n <= 1:
        return ys
    out, acc, q = [], 0.0, []
    for y in ys:
        if y is None:
            out.append(None)
            continue
        q.append(y)
        acc += y
        if len(q) > n:
            acc -= q.pop(0)
        out.append(acc / len(q))
    return out


def series(rows, key):
    xs, ys = [], []
    for r in rows:
        v = r.get(key)
        if isinstance(v, (int, float)):
            xs.append(r["step"])
            ys.append(v)
    return xs, ys


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if args else 2)
    out, n_smooth, runs = None, 1, []
    i = 0
    while i < len(args):
        if args[i] == "-o" and i + 1 < len(args):
            out = args[i + 1]; i += 2
        elif args[i] == "--smooth" and i + 1 < len(args):
            n_smooth = int(args[i + 1]); i += 2
        else:
            runs.append(args[i]); i += 1
    data = []
    for r in runs:
        rows, f = load(r)
        base = os.path.basename(f)
        label = (os.path.basename(os.path.dirname(os.path.abspath(f))) if base == "metrics.jsonl"
                 else os.path.splitext(base)[0]) or f
        data.append((label, rows))
    if out is None:
        out = os.path.join(runs[0] if os.path.isdir(runs[0]) else os.path.dirname(runs[0]) or ".", "metrics.png") \
            if len(runs) == 1 else "metrics.png"
    need_matplotlib()
    import matplotlib.pyplot as plt

    # scores only: fid, fid_<split>, kid..., is_...; not FID's diagnostic terms
    def is_score(k):
        return (k.startswith(("fid", "kid", "is_")) and
                not any(w in k for w in ("term", "trace", "eig", "clamped")))
    fid_keys = sorted({k for _, rows in data for r in rows for k in r
                       if is_score(k) and isinstance(r[k], (int, float))})
    fig, axes = plt.subplots(3, 2, figsize=(12, 10))
    (a_loss, a_d), (a_fid, a_grad), (a_ips, a_time) = axes
    styles = ["-", "--", ":", "-."]

    def draw(ax, rows, key, label, color, style, log=False):
        xs, ys = series(rows, key)
        if not xs:
            return False
        if n_smooth > 1:
            ax.plot(xs, ys, style, color=color, alpha=0.25, lw=0.8)
            ys = smooth(ys, n_smooth)
        ax.plot(xs, ys, style, color=color, label=label, lw=1.3)
        if log:
            ax.set_yscale("log")
        return True

    multi = len(data) > 1
    for j, (label, rows) in enumerate(data):
        st = styles[j % len(styles)]
        pre = label + ": " if multi else ""
        draw(a_loss, rows, "loss_d", pre + "loss D", "tab:blue", st)
        draw(a_loss, rows, "loss_g", pre + "loss G", "tab:orange", st)
        draw(a_d, rows, "d_real", pre + "D(x)", "tab:green", st)
        draw(a_d, rows, "d_fake", pre + "D(G(z))", "tab:red", st)
        for k, key in enumerate(fid_keys):
            xs, ys = series(rows, key)
            if xs:
                a_fid.plot(xs, ys, "o" + st, color="C%d" % k, label=pre + key, ms=3)
        draw(a_grad, rows, "grad_norm_d", pre + "|grad D|", "tab:blue", st, log=True)
        draw(a_grad, rows, "grad_norm_g", pre + "|grad G|", "tab:orange", st, log=True)
        draw(a_ips, rows, "images_per_s", pre + "images/s", "tab:purple", st)
        if not multi:
            # per-step times of each log window, stacked
            names = [("time_compute_s", "compute", "tab:blue"), ("time_allreduce_s", "allreduce", "tab:orange"),
                     ("time_bn_sync_s", "sync-BN", "tab:purple"), ("time_data_s", "data", "tab:green"),
                     ("time_wait_s", "wait for slowest", "tab:red")]
            names = [p for p in names if any(isinstance(r.get(p[0]), (int, float)) for r in rows)]
            prev, xs, parts, wall = 0, [], {p[0]: [] for p in names}, []
            for r in rows:
                n = r["step"] - prev
                if n > 0 and all(isinstance(r.get(k), (int, float)) for k in parts):
                    xs.append(r["step"])
                    for k in parts:
                        parts[k].append(1e3 * r[k] / n)
                    w = r.get("time_window_s")
                    wall.append(1e3 * w / n if isinstance(w, (int, float)) else float("nan"))
                prev = r["step"]
            if xs:
                a_time.stackplot(xs, *[parts[p[0]] for p in names], labels=[p[1] for p in names],
                                 colors=[p[2] for p in names], alpha=0.8)
                a_time.plot(xs, wall, "k-", lw=0.8, label="wall")
        else:
            xs, ys = series(rows, "time_allreduce_s")
            if xs:
                draw(a_time, rows, "time_allreduce_s", pre + "allreduce s / window", "tab:orange", st)

    a_loss.set_title("losses")
    a_d.set_title("D outputs")
    a_fid.set_title("FID" if fid_keys else "FID (none in this run)")
    if not fid_keys:
        a_fid.text(0.5, 0.5, "no fid* field in metrics.jsonl", ha="center", va="center", transform=a_fid.transAxes)
    a_grad.set_title("gradient norms")
    a_ips.set_title("throughput")
    a_time.set_title("time per step (ms, mean over ranks)" if not multi else "allreduce time per log window")
    for ax in axes.flat:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(", ".join(l for l, _ in data))
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print("plot_metrics: %s" % out)


if __name__ == "__main__":
    main()
