#!/bin/sh
# Time per step of configs/fmnist_dcgan.yaml without a penalty, with R1 at every D update
# (train.r1_gamma=10, r1_every=1) and with lazy R1 (every 16th D update): runs interleaved
# round-robin (REPS rounds; drift and other load hit all variants alike), each STEPS steps
# on NP ranks, logged every 25 steps; the first two windows (warm-up) are dropped and the median
# of the other windows' seconds per step is printed per variant (docs/benchmarks.md).
# Usage: tools/bench_penalty.sh [REPS] [STEPS] [NP]   (data/fashion-mnist-train.h5 needed)
set -eu
reps=${1:-3}; steps=${2:-200}; np=${3:-2}
out=$(mktemp -d /tmp/mpigan_bench_penalty_XXXXXX)
trap 'rm -rf "$out"' EXIT
variants="none r1 r1lazy"
for r in $(seq "$reps"); do
    for v in $variants; do
        case $v in
        none) extra="" ;;
        r1) extra="--set train.r1_gamma=10 --set train.r1_every=1" ;;
        r1lazy) extra="--set train.r1_gamma=10 --set train.r1_every=16" ;;
        esac
        # shellcheck disable=SC2086
        tools/mpirun.sh "$np" build/mpigan train configs/fmnist_dcgan.yaml --set train.steps="$steps" \
            --set train.log_interval=25 --set train.sample_interval=0 --set checkpoint.interval=0 \
            --set run_dir="$out/$v-$r" $extra >/dev/null
        # seconds per step of every window but the first
        python3 -c 'import json,sys
rows=[json.loads(l) for l in open(sys.argv[1]) if "\"eval\"" not in l]
for a,b in zip(rows[1:],rows[2:]): print(b["time_window_s"]/(b["step"]-a["step"]))' \
            "$out/$v-$r/metrics.jsonl" >>"$out/$v.txt"
    done
done
echo "configs/fmnist_dcgan.yaml, batch 64, np $np, $reps interleaved rounds of $steps steps: ms per step (median of 25-step windows)"
for v in $variants; do
    python3 -c 'import statistics,sys
x=[float(l) for l in open(sys.argv[1])]
print("%-8s %7.1f ms/step  (windows: %d, min %.1f, max %.1f)"%(sys.argv[2],1e3*statistics.median(x),len(x),1e3*min(x),1e3*max(x)))' "$out/$v.txt" "$v"
done
