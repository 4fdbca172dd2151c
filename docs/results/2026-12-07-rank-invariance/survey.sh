#!/bin/bash
# One training step of configs/fmnist_dcgan.yaml at np 1, 2 and 4 for 6 seeds x 5 global
# batches; prints, per (seed, batch, np), the largest difference of the step's G and D
# gradients from the one-rank run's, relative to the largest element (Adam's first moment
# in the step-1 checkpoint is (1 - beta1) times the reduced gradient).
# usage (from the repository root): survey.sh MPIGAN_BINARY OUT.txt
# Needs data/fashion-mnist-train.h5 (`mpigan data fmnist --out data/`) and python3-h5py.
set -eu
bin=$1; out=$2; here=$(dirname "$0"); work=$(mktemp -d)
: > "$out"
for seed in 1 2 3 4 5 6; do for b in 32 48 64 96 128; do
  for np in 1 2 4; do
    tools/mpirun.sh $np "$bin" train configs/fmnist_dcgan.yaml --set train.steps=1 --set train.batch=$b \
      --set train.seed=$seed --set run_dir=$work/np$np --set checkpoint.interval=1 \
      --set train.sample_interval=0 > $work/np$np.log 2>&1 || echo "seed $seed b $b np $np FAILED" >> "$out"
  done
  for np in 2 4; do
    r=$(/usr/bin/python3 "$here/compare_step1.py" $work/np1/checkpoints/ckpt_000000001.h5 \
        $work/np$np/checkpoints/ckpt_000000001.h5 | awk '{printf "%s %s ", $1, $2}')
    echo "seed $seed b $b np $np $r" >> "$out"
  done
  rm -rf $work/np1 $work/np2 $work/np4
done; done
rm -rf "$work"
