#!/usr/bin/env python3
"""Communication model of mpigan's data-parallel step (docs/scaling.md).

  tools/study/scaling_model.py OUT [--latency-us 2] [--bandwidth-gbps 100] [--nodes 8,16,...,1024]
                             [--rank-batches 8,16,32,64]

OUT is a tools/study/scaling.py output folder. Reads OUT/allreduce_<transport>_np2.csv (from
bench_allreduce: a size sweep and the step's real messages) and OUT/scaling.csv, and
writes OUT/model.md and OUT/model.csv.

The model (alpha-beta, ring allreduce):
  allreduce of n bytes over P ranks
      ring                 T = 2 (P-1) alpha + 2 (P-1)/P n beta
      recursive doubling   T = log2(P) (2 alpha + n beta)      (what MPI uses for small n)
      the model takes the smaller of the two; both equal the measured T = 2 alpha + n beta
      at P = 2, so that alpha and beta mean the same in each
  alpha, beta of this machine: least-squares fit of the ring formula at P = 2
      (T = 2 alpha + n beta) to the times measured at the step's real message sizes,
      each sent after 10 ms of compute as the trainer sends them (bench_allreduce --config
      --gap-ms; without those rows the same messages sent in a tight loop, which runs
      faster than training ever sees; the size sweep if both are missing), weighted by 1/T
      (relative errors), per transport; by default to the fastest repetition of each size (--stat min), which a
      busy machine disturbs least (--stat med: the median)
  one step's communication = sum over the step's messages (the fused gradient allreduce of
      each network plus synchronised BatchNorm's statistics; counts from the bench) of
      T(P, bytes) x times per step
  local time of a step at per-rank batch b, local(b): the np = 1 runs (compute + data +
      other, one thread), piecewise linear between the measured batches and extended
      linearly beyond them, so
  step(P, b) = local(b) + comm(P)   (no overlap: the trainer's allreduces are blocking)
  efficiency(P, b) = local(b) / step(P, b)  (weak scaling, per-rank batch b fixed)

Prediction for a network of latency L and bandwidth W: alpha = L + alpha_sw, beta = 8/W,
where alpha_sw is the software overhead per message step measured over shared memory here
(the shm fit's alpha); reduction arithmetic is assumed to overlap with the transfer. Each
node is one rank with the per-rank compute measured here (one core): nodes with more cores
compute faster, which raises the communication share (scale local(b) with --compute-scale).

Ranks sharing one machine: two ranks on one machine each compute slower than one alone
(memory bandwidth, shared caches, a lower all-core clock). The sweep's corun series measures
that without any messages: np independent one-rank trainings started together. Their step
time over local(b) is share(b), piecewise linear in b like local(b); when share is known,
the one-machine transports (shm, tcp, netns) are predicted as local(b) share(b) + comm(P).
The node-count prediction keeps one rank per node, share = 1.

Waiting for the slowest rank: ranks that meet every step wait, each step, for the slowest
one, and a rank's step time varies from step to step (on this shared VM by several per
cent). The corun series logs every step of every copy (OUT/corun_steps.csv); with X a
rank's step time drawn from those (pooled over copies and repeats at per-rank batch b), the
wait of a step is
      wait(P, b) = E[max of P independent draws of X] - E[X]
computed exactly from the empirical distribution (sum over sorted x_(k) of
x_(k) ((k/n)^P - ((k-1)/n)^P)), piecewise linear in b. It is added to the one-machine
predictions (P = 2) and reported beside the node-count prediction: a node as noisy as this
VM would wait that long at P nodes; for P beyond the samples it saturates at their maximum.

Check: for every measured np = 2 run over each transport, the predicted step time
local(b) share(b) + wait(2, b) + comm(2) with that transport's alpha and beta against the
measured one.
"""
import argparse
import csv
import math
import os
import sys


SAME_MACHINE = ("shm", "tcp", "netns")   # transports whose ranks share this machine


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def fit_alpha_beta(sweep, p=2):
    """Weighted least squares of T = 2(p-1) alpha + 2(p-1)/p n beta; weights 1/T."""
    # T = a + b n with a = 2(p-1) alpha, b = 2(p-1)/p beta
    sw = swx = swxx = swy = swxy = 0.0
    for n, t in sweep:
        w = 1.0 / (t * t)
        sw += w; swx += w * n; swxx += w * n * n; swy += w * t; swxy += w * n * t
    det = sw * swxx - swx * swx
    a = (swy * swxx - swx * swxy) / det
    b = (sw * swxy - swx * swy) / det
    alpha = a / (2 * (p - 1))
    beta = b / (2 * (p - 1) / p)
    resid = [abs(a + b * n - t) / t for n, t in sweep]
    return max(alpha, 0.0), max(beta, 0.0), max(resid), sum(resid) / len(resid)


def t_allreduce(P, nbytes, alpha, beta):
    if P <= 1:
        return 0.0
    ring = 2 * (P - 1) * alpha + 2.0 * (P - 1) / P * nbytes * beta
    rd = math.ceil(math.log2(P)) * (2 * alpha + nbytes * beta)
    return min(ring, rd)


def piecewise_linear(pts, x, extend):
    """The line through the sorted points (x_i, y_i) at x; outside them, the line through
    the two nearest points (extend) or the nearest point's value."""
    if len(pts) == 1 or (not extend and x <= pts[0][0]):
        return pts[0][1]
    if not extend and x >= pts[-1][0]:
        return pts[-1][1]
    if x <= pts[0][0]:
        (x0, y0), (x1, y1) = pts[0], pts[1]
    elif x >= pts[-1][0]:
        (x0, y0), (x1, y1) = pts[-2], pts[-1]
    else:
        i = max(k for k in range(len(pts)) if pts[k][0] <= x)
        (x0, y0), (x1, y1) = pts[i], pts[min(i + 1, len(pts) - 1)]
        if x1 == x0:
            return y0
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def expected_max_excess(samples, P):
    """E[max of P independent draws] - E[draw] over the empirical distribution of samples."""
    xs = sorted(samples)
    n = len(xs)
    emax = sum(x * ((k / n) ** P - ((k - 1) / n) ** P) for k, x in enumerate(xs, 1))
    return emax - sum(xs) / n


def comm_per_step(P, msgs, alpha, beta):
    return sum(k * t_allreduce(P, nbytes, alpha, beta) for nbytes, k in msgs)


def fit_line(xs, ys):
    n = len(xs)
    if n == 1:
        return 0.0, ys[0] / xs[0]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    c1 = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - c1 * mx, c1


class Model:
    """Everything fitted from one sweep folder."""

    def __init__(self, out, stat="min"):
        self.out = out
        col = "t_min_s" if stat == "min" else "t_med_s"
        self.fits = {}       # transport -> (alpha, beta, max_rel_err, mean_rel_err)
        self.fit_source = {}  # transport -> which bench rows the fit used
        self.tight_fits = {}  # transport -> the tight-loop fit, when the after-compute one is used
        self.msgs = None     # [(bytes, per_step)]
        self.msg_names = []
        self.bench_step = {}  # transport -> measured time of all messages of a step (np=2)
        for name in sorted(os.listdir(out)):
            if not (name.startswith("allreduce_") and name.endswith("_np2.csv")):
                continue
            t = name[len("allreduce_"):-len("_np2.csv")]
            rows = read_csv(os.path.join(out, name))
            # fit at the step's real message sizes, sent after compute when the bench did so,
            # else in a tight loop, else the size sweep
            for kind in ("msg_after_compute", "msg", "sweep"):
                pts = [(int(r["bytes"]), float(r[col])) for r in rows if r["kind"] == kind]
                if len({n for n, _ in pts}) >= 2:
                    if t not in self.fits:
                        self.fits[t] = fit_alpha_beta(pts)
                        self.fit_source[t] = kind
                    elif kind == "msg":
                        self.tight_fits[t] = fit_alpha_beta(pts)
            m = [(int(r["bytes"]), int(r["per_step"])) for r in rows if r["kind"] == "msg"]
            if m and self.msgs is None:
                self.msgs = m
                self.msg_names = [(r["name"], int(r["bytes"]), int(r["per_step"])) for r in rows if r["kind"] == "msg"]
            # a step's messages as measured: each after compute, summed; else the tight-loop set
            after = [float(r[col]) * int(r["per_step"]) for r in rows if r["kind"] == "msg_after_compute"]
            for r in rows:
                if r["kind"] == "step":
                    self.bench_step[t] = float(r[col])
            if after:
                self.bench_step[t] = sum(after)
        self.rows = read_csv(os.path.join(out, "scaling.csv")) if os.path.exists(os.path.join(out, "scaling.csv")) else []
        local = {}
        for r in self.rows:
            if r["np"] == "1" and r["threads"] == "1":
                b = int(r["rank_batch"])
                s = float(r["step_s"])
                local[b] = min(s, local.get(b, s))
        self.local_points = sorted(local.items())
        # corun: np one-rank trainings together, no messages (tools/study/scaling.py)
        share = {}
        for r in self.rows:
            b = int(r["rank_batch"])
            if r["series"] == "corun" and r["np"] != "1" and b in local:
                share[b] = float(r["step_s"]) / local[b]
        self.share_points = sorted(share.items())
        # corun per-step times: the spread behind the waits for the slowest rank
        self.step_samples = {}
        self.wait_points = {}   # P -> [(rank batch, wait / mean step)], filled by wait()
        path = os.path.join(out, "corun_steps.csv")
        if os.path.exists(path):
            for r in read_csv(path):
                self.step_samples.setdefault(int(r["rank_batch"]), []).append(float(r["step_s"]))
        self.c0 = self.c1 = None
        if local:
            self.c0, self.c1 = fit_line([b for b, _ in self.local_points], [s for _, s in self.local_points])

    def ok(self):
        return bool(self.fits) and self.msgs is not None and self.c0 is not None

    def local(self, b, scale=1.0):
        """Local step time at per-rank batch b: piecewise linear through the measured np = 1
        points, extended by the line through the two nearest points outside them (never below
        a tenth of the smallest measured time)."""
        pts = self.local_points
        if len(pts) == 1:
            return scale * pts[0][1] * b / pts[0][0]
        return scale * max(piecewise_linear(pts, b, extend=True), 0.1 * pts[0][1])

    def share(self, b):
        """How much slower a rank computes at per-rank batch b while another shares the
        machine (corun series): piecewise linear, constant beyond the measured batches; 1
        without measurements."""
        if not self.share_points:
            return 1.0
        return piecewise_linear(self.share_points, b, extend=False)

    def wait(self, P, b, scale=1.0):
        """Expected wait per step for the slowest of P ranks at per-rank batch b (corun
        series), as a fraction of the local time interpolated in b; 0 without measurements."""
        if not self.step_samples or P <= 1:
            return 0.0
        if P not in self.wait_points:   # the bisections ask for the same P many times
            self.wait_points[P] = sorted((bb, expected_max_excess(xs, P) / (sum(xs) / len(xs)))
                                         for bb, xs in self.step_samples.items())
        return piecewise_linear(self.wait_points[P], b, extend=False) * self.local(b, scale)

    def step(self, P, b, alpha, beta, scale=1.0, shared=False, waits=None):
        """Modelled step time; waits (default: on the same machine only) adds wait(P, b)."""
        local = self.local(b, scale) * (self.share(b) if shared else 1.0)
        wait = self.wait(P, b, scale) if (shared if waits is None else waits) else 0.0
        return local + wait + comm_per_step(P, self.msgs, alpha, beta)

    def efficiency(self, P, b, alpha, beta, scale=1.0, shared=False, waits=None):
        return self.local(b, scale) / self.step(P, b, alpha, beta, scale, shared, waits)

    def net_params(self, latency_s, bandwidth_bps):
        alpha_sw = self.fits["shm"][0] if "shm" in self.fits else 0.0
        return latency_s + alpha_sw, 8.0 / bandwidth_bps

    def batch_for_efficiency(self, P, alpha, beta, target=0.8, scale=1.0, shared=False):
        """Smallest per-rank batch b (real) with efficiency >= target (0 when even b = 1 reaches it)."""
        lo, hi = 1.0, 1e6
        if self.efficiency(P, lo, alpha, beta, scale, shared) >= target:
            return 0.0
        if self.efficiency(P, hi, alpha, beta, scale, shared) < target:
            return None
        for _ in range(100):    # bisection: efficiency grows with b
            mid = (lo * hi) ** 0.5
            if self.efficiency(P, mid, alpha, beta, scale, shared) >= target:
                hi = mid
            else:
                lo = mid
        return hi

    def checks(self):
        """(transport, series, rank_batch, measured step, predicted step, error) for np=2 runs."""
        out = []
        for r in self.rows:
            t = r["transport"]
            if r["np"] != "2" or r["threads"] != "1" or t not in self.fits:
                continue
            alpha, beta = self.fits[t][:2]
            b = int(r["rank_batch"])
            pred = self.step(2, b, alpha, beta, shared=t in SAME_MACHINE)
            meas = float(r["step_s"])
            if r.get("overlap", "0") == "1":
                continue    # the model is of blocking allreduces
            # the communication model alone: the run's own local time (compute, which the
            # trainer times without the BatchNorm messages, data, other) and its measured waits
            # plus the modelled messages
            own = (float(r["compute_s"]) + float(r["data_s"]) + float(r["other_s"]) + float(r["imbalance_s"])
                   + comm_per_step(2, self.msgs, alpha, beta))
            out.append((t, r["series"], b, meas, pred, (pred - meas) / meas, own, (own - meas) / meas))
        # one line per (transport, rank batch)
        seen, uniq = set(), []
        for c in out:
            if (c[0], c[2]) not in seen:
                seen.add((c[0], c[2]))
                uniq.append(c)
        return uniq


def fmt_t(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return "%.1f µs" % (s * 1e6)
    if s < 1:
        return "%.2f ms" % (s * 1e3)
    return "%.2f s" % s


def report(out, latency_us=2.0, bandwidth_gbps=100.0, nodes=(8, 16, 32, 64, 128, 256, 512, 1024),
           rank_batches=(8, 16, 32, 64), scale=1.0, stat="min"):
    """Markdown text of the model section, and rows for model.csv; None if data is missing."""
    m = Model(out, stat)
    if not m.ok():
        return None, None, m
    L, W = latency_us * 1e-6, bandwidth_gbps * 1e9
    alpha, beta = m.net_params(L, W)
    md = []
    md.append("### α–β fit (ring allreduce, np = 2, this machine, at the step's message sizes; %s of the repetitions)\n"
              % ("fastest" if stat == "min" else "median"))
    md.append("| transport | messages timed | α (per message step) | β (per byte) | 1/β | fit error max / mean |")
    md.append("|---|---|---|---|---|---|")
    sources = {"msg_after_compute": "after 10 ms of compute (used)", "msg": "in a tight loop",
               "sweep": "size sweep, tight loop"}
    for t in sorted(m.fits):
        fits = [(sources[m.fit_source[t]], m.fits[t])]
        if t in m.tight_fits:
            fits.append((sources["msg"] + " (not used)", m.tight_fits[t]))
        for how, (a, b, emax, emean) in fits:
            md.append("| %s | %s | %s | %.3g ns | %.2f GB/s | %.0f%% / %.0f%% |"
                      % (t, how, fmt_t(a), b * 1e9, (1 / b / 1e9) if b else float("inf"), 100 * emax, 100 * emean))
    md.append("")
    total = sum(b * k for b, k in m.msgs)
    md.append("Messages of one step (from the config): %d allreduces, %.2f MB in all: %s.\n"
              % (sum(k for _, k in m.msgs), total / 1e6,
                 ", ".join("%s %s×%d" % (n, fmt_bytes(b), k) for n, b, k in m.msg_names)))
    md.append("Local step time (np = 1, one thread), interpolated between the measured per-rank batches: %s.\n"
              % ", ".join("b=%d: %s" % (b, fmt_t(t)) for b, t in m.local_points))
    if m.share_points:
        md.append("Two ranks sharing this machine without messages (corun series) compute %s slower: %s.\n"
                  % ("%.0f–%.0f%%" % (100 * (min(f for _, f in m.share_points) - 1),
                                      100 * (max(f for _, f in m.share_points) - 1)),
                     ", ".join("b=%d: ×%.3f" % (b, f) for b, f in m.share_points)))
    if m.step_samples:
        md.append("Waits for the slowest rank, from the spread of the corun series' per-step times (%s steps per "
                  "batch): %s.\n"
                  % ("–".join(sorted({str(len(v)) for v in m.step_samples.values()}, key=int)),
                     "; ".join("b=%d: %s" % (b, ", ".join("P=%d %s (%.1f%%)" % (P, fmt_t(m.wait(P, b)),
                                                                             100 * m.wait(P, b) / m.local(b))
                                                          for P in (2, 8, 64)))
                               for b in sorted(m.step_samples))))
    md.append("### Check against the measured np = 2 runs\n")
    md.append(("Predicted: np = 1 local time at that per-rank batch%s%s + modelled communication. With the run's "
               % (" × the corun slowdown" if m.share_points else "",
                  " + the modelled wait for the slower rank" if m.step_samples else "")) +
              "own local time: the np = 2 run's compute (timed without the BatchNorm messages), data, other time and "
              "measured waits + modelled communication, which checks the communication model alone.\n")
    md.append("| transport | per-rank batch | measured step | predicted | error | with the run's own local time | error "
              "| bench: comm of a step | model: comm of a step |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    for t, s, b, meas, pred, err, own, err_own in sorted(m.checks(), key=lambda c: (c[0], c[2])):
        a, be = m.fits[t][:2]
        md.append("| %s | %d | %s | %s | %+.1f%% | %s | %+.1f%% | %s | %s |"
                  % (t, b, fmt_t(meas), fmt_t(pred), 100 * err, fmt_t(own), 100 * err_own,
                     fmt_t(m.bench_step.get(t)), fmt_t(comm_per_step(2, m.msgs, a, be))))
    md.append("")
    md.append("### Prediction: %g Gb/s, %g µs network (α = %s incl. %s software overhead, β = %.3g ns/B)\n"
              % (bandwidth_gbps, latency_us, fmt_t(alpha), fmt_t(alpha - L), beta * 1e9))
    md.append("One rank per node with this machine's one-core compute%s; weak scaling at fixed per-rank batch b.\n"
              % ("" if scale == 1.0 else " ×%g" % scale))
    head = "| nodes | comm / step | " + " | ".join("step (b=%d) | eff. (b=%d)" % (b, b) for b in rank_batches) + " |"
    md.append(head)
    md.append("|---" * (2 + 2 * len(rank_batches)) + "|")
    rows = []
    for P in nodes:
        comm = comm_per_step(P, m.msgs, alpha, beta)
        cells = []
        for b in rank_batches:
            st = m.step(P, b, alpha, beta, scale)
            ef = m.efficiency(P, b, alpha, beta, scale)
            cells.append("%s | %.1f%%" % (fmt_t(st), 100 * ef))
            rows.append({"nodes": P, "rank_batch": b, "latency_us": latency_us, "bandwidth_gbps": bandwidth_gbps,
                         "comm_s": comm, "step_s": st, "efficiency": ef})
        md.append("| %d | %s | %s |" % (P, fmt_t(comm), " | ".join(cells)))
    md.append("")
    if m.step_samples:
        md.append("The table assumes nodes that keep step (no waits). With this VM's step-to-step spread (corun) "
                  "every node would also wait for the slowest: %s.\n"
                  % "; ".join("%d nodes: %s" % (P, ", ".join("b=%d %.1f%%" % (b, 100 * m.efficiency(
                      P, b, alpha, beta, scale, waits=True)) for b in rank_batches)) for P in (8, 64)))
    for P in (64,):
        b80 = m.batch_for_efficiency(P, alpha, beta, 0.8, scale)
        md.append("At %d nodes (%s of communication per step; the local step must be at least 4× that): %s."
                  % (P, fmt_t(comm_per_step(P, m.msgs, alpha, beta)), fmt_b(b80)))
    for t in sorted(m.fits):
        a, be = m.fits[t][:2]
        b80 = m.batch_for_efficiency(2, a, be, 0.8, shared=t in SAME_MACHINE)
        md.append("On this machine over %s (np = 2, measured α, β%s): %s."
                  % (t, ", corun slowdown" if m.share_points and t in SAME_MACHINE else "", fmt_b(b80)))
    md.append("")
    return "\n".join(md), rows, m


def fmt_b(b):
    """How the per-rank batch threshold for 80% efficiency reads."""
    if b is None:
        return "efficiency stays under 80% at any per-rank batch up to 10^6"
    if b == 0:
        return "efficiency stays above 80% even at one sample per rank"
    return "efficiency falls under 80%% below a per-rank batch of %.1f" % b


def fmt_bytes(b):
    if b >= 1e6:
        return "%.2f MB" % (b / 1e6)
    if b >= 1e3:
        return "%.1f kB" % (b / 1e3)
    return "%d B" % b


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("out", help="tools/study/scaling.py output folder")
    p.add_argument("--latency-us", type=float, default=2.0)
    p.add_argument("--bandwidth-gbps", type=float, default=100.0)
    p.add_argument("--nodes", default="8,16,32,64,128,256,512,1024")
    p.add_argument("--rank-batches", default="8,16,32,64")
    p.add_argument("--stat", choices=["min", "med"], default="min",
                   help="which repetition time of the benchmark to fit: fastest (default; robust to a busy "
                        "machine) or median")
    p.add_argument("--compute-scale", type=float, default=1.0,
                   help="multiply the measured local step time (e.g. 0.1 for nodes 10x faster)")
    a = p.parse_args()
    md, rows, m = report(a.out, a.latency_us, a.bandwidth_gbps, [int(x) for x in a.nodes.split(",")],
                         [int(x) for x in a.rank_batches.split(",")], a.compute_scale, a.stat)
    if md is None:
        sys.stderr.write("scaling_model: %s lacks what the model needs: allreduce_<transport>_np2.csv with the "
                         "step's messages (bench_allreduce --config) and np = 1 rows in scaling.csv\n" % a.out)
        sys.exit(1)
    with open(os.path.join(a.out, "model.md"), "w") as f:
        f.write(md + "\n")
    with open(os.path.join(a.out, "model.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    print(md)


if __name__ == "__main__":
    main()
