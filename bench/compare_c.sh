#!/usr/bin/env bash
# compare_c.sh - the library's per-request costs beside C loops that drive the
# same kernel mechanisms with nothing in between (bench/c/: liburing, and the
# raw classic AIO system calls), measured in one run with the rounds
# interleaved. Each row is one round: the C figure, the library's figure (from
# the testing.B benchmarks in aio/), and C/lib — 1.00 means the library costs
# what the bare mechanism costs, 0.50 that it takes twice as long.
#
# Needs gcc, Go and liburing's header (apt-get install -y liburing-dev).
# Every C program checks that each request got exactly one completion with the
# expected result; any failure stops the script with a non-zero status.
#
# Usage: bash bench/compare_c.sh [ROUNDS]   (default 3; from anywhere)
# Env:   CSECS=1 (seconds per C loop case)
set -euo pipefail
shopt -s inherit_errexit

ROUNDS="${1:-3}"
CSECS="${CSECS:-1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/bench/c"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

die() {
	printf 'compare_c.sh: %s\n' "$*" >&2
	exit 1
}

command -v gcc >/dev/null || die "gcc not found (apt-get install -y gcc)"
command -v go >/dev/null || die "go not found"
if ! printf '#include <liburing.h>\n' | gcc -E -x c - >/dev/null 2>&1; then
	die "liburing's header (liburing.h) is missing; install it with: apt-get install -y liburing-dev"
fi

echo "== build (C loops from bench/c, aio's test binary)" >&2
gcc -O2 -Wall -o "$WORK/uring_loop" "$SRC/uring_loop.c" -luring
gcc -O2 -Wall -o "$WORK/kaio_loop" "$SRC/kaio_loop.c"
gcc -O2 -Wall -o "$WORK/cancel_cost" "$SRC/cancel_cost.c" -luring
(cd "$ROOT" && go test -c -o "$WORK/aio.test" ./aio)

# The read cases need a page-cached file: 64 MiB, as aio's benchmarks use.
DATA="$WORK/cached.dat"
head -c $((64 << 20)) /dev/urandom >"$DATA"
cat "$DATA" >/dev/null

# crun PROG ARGS...: run a C loop; its output, or the script stops unless
# every line says check=OK.
crun() {
	local out
	out=$("$WORK/$1" "${@:2}") || die "$1 ${*:2} failed (status $?): $out"
	if [ -z "$out" ] || grep -qv 'check=OK' <<<"$out"; then
		die "$1 ${*:2} did not check out: $out"
	fi
	printf '%s\n' "$out"
}

# field KEY [CASE] <<<TEXT: the value of KEY on the line of case CASE (or on
# the first line).
field() {
	awk -v k="$1" -v c="${2:-}" '
		c != "" && index($0, " case=" c " ") == 0 { next }
		{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); found = 1; exit } }
		END { if (!found) exit 1 }'
}

# gobench PATTERN COUNT [UNIT]: the figure an aio benchmark reports before
# UNIT (ns/op by default), run COUNT times (e.g. 100000x).
gobench() {
	local out v unit="${3:-ns/op}"
	out=$("$WORK/aio.test" -test.run '^$' -test.bench "$1" -test.benchtime "$2" 2>&1) ||
		die "benchmark $1 failed: $out"
	v=$(awk -v u="$unit" '
		/^Benchmark/ { for (i = 2; i <= NF; i++) if ($i == u) { print $(i - 1); found = 1; exit } }
		END { if (!found) exit 1 }' <<<"$out") || die "benchmark $1 reported no $unit (skipped?): $out"
	printf '%s\n' "$v"
}

row() { # ROUND CASE C LIB
	local ratio=-
	if [ "$4" != - ]; then
		ratio=$(awk -v c="$3" -v g="$4" 'BEGIN { if (g > 0) printf "%.2f", c / g; else print "-" }')
	fi
	printf '%-6s %-36s %12s %12s %8s\n' "$1" "$2" "$3" "$4" "$ratio"
}

echo "== $(uname -sr), $(nproc) CPUs, $(go version | cut -d' ' -f3), $ROUNDS rounds" >&2
printf '%-6s %-36s %12s %12s %8s\n' round case "C ns/op" "lib ns/op" "C/lib"
for r in $(seq 1 "$ROUNDS"); do
	sge='SubmitGetEvents/backend=%s/op=%s/qd=32$'

	out=$(crun uring_loop nop -b 32 -t "$CSECS")
	row "$r" "uring nop, batch 32" "$(field ns_per_op <<<"$out")" \
		"$(gobench "$(printf "$sge" uring nop)" 3000000x)"
	out=$(crun uring_loop poll -b 32 -t "$CSECS")
	row "$r" "uring poll ready eventfd, batch 32" "$(field ns_per_op <<<"$out")" \
		"$(gobench "$(printf "$sge" uring poll-eventfd)" 2000000x)"
	out=$(crun uring_loop read "$DATA" -b 32 -t "$CSECS")
	row "$r" "uring read 4 KiB cached, batch 32" "$(field ns_per_op <<<"$out")" \
		"$(gobench "$(printf "$sge" uring read-4k-cached)" 1000000x)"

	out=$(crun kaio_loop poll -b 32 -t "$CSECS")
	row "$r" "kaio poll ready eventfd, batch 32" "$(field ns_per_op <<<"$out")" \
		"$(gobench "$(printf "$sge" kaio poll-eventfd)" 2000000x)"
	out=$(crun kaio_loop pread "$DATA" -b 32 -t "$CSECS")
	row "$r" "kaio read 4 KiB cached, batch 32" "$(field ns_per_op <<<"$out")" \
		"$(gobench "$(printf "$sge" kaio read-4k-cached)" 500000x)"
	out=$(crun kaio_loop syncpread "$DATA" -t "$CSECS")
	row "$r" "pread(2) 4 KiB cached (the floor)" "$(field ns_per_op <<<"$out")" -

	out=$(crun cancel_cost -n 1000 -r 3)
	for be in uring kaio; do
		row "$r" "$be cancel one of 1000 polls (p50)" "$(field median_ns "${be}_one" <<<"$out")" \
			"$(gobench "Cancel\$/backend=$be\$" 20000x p50-ns)"
	done
	for be in uring kaio; do
		row "$r" "$be cancel all 1000 polls on one fd" "$(field median_ns "${be}_all" <<<"$out")" \
			"$(gobench "CancelFD/backend=$be/n=1000\$/op=poll\$" 30x total-ns/op)"
	done
done
