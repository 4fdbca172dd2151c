#!/bin/sh
# Training on a data file that does not fit in memory: configs/shapes_dcgan64.yaml on NP
# ranks, once with each sampler (shard = streaming windows, global = random reads), from a
# cold page cache on a file of N shapes images, beside the same runs on a small file that
# the page cache holds. Per run it prints images/s, the share of the step spent on data
# (time in the loader and the noise draw: an upper bound on the wait), the peak RSS per
# rank and the disk read rate over the run.
#
# usage: tools/bench/bench_bigdata.sh OUT [N_BIG [STEPS [NP [N_SMALL]]]]
#        defaults: 2200000 (about 27 GB) 300 2 20000
# OUT holds the data files (they are large: put OUT on the disk you mean to measure) and
# results.tsv. Needs root for dropping the page cache (/proc/sys/vm/drop_caches); a file
# larger than the machine's memory cannot stay cached whatever else runs. With MEMORY_MB
# set, the training runs go into a cgroup (v1 memory controller) of that limit, which
# holds a smaller file out of the page cache too: MEMORY_MB=2048 with N_BIG=400000.
# Not a test: it runs for many minutes and needs tens of GB of disk.
set -eu
out=${1:?usage: tools/bench/bench_bigdata.sh OUT [N_BIG [STEPS [NP [N_SMALL]]]]}
n_big=${2:-2200000}
steps=${3:-300}
np=${4:-2}
n_small=${5:-20000}
mpigan=${MPIGAN:-build/mpigan}
config=configs/shapes_dcgan64.yaml
log_every=$(( steps / 3 ))
[ "$(id -u)" -eq 0 ] || { echo "bench_bigdata: needs root to drop the page cache" >&2; exit 1; }
mkdir -p "$out/big" "$out/small"

# data: rendered on all ranks; skipped when the file is already there with the right count
make_data() { # dir n
    if ! "$mpigan" data info "$1/shapes-train.h5" 2>/dev/null | grep -q "samples *$2\b"; then
        tools/mpirun.sh "$np" "$mpigan" data shapes --n "$2" --test-n 0 --out "$1"
    fi
}
make_data "$out/big" "$n_big"
make_data "$out/small" "$n_small"
mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
file_kb=$(( $(stat -c %s "$out/big/shapes-train.h5") / 1024 ))
echo "big file: $(( file_kb / 1024 )) MiB, memory: $(( mem_kb / 1024 )) MiB${MEMORY_MB:+, cgroup limit: $MEMORY_MB MiB}"

# the disk that holds the big file, for its sectors-read counter
dev=$(df --output=source "$out/big" | tail -n 1 | sed 's|/dev/||')
base_dev=$(echo "$dev" | sed 's/p\?[0-9]*$//')
sectors_read() {
    awk -v d="$dev" -v b="$base_dev" '$3 == d || $3 == b { print $6; exit }' /proc/diskstats
}

cgroup=""
if [ -n "${MEMORY_MB:-}" ]; then
    cgroup=/sys/fs/cgroup/memory/mpigan-bench
    mkdir -p "$cgroup"
    echo $(( MEMORY_MB * 1024 * 1024 )) > "$cgroup/memory.limit_in_bytes"
fi

printf 'file\tsampler\timages_per_s\tdata_share\tpeak_rss_mb\tread_mb_per_s\n' > "$out/results.tsv"
run() { # file-label dir sampler
    run_dir="$out/run-$1-$3"
    rm -rf "$run_dir"
    sync
    echo 3 > /proc/sys/vm/drop_caches
    s0=$(sectors_read)
    t0=$(date +%s.%N)
    # shellcheck disable=SC2016
    sh -c '[ -n "$1" ] && echo $$ > "$1/cgroup.procs"; shift; exec "$@"' sh "$cgroup" \
        tools/mpirun.sh "$np" "$mpigan" train "$config" --set data.path="$2/shapes-train.h5" \
        --set data.sampler="$3" --set train.steps="$steps" --set train.log_interval="$log_every" \
        --set eval.interval=0 --set train.sample_interval=0 --set checkpoint.interval=0 \
        --set run_dir="$run_dir" > "$run_dir.log" 2>&1
    t1=$(date +%s.%N)
    s1=$(sectors_read)
    # the last logged window: past start-up, the steady state
    /usr/bin/python3 - "$run_dir/metrics.jsonl" "$1" "$3" "$(( (s1 - s0) * 512 ))" "$t0" "$t1" \
        >> "$out/results.tsv" <<'EOF'
import json, sys
path, label, sampler, read_bytes, t0, t1 = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if '"images_per_s"' in l]
last = rows[-1]
step_time = last["time_window_s"]
wait = last.get("time_data_s", 0.0)
print("%s\t%s\t%.1f\t%.4f\t%.0f\t%.1f" % (label, sampler, last["images_per_s"], wait / step_time,
      max(r["peak_rss_mb"] for r in rows), int(read_bytes) / 1e6 / (float(t1) - float(t0))))
EOF
    tail -n 1 "$out/results.tsv"
}
for sampler in shard global; do
    run small "$out/small" "$sampler"
    run big "$out/big" "$sampler"
done
[ -z "$cgroup" ] || rmdir "$cgroup"
