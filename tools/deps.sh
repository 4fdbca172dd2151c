#!/bin/sh
# Makes sure the Debian packages mpigan needs are installed.
#   tools/deps.sh          build and test dependencies (what `make test` needs)
#   tools/deps.sh --run    also what `make run` needs (plots)
#   tools/deps.sh --bench-train   also the PyTorch peer's packages (make bench-train)
# As root, missing packages are installed from Debian's archive (apt-get update first).
# As another user, one message lists what is missing and how to install it.
set -eu

packages="make gcc pkg-config openmpi-bin libopenmpi-dev libopenblas-dev libhdf5-openmpi-dev
hdf5-tools libyaml-dev libpng-dev libjpeg62-turbo-dev zlib1g-dev libcmocka-dev libdnnl-dev dataset-fashion-mnist"
if [ "${1:-}" = "--run" ]; then
    packages="$packages python3-numpy python3-h5py python3-matplotlib"
fi
if [ "${1:-}" = "--bench-train" ]; then
    packages="$packages python3-torch python3-numpy python3-h5py"
fi

missing=""
for p in $packages; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "mpigan: missing Debian packages:$missing" >&2
    echo "mpigan: install them as root with: apt-get install --no-install-recommends$missing" >&2
    exit 1
fi

echo "mpigan: installing missing packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
