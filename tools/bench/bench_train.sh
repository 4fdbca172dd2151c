#!/bin/sh
# make bench-train: mpigan's training throughput beside the PyTorch peer (../shared/peer),
# see tools/bench/bench_train.py and docs/benchmarks.md. Prepares Fashion-MNIST as HDF5 when
# missing, runs the wall-clock benchmark, then the one-core rates from CPU time
# (--cpu-rate, robust to other work on the machine). Arguments go to both passes
# (--reps, --only, --emulate, --no-peer, ...). Results: runs/bench_train/summary.md and
# runs/bench_train/cpu/summary.md, each beside its raw.jsonl.
set -eu
build=${BUILD:-build}
if ! "$build/mpigan" data info data/fashion-mnist-train.h5 >/dev/null 2>&1; then
    "$build/mpigan" data fmnist --out data
fi
/usr/bin/python3 tools/bench/bench_train.py --mpigan "$build/mpigan" --out runs/bench_train "$@"
echo
exec /usr/bin/python3 tools/bench/bench_train.py --mpigan "$build/mpigan" --out runs/bench_train/cpu "$@" --cpu-rate
