// Package aio is asynchronous I/O for Linux (and, on a pool of threads, the
// other Unix systems) with the shape of the classic kernel
// AIO calls — Setup (io_setup), Submit (io_submit), GetEvents (io_getevents),
// Cancel (io_cancel), Destroy (io_destroy) — plus POSIX aio_cancel (CancelFD) and
// aio_error (Error), and a context.Context layer (Do, ReadAt, WriteAt, File).
//
// # Backends
//
// A Context runs on one of three backends, chosen when it is set up: io_uring
// ("uring", Linux 5.11 or later), classic kernel AIO ("kaio", Linux), or
// "threads", a pool of goroutines making the ordinary blocking system calls
// and one poller waiting for readiness, as glibc's POSIX AIO does (any Unix).
// Options.Backend names one; when it is empty the URINGAIO_BACKEND environment
// variable does; unset or "auto" takes io_uring when it can start and supports
// every operation the library needs, else classic AIO, else threads.
// Context.Backend says which one runs and Context.Probes why the others did
// not. A backend that was named and cannot start is an error matching
// ErrNotSupported; there is no silent fallback. Callers cannot otherwise tell
// the backends apart: the same compatibility suite runs on all three. They
// differ in what Cancel can stop (see Cancel): a request waiting for
// readiness, or still queued, always; a transfer already running sometimes on
// io_uring, and never on classic AIO or threads.
//
// Options.Workers sizes the pool of worker goroutines: the threads backend's,
// and the one io_uring and classic AIO start for the requests their kernel
// mechanism cannot finish by itself.
//
// # Per-request flags
//
// IOCB.RWFlags carries RWF_DSYNC, RWF_SYNC, RWF_APPEND, RWF_NOWAIT and
// RWF_HIPRI for a read or write, to io_uring's rw_flags, classic AIO's
// aio_rw_flags or preadv2/pwritev2 (rwflags.go); Submit refuses any other
// bit. The kernel's answer is the request's result, made equal where the
// kernels differ (docs/contract.md §1.8).
//
// # Chains
//
// IOCB.Link ties a request to the next IOCB of the same Submit: it starts
// only after this one succeeded, and a failure (or a short read or write)
// ends the rest with -ECANCELED, as io_uring's IOSQE_IO_LINK does; on uring
// the kernel keeps the order, on kaio and threads the library (chain.go).
// DoChain runs a chain and waits for its end: a write-ahead log's commit is
// DoChain(ctx, write, fdatasync). docs/contract.md §13.
//
// # The one invariant
//
// Every IOCB that Submit accepts produces exactly one Event, delivered exactly
// once: by GetEvents, or as the return value of a successful Cancel (or as Do's
// result, for requests Do started). Until then the library keeps the IOCB and its
// buffers reachable and pinned (runtime.Pinner), and the kernel only ever sees a
// slot index and a generation tag, never a Go pointer. No call returns while the
// kernel may still write into memory the caller was told is free.
//
// # Errors
//
// Refusals by the Context's calls are *CallError values that name the call the
// program made (ReadAt's name ReadAt, though it runs on Do) and match the errno a C programmer would expect (errors.Is(err, syscall.EINVAL); unix.EINVAL is the same value):
// EINVAL for malformed input or a destroyed Context, EBUSY for an IOCB still
// outstanding, EAGAIN when maxEvents requests are outstanding or a request cannot
// be canceled, EFAULT for Cancel(nil), EBADF for CancelFD of a closed descriptor.
// A request's own failure is its Event's negative Res; Event.Err wraps it
// (*RequestError). Every message reads "aio: " + the call or operation + ": "
// + what happened ("aio: Submit: …", "aio: read: …", "aio: Setup: …"). Results are normalized across backends: a canceled request has
// Res == -ECANCELED, and kernel-internal restart codes become -EINTR.
//
// # Concurrency
//
// Every method may be called from any number of goroutines at once. Completions
// are taken from the kernel by whichever waiter (GetEvents, Do, Cancel, Destroy)
// holds the reaper role, and routed to their owner at once, so GetEvents callers
// and Do callers sharing a Context do not steal or starve each other: Do's
// requests are Do's alone and never appear in GetEvents. Destroy cancels what it
// can, waits for the kernel to let go of everything, wakes blocked GetEvents
// callers (EINVAL) and releases the kernel object. A Context that is never
// destroyed stays alive, like an unclosed file descriptor.
//
// Many goroutines, one request each, is the path storage engines take: a Do
// sleeps until its own request completes, requests queued meanwhile share one
// submission, File copies page-cached data (and writes ext4's buffered files)
// on the caller's goroutine, and ReadAt, WriteAt and File spread over
// Options.Lanes kernel instances so that many cores do not queue on one lock.
//
// # Registered files and buffers
//
// On io_uring a File can be registered (File.Register) in each ring's
// fixed-file table, and memory from NewBuffers is registered in its buffer
// table, so that requests skip the kernel's per-request descriptor lookup and
// page pinning; Options.SQPoll adds a kernel thread that submits. Every
// backend takes them and behaves the same; Context.Features says which
// kernel features are on. A registered File must be closed with File.Close,
// and Buffers must be released with Release: their lifetime rules are in
// docs/contract.md §12 (fixedfile.go, buffers.go, features.go).
//
// # Platforms
//
// The package builds, with the same API, on every platform whose syscall
// package has Errno: all that Go supports but Plan 9. On Linux all three
// backends can run; on the other Unix systems (macOS, the BSDs, Solaris, …)
// only threads does, and auto chooses it. Elsewhere (Windows, WebAssembly) no
// backend runs: Setup returns an error matching ErrNotSupported.
//
// # Kernel requirements
//
// io_uring: Linux 5.11 (IORING_FEAT_EXT_ARG for GetEvents timeouts), not disabled
// by kernel.io_uring_disabled or seccomp. Classic AIO: room under fs.aio-max-nr
// for maxEvents+1 events (the kernel reserves about twice that). Threads: no
// kernel AIO mechanism, only epoll (kqueue on the BSDs and darwin, untested
// on their kernels; poll(2) elsewhere) and the ordinary read, write and sync
// calls (and sync_file_range, fallocate and posix_fadvise for the range
// operations, which end with ENOSYS off Linux), and kcmp(2) to share a
// descriptor duplicate among requests on one file (without it, one each).
//
// # Where each concern lives
//
// For readers of the source: api.go holds the types, Setup, Submit,
// GetEvents, Destroy and Stats; engine.go the Context and its slots, and how
// a Context works; slots.go taking, preparing and freeing slots; accept.go
// Submit's checks and hand-over; submit.go Do's shared submissions; wait.go
// waiting and the reaper role; route.go routing completions and GetEvents;
// cancel.go Cancel, CancelFD, Error and Destroy; context.go Do, ReadAt and
// WriteAt; caller.go transfers on the caller's goroutine, and caller_sync.go
// the syncs, durable writes and chains made there on threads and kaio;
// lanes.go several kernel instances behind one Context; file.go File;
// chain.go chains; rwflags.go per-request flags; fixedfile.go and buffers.go
// registered files and buffers; ops.go the range operations; errors.go the
// errors.
package aio
