#!/bin/sh
# `mpigan sample` of a class-conditional generator on the command line: a tiny
# conditional GAN (configs/tiny.yaml with classes on ring8's modes) trains a few steps;
# `sample --class 3 -o F.h5` writes `labels` (all 3) and the class count beside the
# samples; without --class the labels are one class per row (64 samples: row r = class r);
# an unconditional generator's file has no labels; --class 8 of 8 classes, alone and under
# mpirun -np 2, exits non-zero (no rank left waiting) naming the value and the class count.
set -u
build=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
mpirun="$here/../tools/mpirun.sh"
work=$(mktemp -d /tmp/mpigan_cli_cond_XXXXXX)
status=0
fail() { echo "FAIL: $*"; status=1; }

# values FILE -d DATASET | -a ATTRIBUTE: its values, one per line
values() { f=$1; shift; h5dump "$@" "$f" 2>/dev/null | sed -n '/DATA {/,/}/p' | sed '1d;$d' | tr -d ' ' | sed 's/^([0-9,]*)://' \
    | tr ',' '\n' | sed '/^$/d'; }

"$build/mpigan" train configs/tiny.yaml --set run_dir="$work/run" --set train.steps=4 \
    --set generator.classes=8 --set generator.condition.kind=concat --set generator.condition.dim=3 \
    --set generator.layers[1].conditional=true --set discriminator.classes=8 \
    --set discriminator.layers[2].conditional=true >"$work/log" 2>&1 || fail "train the conditional tiny GAN"
ckpt="$work/run/checkpoints/ckpt_000000004.h5"

"$build/mpigan" sample --checkpoint "$ckpt" --class 3 -n 10 -o "$work/c3.h5" >>"$work/log" 2>&1 \
    || fail "sample --class 3"
[ "$(values "$work/c3.h5" -d /labels | sort -u)" = 3 ] || fail "sample --class 3: labels are not all 3"
[ "$(values "$work/c3.h5" -d /labels | wc -l)" -eq 10 ] || fail "sample --class 3 -n 10: not 10 labels"
[ "$(values "$work/c3.h5" -a /classes)" = 8 ] || fail "sample --class 3: no classes attribute of 8"

"$build/mpigan" sample --checkpoint "$ckpt" -o "$work/rows.h5" >>"$work/log" 2>&1 || fail "sample, one class per row"
expected=$(python3 -c 'print("\n".join(str(i // 8) for i in range(64)))')
[ "$(values "$work/rows.h5" -d /labels)" = "$expected" ] || fail "sample without --class: labels not one class per row"

"$build/mpigan" train configs/tiny.yaml --set run_dir="$work/plain" --set train.steps=2 >>"$work/log" 2>&1 \
    || fail "train the unconditional tiny GAN"
"$build/mpigan" sample --checkpoint "$work/plain/checkpoints/ckpt_000000002.h5" -n 4 -o "$work/plain.h5" \
    >>"$work/log" 2>&1 || fail "sample, unconditional"
h5dump -H "$work/plain.h5" 2>/dev/null | grep -q labels && fail "an unconditional generator's samples have labels"

for np in 1 2; do
    timeout 60 "$mpirun" "$np" "$build/mpigan" sample --checkpoint "$ckpt" --class 8 -o "$work/bad.h5" \
        >"$work/err" 2>&1
    rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "--class 8 of 8 classes at np $np: exit $rc"
    grep -q -- "--class 8" "$work/err" && grep -q "8 classes" "$work/err" \
        || { fail "--class 8 at np $np: the message does not name the value and the class count"; cat "$work/err"; }
    [ -e "$work/bad.h5" ] && fail "--class 8 at np $np wrote a file"
done

[ "$status" -eq 0 ] && echo "ok: sample --class writes labels; a class out of range fails (exit $rc) naming it"
[ "$status" -eq 0 ] || cat "$work/log"
rm -rf "$work"
exit "$status"
