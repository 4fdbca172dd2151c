#!/bin/sh
# mpirun with the flags this machine needs: --allow-run-as-root only as root, and
# --oversubscribe so that tests may start more ranks than there are cores.
# Usage: tools/mpirun.sh NP PROGRAM [ARGS...]
set -eu
np=$1; shift
extra=""
[ "$(id -u)" -eq 0 ] && extra="--allow-run-as-root"
# PMIx's shared-memory store prints harmless errors in containers; the hash store is quiet.
export PMIX_MCA_gds="${PMIX_MCA_gds:-hash}"
# shellcheck disable=SC2086
exec mpirun $extra --oversubscribe --bind-to none -np "$np" "$@"
