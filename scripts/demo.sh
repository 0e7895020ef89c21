#!/bin/sh
# make demo: the main job on built-in defaults. Writes only under build/demo (beside the binary).
#   1. snapmem estimate: the embedded TNG300-1 snapshot 99 plan (headers only, no data);
#   2. a mock TNG-layout snapshot (3 million gas cells, 20 halos above 1e14 Msun);
#   3. snapmem run on it: profiles.hdf5, estimate.json, memory.json, report.md, report.html;
#   4. where the report is;
#   5. the notebook's pipeline in Python (examples/notebook/radial_profiles.py, numpy + h5py) on
#      the same mock data under `snapmem profile --python-lines`: where its peak is and why, beside
#      the C pipeline's figures (skipped, saying so, without Debian's python3-numpy/h5py or a
#      preload library).
set -eu
bin="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(dirname "$bin")/demo"
rm -rf "$out"
mkdir -p "$out"
echo "== snapmem estimate (TNG300-1 snapshot 99, 280 halos, from the embedded header)"
"$bin" estimate || echo "(snapmem estimate failed: exit $?)"
echo
echo "== snapmem mock: 3,000,000 gas cells, 20 halos"
"$bin" mock "$out/mock" --gas 3000000 --halos 20 --files 8 --seed 1
echo
echo "== snapmem run"
"$bin" run --base-path "$out/mock" --snap 99 --out "$out/run"
echo
if [ -f "$out/run/report.html" ]; then
	echo "report: $out/run/report.html (and report.md); measurement: $out/run/memory.json"
else
	echo "run directory: $out/run (no report writer in this binary: 'snapmem report $out/run')"
fi
echo
echo "== snapmem profile: the notebook's pipeline in Python (numpy + h5py), the same mock data"
py=/usr/bin/python3
if [ ! -f "$(dirname "$bin")/libsnapmem-preload.so" ]; then
	echo "(skipped: no libsnapmem-preload.so beside $bin: a build without jemalloc)"
elif ! "$py" -c 'import numpy, h5py' 2>/dev/null; then
	echo "(skipped: $py cannot import numpy and h5py: scripts/setup-deps.sh installs them)"
else
	PYTHONPATH="$(dirname "$bin")/python" "$bin" profile --python-lines --out "$out/notebook" -- \
		"$py" "$root/examples/notebook/radial_profiles.py" "$out/mock" 99 "$out/notebook/profiles.hdf5"
	echo
	"$py" "$root/examples/notebook/summary.py" "$out/notebook" "$out/run"
	echo "(report: $out/notebook/report.html, flame graph of the peak inside)"
fi
