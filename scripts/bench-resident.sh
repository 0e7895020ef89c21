#!/usr/bin/env bash
# make bench, "Resident peak" section (called by scripts/bench.sh): the predicted resident peak of
# the whole process (estimate.json peak_resident_bytes: before the run in pre_run, and calibrated
# with the run's measured sphere sizes) against what the kernel measured (memory.json
# process.vm_hwm, VmHWM), for float32/float64 x index/mask in one process, and per rank for
# mpirun -np 2 and 3 (memory.json mpi.per_rank[].vm_hwm against the per-rank estimate). Also the
# address space (VmPeak) beside its prediction. One run each (the figures are memory, not time).
# Appends a table to OUT_MD and a "resident" object to OUT_JSON.
#
#   scripts/bench-resident.sh BIN MOCK_DIR CELLS OUT_MD OUT_JSON WORK_DIR MPI_SKIP_REASON
set -euo pipefail
bin="$1" mock="$2" cells="$3" out_md="$4" out_json="$5" work="$6" mpi_skip="${7:-}"
rows="$work/resident.jsonl"
: >"$rows"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
say() { echo "bench: $*" >&2; }

say "resident peak: 4 runs at $cells cells (float32/float64 x index/mask), predicted vs VmHWM"
for pos in float32 float64; do
	for sel in index mask; do
		o="$work/resident-run"
		rm -rf "$o"
		"$bin" run --base-path "$mock" --snap 99 --out "$o" --force --positions "$pos" \
			--select "$sel" >/dev/null 2>&1
		jq -c --arg pos "$pos" --arg sel "$sel" --slurpfile m "$o/memory.json" '{
			kind: "serial", positions: $pos, select: $sel, ranks: 1,
			predicted_pre_run: .pre_run.peak_resident_bytes,
			predicted: .peak_resident_bytes,
			measured_min: $m[0].process.vm_hwm, measured_max: $m[0].process.vm_hwm,
			address_predicted: .peak_address_space_bytes,
			address_measured: $m[0].process.vm_peak}' "$o/estimate.json" >>"$rows"
	done
done
if [ -z "$mpi_skip" ]; then
	flags=(--oversubscribe)
	[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
	for np in 2 3; do
		say "resident peak: mpirun -np $np at $cells cells, per rank"
		o="$work/resident-mpi"
		rm -rf "$o"
		mpirun "${flags[@]}" -np "$np" "$bin" run --mpi --base-path "$mock" --snap 99 --out "$o" \
			--force >/dev/null 2>&1
		jq -c --argjson np "$np" --slurpfile m "$o/memory.json" '. as $e | {
			kind: "rank", positions: "float32", select: "index", ranks: $np,
			predicted_pre_run: .pre_run.peak_resident_bytes,
			predicted: .peak_resident_bytes,
			measured_min: ($m[0].mpi.per_rank | map(.vm_hwm) | min),
			measured_max: ($m[0].mpi.per_rank | map(.vm_hwm) | max),
			# every rank against its own prediction (a rank touches as much of its block
			# as its largest chunk file fills: docs/MODEL.md)
			rank_pairs: [$m[0].mpi.per_rank[] | . as $r |
				[(.rank as $i | $e.mpi.per_rank_peak_resident_bytes[$i]? //
				  $e.peak_resident_bytes), $r.vm_hwm]],
			address_predicted: .peak_address_space_bytes,
			address_measured: $m[0].process.vm_peak}' "$o/estimate.json" >>"$rows"
	done
	rm -rf "$work/resident-mpi"
fi
rm -rf "$work/resident-run"

load1=$(cut -d' ' -f1-3 /proc/loadavg)
jq --argjson cells "$cells" --arg skip "$mpi_skip" --slurpfile r "$rows" --arg l0 "$load0" \
	--arg l1 "$load1" '
	.resident = {cells: $cells, mpi_skipped: (if $skip == "" then null else $skip end),
		     load_average_start: $l0, load_average_end: $l1, runs: $r}' "$out_json" \
	>"$out_json.tmp"
mv "$out_json.tmp" "$out_json"

jq -r '
	def f(x; n): (x * pow(10; n) | round) / pow(10; n);
	def pct(p; m): f((p - m) / m * 100; 2);
	def sg(x): if x > 0 then "+\(x)" else "\(x)" end;
	"",
	"## Resident peak: predicted vs VmHWM\n",
	"The whole process'"'"'s resident peak as `estimate` predicts it (`peak_resident_bytes`: the tracked arrays rounded to pages plus the measured resident baseline, docs/MODEL.md \"The four peaks\") against the kernel'"'"'s VmHWM at the end of the run (memory.json `process.vm_hwm`; per rank `mpi.per_rank[].vm_hwm`), at \(.resident.cells) cells, one run each. *Before the run*: the estimate from modelled sphere sizes (estimate.json `pre_run`); *calibrated*: recomputed with the run'"'"'s measured sphere sizes (a distributed rank holds no sphere arrays: the two agree). A distributed run: every rank'"'"'s VmHWM against its own predicted resident peak (estimate.json `mpi.per_rank_peak_resident_bytes`), the range of the errors. The target is 2 %. Address space: VmPeak (rank 0'"'"'s for a distributed run: the busiest, it also writes the documents) against `peak_address_space_bytes`, shown, not judged. Load average (1, 5, 15 min) \(.resident.load_average_start) at the start, \(.resident.load_average_end) at the end.\n",
	"| run | VmHWM | predicted before the run | error | predicted, calibrated | error | VmPeak | predicted address space | error |",
	"|---|---:|---:|---:|---:|---:|---:|---:|---:|",
	(.resident.runs[] |
	 (if .kind == "serial" then "\(.positions), \(.select), one process"
	  else "-np \(.ranks), per rank (\(.positions), \(.select))" end) as $name |
	 (if .measured_min == .measured_max then "\(f(.measured_max / 1048576; 2)) MiB"
	  else "\(f(.measured_min / 1048576; 2))-\(f(.measured_max / 1048576; 2)) MiB" end) as $hwm |
	 # one process: its prediction against its VmHWM; a distributed run: every rank against
	 # its own (the pre-run estimate of a rank is the calibrated one: no sphere arrays)
	 (if .kind == "serial" then [[.predicted_pre_run, .measured_max]]
	  else .rank_pairs end) as $pre |
	 (if .kind == "serial" then [[.predicted, .measured_max]] else .rank_pairs end) as $cal |
	 def errs(p): p | map(pct(.[0]; .[1]));
	 def span(e): if (e | min) == (e | max) then "\(sg(e[0])) %"
		      else "\(sg(e | min)) to \(sg(e | max)) %" end;
	 def mib(p): (p | map(.[0]) | unique) as $u |
		     if ($u | length) == 1 then "\(f($u[0] / 1048576; 2)) MiB"
		     else "\(f($u | min / 1048576; 2))-\(f($u | max / 1048576; 2)) MiB" end;
	 "| \($name) | \($hwm) | \(mib($pre)) | \(span(errs($pre))) | \(mib($cal)) | \(span(errs($cal))) | \(f(.address_measured / 1048576; 1)) MiB | \(f(.address_predicted / 1048576; 1)) MiB | \(sg(pct(.address_predicted; .address_measured))) % |"),
	(if .resident.mpi_skipped != null then "\nPer rank: skipped, \(.resident.mpi_skipped)." else empty end)
	' "$out_json" >>"$out_md"
