#!/bin/sh
# make bench: the core benchmark under both OpenBLAS settings. The environment's
# OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are used first, then both are unset in the
# benchmark's own command (OpenBLAS then picks its native kernels). Tests never unset them.
set -eu
build=${BUILD:-build}
echo "== DCGAN-28 core benchmark, environment as set"
"$build/tools/bench_dcgan" configs/fmnist_dcgan.yaml 64
echo
echo "== DCGAN-28 core benchmark, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$build/tools/bench_dcgan" configs/fmnist_dcgan.yaml 64
for extra in "$build"/tools/bench_*; do
    case "$extra" in */bench_dcgan) continue ;; esac
    [ -x "$extra" ] || continue
    echo
    echo "== $(basename "$extra")"
    "$extra"
done
