#!/bin/bash
# mpigan training with plain mpirun: this machine, or several with a hostfile. Run from the
# mpigan folder:
#
#   jobs/local/train.sh [-n NP] [-t THREADS] [-H HOSTFILE] [-T SECONDS] [-R RESTARTS] CONFIG [--set k=v ...]
#
#   -n NP        ranks (default: this machine's cores / THREADS, or the hostfile's slots)
#   -t THREADS   OpenBLAS threads per rank (default 1)
#   -H HOSTFILE  Open MPI hostfile for a multi-node run (jobs/local/hostfile.example); the
#                mpigan folder must be at the same path on every node, run_dir on a shared
#                file system
#   -T SECONDS   a time limit, as a batch system would set: USR1 after SECONDS, mpigan
#                checkpoints and exits (the run continues with the next invocation)
#   -R RESTARTS  with -T: start again from the checkpoint, up to RESTARTS times, until the
#                training completes (what Slurm's requeue does; jobs/slurm/train.sbatch)
#
# Always passes --resume: a second invocation continues from the newest checkpoint of the
# run (checkpoint.dir, default run_dir/checkpoints). Ctrl-C or SIGTERM to this script stops
# the training with a checkpoint too. Writes what `mpigan train` writes: run_dir/config.yaml,
# metrics.jsonl, checkpoints. Variables: MPIGAN (default build/mpigan), MPIRUN_ARGS (extra
# mpirun arguments, e.g. "--mca btl self,tcp" to force TCP).
set -u

np="" threads=1 hostfile="" limit="" restarts=0
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "n:t:H:T:R:h" o; do
    case "$o" in
    n) np=$OPTARG ;;
    t) threads=$OPTARG ;;
    H) hostfile=$OPTARG ;;
    T) limit=$OPTARG ;;
    R) restarts=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
config=$1; shift
MPIGAN=${MPIGAN:-build/mpigan}
[ -x "$MPIGAN" ] || { echo "train.sh: $MPIGAN not found (build with make)" >&2; exit 1; }
[ -f "$config" ] || { echo "train.sh: config $config not found" >&2; exit 1; }

if [ -z "$np" ]; then
    if [ -n "$hostfile" ]; then
        slots=$(awk '!/^#/ && NF { s = 1; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) s = substr($i, 7); n += s } END { print n + 0 }' "$hostfile")
        np=$slots
    else
        np=$(( $(nproc) / threads ))
        [ "$np" -ge 1 ] || np=1
    fi
fi
launch=(mpirun -np "$np" --bind-to none -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS -x PMIX_MCA_gds)
[ "$(id -u)" -eq 0 ] && launch+=(--allow-run-as-root)
[ -n "$hostfile" ] && launch+=(--hostfile "$hostfile")
[ -z "$hostfile" ] && [ $((np * threads)) -gt "$(nproc)" ] && launch+=(--oversubscribe)
# shellcheck disable=SC2206
[ -n "${MPIRUN_ARGS:-}" ] && launch+=($MPIRUN_ARGS)
export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads PMIX_MCA_gds=${PMIX_MCA_gds:-hash}

run=0
while :; do
    echo "train.sh: ${launch[*]} $MPIGAN train $config $* --resume   (run $run, $(date -Is))"
    "${launch[@]}" "$MPIGAN" train "$config" "$@" --resume &
    pid=$!
    timer=""
    if [ -n "$limit" ]; then
        (sleep "$limit" && echo "train.sh: time limit ($limit s): USR1" && kill -USR1 "$pid" 2>/dev/null) &
        timer=$!
    fi
    stopped=0
    trap 'stopped=1; kill -USR1 "$pid" 2>/dev/null' INT TERM
    while :; do
        wait "$pid"; rc=$?
        kill -0 "$pid" 2>/dev/null || break
    done
    trap - INT TERM
    hit=0
    if [ -n "$timer" ]; then
        if kill -0 "$timer" 2>/dev/null; then
            kill "$timer" 2>/dev/null; wait "$timer" 2>/dev/null
        else
            hit=1
        fi
    fi
    echo "train.sh: mpigan exited with status $rc"
    # USR1 can reach mpirun after the ranks have ended, while it is exiting: it then dies
    # of the signal. Nothing is lost (the ranks checkpointed or finished), so restart with
    # --resume as for any stop at the time limit; a finished run ends at once.
    if [ "$hit" -eq 1 ] && [ "$rc" -eq $((128 + $(kill -l USR1))) ]; then
        echo "train.sh: the time-limit signal reached mpirun as it was exiting; restarting with --resume"
        rc=0
    fi
    if [ "$rc" -ne 0 ] || [ "$hit" -eq 0 ] || [ "$stopped" -eq 1 ]; then exit "$rc"; fi
    if [ "$run" -ge "$restarts" ]; then
        echo "train.sh: stopped at the time limit with a checkpoint after $run restart(s); run the same command again to continue"
        exit 0
    fi
    run=$((run + 1))
    echo "train.sh: stopped at the time limit with a checkpoint; restart $run of $restarts"
done
