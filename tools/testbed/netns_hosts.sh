#!/bin/sh
# Several "hosts" on one machine for multi-node MPI runs: network namespaces, each with its
# own address on a private bridge, so that ranks in different namespaces talk over TCP
# through the kernel's network stack as separate nodes do (../shared/multihost-netns.md).
#
#   tools/testbed/netns_hosts.sh up N DIR    make N hosts; write DIR/hostfile (one address per host,
#                                    slots=S from MG_NETNS_SLOTS, default 1), DIR/agent (the
#                                    rsh agent for mpirun) and DIR/hosts (names and addresses)
#   tools/testbed/netns_hosts.sh down DIR    remove the namespaces, veths and bridge listed in DIR
#   tools/testbed/netns_hosts.sh mpirun-args DIR   the mpirun flags that use them (one per line);
#                                    they include `--mca rtc ^hwloc`: the orted daemons
#                                    started in the namespaces otherwise crash now and
#                                    then in hwloc_shmem_topology_write (Open MPI 4.1.4;
#                                    rtc only serves process binding, unused here)
#
# Needs root. Only the namespaces, links and addresses made here are ever touched: names
# start with MG_NETNS_PREFIX (default "mgns$$", unique per caller) and the subnet is
# MG_NETNS_SUBNET (default 198.18.66, from the range reserved for network benchmarks),
# addresses .1 (the bridge) and .11, .12, ... (the hosts).
set -eu

usage() { echo "usage: tools/testbed/netns_hosts.sh up N DIR | down DIR | mpirun-args DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1

case "$cmd" in
up)
    [ $# -eq 3 ] || usage
    n=$2; dir=$3
    [ "$(id -u)" -eq 0 ] || { echo "netns_hosts: needs root" >&2; exit 1; }
    command -v ip >/dev/null || { echo "netns_hosts: ip (iproute2) not found" >&2; exit 1; }
    prefix=${MG_NETNS_PREFIX:-mgns$$}
    subnet=${MG_NETNS_SUBNET:-198.18.66}
    slots=${MG_NETNS_SLOTS:-1}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    br="${prefix}br"
    # record first, so that `down` removes whatever part of this got made
    { echo "prefix $prefix"; echo "subnet $subnet"; echo "bridge $br"; } >"$dir/hosts"
    ip link add "$br" type bridge
    ip addr add "$subnet.1/24" dev "$br"
    ip link set "$br" up
    : >"$dir/hostfile"
    i=1
    while [ "$i" -le "$n" ]; do
        ns="${prefix}h$i"; addr="$subnet.$((10 + i))"
        echo "host $ns $addr" >>"$dir/hosts"
        ip netns add "$ns"
        ip link add "${prefix}v$i" type veth peer name "${prefix}p$i"
        ip link set "${prefix}v$i" master "$br"
        ip link set "${prefix}v$i" up
        ip link set "${prefix}p$i" netns "$ns"
        ip netns exec "$ns" ip link set "${prefix}p$i" name eth0
        ip netns exec "$ns" ip addr add "$addr/24" dev eth0
        ip netns exec "$ns" ip link set lo up
        ip netns exec "$ns" ip link set eth0 up
        echo "$addr slots=$slots" >>"$dir/hostfile"
        i=$((i + 1))
    done
    # the rsh agent: mpirun calls it as `agent [options] HOST COMMAND...`
    cat >"$dir/agent" <<EOF
#!/bin/sh
# rsh agent for mpirun (written by tools/testbed/netns_hosts.sh): runs COMMAND in HOST's namespace.
while [ \$# -gt 0 ]; do case "\$1" in -*) shift ;; *) break ;; esac; done
host=\$1; shift
ns=\$(awk -v a="\$host" '\$1 == "host" && \$3 == a {print \$2}' "$dir/hosts")
[ -n "\$ns" ] || { echo "netns agent: unknown host \$host" >&2; exit 1; }
# a temporary folder of its own, as a separate machine has: the hosts share one hostname
# and /tmp, so their Open MPI daemons would otherwise race to make the same session folder
mkdir -p "$dir/tmp-\$ns"
exec ip netns exec "\$ns" env TMPDIR="$dir/tmp-\$ns" sh -c "\$*"
EOF
    chmod 755 "$dir/agent"
    # every host must reach every other before MPI starts
    # (a TCP connect to a closed port: "refused" means the host answered; no ping needed)
    for a in $(awk '$1 == "host" {print $3}' "$dir/hosts"); do
        r=$(ip netns exec "${prefix}h1" timeout 5 bash -c "exec 3<>/dev/tcp/$a/9" 2>&1 || true)
        case "$r" in *refused*|"") ;; *)
            echo "netns_hosts: ${prefix}h1 cannot reach $a: $r" >&2; exit 1 ;; esac
    done
    echo "netns_hosts: $n hosts up on $subnet.0/24 ($dir/hostfile)" ;;
down)
    [ $# -eq 2 ] || usage
    dir=$2
    [ -f "$dir/hosts" ] || exit 0
    prefix=$(awk '$1 == "prefix" {print $2}' "$dir/hosts")
    br=$(awk '$1 == "bridge" {print $2}' "$dir/hosts")
    for ns in $(awk '$1 == "host" {print $2}' "$dir/hosts"); do
        # processes left in the namespace (a rank that outlived mpirun) end first
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    n=$(awk '$1 == "host"' "$dir/hosts" | wc -l)
    i=1
    while [ "$i" -le "$n" ]; do
        ip link del "${prefix}v$i" 2>/dev/null || true
        i=$((i + 1))
    done
    ip link del "$br" 2>/dev/null || true
    rm -f "$dir/hosts" "$dir/hostfile" "$dir/agent"
    rm -rf "$dir"/tmp-* ;;
mpirun-args)
    dir=$(cd "$2" && pwd)
    subnet=$(awk '$1 == "subnet" {print $2}' "$dir/hosts")
    printf '%s\n' --hostfile "$dir/hostfile" --mca plm_rsh_agent "$dir/agent" \
        --mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include "$subnet.0/24" \
        --mca oob_tcp_if_include "$subnet.0/24" --mca rtc ^hwloc ;;
*) usage ;;
esac
