#!/usr/bin/env python3
"""Report of a scaling sweep: tools/study/plot_scaling.py OUT

OUT is a tools/study/scaling.py output folder. Writes into it
  report.md            Markdown: machine, tables of every series, the time split, the
                       alpha-beta model with its check and predictions (tools/study/scaling_model.py)
  scaling_strong.png   speedup and efficiency against np, per transport, with the ideal line
  scaling_weak.png     the same for the weak series
  time_split.png       step time split into compute, allreduce, sync-BN, data, imbalance
                       wait, other (stacked bars, strong, weak and overlap series)
  hybrid.png           images/s of every ranks x threads combination
  batch.png            np = 2 efficiency against the per-rank batch, with the 80% line and
                       the model's curve for 64 nodes
  allreduce.png        measured allreduce time against message size, with the alpha-beta fits
Options: --latency-us L --bandwidth-gbps W (the network the model predicts for; 2, 100).
Plots use matplotlib (Debian: python3-matplotlib, installed by tools/deps.sh --run).
"""
import csv
import os
import subprocess
import sys
sys.dont_write_bytecode = True  # no __pycache__ in tools/
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "plot"))
from plot_common import need_matplotlib  # noqa: E402


COLORS = {"shm": "tab:blue", "tcp": "tab:orange", "netns": "tab:red", "auto": "tab:green", "local": "tab:gray"}
PARTS = [("compute_s", "compute", "tab:blue"), ("allreduce_s", "gradient allreduce", "tab:orange"),
         ("bn_sync_s", "sync-BN sums", "tab:purple"), ("data_s", "data", "tab:green"),
         ("imbalance_s", "imbalance wait", "tab:red"), ("other_s", "other", "tab:gray")]


def num(r, k):
    v = r.get(k, "")
    return float(v) if v not in ("", None) else None


def load(out):
    with open(os.path.join(out, "scaling.csv"), newline="") as f:
        return list(csv.DictReader(f))


def series_curves(rows, series):
    """transport -> sorted [(np, speedup, efficiency)], the np=1 baseline in each."""
    rs = [r for r in rows if r["series"] == series and r["threads"] == "1"]
    base = [r for r in rs if r["np"] == "1"]
    curves = {}
    for r in rs:
        if r["transport"] == "local":
            continue
        curves.setdefault(r["transport"], []).append(r)
    out = {}
    for t, lst in curves.items():
        pts = [(1, 1.0, 1.0)] if base else []
        for r in lst:
            if r["speedup"]:
                pts.append((int(r["np"]), num(r, "speedup"), num(r, "efficiency")))
        out[t] = sorted(pts)
    return out


def plot_scaling(plt, rows, series, path, title):
    curves = series_curves(rows, series)
    if not curves:
        return False
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    maxnp = max(p[0] for c in curves.values() for p in c)
    a1.plot([1, maxnp], [1, maxnp], "k--", lw=1, label="ideal")
    a2.plot([1, maxnp], [1, 1], "k--", lw=1, label="ideal")
    for t, pts in sorted(curves.items()):
        xs = [p[0] for p in pts]
        a1.plot(xs, [p[1] for p in pts], "o-", color=COLORS.get(t), label=t)
        a2.plot(xs, [p[2] for p in pts], "o-", color=COLORS.get(t), label=t)
    for a, yl in ((a1, "speedup (images/s vs np = 1)"), (a2, "efficiency (speedup / np)")):
        a.set_xscale("log", base=2)
        a.set_xticks(sorted({p[0] for c in curves.values() for p in c}))
        a.get_xaxis().set_major_formatter(plt.matplotlib.ticker.ScalarFormatter())
        a.set_xlabel("ranks (np)")
        a.set_ylabel(yl)
        a.grid(alpha=0.3)
        a.legend()
    a2.set_ylim(0, 1.1)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_split(plt, rows, path):
    rs = [r for r in rows if r["series"] in ("strong", "weak", "overlap") and r["threads"] == "1"]
    seen, bars = set(), []
    for r in rs:
        key = (r["transport"], r["np"], r["global_batch"], r.get("overlap", "0"))
        if key in seen:
            continue
        seen.add(key)
        bars.append(r)
    if not bars:
        return False
    bars.sort(key=lambda r: (r["series"] != "strong", r["series"], int(r["np"]), r["transport"]))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(bars) + 2), 4.5))
    labels = ["%s\n%s np=%s\nB=%s%s" % (r["series"], r["transport"], r["np"], r["global_batch"],
                                        "\noverlap" if r.get("overlap") == "1" else "") for r in bars]
    bottom = [0.0] * len(bars)
    for key, name, color in PARTS:
        vals = [1e3 * (num(r, key) or 0.0) for r in bars]
        ax.bar(range(len(bars)), vals, bottom=bottom, color=color, label=name)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("ms per step (mean over ranks)")
    ax.set_title("Step time split")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_hybrid(plt, rows, path):
    rs = [r for r in rows if r["series"] == "hybrid"]
    if not rs:
        return False
    seen, bars = set(), []
    for r in sorted(rs, key=lambda r: (int(r["cores"]), int(r["np"]), r["transport"])):
        key = (r["transport"], r["np"], r["threads"])
        if key not in seen:
            seen.add(key)
            bars.append(r)
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(bars) + 2), 4))
    ax.bar(range(len(bars)), [num(r, "images_per_s") for r in bars],
           color=[COLORS.get(r["transport"], "tab:gray") for r in bars])
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels(["%s×%s\n%s" % (r["np"], r["threads"], r["transport"]) for r in bars], fontsize=8)
    ax.set_xlabel("ranks × OpenBLAS threads")
    ax.set_ylabel("images/s")
    ax.set_title("Hybrid runs at global batch %s" % bars[0]["global_batch"])
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_batch(plt, rows, model, net, path):
    rs = [r for r in rows if r["series"] == "batch" and r["np"] != "1" and r["efficiency"]]
    if not rs:
        return False
    fig, ax = plt.subplots(figsize=(6.5, 4))
    by = {}
    for r in rs:
        by.setdefault(r["transport"], []).append((int(r["rank_batch"]), num(r, "efficiency")))
    for t, pts in sorted(by.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=COLORS.get(t), label="%s np=%s (measured)"
                % (t, rs[0]["np"]))
    allb = sorted({p[0] for v in by.values() for p in v})
    if model is not None and model.ok():
        import scaling_model as sm
        alpha, beta = model.net_params(net[0] * 1e-6, net[1] * 1e9)
        bs = [allb[0] * (allb[-1] / allb[0]) ** (i / 50.0) for i in range(51)]
        ax.plot(bs, [model.efficiency(64, b, alpha, beta) for b in bs], "k:",
                label="model: 64 nodes, %g Gb/s, %g µs" % (net[1], net[0]))
        for t in sorted(by):
            if t in model.fits:
                a, be = model.fits[t][:2]
                ax.plot(bs, [model.efficiency(2, b, a, be) for b in bs], "--", color=COLORS.get(t), lw=1,
                        label="model: %s np=2" % t)
        del sm
    ax.axhline(0.8, color="k", lw=0.8)
    ax.text(allb[0], 0.81, "80%", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(allb)
    ax.get_xaxis().set_major_formatter(plt.matplotlib.ticker.ScalarFormatter())
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("per-rank batch")
    ax.set_ylabel("efficiency (vs np = 1 at the same per-rank batch)")
    ax.set_title("Efficiency against the work per rank")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_allreduce(plt, out, model, path):
    files = sorted(f for f in os.listdir(out) if f.startswith("allreduce_") and f.endswith(".csv"))
    if not files:
        return False
    import scaling_model as sm
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name in files:
        t = name[len("allreduce_"):-4]
        with open(os.path.join(out, name), newline="") as f:
            allrows = list(csv.DictReader(f))
        rows = [r for r in allrows if r["kind"] == "sweep"]
        msgs = [r for r in allrows if r["kind"] == "msg"]
        if not rows:
            continue
        tr = t.split("_np")[0]
        xs = [int(r["bytes"]) for r in rows]
        ax.plot(xs, [float(r["t_min_s"]) for r in rows], "o", color=COLORS.get(tr), label="%s size sweep" % t, ms=3,
                alpha=0.6)
        if msgs:
            ax.plot([int(r["bytes"]) for r in msgs], [float(r["t_min_s"]) for r in msgs], "x", color=COLORS.get(tr),
                    label="%s the step's messages" % t, ms=7)
        if model is not None and tr in model.fits and t.endswith("_np2"):
            a, b = model.fits[tr][:2]
            ax.plot(xs, [sm.t_allreduce(2, x, a, b) for x in xs], "-", color=COLORS.get(tr), lw=1,
                    label="%s fit: α=%.3g µs, 1/β=%.2f GB/s" % (tr, a * 1e6, 1 / b / 1e9 if b else float("inf")))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("message (bytes)")
    ax.set_ylabel("allreduce time (s, slowest rank, fastest repetition)")
    ax.set_title("Allreduce time, np = 2; lines: α–β fits to the step's messages")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def ms(v):
    return "%.2f" % (1e3 * v) if v is not None else "-"


def pct(v):
    return "%.1f%%" % (100 * v) if v is not None else "-"


def table(rows, series):
    rs = [r for r in rows if r["series"] == series]
    if not rs:
        return []
    rs.sort(key=lambda r: (r["transport"] != "local", r["transport"], int(r["np"]), int(r["threads"]),
                           int(r["rank_batch"]), r.get("overlap", "0")))
    md = ["| transport | np | threads | global batch | per-rank batch | overlap | images/s | step ms | compute | "
          "allreduce | sync-BN | data | imbalance | other | comm. share | speedup | efficiency | peak RSS MB |",
          "|---" * 18 + "|"]
    for r in rs:
        md.append("| %s | %s | %s | %s | %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["transport"], r["np"], r["threads"], r["global_batch"], r["rank_batch"],
            "on" if r.get("overlap") == "1" else "off", num(r, "images_per_s"),
            ms(num(r, "step_s")), ms(num(r, "compute_s")), ms(num(r, "allreduce_s")), ms(num(r, "bn_sync_s")),
            ms(num(r, "data_s")), ms(num(r, "imbalance_s")), ms(num(r, "other_s")), pct(num(r, "allreduce_share")),
            "%.2f" % num(r, "speedup") if r["speedup"] else "-",
            pct(num(r, "efficiency")), "%.0f" % num(r, "peak_rss_mb") if r["peak_rss_mb"] else "-"))
    return md


def main():
    args = sys.argv[1:]
    net = [2.0, 100.0]
    for flag, i in (("--latency-us", 0), ("--bandwidth-gbps", 1)):
        if flag in args:
            k = args.index(flag)
            net[i] = float(args[k + 1])
            del args[k:k + 2]
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if args and args[0] in ("-h", "--help") else 2)
    out = args[0]
    if not os.path.exists(os.path.join(out, "scaling.csv")):
        sys.stderr.write("plot_scaling: %s/scaling.csv not found (run tools/study/scaling.py first)\n" % out)
        sys.exit(1)
    need_matplotlib()
    import matplotlib.pyplot as plt
    sys.path.insert(0, HERE)
    import scaling_model as sm

    rows = load(out)
    md_model, model_rows, model = sm.report(out, net[0], net[1])
    if md_model is not None:
        with open(os.path.join(out, "model.md"), "w") as f:
            f.write(md_model + "\n")
        with open(os.path.join(out, "model.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(model_rows[0].keys()))
            w.writeheader()
            w.writerows(model_rows)
    else:
        model = None

    made = []
    if plot_scaling(plt, rows, "strong", os.path.join(out, "scaling_strong.png"), "Strong scaling (fixed global batch)"):
        made.append("scaling_strong.png")
    if plot_scaling(plt, rows, "weak", os.path.join(out, "scaling_weak.png"), "Weak scaling (fixed per-rank batch)"):
        made.append("scaling_weak.png")
    if plot_split(plt, rows, os.path.join(out, "time_split.png")):
        made.append("time_split.png")
    if plot_hybrid(plt, rows, os.path.join(out, "hybrid.png")):
        made.append("hybrid.png")
    if plot_batch(plt, rows, model, net, os.path.join(out, "batch.png")):
        made.append("batch.png")
    if plot_allreduce(plt, out, model, os.path.join(out, "allreduce.png")):
        made.append("allreduce.png")

    md = ["# Scaling report", ""]
    mt = os.path.join(out, "machine.txt")
    if os.path.exists(mt):
        md += ["```", open(mt).read().rstrip(), "```", ""]
    md += ["Times are per step, in ms, the mean over ranks of the trainer's split (metrics.jsonl; "
           "docs/scaling.md): compute without communication, gradient allreduce, sync-BN sums, data, imbalance "
           "(waiting for the slowest rank before each gradient reduction and sync-BN sum), other. Comm. share = (allreduce + "
           "sync-BN) / step. Efficiency is against np = 1 at the same global batch (strong, hybrid: per core; "
           "overlap) or per-rank batch (weak, batch, corun).", ""]
    for s, title in (("strong", "Strong scaling"), ("weak", "Weak scaling"), ("hybrid", "Ranks × threads"),
                     ("batch", "Per-rank batch at fixed np"),
                     ("overlap", "Gradient communication overlapped with backward (train.overlap)"),
                     ("corun", "One-rank trainings sharing the machine, no messages (corun)")):
        t = table(rows, s)
        if t:
            md += ["## " + title, ""] + t + [""]
    hy = [r for r in rows if r["series"] == "hybrid" and r["oversubscribed"] == "0"]
    if hy:
        best = max(hy, key=lambda r: num(r, "images_per_s"))
        md += ["Best ranks × threads here: %s × %s (%s), %.1f images/s." % (best["np"], best["threads"],
               best["transport"], num(best, "images_per_s")), ""]
    if md_model:
        md += ["## Communication model", "", md_model]
    md += ["## Figures", ""] + ["![%s](%s)" % (m, m) for m in made] + [""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(md))
    print("plot_scaling: %s/report.md, %s" % (out, ", ".join(made)))


if __name__ == "__main__":
    main()
