#!/usr/bin/env bash
# compare_c.sh - the library's per-op costs against the C loops of
# ../shared/anchors/perf (liburing and raw kernel AIO), measured in one run,
# rounds interleaved, as ratios per round. Needs gcc, liburing-dev
# (apt-get install -y liburing-dev) and the anchors folder beside the repo.
#
# Usage: bash bench/compare_c.sh [ROUNDS]   (from the repository root)
set -euo pipefail
ROUNDS="${1:-3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ANCH="${ANCHORS:-$ROOT/../shared/anchors/perf}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
gcc -O2 -o "$WORK/uring_nop" "$ANCH/uring_nop.c" -luring
gcc -O2 -o "$WORK/kaio_poll" "$ANCH/kaio_poll.c"
gcc -O2 -o "$WORK/cancel_lat" "$ANCH/cancel_lat.c" -luring
(cd "$ROOT" && go test -c -o "$WORK/aio.test" ./aio)

field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
gobench() { # pattern benchtime [unit] -> the figure before unit (ns/op by default)
	"$WORK/aio.test" -test.run '^$' -test.bench "$1" -test.benchtime "$2" |
		awk -v u="${3:-ns/op}" '/^Benchmark/ {for (i = 2; i <= NF; i++) if ($i == u) {print $(i-1); exit}}'
}
printf '%-6s %-34s %12s %12s %8s\n' round case "C ns/op" "lib ns/op" "C/lib"
for r in $(seq 1 "$ROUNDS"); do
	c=$("$WORK/uring_nop" poll -b 32 -t 2 | field ns_per_op)
	g=$(gobench 'SubmitGetEvents/backend=uring/op=poll-eventfd/qd=32$' 10000000x)
	printf '%-6s %-34s %12s %12s %8.2f\n' "$r" "uring poll batch32" "$c" "$g" "$(echo "$c / $g" | bc -l)"
	c=$("$WORK/kaio_poll" poll -b 32 -t 2 | field ns_per_op)
	g=$(gobench 'SubmitGetEvents/backend=kaio/op=poll-eventfd/qd=32$' 5000000x)
	printf '%-6s %-34s %12s %12s %8.2f\n' "$r" "kaio poll batch32" "$c" "$g" "$(echo "$c / $g" | bc -l)"
	out=$("$WORK/cancel_lat" -n 1000 -r 3)
	for be in uring kaio; do
		c=$(echo "$out" | grep "case=${be}_cancel_one_fifo " | field median_ns)
		g=$(gobench "Cancel\$/backend=$be" 20000x p50-ns)
		printf '%-6s %-34s %12s %12s %8.2f\n' "$r" "$be cancel one poll (median)" "$c" "$g" "$(echo "$c / $g" | bc -l)"
	done
	c=$(echo "$out" | grep "case=kaio_cancel_loop_then_getevents_total " | field median_ns)
	g=$(gobench 'CancelFD/backend=kaio/n=1000/op=poll' 30x)
	printf '%-6s %-34s %12s %12s %8.2f\n' "$r" "kaio cancel 1000 on one fd" "$c" "$g" "$(echo "$c / $g" | bc -l)"
	c=$(echo "$out" | grep "case=uring_cancel_all_fd_total " | field median_ns)
	g=$(gobench 'CancelFD/backend=uring/n=1000/op=poll' 30x)
	printf '%-6s %-34s %12s %12s %8.2f\n' "$r" "uring cancel 1000 on one fd" "$c" "$g" "$(echo "$c / $g" | bc -l)"
done
