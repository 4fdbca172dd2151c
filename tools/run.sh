#!/bin/sh
# make run: the main job on this machine. Prepares Fashion-MNIST as HDF5 (once), trains
# the feature extractor when it is missing, trains the DCGAN-28 of configs/fmnist_dcgan.yaml
# data-parallel for a short run with FID, IS, KID and class coverage every
# MPIGAN_RUN_EVAL_INTERVAL steps, draws an 8x8 sample grid from the final checkpoint,
# evaluates it on 10000 samples beside the real-data floors, and says where everything is.
#
# Settings (environment):
#   MPIGAN_RUN_STEPS  G steps to train (default 3000: about 3-5 minutes on 2 idle cores)
#   MPIGAN_RUN_EVAL_INTERVAL  steps between evaluations during training (default 1000,
#                     5000 samples each, about 1 s on 2 idle cores); 0 turns them off
#   MPIGAN_RUN_NP     MPI ranks (default: the cores, rounded down to a power of two that
#                     divides the global batch of 64, at most 16)
# Each rank uses one OpenBLAS thread when several share a node (mg_blas_threads.h), unless
# OPENBLAS_NUM_THREADS is set. The run goes to runs/fmnist_dcgan-<date>-<time>/;
# runs/latest points at the newest.
set -eu
build=${BUILD:-build}
mpigan="$build/mpigan"
config=configs/fmnist_dcgan.yaml
data_dir=data
steps=${MPIGAN_RUN_STEPS:-3000}
eval_interval=${MPIGAN_RUN_EVAL_INTERVAL:-1000}
extractor=${EXTRACTOR:-runs/classifier/classifier.h5}

if [ -n "${MPIGAN_RUN_NP:-}" ]; then
    np=$MPIGAN_RUN_NP
else
    cores=$(nproc)
    np=1
    while [ $((np * 2)) -le "$cores" ] && [ $((np * 2)) -le 16 ]; do np=$((np * 2)); done
fi
start=$(date +%s)

echo "== mpigan: Fashion-MNIST as HDF5 ($data_dir/)"
if "$mpigan" data info "$data_dir/fashion-mnist-train.h5" >/dev/null 2>&1 &&
    "$mpigan" data info "$data_dir/fashion-mnist-test.h5" >/dev/null 2>&1; then
    echo "already there: $data_dir/fashion-mnist-train.h5, $data_dir/fashion-mnist-test.h5"
else
    "$mpigan" data fmnist --out "$data_dir"
fi
"$mpigan" data info "$data_dir/fashion-mnist-train.h5" | head -n 1

if [ "$eval_interval" -gt 0 ] && [ ! -f "$extractor" ]; then
    echo
    echo "== mpigan: training the feature extractor (configs/classifier.yaml) on $np ranks: ${extractor%.h5}.log.txt"
    mkdir -p "$(dirname "$extractor")"
    tools/mpirun.sh "$np" "$mpigan" classifier train configs/classifier.yaml --set "classifier.out=$extractor" \
        > "${extractor%.h5}.log.txt"
    tail -n 2 "${extractor%.h5}.log.txt"
fi

run_dir="runs/fmnist_dcgan-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"
ln -sfn "$(basename "$run_dir")" runs/latest
echo
echo "== mpigan: training $config for $steps steps on $np ranks -> $run_dir"
[ "$eval_interval" -gt 0 ] && echo "   (FID, IS, KID, class coverage of 5000 samples every $eval_interval steps and at the end)"
train_start=$(date +%s)
# POSIX sh has no pipefail: the exit status comes back through a file
{ rc=0
  tools/mpirun.sh "$np" "$mpigan" train "$config" --set train.steps="$steps" --set run_dir="$run_dir" \
      --set eval.interval="$eval_interval" --set eval.extractor="$extractor" 2>&1 || rc=$?
  echo "$rc" >"$run_dir/train.status"; } | tee "$run_dir/train.log"
status=$(cat "$run_dir/train.status")
rm -f "$run_dir/train.status"
if [ "$status" -ne 0 ]; then
    echo "mpigan: training failed (exit $status); see $run_dir/train.log" >&2
    exit "$status"
fi
train_end=$(date +%s)

echo
echo "== mpigan: 8x8 sample grid from the final checkpoint"
checkpoint="$run_dir/checkpoints/$(cat "$run_dir/checkpoints/latest")"
"$mpigan" sample --checkpoint "$checkpoint" -n 64 -o "$run_dir/samples_final.png"

echo
if [ "$eval_interval" -gt 0 ]; then
    echo "== evaluations during training (5000 samples each)"
    grep '^eval  ' "$run_dir/train.log" || true
    echo
fi
BUILD="$build" EXTRACTOR="$extractor" tools/eval_report.sh "$checkpoint" "$np"

end=$(date +%s)
echo
echo "== results ($((end - start)) s in all, of which training $((train_end - train_start)) s)"
echo "run directory:   $run_dir   (runs/latest)"
echo "training log:    $run_dir/train.log"
echo "metrics:         $run_dir/metrics.jsonl   (evaluations during training: the lines with \"eval\")"
echo "checkpoints:     $run_dir/checkpoints/   (final: $checkpoint)"
echo "samples:         $run_dir/samples_final.png   (during training: $run_dir/samples/step_<N>.png)"
echo "evaluation:      ${checkpoint%.h5}.eval.json"
echo "continue with:   tools/mpirun.sh $np $mpigan train $config --set run_dir=$run_dir --resume"
echo "                 (up to the config's train.steps; add --set train.steps=N for another length)"
