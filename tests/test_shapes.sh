#!/bin/sh
# `mpigan data shapes` end to end: the files written on 1 and 2 ranks are the same, byte
# for byte; the test file holds N/6 items; `data info` lists the factors; and bad input
# (--n 0, negative, not a number; an --out that cannot be a folder) ends every rank with a
# message naming the option or the folder, a non-zero exit and no file left behind. The
# renderer, its determinism and the seeds: test_shapes.c.
set -u
build=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
mpirun="$here/../tools/mpirun.sh"
mpigan="$build/mpigan"
work=$(mktemp -d "${TMPDIR:-/tmp}/mpigan_shapes_XXXXXX")
trap 'rm -rf "$work"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }

"$mpigan" data shapes --n 600 --out "$work/one" --seed 3 --grid "$work/grid.png" >"$work/log" 2>&1 \
    || { cat "$work/log"; fail "data shapes on one rank"; }
timeout 120 "$mpirun" 2 "$mpigan" data shapes --n 600 --out "$work/two" --seed 3 >>"$work/log" 2>&1 \
    || { cat "$work/log"; fail "data shapes on two ranks"; }
for f in shapes-train.h5 shapes-test.h5; do
    [ -f "$work/one/$f" ] || fail "no $f"
    cmp "$work/one/$f" "$work/two/$f" >>"$work/log" 2>&1 || fail "$f differs between 1 and 2 ranks"
done
[ -s "$work/grid.png" ] || fail "no PNG grid"

"$mpigan" data info "$work/one/shapes-train.h5" >"$work/info" 2>&1 || fail "data info"
grep -q "images (600, 3, 64, 64) uint8 + labels + 7 factors" "$work/info" || fail "data info: no shape line"
grep -q "factors      7: shape (4), colour (8), scale (6), rotation (8), x (8), y (8), background (4); 393216 combinations" \
    "$work/info" || { cat "$work/info"; fail "data info does not list the factors"; }
grep -q "classes      0=square, 1=ellipse, 2=heart, 3=triangle" "$work/info" || fail "data info: no class names"
"$mpigan" data info "$work/one/shapes-test.h5" 2>&1 | grep -q "images (100, 3, 64, 64)" || fail "test file is not N/6"

# bad input: every rank exits non-zero with a message naming what is wrong (two ranks for
# one usage error and one failure after parsing; one rank for the rest, to keep it short)
expect_error() {
    np=$1 what=$2 code=$3 pattern=$4
    shift 4
    if [ "$np" -gt 1 ]; then timeout 60 "$mpirun" "$np" "$mpigan" "$@" >"$work/out" 2>"$work/err"
    else "$mpigan" "$@" >"$work/out" 2>"$work/err"; fi
    rc=$?
    [ "$rc" -eq "$code" ] || fail "$what: exit $rc, not $code"
    grep -qF -- "$pattern" "$work/err" || { cat "$work/err"; fail "$what: stderr lacks \"$pattern\""; }
}
expect_error 2 "--n 0" 2 "option '--n': '0'" data shapes --n 0 --out "$work/bad"
expect_error 1 "--n -5" 2 "option '--n': '-5'" data shapes --n -5 --out "$work/bad"
expect_error 1 "--n many" 2 "option '--n': 'many'" data shapes --n many --out "$work/bad"
[ ! -e "$work/bad" ] || fail "a usage error made the output folder"
touch "$work/file"
expect_error 2 "--out under a file" 1 "$work/file/sub: cannot create the output folder" data shapes --n 10 --out "$work/file/sub"
[ -z "$(find "$work" -name '*.tmp-*')" ] || fail "temporary files left behind"
exit $status
