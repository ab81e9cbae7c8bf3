package pebblefs_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/metamorphic"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/uringaio/uringaio/pebblefs"
)

// Pebble's metamorphic test, run over the adapter.
//
// metamorphic.RunAndCompare's AddCustomRun (Pebble v2.1.7) records custom runs
// but never executes them, and RunOnce re-reads its options from an OPTIONS
// file, which cannot name an FS. So the test drives the package's public
// single-run API directly: GenerateOps for a fixed seed's op list,
// RandomOptions for a fixed seed's configuration with Opts.FS replaced by the
// adapter, metamorphic.New, and Step until the list is done. The same ops and
// options run first on vfs.Default; every op's output on the adapter must
// equal the reference's (the metamorphic property: the file layer must not
// change what the database answers). That each op really ran is proved by
// counting Steps against the list's length and by the Context's request
// counter and the adapter's routed-file counter.
//
// PEBBLEFS_META_SEED and PEBBLEFS_META_OPS change the seed (default 1) and the
// number of op draws (default 5000; a draw with nothing to act on, such as an
// iterator op before any iterator exists, adds no op, and the closing ops are
// added at the end).

func envUint(name string, def uint64) uint64 {
	if v, err := strconv.ParseUint(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

// metaOptions returns RandomOptions for the first seed from seed on whose
// configuration runs on a real file system: RandomOptions chooses a strict
// (crash-simulating) MemFS half the time, and that mode's restart op needs the
// FS to be a MemFS. Remote storage and WAL failover are left out: they would
// put part of the database on other FSes. The choice is deterministic, so the
// reference run and each backend get equal options.
func metaOptions(t *testing.T, seed uint64, fs vfs.FS) *metamorphic.TestOptions {
	for s := seed; ; s++ {
		o := metamorphic.RandomOptions(rand.New(rand.NewPCG(s, s)), metamorphic.TestkeysKeyFormat,
			metamorphic.RandomOptionsCfg{NoRemoteStorage: true, NoWALFailover: true})
		if reflect.ValueOf(o).Elem().FieldByName("strictFS").Bool() {
			continue
		}
		o.Opts.FS = fs
		o.Opts.Cache = nil
		o.Threads = 1
		return o
	}
}

// runMeta runs the ops of seed on fs in dir and returns each op's output with
// dir replaced by "$DIR".
func runMeta(t *testing.T, seed, nOps uint64, fs vfs.FS, dir string) []string {
	t.Helper()
	ops := metamorphic.GenerateOps(rand.New(rand.NewPCG(seed, seed)), nOps,
		metamorphic.TestkeysKeyFormat, metamorphic.DefaultOpConfig())
	test, err := metamorphic.New(ops, metaOptions(t, seed, fs), dir, io.Discard)
	if err != nil {
		t.Fatalf("metamorphic.New: %v", err)
	}
	var out []string
	for {
		more, output, err := test.Step()
		if err != nil {
			t.Fatalf("op #%d: %v", len(out), err)
		}
		if !more {
			break
		}
		out = append(out, strings.ReplaceAll(output, dir, "$DIR"))
	}
	if len(out) != len(ops) {
		t.Fatalf("ran %d ops of %d", len(out), len(ops))
	}
	return out
}

// opKinds tallies the op list of seed by kind, for the log: which parts of
// Pebble (flushes, compactions, ingestions, checkpoints) the run exercised.
func opKinds(seed, nOps uint64) string {
	ops := metamorphic.GenerateOps(rand.New(rand.NewPCG(seed, seed)), nOps,
		metamorphic.TestkeysKeyFormat, metamorphic.DefaultOpConfig())
	n := map[string]int{}
	for _, op := range ops {
		n[strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%T", op), "*metamorphic."), "Op")]++
	}
	var kinds []string
	for _, k := range []string{"set", "flush", "compact", "ingest", "ingestAndExcise", "checkpoint", "get", "newIter"} {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n[k]))
	}
	return strings.Join(kinds, ", ")
}

func TestMetamorphic(t *testing.T) {
	seed := envUint("PEBBLEFS_META_SEED", 1)
	nOps := envUint("PEBBLEFS_META_OPS", 5000)
	if testing.Short() {
		nOps = 300
	}
	ref := runMeta(t, seed, nOps, vfs.Default, t.TempDir())
	nonEmpty := 0
	for _, o := range ref {
		if strings.TrimSpace(o) != "" {
			nonEmpty++
		}
	}
	if nonEmpty == 0 {
		t.Fatal("no op produced output: nothing to compare")
	}
	t.Logf("seed %d: reference run on vfs.Default: %d ops, %d with output to compare (%s)",
		seed, len(ref), nonEmpty, opKinds(seed, nOps))

	for _, be := range backends {
		t.Run(be, func(t *testing.T) {
			c := setup(t, be)
			fs := pebblefs.New(c, vfs.Default)
			got := runMeta(t, seed, nOps, fs, t.TempDir())
			if len(got) != len(ref) {
				t.Fatalf("%d ops ran, reference ran %d", len(got), len(ref))
			}
			diffs := 0
			for i := range ref {
				if got[i] != ref[i] {
					if diffs < 10 {
						t.Errorf("op #%d: adapter %q, vfs.Default %q", i, got[i], ref[i])
					}
					diffs++
				}
			}
			if diffs > 0 {
				t.Fatalf("%d of %d op outputs differ from vfs.Default's", diffs, len(ref))
			}
			// Requests, and the calls the library made on the caller
			// (cached reads; on threads and kaio the blocking reads,
			// writes and syncs its backend would make on a worker).
			cst := c.Stats()
			st, reqs := fs.Stats(), cst.Requests+cst.Inline
			if st.Routed == 0 || reqs == 0 {
				t.Fatalf("nothing went through the adapter: %+v, %d requests and calls on the caller", st, reqs)
			}
			t.Logf("%s: %d ops ran with outputs equal to vfs.Default's; %d files routed, %d skipped, %d requests and calls on the caller",
				be, len(got), st.Routed, st.Skipped, reqs)
		})
	}
}
