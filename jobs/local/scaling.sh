#!/bin/sh
# The scaling sweep on this machine (tools/study/scaling.py; docs/scaling.md), as used for the
# figures of docs/scaling.md: DCGAN-28 (configs/fmnist_dcgan.yaml; synthetic data of the
# same shape while the trainer cannot read the HDF5 file), strong and weak scaling, ranks x
# threads and the per-rank batch series, over shared memory, TCP and, as root, two network
# namespaces as separate hosts. Run from the mpigan folder:
#
#   jobs/local/scaling.sh [OUT] [tools/study/scaling.py options]
#   jobs/local/scaling.sh runs/scaling --repeat 3            # on a quiet machine
#   jobs/local/scaling.sh runs/scaling-mh --hostfile jobs/local/hostfile.example --transports auto,tcp
#
# Writes OUT/scaling.csv, OUT/allreduce_*.csv, OUT/model.md, OUT/report.md and the PNG
# plots (OUT defaults to runs/scaling). Variables: CONFIG (default configs/fmnist_dcgan.yaml).
# Needs python3; the report needs matplotlib (Debian's python3-matplotlib, installed by
# tools/deps.sh --run).
set -eu
out=${1:-runs/scaling}
[ $# -gt 0 ] && shift
transports=shm,tcp
[ "$(id -u)" -eq 0 ] && transports=shm,tcp,netns
for a in "$@"; do [ "$a" = --transports ] && transports=""; done
py=python3
/usr/bin/python3 -c "import matplotlib" 2>/dev/null && py=/usr/bin/python3
[ -x build/mpigan ] && [ -x build/tools/bench/bench_allreduce ] || make build/mpigan build/tools/bench/bench_allreduce
if [ -n "$transports" ]; then
    exec "$py" tools/study/scaling.py --config "${CONFIG:-configs/fmnist_dcgan.yaml}" --out "$out" --transports "$transports" "$@"
fi
exec "$py" tools/study/scaling.py --config "${CONFIG:-configs/fmnist_dcgan.yaml}" --out "$out" "$@"
