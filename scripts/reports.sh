#!/bin/sh
# make reports: regenerate the committed reference reports in reports/ so that a visitor sees what
# snapmem produces without running anything:
#   reports/tng300-1-plan.md   the TNG300-1 plan (snapmem estimate --format markdown) followed by
#                              mock runs at two sizes fitted and scaled to TNG300-1 beside the
#                              notebook's documented figures (snapmem report --scale-to)
#   reports/mock-run.md, reports/mock-run.html   a full run on mock data (2,000,000 cells)
#   reports/tng300-1-plan-mpi.md  the distributed run planned for TNG300-1 (64 ranks, 256 GiB nodes)
#   reports/mock-run-mpi.md    the same mock run over 3 MPI ranks (when mpirun and an MPI build exist)
#   reports/bench.md, reports/bench.json  copied from the last full `make bench` (BUILD/bench/, the
#                              directory of the binary); left as they are when there is none or
#                              it was a QUICK=1 run (`make reports BENCH=1` runs the benchmark first)
# Scratch data goes under a temporary directory that is removed at the end.
#   scripts/reports.sh PATH/TO/snapmem
set -eu
bin="${1:?usage: reports.sh PATH/TO/snapmem}"
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/reports"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

# mock runs: 1,000,000 and 4,000,000 cells (the scaling pair), 2,000,000 (the reference run)
for n in 1000000 2000000 4000000; do
	"$bin" mock "$tmp/mock-$n" --gas "$n" --halos 20 --files 8 --seed 1 >/dev/null
	"$bin" run --base-path "$tmp/mock-$n" --snap 99 --out "$tmp/run-$n" >/dev/null 2>&1
done

plan="$out/tng300-1-plan.md"
{
	"$bin" estimate --format markdown
	echo
	echo "# Mock runs scaled to TNG300-1"
	echo
	echo "Runs of the pipeline on mock snapshots of 1,000,000 and 4,000,000 gas cells (20 halos,"
	echo "default options), fitted bytes = a + b*N and extrapolated to TNG300-1, beside the estimator"
	echo "and the notebook's documented figures."
	echo
	# exit 1 (a figure that must match does not) is reported in the file, not fatal here
	"$bin" report --scale-to TNG300-1 "$tmp/run-1000000" "$tmp/run-4000000" --format markdown \
		| sed "s|$tmp/||g" || true
} > "$plan.tmp"
mv "$plan.tmp" "$plan"

"$bin" report "$tmp/run-2000000" --format markdown | sed "s|$tmp/||g" > "$out/mock-run.md.tmp" || true
"$bin" report "$tmp/run-2000000" --format html | sed "s|$tmp/||g" > "$out/mock-run.html.tmp" || true
[ -s "$out/mock-run.md.tmp" ] && [ -s "$out/mock-run.html.tmp" ] || {
	echo "reports: the mock run report is empty" >&2
	exit 1
}
mv "$out/mock-run.md.tmp" "$out/mock-run.md"
mv "$out/mock-run.html.tmp" "$out/mock-run.html"
"$bin" estimate --ranks 64 --node-mem 256GiB --format markdown > "$out/tng300-1-plan-mpi.md.tmp"
mv "$out/tng300-1-plan-mpi.md.tmp" "$out/tng300-1-plan-mpi.md"

mpi_note="(skipped: no mpirun)"
if command -v mpirun >/dev/null 2>&1; then
	flags="--oversubscribe"
	[ "$(id -u)" = 0 ] && flags="$flags --allow-run-as-root"
	# shellcheck disable=SC2086
	if mpirun -q $flags -np 3 "$bin" run --mpi --base-path "$tmp/mock-2000000" --snap 99 \
		--out "$tmp/run-mpi" >/dev/null 2>&1; then
		"$bin" report "$tmp/run-mpi" --format markdown | sed "s|$tmp/||g" \
			> "$out/mock-run-mpi.md.tmp" || true
		[ -s "$out/mock-run-mpi.md.tmp" ] && mv "$out/mock-run-mpi.md.tmp" "$out/mock-run-mpi.md"
		mpi_note="$out/mock-run-mpi.md"
	else
		mpi_note="(skipped: snapmem run --mpi failed; built without MPI?)"
	fi
fi
bench_dir="$(dirname "$bin")/bench"
if [ -s "$bench_dir/bench.md" ] && [ -s "$bench_dir/bench.json" ]; then
	if grep -q '"mode": *"full"' "$bench_dir/bench.json"; then
		cp "$bench_dir/bench.json" "$out/bench.json.tmp"
		cp "$bench_dir/bench.md" "$out/bench.md.tmp"
		mv "$out/bench.json.tmp" "$out/bench.json"
		mv "$out/bench.md.tmp" "$out/bench.md"
		bench_note="$out/bench.md (from $bench_dir)"
	else
		bench_note="reports/bench.md kept ($bench_dir holds a QUICK=1 run; make bench for a full one)"
	fi
else
	bench_note="reports/bench.md kept (no make bench result in $bench_dir; make reports BENCH=1 runs one)"
fi
echo "reports: $plan, $out/mock-run.md, $out/mock-run.html, $out/tng300-1-plan-mpi.md, $mpi_note, $bench_note"
