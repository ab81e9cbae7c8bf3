// uring_loop.c - the cost of one io_uring request with nothing but liburing in
// the way, for comparison with the library's "uring" backend.
//
//   nop        IORING_OP_NOP
//   poll       IORING_OP_POLL_ADD(POLLIN) on an eventfd whose counter is never
//              read, so it is always readable and the poll completes at once
//   read FILE  IORING_OP_READ of 4 KiB at a pseudo-random 4 KiB-aligned offset
//              of FILE (a buffered read; keep FILE in the page cache)
//
// Every round fills BATCH SQEs, makes one io_uring_submit_and_wait(BATCH) and
// reaps the BATCH CQEs. user_data is the request's index in the round, and each
// index must come back exactly once with the expected result.
//
// Usage: uring_loop nop|poll|read [FILE] [-b BATCH] [-t SECONDS]
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

enum op { OP_NOP, OP_POLL, OP_READ };

int main(int argc, char **argv)
{
	struct loop_args a;
	if (parse_loop_args(argc, argv, &a) < 0) {
		fprintf(stderr, "usage: %s nop|poll|read [FILE] [-b BATCH] [-t SECONDS]\n", argv[0]);
		return 2;
	}
	enum op op;
	if (strcmp(a.mode, "nop") == 0)
		op = OP_NOP;
	else if (strcmp(a.mode, "poll") == 0)
		op = OP_POLL;
	else if (strcmp(a.mode, "read") == 0 && a.path != NULL)
		op = OP_READ;
	else {
		fprintf(stderr, "%s: unknown mode %s (read needs a FILE)\n", argv[0], a.mode);
		return 2;
	}

	struct io_uring ring;
	int ret = io_uring_queue_init((unsigned)a.batch, &ring, 0);
	if (ret < 0) {
		fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-ret));
		return 1;
	}

	int fd = -1;
	uint64_t blocks = 0;
	char *buf = NULL;
	if (op == OP_POLL) {
		fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0) {
			perror("eventfd");
			return 1;
		}
	} else if (op == OP_READ) {
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
		if (posix_memalign((void **)&buf, BLOCK, (size_t)a.batch * BLOCK) != 0) {
			fprintf(stderr, "posix_memalign failed\n");
			return 1;
		}
	}

	struct tally t = {.seen = calloc((size_t)a.batch, 1), .n = a.batch};
	uint64_t rnd = 1, ops = 0;
	uint64_t start = mono_ns(), stop = start + (uint64_t)(a.seconds * 1e9), now;
	do {
		for (int i = 0; i < a.batch; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			if (sqe == NULL) {
				fprintf(stderr, "submission queue full\n");
				return 1;
			}
			switch (op) {
			case OP_NOP:
				io_uring_prep_nop(sqe);
				break;
			case OP_POLL:
				io_uring_prep_poll_add(sqe, fd, POLLIN);
				break;
			case OP_READ:
				io_uring_prep_read(sqe, fd, buf + (size_t)i * BLOCK, BLOCK,
						   (next_rand(&rnd) % blocks) * BLOCK);
				break;
			}
			io_uring_sqe_set_data64(sqe, (uint64_t)i);
		}
		ret = io_uring_submit_and_wait(&ring, (unsigned)a.batch);
		if (ret != a.batch) {
			fprintf(stderr, "io_uring_submit_and_wait: %d (%s)\n", ret,
				ret < 0 ? strerror(-ret) : "short");
			return 1;
		}
		tally_reset(&t);
		for (int got = 0; got < a.batch;) {
			struct io_uring_cqe *cqe;
			ret = io_uring_wait_cqe(&ring, &cqe);
			if (ret < 0) {
				fprintf(stderr, "io_uring_wait_cqe: %s\n", strerror(-ret));
				return 1;
			}
			unsigned head, n = 0;
			io_uring_for_each_cqe(&ring, head, cqe)
			{
				int ok = op == OP_NOP	 ? cqe->res == 0
					 : op == OP_POLL ? cqe->res > 0 && (cqe->res & POLLIN)
							 : cqe->res == BLOCK;
				tally_add(&t, cqe->user_data, ok);
				n++;
			}
			io_uring_cq_advance(&ring, n);
			got += (int)n;
		}
		tally_close(&t);
		ops += (uint64_t)a.batch;
		now = mono_ns();
	} while (now < stop && tally_ok(&t));

	// Nothing may arrive after the last round.
	struct io_uring_cqe *extra = NULL;
	if (io_uring_peek_cqe(&ring, &extra) == 0 && extra != NULL)
		t.strays++;
	int rc = report_loop("uring_loop", &a, ops, now - start, &t);
	io_uring_queue_exit(&ring);
	return rc;
}
