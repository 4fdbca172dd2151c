#!/bin/sh
# make bench: the core benchmark under both OpenBLAS settings. The environment's
# OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are used first, then both are unset in the
# benchmark's own command (OpenBLAS then picks its native kernels). Tests never unset them.
set -eu
build=${BUILD:-build}
echo "== DCGAN-28 core benchmark, environment as set"
"$build/tools/bench/bench_dcgan" configs/fmnist_dcgan.yaml 64
echo
echo "== DCGAN-28 core benchmark, oneDNN backend, fp32"
"$build/tools/bench/bench_dcgan" configs/fmnist_dcgan.yaml 64 onednn fp32
if "$build/mpigan" info 2>/dev/null | grep -q "bf16: yes"; then
    echo
    echo "== DCGAN-28 core benchmark, oneDNN backend, bf16 (the iteration against oneDNN's bf16 GEMM rate)"
    "$build/tools/bench/bench_dcgan" configs/fmnist_dcgan.yaml 64 onednn bf16
fi
echo
echo "== DCGAN-28 core benchmark, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$build/tools/bench/bench_dcgan" configs/fmnist_dcgan.yaml 64
# The other benchmarks, each as it needs to run: bench_allreduce under two ranks, with the
# messages of the default config; bench_eval with the feature extractor `make run` trains
# (EXTRACTOR overrides the path), skipped with a note when there is none.
extractor=${EXTRACTOR:-runs/classifier/classifier.h5}
for extra in "$build"/tools/bench/bench_*; do
    name=$(basename "$extra")
    case "$name" in bench_dcgan) continue ;; esac
    [ -x "$extra" ] || continue
    echo
    echo "== $name"
    case "$name" in
    bench_allreduce) tools/mpirun.sh 2 "$extra" --config configs/fmnist_dcgan.yaml --label shm --gap-ms 10 ;;
    bench_eval)
        if [ -f "$extractor" ]; then
            OPENBLAS_NUM_THREADS=1 "$extra" configs/fmnist_dcgan.yaml "$extractor"
        else
            echo "skipped: no feature extractor at $extractor (make run trains one; or set EXTRACTOR=FILE.h5)"
        fi ;;
    *) "$extra" ;;
    esac
done
