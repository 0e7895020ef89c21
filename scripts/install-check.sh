#!/usr/bin/env bash
# install-check: `make install` and `make uninstall` as a user of the library meets them.
#
#   scripts/install-check.sh [BUILD_DIR]      (default: the directory of $SNAPMEM_BIN, else build)
#
# Run by `make check` through tests/run.sh (not under `make sanitize`), from the objects already
# built in BUILD_DIR (nothing is recompiled; only BUILD_DIR/snapmem.pc is rewritten per PREFIX).
# Everything goes under one temporary directory, removed at the end:
#   1. make install PREFIX=$tmp/prefix: every file in its place, snapmem.pc naming that prefix, the
#      shared library with its SONAME and links; a C program written here, outside the tree, built
#      with `pkg-config --cflags --libs snapmem` alone (PKG_CONFIG_PATH into the prefix), runs
#      without LD_LIBRARY_PATH and loads the installed libsnapmem.so; the installed snapmem runs;
#   2. make uninstall PREFIX=$tmp/prefix leaves no file or link behind;
#   3. the same with DESTDIR=$tmp/dest and PREFIX=/opt/snapmem-install-check: files staged under
#      DESTDIR only, snapmem.pc naming the final PREFIX, and uninstall with DESTDIR empties it.
# Exit 0 when all hold, 1 at the first that does not (saying which), 2 on a usage error.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="${1:-}"
if [ -z "$build" ]; then
	if [ -n "${SNAPMEM_BIN:-}" ]; then
		build=$(dirname "$SNAPMEM_BIN")
	else
		build="$root/build"
	fi
fi
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac
if [ ! -x "$build/snapmem" ] || [ ! -f "$build/libsnapmem.so" ]; then
	echo "install-check: no '$build/snapmem' or '$build/libsnapmem.so' (build first: make)" >&2
	exit 2
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/snapmem-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "install-check: $*" >&2
	exit 1
}
# make with the caller's make variables removed (an outer `make check` passes BUILD, SANITIZE...).
mk() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make --no-print-directory -C "$root" \
		BUILD="$build" "$@" >"$tmp/make.log" 2>&1 || {
		cat "$tmp/make.log" >&2
		fail "make $* failed"
	}
}
version=$(sed -n 's/^VERSION := *//p' "$root/Makefile")
[ -n "$version" ] || fail "no VERSION in the Makefile"
headers=$(cd "$root/include" && ls snapmem/*.h)
core() { # the files and links install must put under $1
	printf '%s\n' "$1/bin/snapmem" "$1/lib/libsnapmem.a" "$1/lib/libsnapmem.so.$version" \
		"$1/lib/libsnapmem.so.0" "$1/lib/libsnapmem.so" "$1/lib/pkgconfig/snapmem.pc"
	for h in $headers; do echo "$1/include/$h"; done
}
# The Makefile's list (make install-manifest, the same variables): what install says it puts.
manifest() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make -s --no-print-directory \
		-C "$root" BUILD="$build" install-manifest "$@" | sort
}
# Installed exactly: every core file, and the files found are the manifest's.
check_installed() { # DIR_FOUND DIR_CORE MAKE_VARS...
	local found="$1" base="$2"
	shift 2
	manifest "$@" >"$tmp/manifest"
	core "$base" | sort | comm -23 - "$tmp/manifest" >"$tmp/missing"
	[ ! -s "$tmp/missing" ] || { cat "$tmp/missing" >&2; fail "make install-manifest lacks these"; }
	diff "$tmp/manifest" <(left "$found") >"$tmp/diff" ||
		{ cat "$tmp/diff" >&2; fail "make install $* did not install exactly its manifest"; }
}
left() { find "$1" \( -type f -o -type l \) 2>/dev/null | sort; }

# A program outside the tree: the profiler's API, one stage, one tracked array, memory.json.
cat > "$tmp/outside.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <snapmem/profiler.h>

int main(int argc, char **argv)
{
	sm_prof *prof = NULL;
	sm_error err = {0};
	char *a;

	if (argc != 2 || sm_prof_create(NULL, &prof, &err) != 0) {
		fprintf(stderr, "outside: %s\n", err.msg);
		return 2;
	}
	sm_prof_stage_begin(prof, "fill", -1);
	a = sm_prof_alloc(prof, "a", 1 << 20, &err);
	if (a == NULL) {
		fprintf(stderr, "outside: %s\n", err.msg);
		return 3;
	}
	memset(a, 1, 1 << 20);
	sm_prof_stage_end(prof);
	sm_prof_release(prof, a);
	if (sm_prof_write_json(prof, argv[1], &err) != 0) {
		fprintf(stderr, "outside: %s\n", err.msg);
		return 2;
	}
	sm_prof_free(prof);
	printf("outside: ok\n");
	return 0;
}
EOF

# 1. PREFIX
prefix="$tmp/prefix"
mk install PREFIX="$prefix"
check_installed "$prefix" "$prefix" PREFIX="$prefix"
grep -qx "prefix=$prefix" "$prefix/lib/pkgconfig/snapmem.pc" ||
	fail "'$prefix/lib/pkgconfig/snapmem.pc' does not name prefix=$prefix"
[ "$(readlink "$prefix/lib/libsnapmem.so")" = libsnapmem.so.0 ] &&
	[ "$(readlink "$prefix/lib/libsnapmem.so.0")" = "libsnapmem.so.$version" ] ||
	fail "'$prefix/lib': libsnapmem.so -> libsnapmem.so.0 -> libsnapmem.so.$version links wrong"
soname=$(readelf -d "$prefix/lib/libsnapmem.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libsnapmem.so.0 ] || fail "'libsnapmem.so.$version' has SONAME '$soname', expected libsnapmem.so.0"
flags=$(env PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs snapmem) ||
	fail "pkg-config --cflags --libs snapmem failed with PKG_CONFIG_PATH='$prefix/lib/pkgconfig'"
# shellcheck disable=SC2086
(cd "$tmp" && ${CC:-cc} outside.c -o outside $flags) || fail "the outside program does not build with: $flags"
out=$(cd "$tmp" && env -u LD_LIBRARY_PATH ./outside "$tmp/memory.json") ||
	fail "the outside program does not run without LD_LIBRARY_PATH"
[ "$out" = "outside: ok" ] && [ -s "$tmp/memory.json" ] || fail "the outside program wrote no memory.json"
grep -q '"snapmem.memory/1"' "$tmp/memory.json" || fail "'$tmp/memory.json' is not snapmem.memory/1"
# ldd's output kept first: under pipefail, `ldd | grep -q` fails at random when grep quits early
# and ldd is killed by SIGPIPE.
deps=$(env -u LD_LIBRARY_PATH ldd "$tmp/outside") || fail "ldd cannot read '$tmp/outside'"
grep -q "libsnapmem.so.0 => $prefix/lib/libsnapmem.so.0" <<<"$deps" ||
	fail "the outside program does not load '$prefix/lib/libsnapmem.so.0'"
env -u LD_LIBRARY_PATH "$prefix/bin/snapmem" estimate --format json -o "$tmp/estimate.json" >/dev/null ||
	fail "the installed snapmem does not run"
grep -q '"snapmem.estimate/1"' "$tmp/estimate.json" || fail "the installed snapmem wrote no estimate"

# 2. uninstall
mk uninstall PREFIX="$prefix"
[ -z "$(left "$prefix")" ] || { left "$prefix" >&2; fail "make uninstall PREFIX='$prefix' left files"; }
[ ! -e "$prefix/include/snapmem" ] || fail "make uninstall left '$prefix/include/snapmem'"

# 3. DESTDIR
dest="$tmp/dest"
final=/opt/snapmem-install-check
[ ! -e "$final" ] || fail "'$final' exists: cannot tell whether DESTDIR is honoured"
mk install DESTDIR="$dest" PREFIX="$final"
[ ! -e "$final" ] || fail "make install DESTDIR='$dest' wrote to '$final'"
check_installed "$dest" "$dest$final" DESTDIR="$dest" PREFIX="$final"
grep -qx "prefix=$final" "$dest$final/lib/pkgconfig/snapmem.pc" ||
	fail "the staged snapmem.pc does not name prefix=$final"
mk uninstall DESTDIR="$dest" PREFIX="$final"
[ -z "$(left "$dest")" ] || { left "$dest" >&2; fail "make uninstall DESTDIR='$dest' left files"; }
echo "install-check: install, pkg-config build and run, uninstall: PREFIX and DESTDIR ok"
