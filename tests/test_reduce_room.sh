#!/bin/sh
# The node-shared gradient reduction (train.reduce: node) when /dev/shm has no room for its
# window: in a private mount namespace /dev/shm becomes a 1 MiB tmpfs, and the tiny config
# trained at np 2 must say that it falls back to MPI_Allreduce and end with bitwise the
# parameters of the same run with the window. Needs root (mount namespace); otherwise
# skipped (exit 77, tests/run.sh).
set -u
build=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
mpigan="$root/$build/mpigan"

if [ "$(id -u)" -ne 0 ] || ! unshare -m true 2>/dev/null; then
    echo "SKIP: needs root and mount namespaces (unshare -m) to shrink /dev/shm"
    exit 77
fi
command -v h5diff >/dev/null 2>&1 || { echo "FAIL: h5diff not found"; exit 1; }
[ -x "$mpigan" ] || { echo "FAIL: $mpigan not built"; exit 1; }
dir=$(mktemp -d /tmp/mpigan_reduce_room.XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM

train() { # run_dir
    OPENBLAS_NUM_THREADS=1 timeout 120 "$root/tools/mpirun.sh" 2 "$mpigan" train "$root/configs/tiny.yaml" \
        --set run_dir="$1" --set train.steps=20
}
if ! train "$dir/window" >"$dir/window.log" 2>&1; then
    echo "FAIL: the run with the shared window failed:"; cat "$dir/window.log"; exit 1
fi
# shellcheck disable=SC2016
if ! unshare -m sh -c 'mount -t tmpfs -o size=1m tmpfs /dev/shm && "$@"' sh \
        env OPENBLAS_NUM_THREADS=1 timeout 120 "$root/tools/mpirun.sh" 2 "$mpigan" train "$root/configs/tiny.yaml" \
        --set run_dir="$dir/small" --set train.steps=20 >"$dir/small.log" 2>&1; then
    echo "FAIL: the run with a 1 MiB /dev/shm failed:"; cat "$dir/small.log"; exit 1
fi
status=0
grep -q "do not fit in /dev/shm.*averaging by MPI_Allreduce" "$dir/small.log" ||
    { echo "FAIL: no note of the fallback:"; cat "$dir/small.log"; status=1; }
grep -q "do not fit in /dev/shm" "$dir/window.log" &&
    { echo "FAIL: the run with room fell back too:"; cat "$dir/window.log"; status=1; }
a="$dir/window/checkpoints/$(cat "$dir/window/checkpoints/latest" 2>/dev/null)"
b="$dir/small/checkpoints/$(cat "$dir/small/checkpoints/latest" 2>/dev/null)"
[ -f "$a" ] && [ -f "$b" ] || { echo "FAIL: a checkpoint is missing ($a, $b)"; exit 1; }
for d in G/param D/param G/state D/state; do
    h5diff -q "$a" "$b" "$d" "$d" >/dev/null 2>&1 || { echo "FAIL: $d differs between the two runs"; status=1; }
done
[ "$status" -eq 0 ] && echo "ok: without room in /dev/shm the reduction falls back to MPI_Allreduce, bitwise alike"
exit "$status"
