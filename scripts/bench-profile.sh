#!/usr/bin/env bash
# bench-profile: what `snapmem profile` costs and how its figures compare, measured in one run
# (called by scripts/bench.sh, which appends BUILD_DIR/bench/profile.md to bench.md; the figures
# also go to BUILD_DIR/bench/profile.json). Targets (issue 14):
#   - the allocation-heavy loop (tests/progs/allocloop: 5,000,000 malloc/free pairs of 16-528
#     bytes, a plain program) under `snapmem profile` <= 1.5x the plain run (glibc's malloc), also
#     shown beside jemalloc alone (LD_PRELOAD) to separate the allocator from the profiler;
#   - the numpy notebook example (examples/notebook/radial_profiles.py on a 3,000,000-cell mock
#     whose group catalogue, like a real one, holds many small groups: 20 halos above 1e14 Msun
#     and 100,000 below; TNG100-1's holds 4.4 million. With 40 groups, load_halos allocated
#     13 KB, of which the stage markers' own objects were a quarter: docs/PROFILE.md)
#     <= 1.10x wall; --python-lines measured beside it;
#   - the profiled process's VmHWM within 3 % of the plain run's (getrusage of the child), the
#     profiler's own memory (profiler.self_bytes) shown apart; beside it, one profiled run with
#     SNAPMEM_PROFILE_LARGE=off (jemalloc serving the large blocks too, as before they went to
#     glibc: docs/PROFILE.md "Large blocks");
#   - per-step peaks of the numpy example within 5 % of tracemalloc's (both above the memory
#     when step 1 began; per-halo steps: the largest halo), like with like: tracemalloc counts
#     the requested bytes of Python's allocator domains and numpy's array data, and so does the
#     profiled run with --python-lines (memory.json's python_allocators, src/preload/pydomains.c);
#     beside it each step's allocated peak (everything the process allocated, C libraries
#     included) and the difference, of which HDF5's metadata cache of an open file (the libhdf5
#     site of H5C_create, exact: blocks of 128 KiB and more are always recorded) is named.
# Every time is a median of interleaved repetitions, the numpy example's ratio also the median of
# the per-pair ratios. Skips the Python parts, saying why, without Debian's python3 with numpy and
# h5py.
#
#   scripts/bench-profile.sh BUILD_DIR [quick|full]
set -euo pipefail
build="$1"
mode="${2:-full}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$build/snapmem"
loop="$build/tests/progs/allocloop"
data="$build/bench-data"
out_md="$build/bench/profile.md"
out_json="$build/bench/profile.json"
py=/usr/bin/python3
nb="$root/examples/notebook"
mkdir -p "$data" "$build/bench"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
calc() { printf '%.6f' "$(echo "$1" | bc -l)"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
say() { echo "bench-profile: $*" >&2; }
for f in "$bin" "$loop" "$build/libsnapmem-preload.so"; do
	[ -e "$f" ] || { echo "bench-profile: '$f' missing (make first)" >&2; exit 2; }
done
jemalloc="$(pkg-config --variable=libdir jemalloc)/libjemalloc.so.2"
pairs=5000000
reps=5
[ "$mode" = quick ] && reps=3

say "allocation loop: plain, jemalloc alone, snapmem profile ($pairs pairs, $reps runs each)"
lp=(); lj=(); lq=(); wp=(); wq=()
for ((r = 0; r < reps; r++)); do
	t0=$(now); lp+=("$("$loop" "$pairs" | jq -r .seconds)"); wp+=("$(calc "$(now) - $t0")")
	lj+=("$(LD_PRELOAD="$jemalloc" "$loop" "$pairs" | jq -r .seconds)")
	t0=$(now)
	lq+=("$("$bin" profile --out "$tmp/loop" -- "$loop" "$pairs" 2>/dev/null | jq -r .seconds)")
	wq+=("$(calc "$(now) - $t0")")
done
loop_plain=$(printf '%s\n' "${lp[@]}" | median)
loop_je=$(printf '%s\n' "${lj[@]}" | median)
loop_prof=$(printf '%s\n' "${lq[@]}" | median)
proc_plain=$(printf '%s\n' "${wp[@]}" | median)
proc_prof=$(printf '%s\n' "${wq[@]}" | median)
loop_samples=$(jq '.profiler.samples' "$tmp/loop/memory.json")

py_skip=""
if ! "$py" -c 'import numpy, h5py' 2>/dev/null; then
	py_skip="$py cannot import numpy and h5py (scripts/setup-deps.sh installs python3-numpy python3-h5py)"
fi
nb_plain=0; nb_prof=0; nb_lines=0; cpu_plain=0; cpu_prof=0; hwm_plain=0; hwm_prof=0; hwm_off=0; self_bytes=0; stages='{}'
stages_off='{}'; hdf5='{"bytes": 0, "count": 0}'; tm='{}'; py_stages='{}'; nb_pair=0; cpu_pair=0; nb_reps=3
if [ -z "$py_skip" ]; then
	mock="$data/profile-mock-3e6-g100k"
	if [ ! -f "$mock/.done" ]; then
		rm -rf "$mock"
		"$bin" mock "$mock" --gas 3000000 --halos 20 --small-halos 100000 --files 8 --seed 1 \
			>/dev/null
		touch "$mock/.done"
	fi
	export PYTHONPATH="$build/python"
	args=("$nb/radial_profiles.py" "$mock" 99 "$tmp/nb.hdf5")
	[ "$mode" = full ] && nb_reps=5
	say "numpy example: plain, profiled, profiled --python-lines ($nb_reps runs each, interleaved)"
	# one command: "wall_s cpu_s maxrss_bytes" (CPU: user + system of the command and its
	# children; on a shared machine it moves less with the load than the wall time does)
	run3() {
		"$py" -c 'import resource, subprocess, sys, time
t = time.monotonic()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
t = time.monotonic() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.6f %.6f %d" % (t, r.ru_utime + r.ru_stime, r.ru_maxrss * 1024))' "$@"
	}
	a=(); b=(); c=(); h=(); ca=(); cb=(); pr=(); pc=()
	for ((r = 0; r < nb_reps; r++)); do
		# the order within a pair alternates, so that neither side always runs second
		if ((r % 2 == 0)); then
			read -r w cpu rss < <(run3 "$py" "${args[@]}")
			a+=("$w"); ca+=("$cpu"); h+=("$rss")
			read -r w cpu rss < <(run3 "$bin" profile --out "$tmp/nb" -- "$py" "${args[@]}")
			b+=("$w"); cb+=("$cpu")
		else
			read -r w cpu rss < <(run3 "$bin" profile --out "$tmp/nb" -- "$py" "${args[@]}")
			b+=("$w"); cb+=("$cpu")
			read -r w cpu rss < <(run3 "$py" "${args[@]}")
			a+=("$w"); ca+=("$cpu"); h+=("$rss")
		fi
		pr+=("$(calc "${b[r]} / ${a[r]}")"); pc+=("$(calc "${cb[r]} / ${ca[r]}")")
		read -r w cpu rss < <(run3 "$bin" profile --python-lines --out "$tmp/nbl" -- "$py" "${args[@]}")
		c+=("$w")
	done
	nb_pair=$(printf '%s\n' "${pr[@]}" | median)
	cpu_pair=$(printf '%s\n' "${pc[@]}" | median)
	nb_plain=$(printf '%s\n' "${a[@]}" | median)
	nb_prof=$(printf '%s\n' "${b[@]}" | median)
	nb_lines=$(printf '%s\n' "${c[@]}" | median)
	cpu_plain=$(printf '%s\n' "${ca[@]}" | median)
	cpu_prof=$(printf '%s\n' "${cb[@]}" | median)
	hwm_plain=$(printf '%s\n' "${h[@]}" | median)
	hwm_prof=$(jq '[.stages[].vm_hwm.end] | max' "$tmp/nb/memory.json")
	self_bytes=$(jq '.profiler.self_bytes' "$tmp/nb/memory.json")
	# per step id: the largest allocated peak above step 1's beginning, over its instances
	per_step='(.stages[] | select(.id == "load_halos") | .allocated.begin) as $b |
		reduce .stages[] as $s ({}; .[$s.id] = ([.[$s.id] // 0, $s.allocated.peak - $b] | max))'
	stages=$(jq -c "$per_step" "$tmp/nb/memory.json")
	# the same for what Python's allocators handed out (--python-lines run): tracemalloc's quantity
	py_stages=$(jq -c '(.python_allocators.stages // []) as $s |
		(([$s[] | select(.id == "load_halos") | .begin] | first) // 0) as $b |
		reduce $s[] as $x ({}; .[$x.id] = ([.[$x.id] // 0, $x.peak - $b] | max))' "$tmp/nbl/memory.json")
	# HDF5's metadata cache of an open file: the libhdf5 site through H5C_create (exact)
	hdf5=$(jq -c '[.sites[] | select(any(.frames[]; .function == "H5C_create")) |
		{bytes, count}] | {bytes: (map(.bytes) | add // 0), count: (map(.count) | add // 0)}' \
		"$tmp/nb/memory.json")
	say "numpy example profiled with SNAPMEM_PROFILE_LARGE=off (jemalloc serves every block)"
	SNAPMEM_PROFILE_LARGE=off "$bin" profile --out "$tmp/nboff" -- "$py" "${args[@]}" >/dev/null 2>&1
	hwm_off=$(jq '[.stages[].vm_hwm.end] | max' "$tmp/nboff/memory.json")
	stages_off=$(jq -c "$per_step" "$tmp/nboff/memory.json")
	say "numpy example under tracemalloc"
	tm=$("$py" "$nb/tracemalloc_stages.py" "${args[@]}" | tail -1)
fi

jq -n --argjson pairs "$pairs" --argjson lp "$loop_plain" --argjson lj "$loop_je" \
	--argjson lq "$loop_prof" --argjson wp "$proc_plain" --argjson wq "$proc_prof" \
	--argjson samples "$loop_samples" --arg pyskip "$py_skip" --argjson np "$nb_plain" \
	--argjson nq "$nb_prof" --argjson nl "$nb_lines" --argjson hp "$hwm_plain" \
	--argjson hq "$hwm_prof" --argjson self "$self_bytes" --argjson st "$stages" --argjson tm "$tm" \
	--argjson ho "$hwm_off" --argjson so "$stages_off" --argjson h5 "$hdf5" \
	--argjson cp "$cpu_plain" --argjson cq "$cpu_prof" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
	--argjson ps "$py_stages" --argjson npair "$nb_pair" --argjson cpair "$cpu_pair" --argjson reps "$nb_reps" '
	{schema: "snapmem.bench-profile/1",
	 alloc: {pairs: $pairs, plain_s: $lp, jemalloc_s: $lj, profiled_s: $lq, ratio: ($lq / $lp),
		 ratio_vs_jemalloc: ($lq / $lj), process_plain_s: $wp, process_profiled_s: $wq,
		 process_ratio: ($wq / $wp), samples: $samples},
	 numpy: (if $pyskip != "" then {skipped: $pyskip} else
		{cells: 3000000, runs: $reps, plain_s: $np, profiled_s: $nq, ratio: ($nq / $np),
		 pair_ratio_median: $npair, pair_cpu_ratio_median: $cpair,
		 plain_cpu_s: $cp, profiled_cpu_s: $cq, cpu_ratio: ($cq / $cp), load_average: $load,
		 python_lines_s: $nl, python_lines_ratio: ($nl / $np),
		 vm_hwm_plain: $hp, vm_hwm_profiled: $hq, vm_hwm_diff_pct: (($hq / $hp - 1) * 100),
		 vm_hwm_large_off: $ho, vm_hwm_large_off_diff_pct: (($ho / $hp - 1) * 100),
		 profiler_self_bytes: $self, hdf5_metadata_cache: $h5,
		 stages: [$tm | keys_unsorted[] as $k | {stage: $k, tracemalloc: $tm[$k],
			  python_allocators: ($ps[$k] // 0),
			  diff_pct: ((($ps[$k] // 0) / $tm[$k] - 1) * 100),
			  allocated: ($st[$k] // 0), allocated_large_off: ($so[$k] // 0),
			  allocated_minus_python: (($st[$k] // 0) - ($ps[$k] // 0)),
			  allocated_diff_pct: ((($st[$k] // 0) / $tm[$k] - 1) * 100),
			  allocated_large_off_diff_pct: ((($so[$k] // 0) / $tm[$k] - 1) * 100)}]} end)}' >"$out_json"

jq -r '
	def f(x; n): (x * pow(10; n) | round) / pow(10; n);
	def ok(c): if c then "met" else "**MISSED**" end;
	def mib(x): "\(f(x / 1048576; 2)) MiB";
	(.numpy.hdf5_metadata_cache // {bytes: 0, count: 0}) as {bytes: $h5b, count: $h5c} |
	"## snapmem profile (`scripts/bench-profile.sh`)\n",
	"| target | measured | verdict |", "|---|---|---|",
	"| allocation loop under `snapmem profile` <= 1.5x plain | \(f(.alloc.profiled_s; 4)) s vs \(f(.alloc.plain_s; 4)) s = \(f(.alloc.ratio; 2))x | \(ok(.alloc.ratio <= 1.5)) |",
	(if .numpy.skipped then "| numpy example | skipped: \(.numpy.skipped) | |" else
	 "| numpy example <= 1.10x wall | median of \(.numpy.runs) interleaved pairs'"'"' ratios \(f(.numpy.pair_ratio_median; 3))x (medians \(f(.numpy.profiled_s; 3)) s vs \(f(.numpy.plain_s; 3)) s = \(f(.numpy.ratio; 3))x; CPU \(f(.numpy.pair_cpu_ratio_median; 3))x); load \(.numpy.load_average) | \(ok(.numpy.pair_ratio_median <= 1.10)) |",
	 "| VmHWM within 3 % of plain | \(mib(.numpy.vm_hwm_profiled)) vs \(mib(.numpy.vm_hwm_plain)): \(f(.numpy.vm_hwm_diff_pct; 2))% | \(ok((.numpy.vm_hwm_diff_pct | fabs) <= 3)) |",
	 "| per-step peaks within 5 % of tracemalloc (Python'"'"'s allocators and numpy'"'"'s data, both) | \([.numpy.stages[] | select((.diff_pct | fabs) <= 5)] | length) of \(.numpy.stages | length) steps within 5 % (worst of those \(f([.numpy.stages[] | select((.diff_pct | fabs) <= 5) | .diff_pct | fabs] | max // 0; 2))%)\([.numpy.stages[] | select((.diff_pct | fabs) > 5) | "; \(.stage): \(.python_allocators) B vs \(.tracemalloc) B"] | join("")) | \(ok([.numpy.stages[] | (.diff_pct | fabs) <= 5] | all)) |",
	 "| (beside it) per-step allocated peaks, everything the process allocated, against tracemalloc | \([.numpy.stages[] | select((.allocated_diff_pct | fabs) <= 5)] | length) of \(.numpy.stages | length) steps within 5 %\([.numpy.stages[] | select((.allocated_diff_pct | fabs) > 5) | "; \(.stage): \(mib(.allocated)) vs \(mib(.tracemalloc)) (C libraries'"'"' memory, which tracemalloc cannot see: HDF5'"'"'s metadata cache of an open file alone is \(mib($h5b / ([$h5c, 1] | max))))"] | join("")) | not the same quantity |" end),
	"",
	"- allocation loop (\(.alloc.pairs) malloc/free pairs, loop time in the process): plain (glibc) \(f(.alloc.plain_s; 4)) s; jemalloc alone (LD_PRELOAD) \(f(.alloc.jemalloc_s; 4)) s; `snapmem profile` (jemalloc, sampling layer at 512 KiB, timeline 100 Hz) \(f(.alloc.profiled_s; 4)) s = \(f(.alloc.ratio; 2))x plain, \(f(.alloc.ratio_vs_jemalloc; 2))x jemalloc alone; \(.alloc.samples) samples. Whole process including writing memory.json and the reports: \(f(.alloc.process_profiled_s; 3)) s vs \(f(.alloc.process_plain_s; 3)) s = \(f(.alloc.process_ratio; 2))x",
	(if .numpy.skipped then empty else
	 "- numpy example (\(.numpy.cells) cells, 20 halos above 1e14 Msun and 100,000 groups below; medians of \(.numpy.runs) runs): plain \(f(.numpy.plain_s; 3)) s, profiled \(f(.numpy.profiled_s; 3)) s (\(f(.numpy.ratio; 3))x; median of the interleaved pairs'"'"' ratios \(f(.numpy.pair_ratio_median; 3))x), with `--python-lines` \(f(.numpy.python_lines_s; 3)) s (\(f(.numpy.python_lines_ratio; 3))x): the overhead of naming the script lines and counting Python'"'"'s allocators. CPU (user + system): plain \(f(.numpy.plain_cpu_s; 3)) s, profiled \(f(.numpy.profiled_cpu_s; 3)) s (\(f(.numpy.cpu_ratio; 3))x; pairs'"'"' median \(f(.numpy.pair_cpu_ratio_median; 3))x); load average at the end \(.numpy.load_average)",
	 "- VmHWM: plain \(.numpy.vm_hwm_plain) B, profiled \(.numpy.vm_hwm_profiled) B (jemalloc below 128 KiB and `PYTHONMALLOC=malloc`, glibc at and above, the profiler and its libraries included); the profiler'"'"'s own memory: \(.numpy.profiler_self_bytes) B. With `SNAPMEM_PROFILE_LARGE=off` (jemalloc serving every block): \(.numpy.vm_hwm_large_off) B, \(f(.numpy.vm_hwm_large_off_diff_pct; 2))%",
	 "",
	 "Per step, bytes above the memory when step 1 began (per-halo steps: the largest halo). tracemalloc: requested bytes of Python'"'"'s allocator domains and numpy'"'"'s array data; Python'"'"'s allocators: the same quantity counted by the profiled run (`--python-lines`, memory.json'"'"'s `python_allocators`); allocated: everything the process allocated (jemalloc'"'"'s size classes below 128 KiB, glibc'"'"'s chunks at and above; large off: jemalloc serving every block), C libraries included:\n",
	 "| step | tracemalloc | Python'"'"'s allocators (snapmem) | difference | allocated (snapmem) | difference | allocated - Python'"'"'s | large off | difference |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
	 (.numpy.stages[] | "| \(.stage) | \(.tracemalloc) | \(.python_allocators) | \(f(.diff_pct; 2))% | \(.allocated) | \(f(.allocated_diff_pct; 2))% | \(.allocated_minus_python) | \(.allocated_large_off) | \(f(.allocated_large_off_diff_pct; 2))% |"),
	 "",
	 "HDF5 (C) allocates outside tracemalloc'"'"'s sight: its largest block, the metadata cache of each open file (`H5C_create`), \($h5b / ([$h5c, 1] | max) | floor) B, was allocated \($h5c) times (once per file opened); one file is open during load_halos, and at most one during each later step that reads (load_gas_fields, load_positions)" end)
	' "$out_json" >"$out_md"
say "done: $out_md"
