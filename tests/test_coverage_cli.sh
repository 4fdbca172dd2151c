#!/bin/sh
# Factor coverage from the command line: `mpigan data shapes` writes a small set;
# tools/train_factor_classifiers.sh trains two factor classifiers on it (np 2); `mpigan eval
# --coverage` reports the same factor coverage on 1 and 2 ranks (one OpenBLAS thread per
# rank, so the same bits); and bad input ends every rank of np 2 with a non-zero exit and a
# message naming the file and the key: a factor the data lacks, a data file without factors,
# a coverage extractor trained on labels (`mpigan eval --coverage` and a training config's
# eval.coverage). The arithmetic, the classifier's accuracy and more error cases:
# tests/test_coverage.c.
set -u
build=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
mpirun="$here/../tools/mpirun.sh"
mpigan="$build/mpigan"
work=$(mktemp -d "${TMPDIR:-/tmp}/mpigan_coverage_cli_XXXXXX")
trap 'rm -rf "$work"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
export OPENBLAS_NUM_THREADS=1

"$mpigan" data shapes --n 512 --test-n 256 --out "$work/data" --seed 5 >"$work/log" 2>&1 || fail "data shapes"
BUILD="$build" tools/train_factor_classifiers.sh --np 2 --data "$work/data" --out "$work/models" \
    --factors "colour background" -- --set classifier.epochs=4 --set classifier.batch=64 \
    --set classifier.schedule.warmup=0 >"$work/train.out" 2>&1 || { cat "$work/train.out"; fail "train_factor_classifiers.sh"; }
colour="$work/models/classifier-shapes-colour/classifier.h5"
background="$work/models/classifier-shapes-background/classifier.h5"
grep -q "colour .* 8 values  test accuracy" "$work/train.out" || { cat "$work/train.out"; fail "no colour line in the summary"; }
grep -q "background .* 4 values  test accuracy" "$work/train.out" || fail "no background line in the summary"
# a classifier on the labels (the shape), the FID extractor here
sed 's/^  label: {factor: colour}/  label: labels/' configs/classifier_shapes_factor.yaml >"$work/labels.yaml"
labels="$work/models/labels/classifier.h5"
timeout 300 "$mpirun" 2 "$mpigan" classifier train "$work/labels.yaml" --set model.layers[16].out=4 \
    --set "data.path=$work/data/shapes-train.h5" --set "classifier.test_data=$work/data/shapes-test.h5" \
    --set "classifier.out=$labels" --set classifier.epochs=1 >>"$work/log" 2>&1 || fail "labels classifier"

# the real test set: the same factor coverage on 1 and 2 ranks
evaluate() { # NP OUT [more options]
    np=$1 out=$2
    shift 2
    timeout 300 "$mpirun" "$np" "$mpigan" eval --real "$work/data/shapes-test.h5" --extractor "$labels" \
        --reference "$work/data/shapes-train.h5" --cache-dir "$work/cache_$np" --kid-subsets 2 \
        --kid-subset-size 100 -o "$out" "$@"
}
evaluate 1 "$work/np1.json" --coverage "$colour" --coverage "$background" >/dev/null 2>"$work/np1.err" ||
    { cat "$work/np1.err"; fail "eval --coverage on 1 rank"; }
evaluate 2 "$work/np2.json" --coverage "$colour" --coverage "$background" >/dev/null 2>"$work/np2.err" ||
    { cat "$work/np2.err"; fail "eval --coverage on 2 ranks"; }
grep -q "factor coverage (values >= 1%" "$work/np2.err" || fail "no factor coverage in the summary"
python3 - "$work/np1.json" "$work/np2.json" >"$work/cmp" 2>&1 <<'EOF' || { cat "$work/cmp"; fail "np 1 and np 2 differ"; }
import json, sys
a, b = (json.load(open(p))["factor_coverage"] for p in sys.argv[1:3])
assert [f["factor"] for f in a] == ["colour", "background"], a
for f in a:
    assert f["values_over_1pct"] <= f["values"] and sum(f["histogram"]) == 256 and sum(f["real_histogram"]) == 256, f
keys = ("factor", "values", "values_over_1pct", "values_seen", "tv_to_real", "histogram", "real_histogram")
for x, y in zip(a, b):
    for k in keys:
        assert x[k] == y[k], "%s %s: np 1 %s, np 2 %s" % (x["factor"], k, x[k], y[k])
print("np 1 == np 2:", [(f["factor"], f["values_over_1pct"], f["tv_to_real"]) for f in a])
EOF

# bad input: every rank of two exits non-zero (not by the timeout) naming what is wrong
expect_error() { # WHAT PATTERN... -- COMMAND...
    what=$1
    shift
    patterns=""
    while [ "$1" != "--" ]; do patterns="$patterns$1
"; shift; done
    shift
    timeout 120 "$mpirun" 2 "$@" >"$work/out" 2>"$work/err"
    rc=$?
    { [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; } || fail "$what: exit $rc"
    echo "$patterns" | while IFS= read -r p; do
        [ -z "$p" ] || grep -qF -- "$p" "$work/err" || { cat "$work/err"; echo "FAIL: $what: stderr lacks \"$p\""; exit 1; }
    done || status=1
}
factor_cfg="configs/classifier_shapes_factor.yaml --set data.path=$work/data/shapes-train.h5
    --set classifier.test_data=$work/data/shapes-test.h5 --set classifier.out=$work/bad/classifier.h5"
# shellcheck disable=SC2086
expect_error "a factor the data lacks" "(classifier.label)" "has no factor 'hue'" "$work/data/shapes-train.h5" -- \
    "$mpigan" classifier train $factor_cfg --set classifier.label.factor=hue
"$mpigan" data mixture ring --out "$work/ring.h5" --n 300 >>"$work/log" 2>&1 || fail "data mixture"
# shellcheck disable=SC2086
expect_error "a data file without factors" "(classifier.label)" "$work/ring.h5 has no factors dataset" -- \
    "$mpigan" classifier train $factor_cfg --set "data.path=$work/ring.h5"
expect_error "eval: a coverage extractor trained on labels" "$labels" "not on a factor" -- \
    "$mpigan" eval --real "$work/data/shapes-test.h5" --extractor "$labels" --coverage "$colour" --coverage "$labels" \
    --reference "$work/data/shapes-train.h5" --cache-dir "$work/cache_2" -o "$work/bad.json"
expect_error "train: a coverage extractor trained on labels" "$labels" "not on a factor" "(eval.coverage)" -- \
    "$mpigan" train configs/shapes_dcgan64.yaml --set "run_dir=$work/run" --set "data.path=$work/data/shapes-train.h5" \
    --set eval.interval=1 --set "eval.extractor=$labels" --set "eval.coverage[0]=$labels"
[ ! -e "$work/bad/classifier.h5" ] || fail "a failed classifier run left a model file"
[ "$status" -eq 0 ] && echo "ok: factor classifiers, eval --coverage equal on 1 and 2 ranks, four bad inputs refused"
[ "$status" -eq 0 ] || cat "$work/log"
exit "$status"
