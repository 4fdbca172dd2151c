#!/bin/sh
# The 2-D mode-collapse study of issue #5 (docs/evaluation.md): trains ring8 and grid25 over
# several seeds, scores each final generator by mode counting (mpigan eval, 2500 samples),
# and prints modes covered, % high-quality samples and KL(modes || uniform) per run and as
# mean +- std per config.
# Usage: tools/mixture_study.sh [TAG [--set key=value ...]]
#   TAG names the variant (default "plain"); the --set options go to every training run,
#   e.g. tools/mixture_study.sh pac2 --set train.pack=2   (once the trainer has packing).
# Environment: NP (ranks, default nproc), SEEDS ("1 2 3 4 5"), STEPS (the configs' own if
# unset), CONFIGS ("ring8 grid25"), BUILD (build), OUT (runs/mixture_study).
set -eu
tag=${1:-plain}
[ $# -gt 0 ] && shift
np=${NP:-$(nproc)}
build=${BUILD:-build}
out=${OUT:-runs/mixture_study}
field() { sed -n "s/.*\"$2\": \\([^,}]*\\).*/\\1/p" "$1" | head -n 1; }
mkdir -p "$out"
summary="$out/summary_$tag.txt"
: > "$summary"
for cfg in ${CONFIGS:-ring8 grid25}; do
    for seed in ${SEEDS:-1 2 3 4 5}; do
        run="$out/${cfg}_${tag}_s$seed"
        steps=""
        [ -n "${STEPS:-}" ] && steps="--set train.steps=$STEPS"
        # shellcheck disable=SC2086
        tools/mpirun.sh "$np" "$build/mpigan" train "configs/$cfg.yaml" --set "train.seed=$seed" \
            --set "run_dir=$run" --set checkpoint.interval=0 $steps "$@" > "$run.train.log" 2>&1
        ckpt=$(cat "$run/checkpoints/latest")
        case "$ckpt" in /*) ;; *) ckpt="$run/checkpoints/$ckpt" ;; esac
        tools/mpirun.sh "$np" "$build/mpigan" eval "$ckpt" -n 2500 -o "$run.eval.json" --png "$run.png" \
            > /dev/null 2> "$run.eval.log"
        line="$cfg $tag seed $seed: modes $(field "$run.eval.json" modes_covered)/$(field "$run.eval.json" n_modes)"
        line="$line hq $(field "$run.eval.json" high_quality_fraction) kl $(field "$run.eval.json" kl_uniform)"
        echo "$line" | tee -a "$summary"
    done
done
# mean +- std (population) per config
awk 'function sd(s, ss, n,   v) { v = ss / n - (s / n) ^ 2; return v > 0 ? sqrt(v) : 0 }
     { split($6, m, "/"); k = $1; n[k]++; a[k] += m[1]; aa[k] += m[1] * m[1];
       b[k] += $8; bb[k] += $8 * $8; if ($10 != "null") { c[k] += $10; cc[k] += $10 * $10; nc[k]++ } }
     END { for (k in n)
             printf "%s %s (%d seeds): modes %.2f +- %.2f, high quality %.1f%% +- %.1f, KL %s (%d runs with a high-quality sample)\n",
               k, tag, n[k], a[k] / n[k], sd(a[k], aa[k], n[k]), 100 * b[k] / n[k], 100 * sd(b[k], bb[k], n[k]),
               nc[k] ? sprintf("%.3f +- %.3f", c[k] / nc[k], sd(c[k], cc[k], nc[k])) : "n/a", nc[k] }' \
    tag="$tag" "$summary" | tee -a "$summary"
echo "summary: $summary"
