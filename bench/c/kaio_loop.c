// kaio_loop.c - the cost of one classic kernel AIO request with no library in
// the way (the system calls themselves, through syscall(2); no libaio), for
// comparison with the library's "kaio" backend.
//
//   poll            IOCB_CMD_POLL(POLLIN) on an eventfd that is always
//                   readable (its counter is never read): completes in io_submit
//   pread FILE      IOCB_CMD_PREAD of 4 KiB at a pseudo-random 4 KiB-aligned
//                   offset of FILE (buffered: the kernel copies inside io_submit)
//   syncpread FILE  plain pread(2) of the same blocks, one at a time: the floor
//                   that any asynchronous path is measured against
//
// Every round submits BATCH iocbs with io_submit and collects BATCH events
// with io_getevents. aio_data is the request's index in the round, and each
// index must come back exactly once with the expected result.
//
// Usage: kaio_loop poll|pread|syncpread [FILE] [-b BATCH] [-t SECONDS]
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum op { OP_POLL, OP_PREAD, OP_SYNCPREAD };

static long sys_io_setup(unsigned nr, aio_context_t *ctx)
{
	return syscall(SYS_io_setup, nr, ctx);
}

static long sys_io_destroy(aio_context_t ctx)
{
	return syscall(SYS_io_destroy, ctx);
}

static long sys_io_submit(aio_context_t ctx, long n, struct iocb **cbs)
{
	return syscall(SYS_io_submit, ctx, n, cbs);
}

static long sys_io_getevents(aio_context_t ctx, long min, long max, struct io_event *evs)
{
	return syscall(SYS_io_getevents, ctx, min, max, evs, NULL);
}

int main(int argc, char **argv)
{
	struct loop_args a;
	if (parse_loop_args(argc, argv, &a) < 0) {
		fprintf(stderr, "usage: %s poll|pread|syncpread [FILE] [-b BATCH] [-t SECONDS]\n",
			argv[0]);
		return 2;
	}
	enum op op;
	if (strcmp(a.mode, "poll") == 0)
		op = OP_POLL;
	else if (strcmp(a.mode, "pread") == 0 && a.path != NULL)
		op = OP_PREAD;
	else if (strcmp(a.mode, "syncpread") == 0 && a.path != NULL)
		op = OP_SYNCPREAD;
	else {
		fprintf(stderr, "%s: unknown mode %s (pread and syncpread need a FILE)\n", argv[0],
			a.mode);
		return 2;
	}
	if (op == OP_SYNCPREAD)
		a.batch = 1; // one pread per call: there is nothing to batch

	int fd;
	uint64_t blocks = 0;
	if (op == OP_POLL) {
		fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0) {
			perror("eventfd");
			return 1;
		}
	} else {
		fd = open(a.path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			perror(a.path);
			return 1;
		}
		blocks = (uint64_t)st.st_size / BLOCK;
		if (blocks == 0) {
			fprintf(stderr, "%s: smaller than one block\n", a.path);
			return 1;
		}
	}
	char *buf;
	if (posix_memalign((void **)&buf, BLOCK, (size_t)a.batch * BLOCK) != 0) {
		fprintf(stderr, "posix_memalign failed\n");
		return 1;
	}

	aio_context_t ctx = 0;
	if (op != OP_SYNCPREAD && sys_io_setup((unsigned)a.batch, &ctx) < 0) {
		perror("io_setup (is fs.aio-max-nr used up?)");
		return 1;
	}
	struct iocb *cbs = calloc((size_t)a.batch, sizeof *cbs);
	struct iocb **list = calloc((size_t)a.batch, sizeof *list);
	struct io_event *evs = calloc((size_t)a.batch, sizeof *evs);
	struct tally t = {.seen = calloc((size_t)a.batch, 1), .n = a.batch};
	for (int i = 0; i < a.batch; i++) {
		cbs[i].aio_fildes = (uint32_t)fd;
		cbs[i].aio_data = (uint64_t)i;
		if (op == OP_POLL) {
			cbs[i].aio_lio_opcode = IOCB_CMD_POLL;
			cbs[i].aio_buf = POLLIN; // IOCB_CMD_POLL takes its events in aio_buf
		} else {
			cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
			cbs[i].aio_buf = (uint64_t)(uintptr_t)(buf + (size_t)i * BLOCK);
			cbs[i].aio_nbytes = BLOCK;
		}
		list[i] = &cbs[i];
	}

	uint64_t rnd = 1, ops = 0;
	uint64_t start = mono_ns(), stop = start + (uint64_t)(a.seconds * 1e9), now;
	do {
		tally_reset(&t);
		if (op == OP_SYNCPREAD) {
			ssize_t n = pread(fd, buf, BLOCK, (off_t)((next_rand(&rnd) % blocks) * BLOCK));
			tally_add(&t, 0, n == BLOCK);
		} else {
			if (op == OP_PREAD)
				for (int i = 0; i < a.batch; i++)
					cbs[i].aio_offset = (int64_t)((next_rand(&rnd) % blocks) * BLOCK);
			for (int sent = 0; sent < a.batch;) {
				long n = sys_io_submit(ctx, a.batch - sent, list + sent);
				if (n <= 0) {
					perror("io_submit");
					return 1;
				}
				sent += (int)n;
			}
			for (int got = 0; got < a.batch;) {
				long n = sys_io_getevents(ctx, 1, a.batch - got, evs);
				if (n < 0) {
					if (errno == EINTR)
						continue;
					perror("io_getevents");
					return 1;
				}
				for (long j = 0; j < n; j++) {
					int ok = op == OP_POLL ? evs[j].res > 0 && (evs[j].res & POLLIN)
							       : evs[j].res == BLOCK;
					tally_add(&t, evs[j].data, ok);
				}
				got += (int)n;
			}
		}
		tally_close(&t);
		ops += (uint64_t)a.batch;
		now = mono_ns();
	} while (now < stop && tally_ok(&t));

	if (op != OP_SYNCPREAD) {
		// Nothing may arrive after the last round (min_nr 0 never waits).
		struct timespec zero = {0, 0};
		if (syscall(SYS_io_getevents, ctx, 0, 1, evs, &zero) != 0)
			t.strays++;
		sys_io_destroy(ctx);
	}
	return report_loop("kaio_loop", &a, ops, now - start, &t);
}
