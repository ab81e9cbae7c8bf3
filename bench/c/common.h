// common.h - the small pieces the C reference loops share: a monotonic clock,
// a fixed pseudo-random sequence, argument parsing and the result line.
//
// Each program prints exactly one "key=value ..." line per case on stdout, so
// bench/compare_c.sh can pick a field with sed, and exits non-zero when any
// request did not get exactly one completion with the expected result.
#ifndef URINGAIO_BENCH_COMMON_H
#define URINGAIO_BENCH_COMMON_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BLOCK 4096

static inline uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// splitmix64: the block offsets of the read loops, the same every run.
static inline uint64_t next_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

struct loop_args {
	const char *mode;
	const char *path; // the file of the read modes
	int batch;        // requests per submission
	double seconds;   // how long to loop
};

// parse_loop_args reads "MODE [FILE] [-b BATCH] [-t SECONDS]".
static inline int parse_loop_args(int argc, char **argv, struct loop_args *a)
{
	a->mode = NULL;
	a->path = NULL;
	a->batch = 32;
	a->seconds = 2;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-b") == 0 && i + 1 < argc)
			a->batch = atoi(argv[++i]);
		else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
			a->seconds = atof(argv[++i]);
		else if (a->mode == NULL)
			a->mode = argv[i];
		else if (a->path == NULL)
			a->path = argv[i];
		else
			return -1;
	}
	if (a->mode == NULL || a->batch < 1 || a->batch > 1024 || a->seconds <= 0)
		return -1;
	return 0;
}

// Completion bookkeeping for one batch: seen[i] counts the completions of
// request i; a batch is good when every count is exactly one.
struct tally {
	unsigned char *seen;
	int n;
	uint64_t strays;  // completions naming no request of the batch
	uint64_t doubles; // second completions of one request
	uint64_t bad;     // completions with an unexpected result
	uint64_t missing; // requests that got none
};

static inline void tally_reset(struct tally *t)
{
	memset(t->seen, 0, (size_t)t->n);
}

static inline void tally_add(struct tally *t, uint64_t idx, int ok)
{
	if (idx >= (uint64_t)t->n) {
		t->strays++;
		return;
	}
	if (t->seen[idx]++)
		t->doubles++;
	if (!ok)
		t->bad++;
}

static inline void tally_close(struct tally *t)
{
	for (int i = 0; i < t->n; i++)
		if (t->seen[i] == 0)
			t->missing++;
}

static inline int tally_ok(const struct tally *t)
{
	return t->strays == 0 && t->doubles == 0 && t->bad == 0 && t->missing == 0;
}

static inline int report_loop(const char *prog, const struct loop_args *a, uint64_t ops,
			      uint64_t elapsed_ns, const struct tally *t)
{
	int ok = tally_ok(t) && ops > 0;
	printf("prog=%s mode=%s batch=%d ops=%llu secs=%.3f ops_per_sec=%.0f ns_per_op=%.1f "
	       "strays=%llu doubles=%llu missing=%llu bad_res=%llu check=%s\n",
	       prog, a->mode, a->batch, (unsigned long long)ops, elapsed_ns / 1e9,
	       ops ? ops / (elapsed_ns / 1e9) : 0, ops ? (double)elapsed_ns / ops : 0,
	       (unsigned long long)t->strays, (unsigned long long)t->doubles,
	       (unsigned long long)t->missing, (unsigned long long)t->bad, ok ? "OK" : "FAIL");
	return ok ? 0 : 1;
}

#endif
