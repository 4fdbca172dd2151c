#!/bin/sh
# A private one-node Slurm on this machine, for trying and testing jobs/slurm/*.sbatch.
#   tools/testbed/slurm_local.sh up DIR     start munged, slurmctld and slurmd with all state in DIR
#   tools/testbed/slurm_local.sh down DIR   stop them (by the pid files in DIR) and remove DIR
# After `up`, use the cluster with: export SLURM_CONF=DIR/slurm.conf; sbatch ...
#
# Needs root and Debian's slurm-wlm and munge (tests/test_slurm.sh installs them). Nothing
# system-wide is touched: munged gets its own key and socket in DIR, the daemons their own
# config, ports, spool, state, logs and pid files in DIR, so a Slurm or munge already on the
# machine is left alone. The recipe (one node, proctrack/linuxproc, task/none, no cgroups)
# is the one in ../shared/slurm-local.md.
# Environment: MG_SLURM_CTLD_PORT, MG_SLURM_D_PORT (default 16817, 16818).
set -eu

usage() { echo "usage: tools/testbed/slurm_local.sh up|down DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1; dir=$2

pid_of() { [ -s "$1" ] && cat "$1" || true; }

# Stops the process whose pid file is $1 (TERM, then KILL after ~10 s).
stop_pidfile() {
    pid=$(pid_of "$1")
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
    kill -9 "$pid" 2>/dev/null || true
}

case "$cmd" in
down)
    [ -d "$dir" ] || exit 0
    # jobs first, so no slurmstepd outlives its slurmd
    if [ -f "$dir/slurm.conf" ] && [ -s "$dir/slurmctld.pid" ]; then
        SLURM_CONF="$dir/slurm.conf" scancel --quiet --user="$(id -un)" 2>/dev/null || true
        sleep 1
    fi
    stop_pidfile "$dir/slurmd.pid"
    stop_pidfile "$dir/slurmctld.pid"
    # any slurmstepd of this cluster that is still there (matched by its spool dir)
    for p in /proc/[0-9]*; do
        [ -r "$p/cmdline" ] || continue
        if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "^slurmstepd" &&
           tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "SLURM_CONF=$dir/slurm.conf"; then
            kill -9 "${p#/proc/}" 2>/dev/null || true
        fi
    done
    stop_pidfile "$dir/munged.pid"
    rm -rf "$dir"
    exit 0 ;;
up) ;;
*) usage ;;
esac

[ "$(id -u)" -eq 0 ] || { echo "slurm_local: needs root" >&2; exit 1; }
for b in munged slurmctld slurmd sbatch sinfo; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
        { echo "slurm_local: $b not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
chmod 755 "$dir"
mkdir -p "$dir/state" "$dir/spool" "$dir/log"
ctld_port=${MG_SLURM_CTLD_PORT:-16817}
d_port=${MG_SLURM_D_PORT:-16818}

# munge: a fresh key of our own, private socket
dd if=/dev/urandom of="$dir/munge.key" bs=128 count=1 2>/dev/null
chmod 400 "$dir/munge.key"
/usr/sbin/munged --socket="$dir/munge.sock" --key-file="$dir/munge.key" --pid-file="$dir/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed"
munge -S "$dir/munge.sock" -n | unmunge -S "$dir/munge.sock" >/dev/null ||
    { echo "slurm_local: munge does not work (see $dir/log/munged.log)" >&2; exit 1; }

host=$(hostname)
# slurmd -C prints this machine's node line; give Slurm 80% of the free memory
node=$(/usr/sbin/slurmd -C | head -n 1 | sed 's/ RealMemory=[0-9]*//')
mem=$(awk '/^MemAvailable:/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
cat >"$dir/slurm.conf" <<EOF
# written by tools/testbed/slurm_local.sh
ClusterName=mpigan-local
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job may start again after this many seconds (default 120)
AuthInfo=socket=$dir/munge.sock,cred_expire=5
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=10
MinJobAge=600
SchedulerParameters=sched_interval=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
$node RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"
/usr/sbin/slurmctld -f "$SLURM_CONF" -i
/usr/sbin/slurmd -f "$SLURM_CONF"
i=0
until sinfo -h -o %T 2>/dev/null | grep -qx idle; do
    i=$((i + 1))
    if [ $i -gt 60 ]; then
        echo "slurm_local: the node did not become idle within 30 s; sinfo says:" >&2
        sinfo >&2 || true
        tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
        exit 1
    fi
    sleep 0.5
done
echo "slurm_local: up ($host, $(sinfo -h -o %c) CPUs); export SLURM_CONF=$SLURM_CONF"
