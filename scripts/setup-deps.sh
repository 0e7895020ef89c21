#!/bin/sh
# Installs the Debian packages snapmem needs to build and test, when any is missing.
#
# Idempotent: when every package is already installed it does nothing and exits 0. As root it runs
# `apt-get update` once and then `apt-get install`; as anyone else it prints the exact command to
# run and exits 2. `make check`, `make demo` and `.ci/run` call it first, so that on a fresh Debian
# machine those are the only commands a person types.
#
# Usage: scripts/setup-deps.sh [EXTRA_PACKAGE...]   (extra packages for optional targets)
set -eu

PACKAGES="build-essential pkg-config libhdf5-dev hdf5-tools libjemalloc-dev libunwind-dev libdw-dev \
libcmocka-dev libjansson-dev libyaml-dev libopenmpi-dev openmpi-bin python3 python3-numpy python3-h5py"

missing=""
for p in $PACKAGES "$@"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "snapmem: missing Debian packages:$missing" >&2
	echo "snapmem: run: sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 2
fi

echo "snapmem: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
