#!/usr/bin/python3
"""Training throughput of mpigan beside the PyTorch peer (make bench-train; docs/benchmarks.md).

Every configuration below runs --reps times, the repetitions interleaved round-robin (so
drift and other load on a shared machine hit all of them alike); the tables give medians.

  DCGAN-28 (configs/fmnist_dcgan.yaml, batch 64, G step reuses the D step's fakes)
    mpigan np1      1 rank, 1 OpenBLAS thread (the BLAS backend: train.backend=blas; the
                    "... onednn" and "... onednn bf16" variants run oneDNN, the default)
    mpigan np2      2 ranks (mpirun), 1 OpenBLAS thread each
    mpigan np1-t2   1 rank, 2 OpenBLAS threads
    torch t1        peer_dcgan.py --threads 1
    torch t2        peer_dcgan.py --threads 2 --blas-threads 1   (the peer's best 2-thread setting)
  with --all-variants also: mpigan np2-yield (OMPI_MCA_mpi_yield_when_idle=1: waiting ranks
  yield the core), torch t2-plain (--threads 2), torch t2-passive (OMP_WAIT_POLICY=PASSIVE);
  each side's best 2-core median is then its 2-core rate
  MLP GAN on grid25 (configs/grid25.yaml, batch 500, 3x400 MLPs, noise of 2 like the peer)
    mpigan np1, mpigan np2, torch t1, torch t2 (--threads 2, OMP_WAIT_POLICY=PASSIVE)
    (--all-variants: also mpigan np2-yield, torch t2-plain, torch t2-blas1)

each under two OpenBLAS settings: as_set (the environment as it is) and unset
(OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from that command's environment only).
When neither variable is set, the two are the same and only `unset` runs; --emulate
"OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512" makes as_set use those values.

mpigan's rate is measured on a steady window: the trainer logs every --log steps, and the
first log window (start-up, first touches of memory, loader warm-up) is dropped. The peer
runs 20 warm-up iterations before its timed seconds. Peak RSS: the trainer's metrics.jsonl
(peak_rss_mb: the largest rank's own ru_maxrss, not mpirun's); the peer reports its own.
The allreduce share is the trainer's logged time_allreduce_s + time_bn_sync_s (mean over
ranks; waiting for the slowest rank is time_wait_s, apart) over the wall time of a step.

Writes OUT/raw.jsonl (one line per run) and OUT/summary.md, and prints the summary.
  tools/bench/bench_train.py [--reps 3] [--only dcgan,mlp] [--out runs/bench_train]
  tools/bench/bench_train.py --summarize OUT/raw.jsonl      (tables from earlier raw lines)
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
ROOT = os.path.dirname(TOOLS)
sys.dont_write_bytecode = True  # no __pycache__ in tools/ from importing scaling.py
sys.path.insert(0, os.path.join(TOOLS, "study"))
import scaling  # noqa: E402  (read_metrics, from the scaling study)

PY = "/usr/bin/python3"
BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")

# (bench, variant) -> how it runs
MPIGAN = {
    ("dcgan", "mpigan np1"): (1, 1, {}),
    ("dcgan", "mpigan np2"): (2, 1, {}),
    ("dcgan", "mpigan np1-t2"): (1, 2, {}),
    ("mlp", "mpigan np1"): (1, 1, {}),
    ("mlp", "mpigan np2"): (2, 1, {}),
}
# np2 with Open MPI's waiting ranks yielding the core instead of polling (--all-variants):
# on a machine shared with other work a polling rank keeps its peer off the cores
YIELD = {"OMPI_MCA_mpi_yield_when_idle": "1"}
MPIGAN_ALT = {
    ("dcgan", "mpigan np2-yield"): (2, 1, YIELD),
    ("mlp", "mpigan np2-yield"): (2, 1, YIELD),
}
MPIGAN.update(MPIGAN_ALT)
# the oneDNN backend (train.backend: onednn), in fp32 and bf16 (train.precision), beside the
# BLAS one: with --all-variants or when named in --variants
MPIGAN_ONEDNN = {
    ("dcgan", "mpigan np1 onednn"): (1, 1, {}),
    ("dcgan", "mpigan np2 onednn"): (2, 1, {}),
    ("dcgan", "mpigan np1 onednn bf16"): (1, 1, {}),
    ("dcgan", "mpigan np2 onednn bf16"): (2, 1, {}),
    # waiting ranks poll instead of yielding (tools/mpirun.sh's default): dedicated cores
    ("dcgan", "mpigan np2 onednn poll"): (2, 1, {"OMPI_MCA_mpi_yield_when_idle": "0"}),
    ("dcgan", "mpigan np2 onednn bf16 poll"): (2, 1, {"OMPI_MCA_mpi_yield_when_idle": "0"}),
    ("mlp", "mpigan np1 onednn"): (1, 1, {}),
    ("mlp", "mpigan np2 onednn"): (2, 1, {}),
    # gradients averaged by one MPI_Allreduce (train.reduce: mpi) instead of through the
    # node's shared buffers (the default): the two paths side by side
    ("dcgan", "mpigan np2 onednn mpi-reduce"): (2, 1, {}),
    ("dcgan", "mpigan np2 onednn bf16 mpi-reduce"): (2, 1, {}),
    ("mlp", "mpigan np2 onednn mpi-reduce"): (2, 1, {}),
}
MPIGAN.update(MPIGAN_ONEDNN)
PEER = {
    ("dcgan", "torch t1"): ("peer_dcgan.py", ["--threads", "1"], {}),
    ("dcgan", "torch t2"): ("peer_dcgan.py", ["--threads", "2", "--blas-threads", "1"], {}),
    ("mlp", "torch t1"): ("peer_mlp2d.py", ["--threads", "1"], {}),
    ("mlp", "torch t2"): ("peer_mlp2d.py", ["--threads", "2"], {"OMP_WAIT_POLICY": "PASSIVE"}),
}
# the peer's other 2-thread settings (--peer-all-t2): "best 2-thread" is then the best of all
PEER_ALT = {
    ("dcgan", "torch t2-plain"): ("peer_dcgan.py", ["--threads", "2"], {}),
    ("dcgan", "torch t2-passive"): ("peer_dcgan.py", ["--threads", "2"], {"OMP_WAIT_POLICY": "PASSIVE"}),
    ("mlp", "torch t2-plain"): ("peer_mlp2d.py", ["--threads", "2"], {}),
    ("mlp", "torch t2-blas1"): ("peer_mlp2d.py", ["--threads", "2", "--blas-threads", "1"], {}),
}
PEER.update(PEER_ALT)
# the peer under bfloat16 autocast: beside the oneDNN bf16 variants (named in --variants, or
# --all-variants); never counted as the peer's best 2-thread (fp32) setting
PEER_BF16 = {
    ("dcgan", "torch t1 bf16"): ("peer_dcgan.py", ["--threads", "1", "--bf16"], {}),
    ("dcgan", "torch t2 bf16"): ("peer_dcgan.py", ["--threads", "2", "--blas-threads", "1", "--bf16"], {}),
}
PEER.update(PEER_BF16)
CONFIG = {"dcgan": "configs/fmnist_dcgan.yaml", "mlp": "configs/grid25.yaml"}
# what the MLP benchmark changes: the peer's G takes 2-D noise (grid25.yaml has 256)
EXTRA_SET = {"dcgan": ["train.g_step_noise=reuse"], "mlp": ["train.g_step_noise=reuse", "generator.input[0]=2"]}


def backend_sets(variant):
    """The config overrides a variant's name asks for: "... onednn" and "... onednn bf16";
    the other mpigan variants run the BLAS backend (named, since oneDNN is the default).
    "... mpi-reduce" averages the gradients by MPI_Allreduce (train.reduce: mpi)."""
    sets = ["train.reduce=mpi"] if variant.endswith(" mpi-reduce") else []
    if " onednn bf16" in variant:
        return sets + ["train.backend=onednn", "train.precision=bf16"]
    if " onednn" in variant:
        return sets + ["train.backend=onednn"]
    return sets + ["train.backend=blas"]


def die(msg):
    sys.stderr.write("bench_train: error: %s\n" % msg)
    sys.exit(1)


def env_for(setting, emulate, extra):
    env = dict(os.environ)
    for k in THREAD_VARS:
        env.pop(k, None)
    if setting == "unset":
        for k in BLAS_VARS:
            env.pop(k, None)
    else:
        env.update(emulate)
    env.update(extra)
    return env


def run_mpigan(a, bench, variant, setting, emulate, rep):
    np_, threads, extra = MPIGAN[(bench, variant)]
    tag = "%s-%s-%s-r%d" % (bench, variant.replace(" ", "_"), setting, rep)
    run_dir = os.path.join(a.out, "runs", tag)
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    steps, log = (a.dcgan_steps, a.dcgan_log) if bench == "dcgan" else (a.mlp_steps, a.mlp_log)
    backend = backend_sets(variant)
    sets = EXTRA_SET[bench] + backend + ["train.steps=%d" % steps, "train.log_interval=%d" % log, "train.threads=%d" % threads,
                               "train.sample_interval=0", "checkpoint.interval=0", "eval.interval=0", "run_dir=" + run_dir]
    prog = [os.path.abspath(a.mpigan), "train", CONFIG[bench]]
    for s in sets:
        prog += ["--set", s]
    cmd = prog if np_ == 1 else [os.path.join(TOOLS, "mpirun.sh"), str(np_)] + prog
    env = env_for(setting, emulate, extra)
    with open(os.path.join(run_dir, "log.txt"), "w") as f:
        f.write("# " + " ".join("%s=%s" % kv for kv in extra.items()) + " " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=a.timeout)
    if r.returncode != 0:
        die("%s failed (exit %d); see %s/log.txt" % (tag, r.returncode, run_dir))
    batch = 64 if bench == "dcgan" else 500
    m = scaling.read_metrics(run_dir, log, batch)
    if not m:
        die("%s: no measured log window in %s/metrics.jsonl" % (tag, run_dir))
    return {"images_per_s": m["images_per_s"], "iters_per_s": 1.0 / m["step_s"], "step_s": m["step_s"],
            "compute_s": m["compute_s"], "allreduce_s": m["allreduce_s"] + m["bn_sync_s"], "data_s": m["data_s"],
            "allreduce_share": (m["allreduce_s"] + m["bn_sync_s"]) / m["step_s"], "measured_steps": m["steps"],
            # the trainer's own getrusage peak (largest rank, mean over ranks)
            "peak_rss_mib": m["peak_rss_mb"], "peak_rss_mib_mean": m["peak_rss_mb_mean"], "np": np_, "threads": threads,
            "command": " ".join(["%s=%s" % kv for kv in extra.items()] + cmd)}


def run_peer(a, bench, variant, setting, emulate):
    script, args, extra = PEER[(bench, variant)]
    cmd = [PY, os.path.join(a.peer_dir, script), "--measure-seconds", str(a.peer_seconds)] + args
    r = subprocess.run(cmd, capture_output=True, text=True, env=env_for(setting, emulate, extra), timeout=a.timeout)
    if r.returncode != 0:
        die("%s failed (exit %d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()[-500:]))
    res = json.loads(r.stdout.strip().splitlines()[-1])
    out = {"iters_per_s": res["iters_per_s"], "peak_rss_mib": res["peak_rss_mib"], "corename": res["blas"].get(
        "corename"), "command": " ".join(("%s=%s" % kv for kv in extra.items())) + (" " if extra else "") + " ".join(cmd)}
    if bench == "dcgan":
        out["images_per_s"] = res["images_per_s"]
    return out


# ---------------------------------------------------------------- CPU-time rates

def cpu_seconds(cmd, env, cwd=None):
    """Runs cmd; returns the user + system CPU seconds it (and its children) used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        die("%s failed (exit %d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()[-500:]))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_cpu_rate(a, bench, variant, setting, emulate):
    """Single-thread runs at two lengths; the difference in CPU time over the difference
    in work is the rate one core gives, whatever else shares the machine (time-sharing
    does not add CPU time; cache sharing still can)."""
    short, long_ = (a.cpu_dcgan_steps if bench == "dcgan" else a.cpu_mlp_steps)
    batch = 64 if bench == "dcgan" else 500
    cpu = []
    for n in (short, long_):
        if variant.startswith("mpigan"):
            run_dir = os.path.join(a.out, "runs", "cpu-%s-%s-%s-%d" % (bench, variant.replace(" ", "_"), setting, n))
            shutil.rmtree(run_dir, ignore_errors=True)
            cmd = [os.path.abspath(a.mpigan), "train", CONFIG[bench]]
            backend = backend_sets(variant)
            for st in EXTRA_SET[bench] + backend + ["train.steps=%d" % n, "train.log_interval=%d" % n, "train.threads=1",
                                          "train.sample_interval=0", "checkpoint.interval=0", "eval.interval=0", "run_dir=" + run_dir]:
                cmd += ["--set", st]
            cpu.append(cpu_seconds(cmd, env_for(setting, emulate, {}), cwd=ROOT))
        else:
            script, args, extra = PEER[(bench, variant)]
            cmd = [PY, os.path.join(a.peer_dir, script), "--iters", str(n)] + args
            cpu.append(cpu_seconds(cmd, env_for(setting, emulate, extra)))
    per_iter = (cpu[1] - cpu[0]) / (long_ - short)
    return {"cpu_s_per_iter": per_iter, "iters_per_cpu_s": 1.0 / per_iter, "images_per_cpu_s": batch / per_iter,
            "iters": [short, long_], "cpu_s": cpu, "peak_rss_mib": None}


# ---------------------------------------------------------------- summary

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def summarize(rows):
    lines = []
    settings = [s for s in ("as_set", "unset") if any(r["setting"] == s for r in rows)]
    envs = {r["setting"]: r.get("env", {}) for r in rows}
    for bench, unit, key in (("dcgan", "images/s", "images_per_s"), ("mlp", "iterations/s", "iters_per_s")):
        rs = [r for r in rows if r["bench"] == bench and r.get("kind") != "cpu"]
        if not rs:
            continue
        title = "DCGAN-28, batch 64" if bench == "dcgan" else "MLP GAN on grid25, batch 500"
        lines.append("### %s: %s (median of %d interleaved runs)\n" % (title, unit, max(r["rep"] for r in rs) + 1))
        lines.append("| OpenBLAS setting | variant | %s (runs) | median | peak RSS MiB per rank (max) "
                     "| allreduce share of a step |" % unit)
        lines.append("|---|---|---|---:|---:|---:|")
        medians = {}
        for s in settings:
            variants = [v for (b, v) in list(MPIGAN) + list(PEER) if b == bench]
            for v in variants:
                got = [r for r in rs if r["setting"] == s and r["variant"] == v]
                if not got:
                    continue
                vals = [r[key] for r in got]
                m = med(vals)
                medians[(s, v)] = m
                share = med([r.get("allreduce_share") for r in got]) if "np2" in v else None
                lines.append("| %s | %s | %s | %s | %s | %s |" % (
                    s, v, ", ".join(fmt(x, ".1f" if bench == "mlp" else ".0f") for x in vals),
                    fmt(m, ".1f" if bench == "mlp" else ".0f"), fmt(med([r["peak_rss_mib"] for r in got]), ".0f"),
                    "-" if share is None else "%.1f%%" % (100 * share)))
        lines.append("")
        lines.append("| OpenBLAS setting | measure | value | target |")
        lines.append("|---|---|---:|---|")
        for s in settings:
            def ratio(x, y):
                mx, my = medians.get((s, x)), medians.get((s, y))
                return mx / my if mx and my else None
            t2 = [(m, v) for (ss, v), m in medians.items()
                  if ss == s and v.startswith("torch t2") and not v.endswith("bf16") and m]
            best_t2 = "-"
            if t2:
                medians[(s, "torch best-t2")], best_t2 = max(t2)
            n2s = [(m, v) for (ss, v), m in medians.items() if ss == s and v.startswith("mpigan np2") and m]
            best_n2 = "-"
            if n2s:
                medians[(s, "mpigan best-np2")], best_n2 = max(n2s)
            n1, n2 = medians.get((s, "mpigan np1")), medians.get((s, "mpigan best-np2"))
            eff = n2 / (2 * n1) if n1 and n2 else None

            def eff_of(v1, v2):
                m1, m2 = medians.get((s, v1)), medians.get((s, v2))
                return m2 / (2 * m1) if m1 and m2 else None
            rss = max([r["peak_rss_mib"] for r in rs if r["setting"] == s and r["variant"].startswith("mpigan")
                       and r["peak_rss_mib"]] or [0]) or None
            if bench == "dcgan":
                items = [("mpigan np1 / torch t1", ratio("mpigan np1", "torch t1"), "x", 1.3),
                         ("best mpigan np2 (%s) / best torch 2-thread (%s)" % (best_n2, best_t2),
                          ratio("mpigan best-np2", "torch best-t2"), "x", 1.6),
                         ("mpigan np2 / torch t2", ratio("mpigan np2", "torch t2"), "x", None),
                         ("mpigan np1-t2 / torch best 2-thread", ratio("mpigan np1-t2", "torch best-t2"), "x", None),
                         ("strong-scaling efficiency np1 -> best np2", eff, "%", 0.95),
                         ("largest mpigan rank's peak RSS (MiB)", rss, "MiB", 150),
                         ("mpigan np1 onednn / mpigan np1 (blas)", ratio("mpigan np1 onednn", "mpigan np1"), "x", None),
                         ("mpigan np2 onednn / mpigan np2 (blas)", ratio("mpigan np2 onednn", "mpigan np2"), "x", None),
                         ("mpigan np1 onednn bf16 / mpigan np1 (blas)", ratio("mpigan np1 onednn bf16", "mpigan np1"), "x",
                          None),
                         # the oneDNN backend's targets: fp32 and bf16 against the peer in fp32 and
                         # under bf16 autocast, np 2 bf16 against the peer's best 2-thread fp32
                         ("mpigan np1 onednn / torch t1", ratio("mpigan np1 onednn", "torch t1"), "x", 1.3),
                         ("mpigan np1 onednn bf16 / torch t1 bf16", ratio("mpigan np1 onednn bf16", "torch t1 bf16"),
                          "x", 1.3),
                         ("mpigan np1 onednn bf16 / torch t1", ratio("mpigan np1 onednn bf16", "torch t1"), "x", 1.7),
                         ("mpigan np2 onednn bf16 / best torch 2-thread fp32 (%s)" % best_t2,
                          ratio("mpigan np2 onednn bf16", "torch best-t2"), "x", 2.2),
                         ("efficiency np1 -> np2, onednn bf16", eff_of("mpigan np1 onednn bf16", "mpigan np2 onednn bf16"),
                          "%", 0.95),
                         ("efficiency np1 -> np2, onednn bf16, polling",
                          eff_of("mpigan np1 onednn bf16", "mpigan np2 onednn bf16 poll"), "%", 0.95),
                         ("efficiency np1 -> np2, onednn fp32", eff_of("mpigan np1 onednn", "mpigan np2 onednn"), "%",
                          None),
                         ("efficiency np1 -> np2, onednn fp32, polling",
                          eff_of("mpigan np1 onednn", "mpigan np2 onednn poll"), "%", None)]
            else:
                items = [("mpigan np1 / torch t1", ratio("mpigan np1", "torch t1"), "x", None),
                         ("best mpigan np2 (%s) / best torch 2-thread (%s)" % (best_n2, best_t2),
                          ratio("mpigan best-np2", "torch best-t2"), "x", 1.5),
                         ("mpigan np2 / torch t2", ratio("mpigan np2", "torch t2"), "x", None),
                         ("strong-scaling efficiency np1 -> best np2", eff, "%", None),
                         ("largest mpigan rank's peak RSS (MiB)", rss, "MiB", None)]
            for name, val, kind, target in items:
                if kind == "%":
                    v, t = fmt(None if val is None else 100 * val, ".1f") + "%", target and ">= %.0f%%" % (100 * target)
                    ok = val is not None and target and val >= target
                elif kind == "MiB":
                    v, t = fmt(val, ".0f"), target and "<= %d" % target
                    ok = val is not None and target and val <= target
                else:
                    v, t = fmt(val, ".2f") + "x", target and ">= %.1fx" % target
                    ok = val is not None and target and val >= target
                mark = "" if not target or val is None else (" (met)" if ok else " (**not met**)")
                lines.append("| %s | %s | %s | %s |" % (s, name, v, (t or "-") + mark))
        lines.append("")
    cpu = [r for r in rows if r.get("kind") == "cpu"]
    if cpu:
        lines.append("### One core, from CPU time (median of %d; robust to time-sharing)\n" % (max(r["rep"] for r in cpu) + 1))
        lines.append("| OpenBLAS setting | benchmark | variant | per CPU-second (runs) | median | mpigan / torch |")
        lines.append("|---|---|---|---|---:|---:|")
        for s in settings:
            for bench, key, unit in (("dcgan", "images_per_cpu_s", "images"), ("mlp", "iters_per_cpu_s", "iterations")):
                m = {}
                for v in ("mpigan np1", "mpigan np1 onednn", "mpigan np1 onednn bf16", "torch t1"):
                    got = [r[key] for r in cpu if r["setting"] == s and r["bench"] == bench and r["variant"] == v]
                    if got:
                        m[v] = med(got)
                        rat = ""
                        if v == "torch t1" and m.get("mpigan np1"):
                            rat = "%.2fx" % (m["mpigan np1"] / m[v])
                        elif v != "mpigan np1" and m.get("mpigan np1"):  # a oneDNN variant: against BLAS
                            rat = "%.2fx of BLAS" % (m[v] / m["mpigan np1"])
                        lines.append("| %s | %s | %s | %s | %s %s | %s |" % (
                            s, bench, v, ", ".join("%.1f" % x for x in got), fmt(m[v], ".1f"), unit, rat or "-"))
        lines.append("")
    for s in settings:
        e = envs.get(s) or {}
        lines.append("- %s: %s" % (s, ", ".join("%s=%s" % (k, e.get(k, "(unset)")) for k in BLAS_VARS)))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--summarize":
        rows = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
        print(summarize(rows), end="")
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--reps", type=int, default=3, help="runs per configuration (3)")
    p.add_argument("--only", default="dcgan,mlp", help="dcgan,mlp (both)")
    p.add_argument("--settings", default="as_set,unset", help="OpenBLAS settings: as_set,unset (both)")
    p.add_argument("--emulate", default="", help='as_set uses these instead: "OPENBLAS_CORETYPE=Haswell ..."')
    p.add_argument("--variants", default="", help="comma list of variants to run (default all)")
    p.add_argument("--out", default="runs/bench_train")
    p.add_argument("--mpigan", default="build/mpigan")
    p.add_argument("--peer-dir", default=None, help="the PyTorch peer (default ../shared/peer, /work/shared/peer)")
    p.add_argument("--no-peer", action="store_true", help="mpigan only")
    p.add_argument("--all-variants", action="store_true",
                   help="also the peer's other 2-thread settings and mpigan np2 with yielding ranks; "
                        "the best median of each side is its 2-core rate")
    p.add_argument("--peer-seconds", type=float, default=8.0, help="timed seconds per peer run (8)")
    p.add_argument("--dcgan-steps", type=int, default=120)
    p.add_argument("--dcgan-log", type=int, default=20, help="log interval; the first window is warm-up (20)")
    p.add_argument("--mlp-steps", type=int, default=300)
    p.add_argument("--mlp-log", type=int, default=50)
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--cpu-rate", action="store_true",
                   help="instead: the 1-thread variants' rates per CPU-second (two run lengths, differenced)")
    p.add_argument("--cpu-dcgan-steps", type=lambda t: tuple(int(x) for x in t.split(",")), default=(20, 60))
    p.add_argument("--cpu-mlp-steps", type=lambda t: tuple(int(x) for x in t.split(",")), default=(50, 250))
    a = p.parse_args()

    os.chdir(ROOT)
    a.out = os.path.abspath(a.out)
    if not os.access(a.mpigan, os.X_OK):
        die("%s not found: make %s" % (a.mpigan, a.mpigan))
    benches = [b for b in a.only.split(",") if b]
    for b in benches:
        if b not in CONFIG:
            die("unknown benchmark %s (dcgan, mlp)" % b)
    if "dcgan" in benches and not os.path.exists("data/fashion-mnist-train.h5"):
        die("data/fashion-mnist-train.h5 missing: build/mpigan data fmnist --out data/")
    if not a.no_peer:
        cands = [a.peer_dir] if a.peer_dir else [os.path.join(ROOT, "..", "shared", "peer"), "/work/shared/peer"]
        a.peer_dir = next((c for c in cands if c and os.path.exists(os.path.join(c, "peer_dcgan.py"))), None)
        if not a.peer_dir:
            die("the PyTorch peer is not in %s; give --peer-dir or --no-peer" % " or ".join(c for c in cands if c))
        if subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode != 0:
            die("%s cannot import torch: apt-get install python3-torch python3-numpy (or --no-peer)" % PY)
    emulate = dict(kv.split("=", 1) for kv in a.emulate.split())
    settings = [s for s in a.settings.split(",") if s]
    if "as_set" in settings and "unset" in settings and not emulate and not any(k in os.environ for k in BLAS_VARS):
        print("bench_train: neither %s is set here: as_set is the same as unset, run once" % "/".join(BLAS_VARS))
        settings.remove("as_set")
    want = set(v for v in a.variants.split(",") if v)
    jobs = []
    for s in settings:
        for b in benches:
            for (bb, v) in list(MPIGAN) + ([] if a.no_peer else list(PEER)):
                if ((bb, v) in PEER_ALT or (bb, v) in MPIGAN_ALT) and not a.all_variants:
                    continue
                if ((bb, v) in MPIGAN_ONEDNN or (bb, v) in PEER_BF16) and not (a.all_variants or v in want):
                    continue
                if a.cpu_rate and v not in ("mpigan np1", "mpigan np1 onednn", "mpigan np1 onednn bf16", "torch t1"):
                    continue
                if bb == b and (not want or v in want):
                    jobs.append((s, b, v))
    os.makedirs(a.out, exist_ok=True)
    rows, t0 = [], time.time()
    with open(os.path.join(a.out, "raw.jsonl"), "a") as raw:
        for rep in range(a.reps):
            for s, b, v in jobs:
                if a.cpu_rate:
                    res = run_cpu_rate(a, b, v, s, emulate)
                    res["kind"] = "cpu"
                else:
                    res = run_mpigan(a, b, v, s, emulate, rep) if v.startswith("mpigan") else run_peer(a, b, v, s, emulate)
                env = env_for(s, emulate, {})
                res.update({"bench": b, "variant": v, "setting": s, "rep": rep, "time": time.time(),
                            "env": {k: env.get(k, "(unset)") for k in BLAS_VARS},
                            "loadavg": os.getloadavg()[0]})
                rows.append(res)
                raw.write(json.dumps(res) + "\n")
                raw.flush()
                if a.cpu_rate:
                    rate, unit = (res["images_per_cpu_s"], "img/CPU-s") if b == "dcgan" else (res["iters_per_cpu_s"],
                                                                                             "it/CPU-s")
                else:
                    rate, unit = (res["images_per_s"], "img/s") if b == "dcgan" else (res["iters_per_s"], "it/s")
                print("[%6.0fs] rep %d %-6s %-5s %-14s %8.1f %s  RSS %s MiB" % (
                    time.time() - t0, rep, s, b, v, rate, unit,
                    fmt(res["peak_rss_mib"], ".0f")), flush=True)
    md = summarize(rows)
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write(md)
    print()
    print(md, end="")


if __name__ == "__main__":
    main()
