#!/usr/bin/env python3
"""Scaling sweep of `mpigan train` (docs/scaling.md).

Runs a series of short trainings and writes OUT/scaling.csv, one row per run:

  strong  np = 1, 2, 4, ... at a fixed global batch (--batch, default the config's)
  weak    np = 1, 2, 4, ... at a fixed per-rank batch (--rank-batch)
  hybrid  ranks x OpenBLAS threads at the fixed global batch
  batch   np = 2 (--batch-np) at per-rank batches --rank-batches, against np = 1 at the
          same per-rank batch: where efficiency falls as the local work shrinks
  overlap np = 2 (--batch-np) at the global batch, gradient communication overlapped with
          backward (train.overlap, buckets of --bucket-mb) against the blocking allreduce
  corun   --batch-np independent one-rank trainings started together at each of the
          --rank-batches, no communication: how much slower a rank computes when others
          share the machine (memory bandwidth, caches, clock), which
          tools/study/scaling_model.py applies when it predicts the one-machine np > 1 runs

each over the transports asked for:
  shm    one host, Open MPI's shared-memory BTL (--mca pml ob1 --mca btl self,vader)
  tcp    one host, ranks forced onto TCP (--mca btl self,tcp, loopback unless --tcp-if):
         messages cross the kernel's network stack as they do between nodes
  netns  ranks on separate "hosts": network namespaces with their own addresses
         (tools/testbed/netns_hosts.sh; needs root), launched by mpirun with a hostfile
  auto   whatever Open MPI picks (on a cluster: the fabric); use on real nodes

np = 1 runs have no communication and are made once per (threads, batch); every transport's
efficiency is measured against them. With --bench (default), build/tools/bench/bench_allreduce is
run per transport and np > 1 on the config's real message sizes (OUT/allreduce_*.csv), in a
tight loop and each message after --bench-gap-ms of compute, for tools/study/scaling_model.py.

Columns of scaling.csv: series, transport, np, threads, cores (np x threads), global_batch,
rank_batch, overlap (0/1), steps (measured), step_s, images_per_s, compute_s, allreduce_s,
data_s, imbalance_s, bn_sync_s, other_s, compute_max_s, allreduce_share, speedup, efficiency,
peak_rss_mb (largest rank), peak_rss_mb_mean, oversubscribed, run_dir.

Timings come from the run's metrics.jsonl (the trainer's step-time split; docs/training.md):
per log window, the mean over ranks of each part, so the parts add up to the window's wall
time. The first window (--warmup steps) is dropped. Per step:
  step_s        wall time (time_window_s)
  compute_s     forward, backward, optimizer, without any communication (time_compute_s);
                compute_max_s is the slowest rank's (time_compute_max_s)
  allreduce_s   the gradient allreduces (time_allreduce_s); with overlap, the time in MPI
                calls during backward plus the final wait
  imbalance_s   waiting for the slowest rank where the ranks meet: before each gradient
                reduction and each sync-BN sum (time_wait_s: timed barriers, train.measure_wait)
  bn_sync_s     synchronised BatchNorm's statistics sums (time_bn_sync_s)
  data_s        waiting for real batches and drawing noise (time_data_s)
  other_s       the rest: logging, gradient norms, NaN checks, checkpoints
  allreduce_share = (allreduce_s + bn_sync_s) / step_s: all communication but the waits
Peak RSS: the trainer's getrusage maximum, the largest rank and the mean over ranks.

Usage: tools/study/scaling.py [--config configs/fmnist_dcgan.yaml] [--out runs/scaling] ...
       (tools/study/scaling.py --help lists every option)
"""
import argparse
import csv
import json
import math
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
ROOT = os.path.dirname(TOOLS)
NETNS_HOSTS = os.path.join(TOOLS, "testbed", "netns_hosts.sh")

COLUMNS = ["series", "transport", "np", "threads", "cores", "global_batch", "rank_batch", "overlap", "steps",
           "step_s", "images_per_s", "compute_s", "allreduce_s", "data_s", "imbalance_s", "bn_sync_s", "other_s",
           "compute_max_s", "allreduce_share", "speedup", "efficiency", "peak_rss_mb", "peak_rss_mb_mean",
           "oversubscribed", "run_dir"]


def die(msg):
    sys.stderr.write("scaling: error: %s\n" % msg)
    sys.exit(1)


def say(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- config

def read_config_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        die("cannot read config %s: %s" % (path, e))


def config_batch(text):
    """train.batch of a config (the first `batch:` inside the top-level train mapping)."""
    in_train = False
    for line in text.splitlines():
        if re.match(r"^train:\s*(#.*)?$", line):
            in_train = True
            continue
        if in_train and re.match(r"^\S", line):
            in_train = False
        m = re.match(r"^\s+batch:\s*(\d+)", line)
        if in_train and m:
            return int(m.group(1))
    return None


def synthetic_config(text):
    """The config with its top-level data section replaced by in-memory synthetic data."""
    out, skip = [], False
    for line in text.splitlines():
        if re.match(r"^data:", line):
            out.append("data: {source: synthetic}   # tools/study/scaling.py: synthetic data of the model's shape")
            skip = True
            continue
        if skip and (line.startswith(" ") or line.startswith("\t") or not line.strip()):
            continue
        skip = False
        out.append(line)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- launching

class Launcher:
    def __init__(self, args):
        self.args = args
        self.root = os.geteuid() == 0
        self.netns_dir = None

    def transport_mca(self, transport):
        a = self.args
        mca = ["--mca", "mpi_yield_when_idle", "1" if a.yield_when_idle == "on" else "0"]
        if transport == "shm":
            return mca + ["--mca", "pml", "ob1", "--mca", "btl", "self,vader"]
        if transport == "tcp":
            mca += ["--mca", "pml", "ob1", "--mca", "btl", "self,tcp"]
            if a.tcp_if:
                mca += ["--mca", "btl_tcp_if_include", a.tcp_if]
            return mca
        if transport == "netns":
            if self.args.dry_run:
                return mca + ["$(tools/testbed/netns_hosts.sh mpirun-args %s)" % self.netns_dir]
            out = subprocess.run([NETNS_HOSTS, "mpirun-args", self.netns_dir],
                                 check=True, capture_output=True, text=True).stdout.split()
            return mca + out
        return mca   # auto

    def command(self, transport, np_, threads, prog, oversub):
        a = self.args
        env = {"OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
               "PMIX_MCA_gds": os.environ.get("PMIX_MCA_gds", "hash")}
        if a.launcher == "srun":
            mca = self.transport_mca(transport)
            i = 0
            while i < len(mca):    # --mca k v -> OMPI_MCA_k=v
                if mca[i] == "--mca":
                    env["OMPI_MCA_" + mca[i + 1]] = mca[i + 2]
                    i += 3
                else:
                    i += 1
            nodes = int(os.environ.get("SLURM_JOB_NUM_NODES", "1"))
            per_node = max(1, a.cores // nodes // threads)
            need = min(nodes, max(1, math.ceil(np_ / per_node)))
            cmd = ["srun", "--mpi=" + a.srun_mpi, "-n", str(np_), "-N", str(need), "--cpus-per-task", str(threads),
                   "--kill-on-bad-exit=1"]
            if oversub:
                cmd.append("--overcommit")
            return env, cmd + prog
        cmd = ["mpirun", "-np", str(np_), "--bind-to", "none"]
        if self.root:
            cmd.append("--allow-run-as-root")
        if oversub or transport in ("shm", "tcp"):
            cmd.append("--oversubscribe")
        for k in env:
            cmd += ["-x", k]
        if a.hostfile and transport != "netns":
            cmd += ["--hostfile", a.hostfile]
        cmd += self.transport_mca(transport)
        cmd += shlex.split(a.mpirun_args)
        return env, cmd + prog

    def run_together(self, progs, threads, logs, timeout):
        """One-rank runs of progs started at once (the corun series); their exit statuses
        (124: ended at the timeout)."""
        procs, files = [], []
        try:
            for prog, log in zip(progs, logs):
                env, cmd = self.command("auto", 1, threads, prog, False)
                full = dict(os.environ)
                full.update(env)
                f = open(log, "w")
                files.append(f)
                f.write("# " + " ".join(shlex.quote(c) for c in cmd) + "\n")
                f.flush()
                procs.append(subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=full, cwd=ROOT))
            deadline, rcs = time.time() + timeout, []
            for pr in procs:
                try:
                    rcs.append(pr.wait(timeout=max(1.0, deadline - time.time())))
                except subprocess.TimeoutExpired:
                    pr.kill()
                    pr.wait()
                    rcs.append(124)
            return rcs
        finally:
            for pr in procs:
                if pr.poll() is None:
                    pr.kill()
            for f in files:
                f.close()

    def run(self, transport, np_, threads, prog, oversub, log, timeout):
        env, cmd = self.command(transport, np_, threads, prog, oversub)
        full = dict(os.environ)
        full.update(env)
        with open(log, "w") as f:
            f.write("# " + " ".join(shlex.quote(c) for c in cmd) + "\n")
            f.flush()
            try:
                r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=full, timeout=timeout, cwd=ROOT)
                return r.returncode
            except subprocess.TimeoutExpired:
                return 124


# ---------------------------------------------------------------- metrics

PARTS = {"compute_s": "time_compute_s", "allreduce_s": "time_allreduce_s", "data_s": "time_data_s",
         "imbalance_s": "time_wait_s", "bn_sync_s": "time_bn_sync_s", "compute_max_s": "time_compute_max_s"}


def read_metrics(run_dir, warmup, global_batch):
    """Per-step averages of the trainer's time split over the log windows after the first
    (warm-up) one, and the peak RSS of the last window."""
    n_critic = 1
    try:
        with open(os.path.join(run_dir, "config.yaml")) as f:
            m = re.search(r"^\s+n_critic:\s*(\d+)", f.read(), re.M)
            if m:
                n_critic = int(m.group(1))
    except OSError:
        pass
    rows = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if "eval" not in row:  # evaluation lines (eval.interval) carry no time split
                    rows.append(row)
    need = list(PARTS.values()) + ["time_window_s", "peak_rss_mb", "peak_rss_mb_mean"]
    for r in rows:
        missing = [k for k in need if k not in r]
        if missing:
            die("%s/metrics.jsonl lacks %s: rebuild build/mpigan (and keep train.measure_wait on)"
                % (run_dir, ", ".join(missing)))
    prev, steps, wall = 0, 0, 0.0
    sums = dict.fromkeys(PARTS, 0.0)
    for r in rows:
        n = r["step"] - prev
        if prev >= warmup and n > 0:
            steps += n
            wall += r["time_window_s"]
            for k, field in PARTS.items():
                sums[k] += r[field] or 0.0
        prev = r["step"]
    if steps == 0:
        return None
    out = {k: v / steps for k, v in sums.items()}
    out["steps"] = steps
    out["step_s"] = wall / steps
    out["images_per_s"] = global_batch * n_critic / out["step_s"]
    parts = sum(out[k] for k in ("compute_s", "allreduce_s", "data_s", "imbalance_s", "bn_sync_s"))
    out["other_s"] = max(out["step_s"] - parts, 0.0)
    out["peak_rss_mb"] = rows[-1]["peak_rss_mb"]
    out["peak_rss_mb_mean"] = rows[-1]["peak_rss_mb_mean"]
    return out


# ---------------------------------------------------------------- the sweep

def parse_list(s):
    return [int(x) for x in s.split(",") if x.strip()]


def powers_upto(n):
    out, p = [], 1
    while p <= n:
        out.append(p)
        p *= 2
    if out[-1] != n:
        out.append(n)
    return out


def default_cores():
    if os.environ.get("SLURM_JOB_ID") and os.environ.get("SLURM_NTASKS"):
        return int(os.environ["SLURM_NTASKS"]) * int(os.environ.get("SLURM_CPUS_PER_TASK", "1"))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def step_times(run_dir, warmup):
    """Wall time of every one-step log window after the warm-up (train.log_interval=1)."""
    out, prev = [], 0
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if "eval" not in r:
                    if prev >= warmup and r["step"] - prev == 1:
                        out.append(r["time_window_s"])
                    prev = r["step"]
    return out


def corun(launcher, a, n, threads, batch, run_dir, log, train_prog):
    """n one-rank trainings of per-rank batch `batch` started together, no communication
    between them, each logging every step. Their per-step split averaged as if they were
    the ranks of one run (the throughput adds up), and under "step_times" every copy's
    per-step wall times (the spread tools/study/scaling_model.py turns into waits for the slowest
    rank); None if one failed."""
    shutil.rmtree(run_dir, ignore_errors=True)
    dirs = [os.path.join(run_dir, "copy%d" % k) for k in range(n)]
    for d in dirs:
        os.makedirs(d)
    rcs = launcher.run_together([train_prog(batch, d, 1) for d in dirs], threads,
                                ["%s.%d" % (log, k) for k in range(n)], a.timeout)
    ms = [read_metrics(d, a.warmup, batch) if rc == 0 else None for d, rc in zip(dirs, rcs)]
    if any(m is None for m in ms):
        return None
    out = {k: statistics.fmean(m[k] for m in ms)
           for k in ("step_s", "compute_s", "allreduce_s", "data_s", "imbalance_s", "bn_sync_s", "other_s",
                     "peak_rss_mb_mean")}
    out["compute_max_s"] = max(m["compute_s"] for m in ms)
    out["images_per_s"] = sum(m["images_per_s"] for m in ms)
    out["steps"] = min(m["steps"] for m in ms)
    out["peak_rss_mb"] = max(m["peak_rss_mb"] for m in ms)
    out["step_times"] = [step_times(d, a.warmup) for d in dirs]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See docs/scaling.md for the columns and how to read them.")
    p.add_argument("--config", default="configs/fmnist_dcgan.yaml")
    p.add_argument("--data", choices=["auto", "config", "synthetic"], default="auto",
                   help="config: the config's data; synthetic: in-memory data of the model's shape; auto: the "
                        "config's data if the trainer accepts it (file present, loader wired), else synthetic")
    p.add_argument("--out", default="runs/scaling", help="output folder (default runs/scaling)")
    p.add_argument("--mpigan", default="build/mpigan")
    p.add_argument("--bench-bin", default="build/tools/bench/bench_allreduce")
    p.add_argument("--series", default="strong,weak,hybrid,batch,overlap,corun")
    p.add_argument("--transports", default="shm,tcp", help="shm,tcp,netns,auto (default shm,tcp)")
    p.add_argument("--cores", type=int, default=default_cores(),
                   help="cores to use (default: this machine's, or the Slurm allocation's)")
    p.add_argument("--np", default=None, help="rank counts, e.g. 1,2,4 (default powers of 2 up to --cores)")
    p.add_argument("--threads", default=None, help="OpenBLAS threads per rank for the hybrid series "
                                                   "(default powers of 2 up to --cores)")
    p.add_argument("--batch", type=int, default=None, help="global batch of strong/hybrid (default the config's)")
    p.add_argument("--rank-batch", type=int, default=32, help="per-rank batch of the weak series (32)")
    p.add_argument("--rank-batches", default="4,8,16,32,64", help="per-rank batches of the batch series")
    p.add_argument("--batch-np", type=int, default=2, help="rank count of the batch and overlap series (2)")
    p.add_argument("--bucket-mb", type=float, default=0.25,
                   help="train.overlap.bucket_mb of the overlap series (0.25: DCGAN-28's G and D get 2 buckets each)")
    p.add_argument("--steps", type=int, default=40, help="steps per run (40)")
    p.add_argument("--warmup", type=int, default=10, help="first steps not measured; also the log interval (10)")
    p.add_argument("--repeat", type=int, default=1, help="runs per point; the median step time is kept (1)")
    p.add_argument("--oversubscribe", action="store_true", help="also run points with np x threads > cores")
    p.add_argument("--launcher", choices=["mpirun", "srun"], default="mpirun")
    p.add_argument("--srun-mpi", default="pmix")
    p.add_argument("--hostfile", default=None, help="mpirun hostfile for multi-node runs")
    p.add_argument("--mpirun-args", default="", help="extra mpirun arguments (one string)")
    p.add_argument("--tcp-if", default=None, help="btl_tcp_if_include for tcp (default lo on one host)")
    p.add_argument("--yield-when-idle", choices=["on", "off"], default="on",
                   help="Open MPI's mpi_yield_when_idle for every run (default on): waiting ranks yield the "
                        "core. On a machine shared with other work, busy-waiting ranks otherwise starve the "
                        "kernel's TCP processing and small messages take ~10 ms instead of ~10 us; on "
                        "dedicated nodes compare with off")
    p.add_argument("--netns-hosts", type=int, default=2, help="hosts (namespaces) of the netns transport (2)")
    p.add_argument("--no-bench", action="store_true", help="skip the allreduce benchmark")
    p.add_argument("--bench-gap-ms", type=float, default=10.0,
                   help="the benchmark also times each message after this much compute, as training "
                        "sends them (10; 0: tight loop only)")
    p.add_argument("--timeout", type=int, default=900, help="seconds per run before it is ended (900)")
    p.add_argument("--no-report", action="store_true", help="do not call tools/study/plot_scaling.py at the end")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    a = p.parse_args()

    os.chdir(ROOT)
    series = [s for s in a.series.split(",") if s]
    transports = [t for t in a.transports.split(",") if t]
    for s in series:
        if s not in ("strong", "weak", "hybrid", "batch", "overlap", "corun"):
            die("unknown series %s (strong, weak, hybrid, batch, overlap, corun)" % s)
    if "corun" in series and (a.launcher != "mpirun" or a.hostfile):
        say("scaling: corun series skipped: it runs on this machine only (mpirun, no --hostfile)")
        series.remove("corun")
    for t in transports:
        if t not in ("shm", "tcp", "netns", "auto"):
            die("unknown transport %s (shm, tcp, netns, auto)" % t)
    if a.tcp_if is None:
        multi = a.hostfile or int(os.environ.get("SLURM_JOB_NUM_NODES", "1")) > 1
        a.tcp_if = "" if multi else "lo"
    if "netns" in transports and os.geteuid() != 0:
        say("scaling: netns transport skipped: needs root (network namespaces)")
        transports.remove("netns")
    if "netns" in transports and a.launcher != "mpirun":
        die("the netns transport needs --launcher mpirun")
    for f in (a.mpigan,) + (() if a.no_bench else (a.bench_bin,)):
        if not os.access(f, os.X_OK):
            die("%s not found (build it: make %s)" % (f, f))
    nps = parse_list(a.np) if a.np else powers_upto(a.cores)
    threads_list = parse_list(a.threads) if a.threads else powers_upto(a.cores)
    if a.warmup < 1 or a.steps < 2 * a.warmup:
        die("--steps must be at least twice --warmup (one warm-up window and at least one measured)")

    out = os.path.abspath(a.out)
    os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    text = read_config_text(a.config)
    B = a.batch or config_batch(text)
    if not B:
        die("no train.batch in %s; give --batch" % a.config)

    # the config the runs use
    cfg_path = os.path.join(out, "config.yaml")
    use = a.data
    if use == "auto":
        probe = os.path.join(out, "runs", "probe")
        shutil.rmtree(probe, ignore_errors=True)
        r = subprocess.run([a.mpigan, "train", a.config, "--set", "train.steps=1", "--set", "run_dir=" + probe,
                            "--set", "checkpoint.interval=0"], capture_output=True, text=True,
                           env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        use = "config" if r.returncode == 0 else "synthetic"
        if use == "synthetic":
            why = (r.stderr.strip().splitlines() or ["?"])[-1]
            say("scaling: the config's data cannot be used (%s); using synthetic data of the model's shape" % why)
        shutil.rmtree(probe, ignore_errors=True)
    with open(cfg_path, "w") as f:
        f.write(synthetic_config(text) if use == "synthetic" else text)

    # the runs to make: (series, transport, np, threads, global_batch, rank_batch, overlap)
    points = []
    def add(series_, t, n, th, gb, ov=0):
        if gb % n:
            say("scaling: skipped %s np=%d: global batch %d does not divide" % (series_, n, gb))
            return
        points.append((series_, t if n > 1 else "local", n, th, gb, gb // n, ov if n > 1 else 0))
    for s in series:
        for t in transports:
            if s == "strong":
                for n in nps:
                    add(s, t, n, 1, B)
            elif s == "weak":
                for n in nps:
                    add(s, t, n, 1, a.rank_batch * n)
            elif s == "hybrid":
                for n in nps:
                    for th in threads_list:
                        add(s, t, n, th, B)
            elif s == "batch":
                for b in parse_list(a.rank_batches):
                    add(s, t, 1, 1, b)
                    add(s, t, a.batch_np, 1, b * a.batch_np)
            elif s == "overlap":
                add(s, t, 1, 1, B)
                add(s, t, a.batch_np, 1, B, 0)
                add(s, t, a.batch_np, 1, B, 1)
            elif s == "corun" and t == transports[0]:   # no messages: once, whatever the transport
                for b in parse_list(a.rank_batches):
                    add(s, t, 1, 1, b)
                    points.append((s, "corun", a.batch_np, 1, b * a.batch_np, b, 0))
    # one run per distinct (transport, np, threads, global batch, overlap): np=1 is shared
    seen, todo = set(), []
    for pt in points:
        key = pt[1:5] + pt[6:7]
        over = pt[2] * pt[3] > a.cores
        if over and not a.oversubscribe:
            continue
        if pt[1] == "netns" and pt[2] % a.netns_hosts:
            continue
        if key not in seen:
            seen.add(key)
            todo.append(key)
    skipped = sorted({(pt[2], pt[3]) for pt in points if pt[2] * pt[3] > a.cores})
    if skipped and not a.oversubscribe:
        say("scaling: skipped (ranks, threads) = %s: more than %d cores (--oversubscribe runs them)"
            % (", ".join("%dx%d" % s for s in skipped), a.cores))

    launcher = Launcher(a)
    netns_dir = os.path.join(out, "netns")
    if "netns" in transports and not a.dry_run:
        env = dict(os.environ, MG_NETNS_SLOTS=str(max(1, max(n for n in nps) // a.netns_hosts)))
        subprocess.run([NETNS_HOSTS, "down", netns_dir], env=env)
        subprocess.run([NETNS_HOSTS, "up", str(a.netns_hosts), netns_dir], env=env,
                       check=True)
    launcher.netns_dir = netns_dir

    machine = os.path.join(out, "machine.txt")
    if not a.dry_run:
        with open(machine, "w") as f:
            f.write("date: %s\n" % time.strftime("%Y-%m-%d %H:%M:%S %z"))
            f.write("host: %s, cores used: %d, cpus: %d\n" % (os.uname().nodename, a.cores, os.cpu_count()))
            f.write("load average before: %s\n" % " ".join("%.2f" % x for x in os.getloadavg()))
            f.write("config: %s (data: %s), steps %d, warm-up %d, repeat %d, mpi_yield_when_idle %s\n"
                    % (a.config, use, a.steps, a.warmup, a.repeat, a.yield_when_idle))
            for cmd in (["git", "rev-parse", "--short", "HEAD"], ["mpirun", "--version"], [a.mpigan, "info"]):
                try:
                    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                                       env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
                    f.write(r.stdout.strip().splitlines()[0] if cmd[0] != a.mpigan else r.stdout.strip())
                    f.write("\n")
                except (OSError, IndexError, subprocess.SubprocessError):
                    pass

    results = {}
    try:
        # allreduce benchmark per transport and rank count
        if not a.no_bench:
            for t in transports:
                for n in nps:
                    if n == 1 or n > a.cores and not a.oversubscribe or (t == "netns" and n % a.netns_hosts):
                        continue
                    dest = os.path.join(out, "allreduce_%s_np%d.csv" % (t, n))
                    prog = [os.path.abspath(a.bench_bin), "--config", cfg_path, "--label", t, "--out", dest,
                            "--gap-ms", "%g" % a.bench_gap_ms]
                    if a.dry_run:
                        say(" ".join(shlex.quote(c) for c in launcher.command(t, n, 1, prog, n > a.cores)[1]))
                        continue
                    say("scaling: allreduce benchmark, %s, np=%d" % (t, n))
                    rc = launcher.run(t, n, 1, prog, n > a.cores, dest + ".log", a.timeout)
                    if rc != 0:
                        say("scaling: WARNING: allreduce benchmark %s np=%d failed (see %s.log)" % (t, n, dest))

        # repeats interleaved (every point once, then again): a load that comes and goes
        # on a shared machine then hits all points alike
        samples = {key: [] for key in todo}
        jitter = []   # corun: (rank_batch, repeat, copy, step, step_s)
        for rep in range(a.repeat):
            for i, key in enumerate(todo):
                t, n, th, gb, ov = key
                name = "%s_np%d_t%d_b%d%s" % (t, n, th, gb, "_overlap" if ov else "")
                over = n * th > a.cores
                run_dir = os.path.join(out, "runs", name + ("" if a.repeat == 1 else "_r%d" % rep))
                # gradients by MPI_Allreduce (train.reduce: mpi): the sweep measures MPI's
                # transports, and the node-shared default would take them off the transport
                def train_prog(batch, rdir, log_interval=a.warmup):
                    return [os.path.abspath(a.mpigan), "train", cfg_path, "--set", "train.reduce=mpi",
                            "--set", "train.batch=%d" % batch, "--set", "train.steps=%d" % a.steps,
                            "--set", "train.log_interval=%d" % log_interval, "--set", "checkpoint.interval=0",
                            "--set", "checkpoint.keep_last=1", "--set", "train.measure_wait=true",
                            "--set", "train.overlap.enabled=%s" % ("true" if ov else "false"),
                            "--set", "train.overlap.bucket_mb=%g" % a.bucket_mb, "--set", "run_dir=" + rdir]
                prog = train_prog(gb, run_dir)
                log = os.path.join(out, "runs", name + ("" if a.repeat == 1 else "_r%d" % rep) + ".log")
                if t == "corun":
                    if a.dry_run:
                        for k in range(n):
                            prog_k = train_prog(gb // n, os.path.join(run_dir, "copy%d" % k), 1)
                            say(" ".join(shlex.quote(c) for c in launcher.command("auto", 1, th, prog_k, False)[1])
                                + " &")
                        continue
                    t0 = time.time()
                    m = corun(launcher, a, n, th, gb // n, run_dir, log, train_prog)
                    failure = "see %s.*" % log
                else:
                    if a.dry_run:
                        say(" ".join(shlex.quote(c) for c in launcher.command(t, n, th, prog, over)[1]))
                        continue
                    shutil.rmtree(run_dir, ignore_errors=True)
                    os.makedirs(run_dir)
                    t0 = time.time()
                    rc = launcher.run(t, n, th, prog, over, log, a.timeout)
                    if rc != 0 and rc != 124:    # a launch that failed (e.g. a daemon crashed): once more
                        shutil.copy(log, log + ".failed")
                        say("scaling: %s failed (exit %d, %s.failed); trying once more" % (name, rc, log))
                        shutil.rmtree(run_dir, ignore_errors=True)
                        os.makedirs(run_dir)
                        rc = launcher.run(t, n, th, prog, over, log, a.timeout)
                    m = read_metrics(run_dir, a.warmup, gb) if rc == 0 else None
                    failure = "exit %d; see %s" % (rc, log)
                if m is None:
                    say("scaling: [%d/%d] %s FAILED (%s)" % (i + 1, len(todo), name, failure))
                    continue
                m["run_dir"] = os.path.relpath(run_dir, out)
                samples[key].append(m)
                for copy, times in enumerate(m.pop("step_times", [])):
                    jitter.extend((gb // n, rep, copy, k, x) for k, x in enumerate(times))
                say("scaling: [%d/%d, %d/%d] %-32s %8.1f img/s  step %7.2f ms  (%.0f s)"
                    % (rep + 1, a.repeat, i + 1, len(todo), name, m["images_per_s"], 1e3 * m["step_s"],
                       time.time() - t0))
        for key, ms in samples.items():
            if ms:
                ms.sort(key=lambda m: m["step_s"])
                results[key] = ms[len(ms) // 2]
    finally:
        if "netns" in transports and not a.dry_run:
            subprocess.run([NETNS_HOSTS, "down", netns_dir])
    if a.dry_run:
        return

    # rows: each point against its np=1 baseline
    rows, written = [], set()
    for (s, t, n, th, gb, rb, ov) in points:
        m = results.get((t, n, th, gb, ov))
        if m is None or (s, t, n, th, gb, ov) in written:
            continue
        written.add((s, t, n, th, gb, ov))
        if s == "hybrid":
            base = results.get(("local", 1, 1, gb, 0))
        elif s in ("strong", "overlap"):
            base = results.get(("local", 1, th, gb, 0))
        else:   # weak, batch: one rank at the same per-rank batch
            base = results.get(("local", 1, th, rb, 0))
        row = dict(m)
        row.update(series=s, transport=t, np=n, threads=th, cores=n * th, global_batch=gb, rank_batch=rb,
                   overlap=ov, oversubscribed=int(n * th > a.cores))
        row["allreduce_share"] = (m["allreduce_s"] + m["bn_sync_s"]) / m["step_s"]
        if base:
            row["speedup"] = m["images_per_s"] / base["images_per_s"]
            row["efficiency"] = row["speedup"] / (n * th if s == "hybrid" else n)
        rows.append(row)
    dest = os.path.join(out, "scaling.csv")
    with open(dest, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("%.6g" % v if isinstance(v, float) else ("" if v is None else v))
                        for k, v in r.items()})
    if jitter:
        with open(os.path.join(out, "corun_steps.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["rank_batch", "repeat", "copy", "step", "step_s"])
            w.writerows((b, r, c, k, "%.6g" % x) for b, r, c, k, x in jitter)
    with open(machine, "a") as f:
        f.write("load average after: %s\n" % " ".join("%.2f" % x for x in os.getloadavg()))
    say("scaling: %d rows -> %s" % (len(rows), dest))
    if not a.no_report:
        r = subprocess.run([sys.executable, os.path.join(HERE, "plot_scaling.py"), out])
        if r.returncode != 0:
            say("scaling: the report was not made (tools/study/plot_scaling.py %s says why above)" % out)


if __name__ == "__main__":
    main()
