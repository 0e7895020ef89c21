#!/usr/bin/env bash
# Two builds of snapmem compared the way the commit messages' "idle-gated interleaved pairs" were:
# N pairs of `snapmem run` on one snapshot, A then B or B then A in turn, each pair started only
# after 0.3 s in which the machine was at least 90 % idle; for the run (memory.json run.wall_s)
# and each top-level stage (its wall_s summed over the halos), the medians of A and B, and the
# pairs' ratio B/A balanced for order: the median over the pairs run A first, the median over
# those run B first, and their geometric mean, the figure to quote. The first run after the idle
# wait is the slower (its fresh memory, most of all in the reads): with an odd number of pairs
# the plain median of the ratios leans to the order that ran once more (the same binary against
# a copy of itself, 13 pairs: 0.842 for the run, 0.800 for load_positions; balanced, ~1).
# Profiled runs (memory.json is where the figures are).
#
#   scripts/bench-pairs.sh BIN_A BIN_B BASE_PATH N [snapmem run options...]
#
# e.g. scripts/bench-pairs.sh /tmp/snapmem-old build/snapmem build/bench-data/mock-10000000 11
#      scripts/bench-pairs.sh /tmp/snapmem-old build/snapmem build/bench-data/mock-10000000 13 --mpi
# (--mpi runs as a singleton, one rank; as root Open MPI needs OMPI_ALLOW_RUN_AS_ROOT=1 and
# OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1). The snapshot's snap number is 99 (make bench's mocks).
set -euo pipefail
if [ "$#" -lt 4 ]; then
	echo "usage: scripts/bench-pairs.sh BIN_A BIN_B BASE_PATH N [snapmem run options...]" >&2
	exit 2
fi
a="$1" b="$2" base="$3" n="$4"
shift 4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One run: "stage seconds" lines, the run's first.
one() {
	rm -rf "$work/out"
	"$1" run --base-path "$base" --snap 99 --out "$work/out" --force "${@:2}" >/dev/null 2>&1
	jq -r '"run \(.run.wall_s)", ([.stages[] | select(.depth == 0)] | group_by(.id)[] |
		"\(.[0].id) \(map(.wall_s) | add)")' "$work/out/memory.json"
}

idle() {
	local u1 n1 s1 i1 w1 q1 sq1 st1 u2 n2 s2 i2 w2 q2 sq2 st2 t
	read -r _ u1 n1 s1 i1 w1 q1 sq1 st1 _ </proc/stat
	sleep 0.3
	read -r _ u2 n2 s2 i2 w2 q2 sq2 st2 _ </proc/stat
	t=$(((u2 + n2 + s2 + i2 + w2 + q2 + sq2 + st2) - (u1 + n1 + s1 + i1 + w1 + q1 + sq1 + st1)))
	[ "$t" -gt 0 ] && [ $((100 * (i2 - i1) / t)) -ge 90 ]
}

got=0 tries=0
: >"$work/pairs"
while [ "$got" -lt "$n" ] && [ "$tries" -lt 400 ]; do
	tries=$((tries + 1))
	idle || continue
	if [ $((got % 2)) = 0 ]; then
		one "$a" "$@" | sed 's/^/A /' >>"$work/pairs"
		one "$b" "$@" | sed 's/^/B /' >>"$work/pairs"
	else
		one "$b" "$@" | sed 's/^/B /' >>"$work/pairs"
		one "$a" "$@" | sed 's/^/A /' >>"$work/pairs"
	fi
	echo "P" >>"$work/pairs"
	got=$((got + 1))
done
python3 - "$work/pairs" <<'EOF'
import statistics as st, sys
pairs, cur = [], {"A": {}, "B": {}}
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "P":
        pairs.append(cur)
        cur = {"A": {}, "B": {}}
    else:
        cur[f[0]][f[1]] = float(f[2])
print("%d pairs (%d run A first, %d B first)" % (len(pairs), (len(pairs) + 1) // 2,
                                              len(pairs) // 2))
for k in pairs[0]["A"] if pairs else []:
    both = [(i, p) for i, p in enumerate(pairs) if k in p["A"] and k in p["B"]]
    a = [p["A"][k] for _, p in both]
    b = [p["B"][k] for _, p in both]
    ra = [p["B"][k] / p["A"][k] for i, p in both if i % 2 == 0 and p["A"][k] > 0]
    rb = [p["B"][k] / p["A"][k] for i, p in both if i % 2 == 1 and p["A"][k] > 0]
    ma = st.median(ra) if ra else float("nan")
    mb = st.median(rb) if rb else float("nan")
    bal = (ma * mb) ** 0.5 if ra and rb else float("nan")
    print("%-22s A %.4f s  B %.4f s  B/A %.3f (A first %.3f, B first %.3f)" %
          (k, st.median(a), st.median(b), bal, ma, mb))
EOF
