#!/bin/sh
# mpirun with the flags this machine needs: --allow-run-as-root only as root,
# --oversubscribe so that tests may start more ranks than there are cores, and
# mpi_yield_when_idle (below). Arguments after NP go to mpirun (e.g. --mca btl self,tcp).
# Usage: tools/mpirun.sh NP PROGRAM [ARGS...]
set -eu
np=$1; shift
extra=""
[ "$(id -u)" -eq 0 ] && extra="--allow-run-as-root"
# PMIx's shared-memory store prints harmless errors in containers; the hash store is quiet.
export PMIX_MCA_gds="${PMIX_MCA_gds:-hash}"
# Waiting ranks yield their core (sched_yield) instead of spinning: on this shared 2-core
# machine that made DCGAN-28 at np=2 1.6-1.8x faster under heavy load, and over TCP also
# at moderate load (spinning ranks starve the kernel's TCP processing); neutral over shared
# memory at moderate load (docs/scaling.md). Set OMPI_MCA_mpi_yield_when_idle=0, or pass
# --mca mpi_yield_when_idle 0, to spin.
export OMPI_MCA_mpi_yield_when_idle="${OMPI_MCA_mpi_yield_when_idle:-1}"
# shellcheck disable=SC2086
exec mpirun $extra --oversubscribe --bind-to none -np "$np" "$@"
