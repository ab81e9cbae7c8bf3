// cancel_cost.c - what canceling a waiting request costs in each kernel
// mechanism, without the library: the reference for aio's Cancel and CancelFD
// benchmarks.
//
// N single-shot POLLIN polls wait on the read end of an empty pipe (posted with
// one submission, not timed). Then they are canceled in one of two ways:
//
//   one  one at a time, oldest first; each cancel is timed from the call until
//        the poll's own completion has been reaped (the per-cancel median and
//        p99 over all samples of all REPS are printed):
//          uring  IORING_OP_ASYNC_CANCEL keyed by the poll's user_data, one
//                 io_uring_submit_and_wait for two CQEs: the poll's
//                 (-ECANCELED) and the cancel's own (0)
//          kaio   io_cancel (current kernels answer -1/EINPROGRESS and post
//                 the event, res 0, to the ring; older ones return it at
//                 once), then io_getevents for that event
//   all  all N, timed from the first cancel until the last completion is
//        reaped (the median over REPS is printed, and that divided by N):
//          uring  N ASYNC_CANCEL SQEs in one io_uring_submit_and_wait(2N)
//          kaio   N io_cancel calls, then io_getevents until N events
//
// Every poll and every cancel must complete exactly once with the expected
// result, and nothing may be left over at the end.
//
// Usage: cancel_cost [-n N] [-r REPS]
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CANCEL_TAG (1ull << 63) // user_data of an ASYNC_CANCEL SQE

static int n_polls = 1000, reps = 5;

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return (a > b) - (a < b);
}

// quantile of the sorted v[0..n).
static uint64_t quantile(const uint64_t *v, size_t n, double q)
{
	return v[(size_t)(q * (double)(n - 1) + 0.5)];
}

static int print_one(const char *name, uint64_t *lat, size_t n, const struct tally *t)
{
	qsort(lat, n, sizeof *lat, cmp_u64);
	int ok = tally_ok(t);
	printf("prog=cancel_cost case=%s n=%d reps=%d samples=%zu median_ns=%llu p99_ns=%llu "
	       "strays=%llu doubles=%llu missing=%llu bad_res=%llu check=%s\n",
	       name, n_polls, reps, n, (unsigned long long)quantile(lat, n, 0.5),
	       (unsigned long long)quantile(lat, n, 0.99), (unsigned long long)t->strays,
	       (unsigned long long)t->doubles, (unsigned long long)t->missing,
	       (unsigned long long)t->bad, ok ? "OK" : "FAIL");
	return ok ? 0 : 1;
}

static int print_all(const char *name, uint64_t *total, const struct tally *t)
{
	qsort(total, (size_t)reps, sizeof *total, cmp_u64);
	uint64_t med = quantile(total, (size_t)reps, 0.5);
	int ok = tally_ok(t);
	printf("prog=cancel_cost case=%s n=%d reps=%d median_ns=%llu per_req_ns=%.1f "
	       "strays=%llu doubles=%llu missing=%llu bad_res=%llu check=%s\n",
	       name, n_polls, reps, (unsigned long long)med, (double)med / n_polls,
	       (unsigned long long)t->strays, (unsigned long long)t->doubles,
	       (unsigned long long)t->missing, (unsigned long long)t->bad, ok ? "OK" : "FAIL");
	return ok ? 0 : 1;
}

// ---- io_uring ----

static void uring_post_polls(struct io_uring *ring, int fd)
{
	for (int i = 0; i < n_polls; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		io_uring_prep_poll_add(sqe, fd, POLLIN);
		io_uring_sqe_set_data64(sqe, (uint64_t)i);
	}
	int ret = io_uring_submit(ring);
	if (ret != n_polls) {
		fprintf(stderr, "io_uring_submit of the polls: %d\n", ret);
		exit(1);
	}
}

// uring_reap takes every CQE in the ring into the poll or cancel tally and
// returns how many it took.
static int uring_reap(struct io_uring *ring, struct tally *polls, struct tally *cancels)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(ring, head, cqe)
	{
		if (cqe->user_data & CANCEL_TAG)
			tally_add(cancels, cqe->user_data & ~CANCEL_TAG, cqe->res == 0);
		else
			tally_add(polls, cqe->user_data, cqe->res == -ECANCELED);
		n++;
	}
	io_uring_cq_advance(ring, n);
	return (int)n;
}

static void uring_cancel_sqe(struct io_uring *ring, int i)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	io_uring_prep_cancel64(sqe, (uint64_t)i, 0);
	io_uring_sqe_set_data64(sqe, CANCEL_TAG | (uint64_t)i);
}

// uring_wait_for reaps until want CQEs have been taken.
static void uring_wait_for(struct io_uring *ring, int want, struct tally *polls,
			   struct tally *cancels)
{
	for (int got = 0; got < want;) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_wait_cqe(ring, &cqe);
		if (ret < 0) {
			fprintf(stderr, "io_uring_wait_cqe: %s\n", strerror(-ret));
			exit(1);
		}
		got += uring_reap(ring, polls, cancels);
	}
}

static int run_uring(int fd)
{
	struct io_uring ring;
	struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE, .cq_entries = 2u * n_polls + 16};
	int ret = io_uring_queue_init_params((unsigned)n_polls, &ring, &p);
	if (ret < 0) {
		fprintf(stderr, "io_uring_queue_init_params: %s\n", strerror(-ret));
		return 1;
	}
	struct tally polls = {.seen = calloc((size_t)n_polls, 1), .n = n_polls};
	struct tally cancels = {.seen = calloc((size_t)n_polls, 1), .n = n_polls};
	uint64_t *lat = calloc((size_t)n_polls * reps, sizeof *lat);
	uint64_t *total = calloc((size_t)reps, sizeof *total);
	struct tally one = {0}, all = {0};
	size_t samples = 0;

	for (int r = 0; r < reps; r++) {
		uring_post_polls(&ring, fd);
		tally_reset(&polls);
		tally_reset(&cancels);
		for (int i = 0; i < n_polls; i++) {
			uint64_t t0 = mono_ns();
			uring_cancel_sqe(&ring, i);
			ret = io_uring_submit_and_wait(&ring, 2);
			if (ret != 1) {
				fprintf(stderr, "io_uring_submit_and_wait(cancel): %d\n", ret);
				return 1;
			}
			uring_wait_for(&ring, 2, &polls, &cancels);
			lat[samples++] = mono_ns() - t0;
		}
		tally_close(&polls);
		tally_close(&cancels);
		one.strays += polls.strays + cancels.strays;
		one.doubles += polls.doubles + cancels.doubles;
		one.missing += polls.missing + cancels.missing;
		one.bad += polls.bad + cancels.bad;
		polls.strays = polls.doubles = polls.missing = polls.bad = 0;
		cancels.strays = cancels.doubles = cancels.missing = cancels.bad = 0;
	}
	int rc = print_one("uring_one", lat, samples, &one);

	for (int r = 0; r < reps; r++) {
		uring_post_polls(&ring, fd);
		tally_reset(&polls);
		tally_reset(&cancels);
		uint64_t t0 = mono_ns();
		for (int i = 0; i < n_polls; i++)
			uring_cancel_sqe(&ring, i);
		ret = io_uring_submit_and_wait(&ring, 2u * n_polls);
		if (ret != n_polls) {
			fprintf(stderr, "io_uring_submit_and_wait(cancels): %d\n", ret);
			return 1;
		}
		uring_wait_for(&ring, 2 * n_polls, &polls, &cancels);
		total[r] = mono_ns() - t0;
		tally_close(&polls);
		tally_close(&cancels);
		all.strays += polls.strays + cancels.strays;
		all.doubles += polls.doubles + cancels.doubles;
		all.missing += polls.missing + cancels.missing;
		all.bad += polls.bad + cancels.bad;
		polls.strays = polls.doubles = polls.missing = polls.bad = 0;
		cancels.strays = cancels.doubles = cancels.missing = cancels.bad = 0;
	}
	struct io_uring_cqe *extra = NULL;
	if (io_uring_peek_cqe(&ring, &extra) == 0 && extra != NULL)
		all.strays++;
	rc |= print_all("uring_all", total, &all);
	io_uring_queue_exit(&ring);
	return rc;
}

// ---- classic AIO ----

static long sys_io_getevents(aio_context_t ctx, long min, long max, struct io_event *evs,
			     struct timespec *ts)
{
	long n;
	do
		n = syscall(SYS_io_getevents, ctx, min, max, evs, ts);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		perror("io_getevents");
		exit(1);
	}
	return n;
}

// A canceled IOCB_CMD_POLL reports res 0 (the kernel's aio_poll_complete
// with no events); -ECANCELED is accepted too.
static void kaio_take(struct tally *t, const struct io_event *ev)
{
	tally_add(t, ev->data, ev->res == 0 || ev->res == -ECANCELED);
}

static void kaio_post_polls(aio_context_t ctx, struct iocb **list)
{
	for (int sent = 0; sent < n_polls;) {
		long n = syscall(SYS_io_submit, ctx, (long)(n_polls - sent), list + sent);
		if (n <= 0) {
			perror("io_submit of the polls");
			exit(1);
		}
		sent += (int)n;
	}
}

// kaio_cancel cancels one poll and returns 1 when the event came back at once
// (in *ev), 0 when it will come through the ring.
static int kaio_cancel(aio_context_t ctx, struct iocb *cb, struct io_event *ev)
{
	if (syscall(SYS_io_cancel, ctx, cb, ev) == 0)
		return 1;
	if (errno == EINPROGRESS)
		return 0;
	perror("io_cancel");
	exit(1);
}

static int run_kaio(int fd)
{
	aio_context_t ctx = 0;
	if (syscall(SYS_io_setup, (unsigned)n_polls, &ctx) < 0) {
		perror("io_setup (is fs.aio-max-nr used up?)");
		return 1;
	}
	struct iocb *cbs = calloc((size_t)n_polls, sizeof *cbs);
	struct iocb **list = calloc((size_t)n_polls, sizeof *list);
	struct io_event *evs = calloc((size_t)n_polls, sizeof *evs);
	for (int i = 0; i < n_polls; i++) {
		cbs[i].aio_lio_opcode = IOCB_CMD_POLL;
		cbs[i].aio_fildes = (uint32_t)fd;
		cbs[i].aio_buf = POLLIN;
		cbs[i].aio_data = (uint64_t)i;
		list[i] = &cbs[i];
	}
	struct tally polls = {.seen = calloc((size_t)n_polls, 1), .n = n_polls};
	uint64_t *lat = calloc((size_t)n_polls * reps, sizeof *lat);
	uint64_t *total = calloc((size_t)reps, sizeof *total);
	struct tally one = {0}, all = {0};
	size_t samples = 0;

	for (int r = 0; r < reps; r++) {
		kaio_post_polls(ctx, list);
		tally_reset(&polls);
		for (int i = 0; i < n_polls; i++) {
			struct io_event ev;
			uint64_t t0 = mono_ns();
			if (!kaio_cancel(ctx, &cbs[i], &ev))
				sys_io_getevents(ctx, 1, 1, &ev, NULL);
			lat[samples++] = mono_ns() - t0;
			kaio_take(&polls, &ev);
		}
		tally_close(&polls);
		one.strays += polls.strays;
		one.doubles += polls.doubles;
		one.missing += polls.missing;
		one.bad += polls.bad;
		polls.strays = polls.doubles = polls.missing = polls.bad = 0;
	}
	int rc = print_one("kaio_one", lat, samples, &one);

	for (int r = 0; r < reps; r++) {
		kaio_post_polls(ctx, list);
		tally_reset(&polls);
		int got = 0;
		uint64_t t0 = mono_ns();
		for (int i = 0; i < n_polls; i++)
			if (kaio_cancel(ctx, &cbs[i], &evs[got]))
				got++;
		while (got < n_polls)
			got += (int)sys_io_getevents(ctx, 1, n_polls - got, evs + got, NULL);
		total[r] = mono_ns() - t0;
		for (int i = 0; i < got; i++)
			kaio_take(&polls, &evs[i]);
		tally_close(&polls);
		all.strays += polls.strays;
		all.doubles += polls.doubles;
		all.missing += polls.missing;
		all.bad += polls.bad;
		polls.strays = polls.doubles = polls.missing = polls.bad = 0;
	}
	struct timespec zero = {0, 0};
	if (sys_io_getevents(ctx, 0, 1, evs, &zero) != 0)
		all.strays++;
	rc |= print_all("kaio_all", total, &all);
	syscall(SYS_io_destroy, ctx);
	return rc;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			n_polls = atoi(argv[++i]);
		else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [-n N] [-r REPS]\n", argv[0]);
			return 2;
		}
	}
	if (n_polls < 1 || n_polls > 4096 || reps < 1) {
		fprintf(stderr, "%s: need 1 <= N <= 4096 and REPS >= 1\n", argv[0]);
		return 2;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		perror("pipe2");
		return 1;
	}
	// Nothing is ever written to p[1]: every poll waits until canceled.
	int rc = run_uring(p[0]);
	rc |= run_kaio(p[0]);
	return rc;
}
