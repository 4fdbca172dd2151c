#!/bin/sh
# Multi-host training on one machine: two "hosts" in network namespaces with
# their own addresses (tools/testbed/netns_hosts.sh), one rank in each, launched by mpirun with a
# hostfile and an rsh agent, messages over TCP through the kernel's network stack. The
# tiny config trained across the two hosts must give bitwise the checkpoint of the same
# run on one host (np 2 over shared memory). Needs root (namespaces); otherwise skipped
# (exit 77, tests/run.sh).
# The namespaces, links and addresses the test made are removed afterwards.
set -u
build=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
mpigan="$root/$build/mpigan"

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root (network namespaces); run make test as root for the multi-host test"
    exit 77
fi
for b in ip mpirun h5diff bash; do
    command -v "$b" >/dev/null 2>&1 || { echo "FAIL: $b not found"; exit 1; }
done
[ -x "$mpigan" ] || { echo "FAIL: $mpigan not built"; exit 1; }

dir=$(mktemp -d /tmp/mpigan_multihost.XXXXXX)
cleanup() {
    "$root/tools/testbed/netns_hosts.sh" down "$dir/hosts" || echo "WARNING: could not remove the test's namespaces"
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

MG_NETNS_PREFIX="mgmh$$" "$root/tools/testbed/netns_hosts.sh" up 2 "$dir/hosts" || { echo "FAIL: could not make the hosts"; exit 1; }

export PMIX_MCA_gds=hash OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0
# shellcheck disable=SC2046
if ! timeout 120 mpirun -np 2 --bind-to none $("$root/tools/testbed/netns_hosts.sh" mpirun-args "$dir/hosts") \
        -x OPENBLAS_NUM_THREADS=1 -x PMIX_MCA_gds \
        "$mpigan" train "$root/configs/tiny.yaml" --set run_dir="$dir/two_hosts" >"$dir/two.log" 2>&1; then
    echo "FAIL: training across two namespace hosts failed:"; cat "$dir/two.log"; exit 1
fi
grep -q "2 ranks, 1 per node" "$dir/two.log" ||
    { echo "FAIL: the ranks did not run as two hosts:"; cat "$dir/two.log"; status=1; }
if ! OPENBLAS_NUM_THREADS=1 timeout 120 "$root/tools/mpirun.sh" 2 "$mpigan" train "$root/configs/tiny.yaml" \
        --set run_dir="$dir/one_host" >"$dir/one.log" 2>&1; then
    echo "FAIL: the single-host run failed:"; cat "$dir/one.log"; exit 1
fi
a="$dir/two_hosts/checkpoints/$(cat "$dir/two_hosts/checkpoints/latest" 2>/dev/null)"
b="$dir/one_host/checkpoints/$(cat "$dir/one_host/checkpoints/latest" 2>/dev/null)"
[ -f "$a" ] && [ -f "$b" ] || { echo "FAIL: a checkpoint is missing ($a, $b)"; exit 1; }
for d in G/param D/param G/state D/state; do
    if ! h5diff -q "$a" "$b" "$d" "$d" >/dev/null 2>&1; then
        echo "FAIL: $d differs between the two-host and the one-host run"; status=1
    fi
done
if [ "$(tail -n 1 "$dir/two_hosts/metrics.jsonl" | sed 's/, "images_per_s.*//')" != \
     "$(tail -n 1 "$dir/one_host/metrics.jsonl" | sed 's/, "images_per_s.*//')" ]; then
    echo "FAIL: the last metrics lines differ"; status=1
fi
[ "$status" -eq 0 ] && echo "ok: tiny config across two namespace hosts (TCP) equals the one-host run bitwise"
exit "$status"
