#!/bin/sh
# make run: the main job on this machine. Until the GAN trainer lands it trains the tiny
# data-parallel example classifier (configs/toy.yaml) on all cores and checks the
# networks of the reference DCGAN config.
set -eu
build=${BUILD:-build}
np=$(nproc)
mkdir -p runs/toy
echo "== mpigan: DCGAN-28 networks (configs/fmnist_dcgan.yaml)"
tools/mpirun.sh 1 "$build/mpigan" nets configs/fmnist_dcgan.yaml
echo
echo "== mpigan: training the example classifier on $np ranks (configs/toy.yaml)"
tools/mpirun.sh "$np" "$build/mpigan" toy configs/toy.yaml | tee runs/toy/log.txt
echo
echo "== results: runs/toy/log.txt"
