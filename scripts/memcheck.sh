#!/bin/sh
# make memcheck: valgrind memcheck on the demo's run (a mock TNG-layout snapshot, snapmem run on it),
# with a binary built VALGRIND=1 (no jemalloc: valgrind replaces malloc itself). Also the embedded
# estimate and the report of the run. Writes only under build-vg/memcheck (beside the binary).
# Exit 0 when valgrind finds no error and no definite or possible leak, else 1.
# MEMCHECK_GAS (default 300000, the demo uses 3,000,000) sets the mock's size.
set -u
bin="$1"
out="$(dirname "$bin")/memcheck"
gas="${MEMCHECK_GAS:-300000}"
rm -rf "$out"
mkdir -p "$out"
# libunwind (the profiler's backtrace of each tracked allocation) probes whether an address is
# readable by write()-ing it to a pipe: valgrind reports that syscall; it is no error of snapmem's.
cat >"$out/libunwind.supp" <<'SUPP'
{
   libunwind-probes-addresses-with-write
   Memcheck:Param
   write(buf)
   fun:syscall
   obj:*libunwind.so*
}
SUPP
vg="valgrind --error-exitcode=1 --suppressions=$out/libunwind.supp --leak-check=full --errors-for-leak-kinds=definite,possible"
vg="$vg --show-leak-kinds=definite,possible --track-fds=no --num-callers=30"
status=0
"$bin" mock "$out/mock" --gas "$gas" --halos 20 --files 8 --seed 1 >/dev/null || exit 1
# check NAME WANT ARGS...: WANT is snapmem's own exit status (valgrind exits 1 on an error instead)
check() {
	name="$1"; want="$2"; shift 2
	$vg --log-file="$out/valgrind-$name.log" "$bin" "$@" >"$out/$name.out" 2>&1
	rc=$?
	if [ "$rc" -eq "$want" ] && grep -q 'ERROR SUMMARY: 0 errors' "$out/valgrind-$name.log"; then
		echo "memcheck $name: clean ($(grep -o 'ERROR SUMMARY: [0-9]* errors' "$out/valgrind-$name.log"); $(grep -o 'in use at exit: [0-9,]* bytes' "$out/valgrind-$name.log"))"
	else
		echo "memcheck $name: FAILED (exit $rc, want $want), see $out/valgrind-$name.log"
		grep -E 'ERROR SUMMARY|definitely lost|possibly lost' "$out/valgrind-$name.log"
		status=1
	fi
}
check estimate 0 estimate
check run 0 run --base-path "$out/mock" --snap 99 --out "$out/run"
check report 0 report "$out/run"
check run-oom 3 run --base-path "$out/mock" --snap 99 --out "$out/run-oom" --inject-oom Coordinates
check run-sigint 130 run --base-path "$out/mock" --snap 99 --out "$out/run-int" --inject-signal build_index
exit $status
