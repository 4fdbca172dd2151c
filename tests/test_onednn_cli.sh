#!/bin/sh
# Bad input around the oneDNN backend, end to end on `mpigan train`, alone and under
# mpirun -np 2 (every rank ends, none hangs): an unknown train.backend or train.precision
# names the key and the value; precision bf16 on the BLAS backend says to choose onednn;
# bf16 on a CPU without bfloat16 instructions (simulated with ONEDNN_MAX_CPU_ISA=AVX512_CORE,
# which caps what oneDNN may use) says so and names fp32, instead of an illegal instruction.
# Each fails with a non-zero exit before training starts (no checkpoint written).
set -u
build=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
mpigan=$(cd "$build" && pwd)/mpigan
mpirun="$root/tools/mpirun.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/mpigan_onednn_cli_XXXXXX")
status=0
fail() { echo "FAIL: $*"; status=1; }

# expect_config_error WHAT PATTERN NP [VAR=VALUE] -- SETS...: exit non-zero within 60 s,
# PATTERN in the output, no checkpoint
expect_config_error() {
    what=$1 pattern=$2 np=$3
    shift 3
    envs=""
    while [ "$1" != "--" ]; do envs="$envs $1"; shift; done
    shift
    sets=""
    for s in "$@"; do sets="$sets --set $s"; done
    rm -rf "$work/run"
    # shellcheck disable=SC2086
    if [ "$np" -eq 1 ]; then
        env $envs timeout 60 "$mpigan" train "$root/configs/tiny.yaml" --set run_dir="$work/run" $sets \
            >"$work/out" 2>&1
    else
        env $envs timeout 60 "$mpirun" "$np" "$mpigan" train "$root/configs/tiny.yaml" --set run_dir="$work/run" \
            $sets >"$work/out" 2>&1
    fi
    rc=$?
    [ "$rc" -ne 0 ] || fail "$what (np $np): exit 0"
    [ "$rc" -ne 124 ] || fail "$what (np $np): still running after 60 s"
    grep -qF -- "$pattern" "$work/out" || { fail "$what (np $np): output lacks \"$pattern\""; cat "$work/out"; }
    [ ! -d "$work/run/checkpoints" ] || [ -z "$(ls "$work/run/checkpoints")" ] || fail "$what: wrote a checkpoint"
}

for np in 1 2; do
    expect_config_error "unknown backend" "(train.backend): unknown value 'mkl'" $np -- train.backend=mkl
    expect_config_error "unknown precision" "(train.precision): unknown value 'fp16'" $np -- \
        train.backend=onednn train.precision=fp16
    expect_config_error "bf16 on BLAS" "precision bf16 runs on the oneDNN backend only" $np -- \
        train.backend=blas train.precision=bf16
    expect_config_error "bf16 without bf16 instructions" "this CPU has no bfloat16 instructions" $np \
        ONEDNN_MAX_CPU_ISA=AVX512_CORE -- train.backend=onednn train.precision=bf16
done
grep -qF "set train.precision: fp32" "$work/out" || fail "the refusal of bf16 does not name fp32"

# the good case: both precisions train on oneDNN
"$mpigan" train "$root/configs/tiny.yaml" --set run_dir="$work/ok" --set train.steps=3 --set train.backend=onednn \
    --set train.precision=bf16 >"$work/out" 2>&1 || { fail "bf16 training on oneDNN"; cat "$work/out"; }
grep -q "precision: bf16" "$work/ok/config.yaml" 2>/dev/null || fail "resolved config lacks precision: bf16"

rm -rf "$work"
[ "$status" -eq 0 ] && echo "test_onednn_cli: ok"
exit "$status"
