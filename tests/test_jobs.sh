#!/bin/sh
# The job scripts of jobs/ and the scaling tools, without a batch system:
#   - every script in jobs/ parses (bash -n), and so do the tools' shell scripts;
#   - jobs/local/train.sh trains configs/tiny.yaml on 2 ranks for real; with a time limit
#     (-T) and restarts (-R) it is stopped by USR1, checkpoints, restarts and ends with
#     bitwise the result of the uninterrupted run;
#   - jobs/pbs/train.pbs runs for real under an emulated PBS environment (PBS_NODEFILE,
#     PBS_WALLTIME, a stand-in qsub that records what it is given): it stops before the
#     walltime with a checkpoint and resubmits itself; the resubmitted job completes with the
#     uninterrupted run's result;
#   - jobs/pbs/scaling.pbs and jobs/local/scaling.sh run a small sweep on the tiny config
#     (tools/study/scaling.py: CSV with the expected columns and rows), and the plotting tools
#     either draw their PNGs or say clearly that matplotlib is missing.
# Slurm scripts are run for real by tests/test_slurm.sh (root only). Checks that cannot run
# here (no python3; a time limit too long to stop the run) print "SKIP: why" (tests/run.sh).
set -u
build=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
mpigan="$root/$build/mpigan"
cd "$root" || exit 1
[ -x "$mpigan" ] || { echo "FAIL: $mpigan not built"; exit 1; }
dir=$(mktemp -d /tmp/mpigan_jobs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
trap 'exit 1' INT TERM
status=0
fail() { echo "FAIL: $*"; status=1; }
t_start=$(date +%s)
took() { echo "[$(( $(date +%s) - t_start ))s]"; }
export OPENBLAS_NUM_THREADS=1

# ---- every script parses ----
n=0
for f in jobs/slurm/*.sbatch jobs/pbs/*.pbs jobs/local/*.sh tools/*.sh tools/*/*.sh; do
    [ -f "$f" ] || continue
    if bash -n "$f" 2>"$dir/parse.err"; then n=$((n + 1)); else fail "$f does not parse: $(cat "$dir/parse.err")"; fi
done
echo "ok: $n job and tool scripts parse (bash -n)"

same_result() {
    a="$1/checkpoints/$(cat "$1/checkpoints/latest" 2>/dev/null)"
    b="$2/checkpoints/$(cat "$2/checkpoints/latest" 2>/dev/null)"
    [ -f "$a" ] && [ -f "$b" ] || { echo "checkpoint missing ($a, $b)"; return 1; }
    [ "$(basename "$a")" = "$(basename "$b")" ] || { echo "final checkpoints differ: $a, $b"; return 1; }
    for d in G/param D/param G/state D/state; do
        h5diff -q "$a" "$b" "$d" "$d" >/dev/null 2>&1 || { echo "$d differs"; return 1; }
    done
}

# ---- jobs/local/train.sh: plain run, then time limit + restarts ----
steps=100000
t0=$(date +%s)
if jobs/local/train.sh -n 2 configs/tiny.yaml --set train.steps=$steps --set train.log_interval=10000 \
        --set run_dir="$dir/ref" >"$dir/ref.log" 2>&1; then
    grep -q "2 ranks" "$dir/ref.log" && [ -f "$dir/ref/checkpoints/ckpt_000$steps.h5" ] &&
        echo "ok: jobs/local/train.sh trained on 2 ranks and wrote its checkpoint $(took)" ||
        { fail "jobs/local/train.sh: no 2-rank run or no checkpoint"; cat "$dir/ref.log"; }
else
    fail "jobs/local/train.sh failed"; cat "$dir/ref.log"
fi
# a time limit of a third of the uninterrupted run (whatever this machine's speed): ~3 restarts
limit=$(( ($(date +%s) - t0) / 3 ))
[ "$limit" -ge 1 ] || limit=1
if jobs/local/train.sh -n 2 -T "$limit" -R 50 configs/tiny.yaml --set train.steps=$steps --set train.log_interval=10000 \
        --set run_dir="$dir/limited" >"$dir/limited.log" 2>&1; then
    r=$(grep -c "stopped at the time limit with a checkpoint; restart" "$dir/limited.log")
    if [ "$r" -lt 1 ]; then
        echo "SKIP: jobs/local/train.sh -T $limit finished before its first time limit: restart not exercised"
    elif why=$(same_result "$dir/limited" "$dir/ref"); then
        echo "ok: jobs/local/train.sh -T $limit: $r stop(s) at the time limit, restarted, equal to the uninterrupted run $(took)"
    else
        fail "jobs/local/train.sh -T: $why"; cat "$dir/limited.log"
    fi
else
    fail "jobs/local/train.sh -T failed"; cat "$dir/limited.log"
fi

# ---- jobs/pbs/train.pbs under an emulated PBS ----
mkdir -p "$dir/bin"
cat >"$dir/bin/qsub" <<EOF
#!/bin/sh
echo "\$@" >>"$dir/qsub.calls"
echo 1.fake
EOF
chmod +x "$dir/bin/qsub"
printf 'localhost\nlocalhost\n' >"$dir/nodefile"
pbs_env() {
    env PATH="$dir/bin:$PATH" PBS_O_WORKDIR="$root" PBS_NODEFILE="$dir/nodefile" PBS_JOBID="t$$" TMPDIR="$dir" \
        CONFIG=configs/tiny.yaml SETS="train.steps=$steps train.log_interval=10000 run_dir=$dir/pbs" "$@"
}
# walltime: USR1 after the same limit as above (2 s before a walltime 2 s longer)
if pbs_env PBS_WALLTIME=$((limit + 2)) STOP_BEFORE=2 bash jobs/pbs/train.pbs >"$dir/pbs1.log" 2>&1; then
    if grep -q "stop requested; checkpoint written" "$dir/pbs1.log" && grep -q "RESUBMIT_COUNT=1" "$dir/qsub.calls" 2>/dev/null &&
       grep -q "jobs/pbs/train.pbs" "$dir/qsub.calls"; then
        if pbs_env RESUBMIT_COUNT=1 bash jobs/pbs/train.pbs >"$dir/pbs2.log" 2>&1 &&
           grep -q "resuming from" "$dir/pbs2.log"; then
            # the PBS job ran 2 ranks (localhost twice): the 2-rank run of train.sh above is the reference
            if why=$(same_result "$dir/pbs" "$dir/ref"); then
                echo "ok: jobs/pbs/train.pbs: stopped before the walltime with a checkpoint, resubmitted (qsub -v ...RESUBMIT_COUNT=1), resumed, equal to the uninterrupted run $(took)"
            else
                fail "jobs/pbs/train.pbs: $why"
            fi
        else
            fail "jobs/pbs/train.pbs: the resubmitted job did not resume and complete"; cat "$dir/pbs2.log"
        fi
    elif ! grep -q "stop requested" "$dir/pbs1.log" && [ -f "$dir/pbs/checkpoints/ckpt_000$steps.h5" ]; then
        # the limit comes from the reference run's time: a reference slowed by other load
        # can leave this run time to finish before its walltime
        echo "SKIP: jobs/pbs/train.pbs finished all $steps steps before its walltime of $((limit + 2)) s: resubmission not exercised"
    else
        fail "jobs/pbs/train.pbs did not stop before the walltime and resubmit"; cat "$dir/pbs1.log" "$dir/qsub.calls" 2>/dev/null
    fi
else
    fail "jobs/pbs/train.pbs failed"; cat "$dir/pbs1.log"
fi

# ---- the scaling sweep (python3) and the plots (matplotlib) ----
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: scaling tools need python3, which is missing: sweep and plots not run"
    exit "$status"
fi
make -s "$build/tools/bench/bench_allreduce" >/dev/null 2>&1 || fail "cannot build $build/tools/bench/bench_allreduce"
sweep="--config configs/tiny.yaml --series strong,batch --np 1,2 --rank-batches 4,8 --steps 40 --warmup 10"
sweep="$sweep --mpigan $build/mpigan --bench-bin $build/tools/bench/bench_allreduce --bench-gap-ms 2"
before=$status
if env PBS_O_WORKDIR="$root" PBS_NODEFILE="$dir/nodefile" PBS_JOBID="s$$" TMPDIR="$dir" OUT="$dir/sweep" \
        TRANSPORTS=shm,tcp ARGS="$sweep --no-report" bash jobs/pbs/scaling.pbs >"$dir/sweep.log" 2>&1; then
    csv="$dir/sweep/scaling.csv"
    head -n 1 "$csv" | grep -q "^series,transport,np,threads,cores,global_batch,rank_batch,overlap,steps,step_s,images_per_s,compute_s,allreduce_s,data_s,imbalance_s,bn_sync_s,other_s,compute_max_s,allreduce_share,speedup,efficiency,peak_rss_mb" ||
        fail "scaling.csv header: $(head -n 1 "$csv")"
    rows=$(($(wc -l <"$csv") - 1))
    # strong: local np1 + shm/tcp np2 = 3; batch: 2 x (np1 + shm + tcp) = 6
    [ "$rows" -eq 9 ] || { fail "scaling.csv has $rows rows, expected 9"; cat "$csv"; }
    awk -F, 'NR > 1 && ($11 <= 0 || $21 == "" || $22 == "") { bad = 1 } END { exit bad }' "$csv" ||
        fail "scaling.csv has rows without images/s, efficiency or peak RSS"
    [ -s "$dir/sweep/allreduce_tcp_np2.csv" ] || fail "no allreduce benchmark for tcp"
    # the step's messages timed twice: in a tight loop and each after compute (what the model fits)
    [ "$(grep -c ',msg,' "$dir/sweep/allreduce_tcp_np2.csv")" -gt 0 ] &&
        [ "$(grep -c ',msg,' "$dir/sweep/allreduce_tcp_np2.csv")" -eq "$(grep -c ',msg_after_compute,' "$dir/sweep/allreduce_tcp_np2.csv")" ] ||
        fail "allreduce_tcp_np2.csv lacks the messages timed after compute"
    [ "$status" -eq "$before" ] && echo "ok: jobs/pbs/scaling.pbs: tools/study/scaling.py sweep, $rows rows, allreduce benchmarks $(took)"
else
    fail "jobs/pbs/scaling.pbs failed"; cat "$dir/sweep.log"
fi
# weak: np1 + shm np2; corun: np1 at b = 4 (a second row of the same run) + two one-rank runs together
if CONFIG=configs/tiny.yaml jobs/local/scaling.sh "$dir/sweep2" --series weak,corun --np 1,2 --transports shm \
        --steps 20 --warmup 5 --rank-batch 4 --rank-batches 4 --no-bench --no-report --mpigan "$build/mpigan" \
        >"$dir/sweep2.log" 2>&1 && [ "$(wc -l <"$dir/sweep2/scaling.csv")" -eq 5 ] &&
        grep -q "^corun,corun,2,1,2,8,4,0,15," "$dir/sweep2/scaling.csv" &&
        [ -s "$dir/sweep2/runs/corun_np2_t1_b8/copy1/metrics.jsonl" ] &&
        [ "$(grep -c '^4,0,[01],' "$dir/sweep2/corun_steps.csv")" -eq 30 ]; then
    echo "ok: jobs/local/scaling.sh ran a weak-scaling and a corun sweep $(took)"
else
    fail "jobs/local/scaling.sh"; cat "$dir/sweep2.log"
fi

# the wait for the slowest of P ranks: E[max of P draws] - mean over an empirical distribution
if python3 -c "
import sys; sys.path.insert(0, 'tools/study')
from scaling_model import expected_max_excess as w
assert abs(w([0, 1], 2) - 0.25) < 1e-12          # max of two fair coin flips: 3/4, mean 1/2
assert abs(w([1, 2, 3], 1)) < 1e-12              # one rank waits for nobody
assert abs(w([5] * 7, 64)) < 1e-12               # no spread, no wait
assert abs(w(list(range(10)), 10**6) - 4.5) < 1e-9   # many ranks: the sample maximum
"; then
    echo "ok: tools/study/scaling_model.py: the wait for the slowest rank"
else
    fail "tools/study/scaling_model.py: expected_max_excess"
fi

if /usr/bin/python3 -c "import matplotlib" 2>/dev/null || python3 -c "import matplotlib" 2>/dev/null; then
    if python3 tools/study/plot_scaling.py "$dir/sweep" >"$dir/plot.log" 2>&1 && [ -s "$dir/sweep/scaling_strong.png" ] &&
       [ -s "$dir/sweep/time_split.png" ] && [ -s "$dir/sweep/batch.png" ] && grep -q "Strong scaling" "$dir/sweep/report.md" &&
       grep -q "α–β fit" "$dir/sweep/report.md"; then
        echo "ok: tools/study/plot_scaling.py wrote report.md and the PNG plots $(took)"
    else
        fail "tools/study/plot_scaling.py"; cat "$dir/plot.log"
    fi
    if python3 tools/plot/plot_metrics.py "$dir/ref" >"$dir/pm.log" 2>&1 && [ -s "$dir/ref/metrics.png" ]; then
        echo "ok: tools/plot/plot_metrics.py drew metrics.png $(took)"
    else
        fail "tools/plot/plot_metrics.py"; cat "$dir/pm.log"
    fi
else
    # without matplotlib the plotting tools must fail with a clear message
    MG_PLOT_REEXEC=1 python3 tools/plot/plot_metrics.py "$dir/ref" >"$dir/pm.log" 2>&1 && fail "plot_metrics.py exited 0 without matplotlib"
    grep -q "matplotlib is missing" "$dir/pm.log" && echo "ok: without matplotlib, tools/plot/plot_metrics.py says so (plots not drawn)" ||
        { fail "plot_metrics.py without matplotlib:"; cat "$dir/pm.log"; }
fi
exit "$status"
