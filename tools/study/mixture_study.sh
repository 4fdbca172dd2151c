#!/bin/sh
# The 2-D mode-collapse study (docs/evaluation.md): trains the ring8 and grid25 GANs over
# several seeds, with and without PacGAN packing, scores each final generator by mode
# counting (`mpigan eval`, 2500 samples: modes covered, share of high-quality samples,
# KL of the mode histogram from uniform), and writes
#   OUT/runs.csv    one row per run (config, pack, seed, steps, ranks, metrics, seconds)
#   OUT/summary.md  a Markdown table of mean +- std per config and pack
# Each run lives in OUT/<config>_pack<P>_s<seed>/ (training log, metrics, checkpoint, eval
# JSON and scatter plot). A run whose eval report exists is not redone, so an interrupted
# study continues where it stopped (delete OUT to start over).
#
# Usage: tools/study/mixture_study.sh [options] [-- --set key=value ...]
#   --np N            ranks per run (default 2)
#   --seeds "S ..."   training seeds (default "1 2 3 4 5")
#   --steps N         training steps (default: the configs' own, 25000)
#   --configs "C ..." configs/<C>.yaml to study (default "ring8 grid25")
#   --packs "P ..."   train.pack values (default "1 2": without and with PacGAN m = 2)
#   --samples N       samples scored per run (default 2500)
#   --out DIR         output directory (default runs/mixture_study)
#   --build DIR       where build/mpigan is (default build)
# Everything after -- goes to every training run (e.g. -- --set optimizer_d.lr=2e-4).
# Example (a smoke test): tools/study/mixture_study.sh --seeds 1 --steps 300 --out /tmp/study
set -eu

np=2 seeds="1 2 3 4 5" steps="" configs="ring8 grid25" packs="1 2" samples=2500
out=runs/mixture_study build=build
usage() { sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }
need() { [ $# -ge 2 ] || { echo "mixture_study: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
    --np) need "$@"; np=$2; shift 2 ;;
    --seeds) need "$@"; seeds=$2; shift 2 ;;
    --steps) need "$@"; steps=$2; shift 2 ;;
    --configs) need "$@"; configs=$2; shift 2 ;;
    --packs) need "$@"; packs=$2; shift 2 ;;
    --samples) need "$@"; samples=$2; shift 2 ;;
    --out) need "$@"; out=$2; shift 2 ;;
    --build) need "$@"; build=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    *) echo "mixture_study: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for v in "$np" "$samples" ${steps:+"$steps"} $seeds $packs; do
    case "$v" in ''|*[!0-9]*) echo "mixture_study: '$v' is not a whole number" >&2; exit 2 ;; esac
done
[ -x "$build/mpigan" ] || { echo "mixture_study: no $build/mpigan (run make first)" >&2; exit 2; }
for c in $configs; do
    [ -f "configs/$c.yaml" ] || { echo "mixture_study: no configs/$c.yaml" >&2; exit 2; }
done

mkdir -p "$out"
csv="$out/runs.csv"
# the value of a number field of the one-line JSON report ("null" stays null)
field() { sed -n "s/.*\"$2\": \\([^,}]*\\).*/\\1/p" "$1" | head -n 1; }

echo "config,pack,seed,steps,ranks,modes_covered,n_modes,high_quality_fraction,kl_uniform,train_seconds" > "$csv.tmp"
for cfg in $configs; do
    for pack in $packs; do
        for seed in $seeds; do
            run="$out/${cfg}_pack${pack}_s$seed"
            report="$run/eval.json"
            if [ ! -f "$report" ]; then
                rm -rf "$run"
                mkdir -p "$run"
                start=$(date +%s.%N)
                # shellcheck disable=SC2086
                if ! tools/mpirun.sh "$np" "$build/mpigan" train "configs/$cfg.yaml" --set "train.seed=$seed" \
                    --set "train.pack=$pack" --set "run_dir=$run" --set checkpoint.interval=0 \
                    ${steps:+--set train.steps=$steps} "$@" > "$run/train.log" 2>&1; then
                    echo "mixture_study: training failed, see $run/train.log" >&2
                    tail -n 5 "$run/train.log" >&2
                    exit 1
                fi
                end=$(date +%s.%N)
                echo "$start $end" | awk '{ printf "%.1f\n", $2 - $1 }' > "$run/train_seconds"
                ckpt=$(cat "$run/checkpoints/latest")
                case "$ckpt" in /*) ;; *) ckpt="$run/checkpoints/$ckpt" ;; esac
                if ! tools/mpirun.sh "$np" "$build/mpigan" eval "$ckpt" -n "$samples" -o "$report.tmp" \
                    --png "$run/samples.png" > /dev/null 2> "$run/eval.log"; then
                    echo "mixture_study: evaluation failed, see $run/eval.log" >&2
                    tail -n 5 "$run/eval.log" >&2
                    exit 1
                fi
                mv "$report.tmp" "$report"
            fi
            run_steps=$(sed -n 's/^  steps: //p' "$run/config.yaml")
            row="$cfg,$pack,$seed,$run_steps,$np,$(field "$report" modes_covered),$(field "$report" n_modes)"
            row="$row,$(field "$report" high_quality_fraction),$(field "$report" kl_uniform),$(cat "$run/train_seconds")"
            echo "$row" >> "$csv.tmp"
            echo "$row" | awk -F, '{ printf "%s pack %s seed %s: %s/%s modes, %.1f%% high quality, KL %s (%d steps, %.0f s)\n",
                                        $1, $2, $3, $6, $7, 100 * $8, $9, $4, $10 }'
        done
    done
done
mv "$csv.tmp" "$csv"

# mean +- sample standard deviation (n - 1) per config and pack; KL over the runs that have
# a high-quality sample at all (it is undefined, null, for the others)
awk -F, -v np="$np" -v samples="$samples" '
function sd(s, ss, n,   v) { v = (ss - s * s / n) / (n - 1); return v > 0 ? sqrt(v) : 0 }
# "mean ± std", or the mean alone for a single run
function pm(fmt, s, ss, n) { return n > 1 ? sprintf(fmt " ± " fmt, s / n, sd(s, ss, n)) : sprintf(fmt, s / n) }
NR == 1 { next }
{
    k = $1 "," $2
    if (!(k in n)) order[++nk] = k
    n[k]++; steps[k] = $4; nm[k] = $7
    m[k] += $6; mm[k] += $6 * $6
    q[k] += 100 * $8; qq[k] += 10000 * $8 * $8
    if ($9 != "null" && $9 != "") { kl[k] += $9; kk[k] += $9 * $9; nkl[k]++ }
    t[k] += $10
}
END {
    print "# 2-D mixture study"
    print ""
    printf "Mean ± sample standard deviation over seeds; %d samples scored per run, %d ranks.\n", samples, np
    print "High quality: within 3σ of a mode mean. KL: of the mode histogram of the high-quality samples"
    print "from uniform (nats), over the runs with at least one high-quality sample."
    print ""
    print "| config | pack | seeds | steps | modes covered | high quality (%) | KL(modes ‖ uniform) | train s / run |"
    print "|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= nk; i++) {
        k = order[i]; split(k, a, ",")
        klt = nkl[k] ? pm("%.3f", kl[k], kk[k], nkl[k]) : "n/a"
        if (nkl[k] && nkl[k] < n[k]) klt = klt sprintf(" (%d runs)", nkl[k])
        printf "| %s | %s | %d | %s | %s of %s | %s | %s | %.0f |\n", a[1], a[2], n[k], steps[k],
               pm("%.2f", m[k], mm[k], n[k]), nm[k], pm("%.1f", q[k], qq[k], n[k]), klt, t[k] / n[k]
    }
}' "$csv" > "$out/summary.md.tmp"
mv "$out/summary.md.tmp" "$out/summary.md"
cat "$out/summary.md"
echo "per-run CSV: $csv; table: $out/summary.md"
