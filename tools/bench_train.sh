#!/bin/sh
# make bench-train: mpigan's training throughput beside the PyTorch peer (../shared/peer),
# see tools/bench_train.py and docs/benchmarks.md. Prepares Fashion-MNIST as HDF5 when
# missing, then runs the benchmark; arguments go to tools/bench_train.py (--reps, --only,
# --emulate, --no-peer, --out ...). Results: runs/bench_train/summary.md and raw.jsonl.
set -eu
build=${BUILD:-build}
if ! "$build/mpigan" data info data/fashion-mnist-train.h5 >/dev/null 2>&1; then
    "$build/mpigan" data fmnist --out data
fi
exec /usr/bin/python3 tools/bench_train.py --mpigan "$build/mpigan" "$@"
