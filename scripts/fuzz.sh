#!/bin/sh
# make fuzz: runs each libFuzzer target for SECONDS on a working copy of its corpus (the committed
# seeds in fuzz/corpus/NAME stay as they are). Crashing inputs are written to fuzz/regressions/NAME/
# (replayed by `make check`). Prints one summary line per target: executions, coverage, findings.
set -u
build="$1"; seconds="$2"; shift 2
status=0
for name in "$@"; do
	work="$build/corpus/$name"
	mkdir -p "$work" "fuzz/regressions/$name"
	cp -n fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
	log="$build/fuzz-$name.log"
	"$build/fuzz/fuzz-$name" -max_total_time="$seconds" -print_final_stats=1 \
		-artifact_prefix="fuzz/regressions/$name/" "$work" >"$log" 2>&1
	rc=$?
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
	found=$(ls "fuzz/regressions/$name" 2>/dev/null | wc -l)
	echo "fuzz $name: ${seconds}s, ${execs:-?} executions, coverage ${cov:-?} edges, exit $rc, $found kept crashing inputs"
	[ "$rc" -eq 0 ] || status=1
done
exit $status
