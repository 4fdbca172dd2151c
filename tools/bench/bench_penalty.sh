#!/bin/sh
# Time per training step (n_critic 1: one D update and one G update) of
# configs/fmnist_dcgan.yaml without a gradient penalty and with each penalty:
#   none     the config as it is
#   r1       R1 at every D update (train.r1_gamma=10, r1_every=1)
#   r1lazy   lazy R1, every 16th D update (r1_every=16)
#   r2       R2 on fakes at every D update (train.r2_gamma=10)
#   wgan     loss: wasserstein with clipping at 0.01 (the GP variant's loss, no penalty)
#   gp       WGAN-GP (loss: wasserstein, gp_lambda=10, clip 0)
# Runs are interleaved round-robin (REPS rounds), so drift and other load on the machine
# hit every variant alike; each run takes STEPS steps on NP ranks, logged every 25 steps.
# The first two windows (warm-up) are dropped; printed per variant: the median, min and
# max of the other windows' milliseconds per step, and the median over the ratio to "none"
# of the same round. The load average is printed after each round.
# With MODE=cpu instead: CPU seconds (user + system, from getrusage of the finished run) per
# step of one process with one OpenBLAS thread, from runs of 20 and 20 + STEPS steps (their
# difference drops start-up), REPS interleaved rounds, median per variant. CPU time barely
# depends on what else the machine runs, so this is the measure to trust on a busy host.
# Usage: tools/bench/bench_penalty.sh [REPS] [STEPS] [NP]
# Environment: MPIGAN (binary, build/mpigan), DATA (data/fashion-mnist-train.h5),
# VARIANTS (the list above), OUT (keep the runs and per-window numbers there), MODE.
set -eu
reps=${1:-3}; steps=${2:-200}; np=${3:-2}
bin=${MPIGAN:-build/mpigan}
data=${DATA:-data/fashion-mnist-train.h5}
variants=${VARIANTS:-none r1 r1lazy r2 wgan gp}
[ -r "$data" ] || { echo "bench_penalty: no $data (build/mpigan data fmnist --out data/)" >&2; exit 1; }
if [ -n "${OUT:-}" ]; then out=$OUT; mkdir -p "$out"; else
    out=$(mktemp -d /tmp/mpigan_bench_penalty_XXXXXX); trap 'rm -rf "$out"' EXIT; fi
# cpu_seconds STEPS RUN_DIR EXTRA...: CPU seconds of one single-process run
cpu_seconds() {
    n=$1 dir=$2
    shift 2
    python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.ru_utime + r.ru_stime)' "$bin" train configs/fmnist_dcgan.yaml --set train.steps="$n" --set train.threads=1 \
        --set train.log_interval=1000 --set train.sample_interval=0 --set checkpoint.interval=0 \
        --set data.path="$data" --set run_dir="$dir" "$@"
}
mode=${MODE:-wall}
for r in $(seq "$reps"); do
    for v in $variants; do
        case $v in
        none) extra="" ;;
        r1) extra="--set train.r1_gamma=10 --set train.r1_every=1" ;;
        r1lazy) extra="--set train.r1_gamma=10 --set train.r1_every=16" ;;
        r2) extra="--set train.r2_gamma=10" ;;
        wgan) extra="--set train.loss=wasserstein --set train.clip=0.01" ;;
        gp) extra="--set train.loss=wasserstein --set train.gp_lambda=10 --set train.clip=0" ;;
        *) echo "bench_penalty: unknown variant $v" >&2; exit 1 ;;
        esac
        rm -rf "$out/$v-$r"
        if [ "$mode" = cpu ]; then
            # shellcheck disable=SC2086
            short=$(cpu_seconds 20 "$out/$v-$r-short" $extra)
            # shellcheck disable=SC2086
            long=$(cpu_seconds $((20 + steps)) "$out/$v-$r" $extra)
            python3 -c 'import sys; print(sys.argv[1], (float(sys.argv[3]) - float(sys.argv[2])) / int(sys.argv[4]))' \
                "$r" "$short" "$long" "$steps" >>"$out/$v.txt"
            continue
        fi
        # shellcheck disable=SC2086
        tools/mpirun.sh "$np" "$bin" train configs/fmnist_dcgan.yaml --set train.steps="$steps" \
            --set train.log_interval=25 --set train.sample_interval=0 --set checkpoint.interval=0 \
            --set data.path="$data" --set run_dir="$out/$v-$r" $extra >/dev/null
        # seconds per step of every window but the first two
        python3 -c 'import json,sys
rows=[json.loads(l) for l in open(sys.argv[1]) if "\"eval\"" not in l]
for a,b in zip(rows[1:],rows[2:]): print(sys.argv[2], b["time_window_s"]/(b["step"]-a["step"]))' \
            "$out/$v-$r/metrics.jsonl" "$r" >>"$out/$v.txt"
    done
    echo "round $r done; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
done
if [ "$mode" = cpu ]; then
    echo "configs/fmnist_dcgan.yaml, batch 64, one process, one thread, $reps interleaved rounds:"
    echo "CPU ms per step (runs of 20 + $steps steps minus runs of 20)"
else
    echo "configs/fmnist_dcgan.yaml, batch 64, np $np, $reps interleaved rounds of $steps steps:"
    echo "ms per step (median of 25-step windows, the first two of each run dropped)"
fi
python3 - "$out" "$mode" $variants <<'PY'
import statistics, sys
out, mode, variants = sys.argv[1], sys.argv[2], sys.argv[3:]
def load(v):
    rows = [l.split() for l in open(f"{out}/{v}.txt")]
    return [(int(r), float(s)) for r, s in rows]
base = {}
for r, s in load(variants[0]) if variants[0] == "none" else []:
    base.setdefault(r, []).append(s)
count = "runs" if mode == "cpu" else "windows"
print(f"{'variant':8s} {'median':>8s} {'min':>8s} {'max':>8s} {count:>7s}  vs none (median of per-round ratios)")
for v in variants:
    x = load(v)
    ms = [1e3 * s for _, s in x]
    per_round = {}
    for r, s in x:
        per_round.setdefault(r, []).append(s)
    ratios = [statistics.median(per_round[r]) / statistics.median(base[r]) for r in per_round if r in base]
    ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
    print(f"{v:8s} {statistics.median(ms):8.1f} {min(ms):8.1f} {max(ms):8.1f} {len(ms):7d}  {ratio}")
PY
