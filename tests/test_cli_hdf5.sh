#!/bin/sh
# The command line on HDF5 data: `mpigan data mixture` writes a file that `mpigan data info`
# accepts, `mpigan train` trains on it under mpirun -np 2 (checkpoint with the loader state,
# metrics with the loader's numbers), `mpigan sample` draws from the result, and a missing
# data file ends every rank with a non-zero exit and a message naming the file.
set -u
build=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
mpirun="$here/../tools/mpirun.sh"
work=$(mktemp -d /tmp/mpigan_cli_hdf5.XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }

"$build/mpigan" data mixture ring --out "$work/ring.h5" --n 400 --seed 2 >"$work/log" 2>&1 || fail "data mixture"
"$build/mpigan" data info "$work/ring.h5" >>"$work/log" 2>&1 || fail "data info"
grep -q "x (400, 2) float32" "$work/log" || fail "data info does not describe the file"

sed "s|data: {source: ring8}|data: {path: $work/ring.h5, sampler: global}|" configs/tiny.yaml >"$work/tiny.yaml"
timeout 120 "$mpirun" 2 "$build/mpigan" train "$work/tiny.yaml" --set run_dir="$work/run" --set train.steps=10 \
    >>"$work/log" 2>&1 || fail "train on HDF5 data"
grep -q '"data_read_s"' "$work/run/metrics.jsonl" 2>/dev/null || fail "no loader numbers in metrics.jsonl"
h5dump -A -d /loader/state "$work/run/checkpoints/ckpt_000000010.h5" 2>/dev/null | grep -q '"global"' \
    || fail "checkpoint lacks /loader/state with its sampler"
"$build/mpigan" sample --checkpoint "$work/run/checkpoints/ckpt_000000010.h5" -n 16 -o "$work/s.h5" \
    >>"$work/log" 2>&1 || fail "sample"

sed "s|data: {source: ring8}|data: {path: $work/missing.h5}|" configs/tiny.yaml >"$work/missing.yaml"
timeout 60 "$mpirun" 2 "$build/mpigan" train "$work/missing.yaml" --set run_dir="$work/run2" >"$work/err" 2>&1
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "missing data file: exit $rc"
grep -q "missing.h5" "$work/err" || fail "missing data file: the message does not name it"

[ "$status" -eq 0 ] && echo "ok: data, train, sample on HDF5 under mpirun; missing file fails with exit $rc"
[ "$status" -eq 0 ] || cat "$work/log" "$work/err"
exit "$status"
