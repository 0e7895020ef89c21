#!/bin/sh
# Runs each cmocka test binary given as an argument, each in a fresh temporary directory (TMPDIR),
# and ends with one line "check: N passed, N failed" counting binaries. Exits 1 if any failed.
set -u
passed=0
failed=0
failed_names=""
root=$(mktemp -d "${TMPDIR:-/tmp}/snapmem-check.XXXXXX")
for t in "$@"; do
	name=$(basename "$t")
	dir="$root/$name"
	mkdir -p "$dir"
	echo "== $name"
	if TMPDIR="$dir" "$t"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failed_names="$failed_names $name"
	fi
done
rm -rf "$root"
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
