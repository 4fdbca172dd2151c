#!/bin/sh
# Trains one factor classifier per factor of the shapes set: the coverage extractors of the
# evaluation's factor coverage (eval.coverage, `mpigan eval --coverage`; docs/evaluation.md).
# Each run is configs/classifier_shapes_factor.yaml with classifier.label.factor, the model's
# last layer (the factor's size, read from `mpigan data info`) and classifier.out set.
#
# Usage: tools/train_factor_classifiers.sh [options] [-- --set key=value ...]
#   --np N          MPI ranks (default: nproc)
#   --data DIR      folder of shapes-train.h5 and shapes-test.h5 (default: data)
#   --out DIR       model of factor F: DIR/classifier-shapes-F/classifier.h5 (default: runs)
#   --factors "A B" the factors to train (default: every factor of the training file)
#   --config FILE   the classifier config (default: configs/classifier_shapes_factor.yaml)
#   --last-layer K  index of the config's last layer in model.layers (default: counted in the
#                   config, which lists one layer per line)
#   after --        overrides for every run, e.g. -- --set classifier.epochs=4
# A model that exists is kept (delete it to retrain). Each run's output goes to
# DIR/classifier-shapes-F/train.log; the last lines list every factor's test accuracy.
# The small network learns the shape factor poorly (0.46 against 0.73 for the network of
# configs/classifier_shapes.yaml, docs/evaluation.md), so train that one first with
#   tools/train_factor_classifiers.sh --factors shape --config configs/classifier_shapes.yaml
# Environment: BUILD (build).
set -eu
np=$(nproc)
data=data
out=runs
factors=""
config=configs/classifier_shapes_factor.yaml
last=""
build=${BUILD:-build}
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
    --np) np=${2:?--np needs a value}; shift 2 ;;
    --data) data=${2:?--data needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --factors) factors=${2:?--factors needs a value}; shift 2 ;;
    --config) config=${2:?--config needs a value}; shift 2 ;;
    --last-layer) last=${2:?--last-layer needs a value}; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "train_factor_classifiers.sh: unknown option '$1'" >&2; usage ;;
    esac
done
train="$data/shapes-train.h5"
test="$data/shapes-test.h5"
for f in "$train" "$test" "$config"; do
    [ -f "$f" ] || { echo "train_factor_classifiers.sh: no $f (make the data with: mpigan data shapes --n 100000 --out $data)" >&2; exit 1; }
done
# "name size" per factor, from the line "  factors      7: shape (4), colour (8), ...; N combinations"
sizes=$("$build/mpigan" data info "$train" | sed -n 's/^  factors *[0-9]*: //p' | sed 's/;.*//' | tr ',' '\n' |
    sed -n 's/^ *\([^ ]*\) (\([0-9]*\))$/\1 \2/p')
[ -n "$sizes" ] || { echo "train_factor_classifiers.sh: $train has no factors with known sizes" >&2; exit 1; }
[ -n "$factors" ] || factors=$(echo "$sizes" | cut -d' ' -f1)
if [ -z "$last" ]; then # the list items of model.layers, one per line
    last=$(awk '/^model:/ { m = 1 } m && /^ *- / { n++ } END { print n - 1 }' "$config")
fi
size_of() { echo "$sizes" | awk -v f="$1" '$1 == f { print $2 }'; }
for f in $factors; do # every name checked before anything is trained
    [ -n "$(size_of "$f")" ] ||
        { echo "train_factor_classifiers.sh: $train has no factor '$f' (its factors:" $(echo "$sizes" | cut -d' ' -f1)")" >&2; exit 1; }
done
summary=""
for f in $factors; do
    k=$(size_of "$f")
    dir="$out/classifier-shapes-$f"
    model="$dir/classifier.h5"
    if [ -f "$model" ]; then
        echo "== $f: $model exists, kept"
    else
        echo "== $f ($k values) on $np ranks: $dir/train.log"
        mkdir -p "$dir"
        tools/mpirun.sh "$np" "$build/mpigan" classifier train "$config" --set "classifier.label.factor=$f" \
            --set "model.layers[$last].out=$k" --set "data.path=$train" --set "classifier.test_data=$test" \
            --set "classifier.out=$model" "$@" >"$dir/train.log" 2>&1 ||
            { tail -n 5 "$dir/train.log" >&2; exit 1; }
    fi
    acc=$(h5dump -a test_accuracy "$model" 2>/dev/null | sed -n 's/^ *(0): //p')
    summary="$summary$(printf '  %-12s %3s values  test accuracy %s  %s' "$f" "$k" "${acc:-?}" "$model")
"
done
echo "== factor classifiers (eval.coverage / mpigan eval --coverage):"
printf '%s' "$summary"
