#!/bin/sh
# The command line's option parsing (src/base/cmd.c): `--opt=value` and `--opt value` mean the
# same, positional arguments may stand among the options, `--` ends the options, an
# unknown option, a missing value and a bad number fail with exit 2 and a message naming
# the option, alone and under mpirun -np 2 (every rank exits, rank 0 alone prints), and
# `mpigan --help` lists every command of main.c's table, each of which answers --help.
set -u
build=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
mpigan=$(cd "$build" && pwd)/mpigan
mpirun="$root/tools/mpirun.sh"
work=$(mktemp -d /tmp/mpigan_cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }

# x of an HDF5 file as text (the files differ in nothing else the test cares about)
dump_x() { h5dump -d /x "$1" 2>/dev/null | sed 1d; }

# expect_usage_error WHAT PATTERN COMMAND...: exit 2, and stderr has PATTERN
expect_usage_error() {
    what=$1 pattern=$2
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    rc=$?
    [ "$rc" -eq 2 ] || fail "$what: exit $rc, not 2"
    grep -qF -- "$pattern" "$work/err" || { fail "$what: stderr lacks \"$pattern\""; cat "$work/err"; }
}

# ---- the same option spelled both ways
"$mpigan" data mixture ring --out="$work/eq.h5" --n=300 --seed=4 >"$work/log" 2>&1 || fail "--opt=value"
"$mpigan" data mixture --out "$work/sp.h5" --n 300 ring --seed 4 >>"$work/log" 2>&1 \
    || fail "--opt value, positional among the options"
[ -n "$(dump_x "$work/eq.h5")" ] || fail "no x in $work/eq.h5"
[ "$(dump_x "$work/eq.h5")" = "$(dump_x "$work/sp.h5")" ] || fail "--opt=value and --opt value wrote different data"

# ---- -- ends the options: a file whose name starts with '-'
(cd "$work" && "$mpigan" data mixture grid --n 50 --out=-dash.h5 >>"$work/log" 2>&1) || fail "write -dash.h5"
(cd "$work" && "$mpigan" data info -- -dash.h5 >"$work/out" 2>&1) || fail "-- then a file named -dash.h5"
grep -q "x (50, 2) float32" "$work/out" || fail "data info -- -dash.h5 did not describe the file"
(cd "$work" && expect_usage_error "without --" "'-d'" "$mpigan" data info -dash.h5)

# ---- train: --set=k=v and --set k=v, the config after the options and after --
"$mpigan" train --set=run_dir="$work/run" --set train.steps=4 --set=train.log_interval=2 -- "$root/configs/tiny.yaml" \
    >>"$work/log" 2>&1 || fail "train with --set=, --set and --"
grep -q "steps: 4" "$work/run/config.yaml" 2>/dev/null || fail "train: --set train.steps=4 not in the resolved config"
grep -q "log_interval: 2" "$work/run/config.yaml" 2>/dev/null || fail "train: --set=train.log_interval=2 not applied"
ckpt="$work/run/checkpoints/ckpt_000000004.h5"
"$mpigan" sample --checkpoint="$ckpt" -n16 --seed=5 -o "$work/s1.h5" >>"$work/log" 2>&1 || fail "sample, joined forms"
"$mpigan" sample -o"$work/s2.h5" --seed 5 -n 16 --checkpoint "$ckpt" >>"$work/log" 2>&1 || fail "sample, split forms"
[ -n "$(dump_x "$work/s1.h5")" ] && [ "$(dump_x "$work/s1.h5")" = "$(dump_x "$work/s2.h5")" ] \
    || fail "sample: joined and split option forms drew different samples"

# ---- usage errors name the option, exit 2
expect_usage_error "unknown long option" "unknown option '--bogus'" "$mpigan" train --bogus=1 configs/tiny.yaml
expect_usage_error "unknown short option" "unknown option '-q'" "$mpigan" sample -q
expect_usage_error "missing value" "option '--set' needs a value" "$mpigan" train configs/tiny.yaml --set
expect_usage_error "missing short value" "option '-o' needs a value" "$mpigan" sample --checkpoint x.h5 -o
expect_usage_error "flag with a value" "option '--resume' takes no value" "$mpigan" train --resume=yes configs/tiny.yaml
expect_usage_error "bad number" "option '--n': 'many'" "$mpigan" data mixture ring --out "$work/x.h5" --n many
expect_usage_error "bad number, short" "option '-n': '0'" "$mpigan" eval -n 0 x.h5
expect_usage_error "nested unknown option" "unknown option '--colour'" "$mpigan" data png --in a --out b --colour
expect_usage_error "missing positional" "missing CONFIG.yaml" "$mpigan" train --set train.steps=1
expect_usage_error "extra positional" "unexpected argument 'b.yaml'" "$mpigan" toy a.yaml b.yaml
expect_usage_error "unknown command" "unknown command 'trian'" "$mpigan" trian
expect_usage_error "unknown nested command" "unknown command 'mnist'" "$mpigan" data mnist

# ---- under mpirun: every rank exits non-zero without hanging, one message
for args in "train --bogus configs/tiny.yaml" "eval --extractor" "data mixture ring --out"; do
    # shellcheck disable=SC2086
    timeout 60 "$mpirun" 2 "$mpigan" $args >"$work/out" 2>"$work/err"
    rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "mpirun -np 2 mpigan $args: exit $rc"
    n=$(grep -c "^mpigan .*option '--" "$work/err")
    [ "$n" -eq 1 ] || { fail "mpirun -np 2 mpigan $args: $n messages naming the option, not 1"; cat "$work/err"; }
done

# ---- --help lists every command of the table, and each command answers --help
"$mpigan" --help >"$work/help" 2>&1 || fail "mpigan --help: exit $?"
names=$(sed -n 's/^ *{"\([a-z]*\)", *mg_cmd_[a-z_]*,.*/\1/p' "$root/src/cli/main.c")
[ "$(echo "$names" | wc -w)" -ge 8 ] || fail "read only $(echo "$names" | wc -w) commands from src/cli/main.c's table"
for name in $names; do
    grep -q "^  $name\b" "$work/help" || fail "mpigan --help does not list $name"
    "$mpigan" "$name" --help >"$work/out" 2>&1 || fail "mpigan $name --help: exit $?"
    grep -q "^usage: mpigan $name" "$work/out" || fail "mpigan $name --help prints no usage"
    "$mpigan" help "$name" >"$work/out2" 2>&1 && cmp -s "$work/out" "$work/out2" \
        || fail "mpigan help $name differs from mpigan $name --help"
done

[ "$status" -eq 0 ] && echo "ok: --opt=value = --opt value, --, usage errors name the option (also on 2 ranks), --help lists: $(echo $names)"
[ "$status" -eq 0 ] || cat "$work/log"
exit "$status"
