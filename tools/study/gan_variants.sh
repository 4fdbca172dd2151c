#!/bin/sh
# The GAN variants of configs/ side by side at equal steps: each config trained STEPS steps
# on NP ranks for each seed, scored at the end by the run's own evaluation (FID, IS, KID,
# class coverage; class accuracy and intra-FID for conditional generators where the
# evaluation gives them), one line per run in OUT/results.tsv.
#
# usage: tools/study/gan_variants.sh OUT [STEPS [NP [SEEDS]]]     (defaults 2000 2 "1")
# Needs data/fashion-mnist-train.h5 (`mpigan data fmnist --out data/`) and the extractor
# runs/classifier/classifier.h5 (`mpigan classifier train configs/classifier.yaml`).
# The variants: DCGAN (non-saturating, the baseline), conditional SN-hinge, WGAN with
# clipping, WGAN-GP, DCGAN + R1, and on 10% of the data DiffAugment against the same
# DCGAN without it.
# The study may be split over several sittings: a run whose line is already in
# OUT/results.tsv (and did not fail) is not run again, a run that was stopped part-way goes
# on from its newest checkpoint (--resume; its seconds then count this sitting only), and
# VARIANTS="dcgan wgan_gp ..." runs only those variants (default: all, cheapest first).
# dcgan_bf16 (DCGAN on the oneDNN backend in bf16, the quality gate for bf16 against the
# fp32 dcgan runs) is run only when VARIANTS names it. The other variants run on
# BACKEND (default blas, the backend the study began on, so every seed of it is alike).
set -eu
out=${1:?usage: tools/study/gan_variants.sh OUT [STEPS [NP [SEEDS]]]}
steps=${2:-2000}
np=${3:-2}
seeds=${4:-1}
mkdir -p "$out"
[ -f data/fashion-mnist-train.h5 ] || { echo "gan_variants: no data/fashion-mnist-train.h5" >&2; exit 1; }
[ -f runs/classifier/classifier.h5 ] || { echo "gan_variants: no runs/classifier/classifier.h5" >&2; exit 1; }
[ -f "$out/results.tsv" ] || printf 'variant\tseed\tsteps\tseconds\teval\n' > "$out/results.tsv"
variants=${VARIANTS:-"dcgan cgan_sn_hinge dcgan_r1 dcgan_10pct diffaug_10pct wgan_clip wgan_gp"}

run() { # name config seed [--set ...]
    name=$1 config=$2 seed=$3
    shift 3
    case " $variants " in *" $name "*) ;; *) return 0 ;; esac
    if awk -F'\t' -v n="$name" -v s="$seed" -v k="$steps" \
        '$1 == n && $2 == s && $3 == k && $5 !~ /^FAILED/ { found = 1 } END { exit !found }' \
        "$out/results.tsv"; then
        echo "$name seed $seed: done already"
        return 0
    fi
    dir="$out/$name-s$seed"
    t0=$(date +%s)
    if tools/mpirun.sh "$np" build/mpigan train "$config" --set train.steps="$steps" --set train.seed="$seed" \
        --set eval.interval="$steps" --set eval.samples=5000 --set train.sample_interval="$steps" \
        --set run_dir="$dir" --set train.backend="${BACKEND:-blas}" "$@" --resume >> "$dir.log" 2>&1; then
        line=$(grep '^eval ' "$dir.log" | tail -n 1 | sed 's/^eval *//')
    else
        line="FAILED (see $dir.log)"
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$seed" "$steps" "$(( $(date +%s) - t0 ))" "$line" >> "$out/results.tsv"
    echo "$name seed $seed: $line"
}

for seed in $seeds; do
    run dcgan configs/fmnist_dcgan.yaml "$seed"
    run dcgan_bf16 configs/fmnist_dcgan.yaml "$seed" --set train.backend=onednn --set train.precision=bf16
    run cgan_sn_hinge configs/fmnist_cgan_sn.yaml "$seed"
    run dcgan_r1 configs/fmnist_dcgan_r1.yaml "$seed"
    run dcgan_10pct configs/fmnist_dcgan.yaml "$seed" --set data.limit=6000
    run diffaug_10pct configs/fmnist_diffaug.yaml "$seed"
    run wgan_clip configs/fmnist_wgan.yaml "$seed"
    run wgan_gp configs/fmnist_wgan_gp.yaml "$seed"
done
