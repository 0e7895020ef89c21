#!/bin/sh
# make demo: the main job on built-in defaults. Writes only under build/demo (beside the binary).
#   1. snapmem estimate: the embedded TNG300-1 snapshot 99 plan (headers only, no data);
#   2. a mock TNG-layout snapshot (3 million gas cells, 20 halos above 1e14 Msun);
#   3. snapmem run on it: profiles.hdf5, estimate.json, memory.json, report.md, report.html;
#   4. where the report is.
set -eu
bin="$1"
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
