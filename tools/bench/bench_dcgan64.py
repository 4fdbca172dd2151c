#!/usr/bin/python3
"""DCGAN-64 training throughput, mpigan beside its PyTorch peer (docs/benchmarks.md).

mpigan trains configs/shapes_dcgan64.yaml at np 1 with one thread (the default backend,
oneDNN; --blas adds "mpigan np1 blas"); the peer (tools/bench/peer_dcgan64.py, the same
networks and hyper-parameters) runs on one thread. --np2 adds mpigan on two ranks and the
peer on two threads.
Both read the same data file: OUT/data/rgb64.h5, 256 random 3x64x64 images written as PNGs
and converted with `mpigan data png` (the content does not change the work per image).
The runs alternate (mpigan, peer, mpigan, ...) --reps times, so that other load on a
shared machine hits both alike; the summary gives medians and their ratio.

mpigan's rate comes from its metrics.jsonl: images/s over the log windows after the first
(start-up) one. The peer runs --peer-warmup iterations, then one window of
--peer-seconds. --bf16 adds mpigan in bf16 (train.precision: bf16) and the peer under
bfloat16 autocast.

  tools/bench/bench_dcgan64.py [--reps 3] [--steps 9] [--log 3] [--np2] [--blas] [--bf16]
                               [--out runs/bench_dcgan64]
Writes OUT/raw.jsonl (one line per run) and OUT/summary.md, and prints the summary.
"""
import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
ROOT = os.path.dirname(TOOLS)
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(TOOLS, "study"))
import scaling  # noqa: E402  (read_metrics: the trainer's steady-window rates)

PY = "/usr/bin/python3"
CONFIG = "configs/shapes_dcgan64.yaml"
BATCH = 64


def die(msg):
    sys.stderr.write("bench_dcgan64: error: %s\n" % msg)
    sys.exit(1)


def write_rgb_png(path, rows, width, height):
    """rows: height byte strings of width*3 RGB bytes; colour type 2, 8 bits."""
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + r for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def make_data(a):
    path = os.path.join(a.out, "data", "rgb64.h5")
    if os.path.exists(path):
        return path
    pngs = os.path.join(a.out, "data", "png")
    os.makedirs(pngs, exist_ok=True)
    for i in range(256):
        rows = [os.urandom(64 * 3) for _ in range(64)]
        write_rgb_png(os.path.join(pngs, "%04d.png" % i), rows, 64, 64)
    r = subprocess.run([a.mpigan, "data", "png", "--in", pngs, "--out", path], capture_output=True, text=True)
    if r.returncode != 0:
        die("mpigan data png failed: %s" % r.stderr.strip()[-400:])
    shutil.rmtree(pngs)
    return path


def env_one_thread():
    env = dict(os.environ)
    for k in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS"):
        env.pop(k, None)
    return env


def run_mpigan(a, data, rep, variant):
    """variant: "mpigan np1", "mpigan np2", "mpigan np1 blas", "mpigan np1 bf16", "mpigan np2 bf16" """
    np = 2 if "np2" in variant else 1
    run_dir = os.path.join(a.out, "runs", "%s-r%d" % (variant.replace(" ", "-"), rep))
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    sets = ["data.path=" + data, "train.steps=%d" % a.steps, "train.log_interval=%d" % a.log, "train.threads=1",
            "train.sample_interval=0", "checkpoint.interval=0", "eval.interval=0", "run_dir=" + run_dir,
            "train.r1_gamma=0"]  # the peer has no R1 penalty: the same work per step
    if variant.endswith(" blas"):
        sets.append("train.backend=blas")
    if variant.endswith(" bf16"):
        sets.append("train.precision=bf16")
    cmd = ([os.path.join(ROOT, "tools", "mpirun.sh"), "2"] if np == 2 else []) + [os.path.abspath(a.mpigan), "train",
                                                                                  CONFIG]
    for s in sets:
        cmd += ["--set", s]
    with open(os.path.join(run_dir, "log.txt"), "w") as f:
        f.write("# " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env_one_thread(), cwd=ROOT)
    if r.returncode != 0:
        die("mpigan failed (exit %d); see %s/log.txt" % (r.returncode, run_dir))
    m = scaling.read_metrics(run_dir, a.log, BATCH)
    if not m:
        die("no measured log window in %s/metrics.jsonl" % run_dir)
    return {"images_per_s": m["images_per_s"], "step_s": m["step_s"], "compute_s": m["compute_s"],
            "data_s": m["data_s"], "measured_steps": m["steps"], "peak_rss_mib": m["peak_rss_mb"],
            "command": " ".join(cmd)}


def run_peer(a, data, bf16, threads):
    cmd = [PY, os.path.join(HERE, "peer_dcgan64.py"), "--threads", str(threads), "--data", data, "--reps", "1",
           "--warmup", str(a.peer_warmup), "--measure-seconds", str(a.peer_seconds)] + (["--bf16"] if bf16 else [])
    r = subprocess.run(cmd, capture_output=True, text=True, env=env_one_thread())
    if r.returncode != 0:
        die("%s failed (exit %d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()[-400:]))
    res = json.loads(r.stdout.strip().splitlines()[-1])
    return {"images_per_s": res["images_per_s"], "peak_rss_mib": res["peak_rss_mib"], "command": " ".join(cmd)}


def summarize(rows, load):
    by = {}
    for r in rows:
        by.setdefault(r["variant"], []).append(r["images_per_s"])
    med = {k: statistics.median(v) for k, v in by.items()}
    md = ["# DCGAN-64 (configs/shapes_dcgan64.yaml, batch 64): mpigan beside the PyTorch peer", "",
          "Runs alternate; medians of %d repetitions. Load average at the start / end: %s." % (
              max(len(v) for v in by.values()), load), "",
          "| variant | images/s (median) | repetitions |", "|---|---:|---|"]
    for k in by:
        md.append("| %s | %.2f | %s |" % (k, med[k], ", ".join("%.2f" % x for x in by[k])))
    if "mpigan np1" in med and "torch t1" in med:
        md += ["", "mpigan np 1 / torch 1 thread: %.2f" % (med["mpigan np1"] / med["torch t1"])]
    if "mpigan np1" in med and "torch t1 bf16" in med:
        md += ["mpigan np 1 / torch 1 thread bf16: %.2f" % (med["mpigan np1"] / med["torch t1 bf16"])]
    if "mpigan np1 bf16" in med and "torch t1 bf16" in med:
        md += ["mpigan np 1 bf16 / torch 1 thread bf16: %.2f" % (med["mpigan np1 bf16"] / med["torch t1 bf16"])]
    if "mpigan np2 bf16" in med and "torch t2" in med:
        md += ["mpigan np 2 bf16 / torch 2 threads: %.2f" % (med["mpigan np2 bf16"] / med["torch t2"])]
    if "mpigan np2" in med and "torch t2" in med:
        md += ["mpigan np 2 / torch 2 threads: %.2f" % (med["mpigan np2"] / med["torch t2"])]
    if "mpigan np2" in med and "mpigan np1" in med:
        md += ["mpigan np 1 -> 2 efficiency: %.0f%%" % (100 * med["mpigan np2"] / (2 * med["mpigan np1"]))]
    if "mpigan np1 blas" in med and "mpigan np1" in med:
        md += ["mpigan np 1, oneDNN / BLAS backend: %.2f" % (med["mpigan np1"] / med["mpigan np1 blas"])]
    return "\n".join(md) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mpigan", default=os.path.join(ROOT, "build", "mpigan"))
    p.add_argument("--out", default=os.path.join(ROOT, "runs", "bench_dcgan64"))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=9, help="mpigan steps per run (the first log window is dropped)")
    p.add_argument("--log", type=int, default=3, help="mpigan log interval")
    p.add_argument("--peer-seconds", type=float, default=30.0)
    p.add_argument("--peer-warmup", type=int, default=3)
    p.add_argument("--bf16", action="store_true", help="also mpigan in bf16 and the peer under bfloat16 autocast")
    p.add_argument("--np2", action="store_true", help="also mpigan on 2 ranks and the peer on 2 threads")
    p.add_argument("--blas", action="store_true", help="also mpigan np 1 on the BLAS backend")
    a = p.parse_args()
    if a.steps < 2 * a.log:
        die("--steps must be at least twice --log (the first window is dropped)")
    os.makedirs(a.out, exist_ok=True)
    data = make_data(a)
    load0 = os.getloadavg()[0]
    rows = []
    raw = open(os.path.join(a.out, "raw.jsonl"), "w")
    variants = (["mpigan np1"] + (["mpigan np1 blas"] if a.blas else []) + (["mpigan np2"] if a.np2 else [])
                + (["mpigan np1 bf16"] if a.bf16 else []) + (["mpigan np2 bf16"] if a.bf16 and a.np2 else [])
                + ["torch t1"] + (["torch t1 bf16"] if a.bf16 else []) + (["torch t2"] if a.np2 else []))
    for rep in range(a.reps):
        for v in variants:
            t0 = time.time()
            res = (run_mpigan(a, data, rep, v) if v.startswith("mpigan")
                   else run_peer(a, data, v.endswith("bf16"), 2 if "t2" in v else 1))
            res.update({"variant": v, "rep": rep, "wall_s": round(time.time() - t0, 1),
                        "loadavg_1min": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M:%S")})
            rows.append(res)
            raw.write(json.dumps(res) + "\n")
            raw.flush()
            print("rep %d %-14s %7.2f images/s (%.0f s)" % (rep + 1, v, res["images_per_s"], res["wall_s"]), flush=True)
    raw.close()
    text = summarize(rows, "%.1f / %.1f" % (load0, os.getloadavg()[0]))
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
