#!/bin/sh
# The evaluation step of `make run` (docs/evaluation.md): scores a checkpoint's
# generator and prints its numbers beside the real-data floors. For image data it first
# trains the feature extractor if there is none, and measures the floors once per
# extractor; 2-D mixtures (ring8, grid25) need neither (mode counting).
# Usage: tools/eval_report.sh CHECKPOINT.h5 [NP]      (NP: MPI ranks, default nproc)
# Environment: BUILD (build), CLASSIFIER_CONFIG (configs/classifier.yaml),
# EXTRACTOR (runs/classifier/classifier.h5), TEST_DATA (data/fashion-mnist-test.h5),
# COVERAGE (factor classifiers, space-separated, for factor coverage; none by default; see
# tools/train_factor_classifiers.sh).
set -eu
ckpt=${1:?usage: tools/eval_report.sh CHECKPOINT.h5 [NP]}
np=${2:-$(nproc)}
build=${BUILD:-build}
config=${CLASSIFIER_CONFIG:-configs/classifier.yaml}
extractor=${EXTRACTOR:-runs/classifier/classifier.h5}
test_data=${TEST_DATA:-data/fashion-mnist-test.h5}
report="${ckpt%.h5}.eval.json"
mpigan() { tools/mpirun.sh "$np" "$build/mpigan" "$@"; }
# one value of a one-line JSON report: field FILE KEY
field() { sed -n "s/.*\"$2\": \\([^,}]*\\).*/\\1/p" "$1" | head -n 1; }
coverage_args=""
for c in ${COVERAGE:-}; do coverage_args="$coverage_args --coverage $c"; done
# shellcheck disable=SC2086
evaluate() { mpigan eval "$ckpt" -o "$report" --extractor "$extractor" $coverage_args >/dev/null 2>"$report.log"; }

echo "== evaluation of $ckpt"
if ! evaluate; then
    if [ -f "$extractor" ]; then cat "$report.log" >&2; exit 1; fi
    echo "== training the feature extractor ($config) on $np ranks: ${extractor%.h5}.log.txt"
    mkdir -p "$(dirname "$extractor")"
    mpigan classifier train "$config" --set "classifier.out=$extractor" > "${extractor%.h5}.log.txt"
    tail -n 2 "${extractor%.h5}.log.txt"
    evaluate || { cat "$report.log" >&2; exit 1; }
fi
if [ -n "$(field "$report" modes_covered)" ]; then
    echo "  $(field "$report" n) samples: modes covered $(field "$report" modes_covered) / $(field "$report" n_modes)," \
         "high quality $(field "$report" high_quality_fraction), KL(modes || uniform) $(field "$report" kl_uniform)"
    echo "  report: $report, scatter plot: ${report%.json}.png"
    exit 0
fi
floors="${extractor%.h5}.floors.json"
if [ ! -f "$floors" ] || [ "$extractor" -nt "$floors" ]; then
    echo "== real-data floors: $test_data against the extractor's training data"
    mpigan eval --real "$test_data" -o "$floors" --extractor "$extractor" >/dev/null 2>"$floors.log"
fi
printf '  %-24s %14s %14s\n' "metric ($(field "$report" n) samples)" "generator" "real test set"
printf '  %-24s %14s %14s\n' "FID (lower is better)" "$(field "$report" fid)" "$(field "$floors" fid)"
printf '  %-24s %14s %14s\n' "IS (higher is better)" "$(field "$report" is_mean)" "$(field "$floors" is_mean)"
printf '  %-24s %14s %14s\n' "KID (lower is better)" "$(field "$report" kid_mean)" "$(field "$floors" kid_mean)"
printf '  %-24s %14s %14s\n' "classes with >= 1%" "$(field "$report" classes_over_1pct)" "$(field "$floors" classes_over_1pct)"
printf '  %-24s %14s %14s\n' "class entropy (nats)" "$(field "$report" entropy)" "$(field "$floors" entropy)"
sed -n '/^ *factor coverage (/,+1p' "$report.log"
echo "  report: $report (floors: $floors)"
