#!/bin/sh
# Records the golden outputs listed in tests/data/golden/cases with the snapmem binary given
# (default build/snapmem), from the repository's top directory: sh tests/data/golden/regen.sh [BIN].
# Recorded once, with the binary of commit 1e6e5a1 (before the pipeline descriptions replaced the
# C model): re-recording is only for a deliberate change of the estimate, said in the commit.
# Re-recorded since, each time deliberately (`git log -- tests/data/golden` has the reasons): for
# issue 13's least_address_space_bytes, mpi.cells_per_file_max and mpi.per_rank_peak_resident_bytes
# (6c74152), the per-rank address space and resident baselines (128a539, 06ed6e5), one
# assumption's wording (the halo grid side is sm_model_halo_grid_side, the model contract's), and
# the resident baselines measured again once the fast path's fields were found without HDF5
# opening the chunk files, and the distributed run's resident baselines measured again with the
# 131,072-cell default block, rank 0's apart from the other ranks' (baseline_resident_other_ranks),
# and their address-space baselines with it; and the arrays mapped in with huge pages
# (`pages: huge`), whose 4 KiB tail of 1 MiB or more is resident to the next 2 MiB (docs/MODEL.md
# "The four peaks"; TNG300-1's default resident +1.5 MB), with the estimate's allocated line; and
# the serial resident baseline measured again once the binary no longer linked Open MPI (the MPI
# module, docs/MPI.md: 12,209,664 -> 11,090,773 bytes).
# The cases give --stream-block 1048576 where they used the default (cases says why).
set -eu
bin=${1:-build/snapmem}
dir=tests/data/golden
tmp=$(mktemp -d "${TMPDIR:-/tmp}/golden.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
i=0
grep -v '^#' "$dir/cases" | while IFS='|' read -r name mock args; do
	name=$(echo $name)
	mock=$(echo $mock)
	i=$((i + 1))
	m="$tmp/m$i"
	if [ "$mock" != "-" ]; then
		# shellcheck disable=SC2086
		"$bin" mock "$m" $mock >/dev/null
	fi
	# shellcheck disable=SC2086
	set -- $(echo $args | sed "s|@MOCK@|$m|g")
	rc=0
	"$bin" "$@" >"$tmp/out" || rc=$?
	[ "$rc" -eq 0 ] || { echo "regen: $name: exit $rc" >&2; exit 1; }
	sed "s|$m|@MOCK@|g" "$tmp/out" >"$dir/$name"
	echo "$name: $(wc -c <"$dir/$name") bytes"
done
