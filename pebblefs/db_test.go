package pebblefs_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/uringaio/uringaio/pebblefs"
)

const dbKeys = 20000

func dbKey(i int) []byte   { return []byte(fmt.Sprintf("key-%08d", i)) }
func dbValue(i int) []byte { return []byte(fmt.Sprintf("value-%d-%0100d", i, i)) }

// TestDB opens a Pebble DB on the adapter, writes dbKeys keys (synced WAL
// batches, several memtable flushes), flushes and compacts everything, closes,
// reopens and reads every key back with Get and with a full scan.
func TestDB(t *testing.T) {
	for _, be := range backends {
		t.Run(be, func(t *testing.T) {
			c := setup(t, be)
			fs := pebblefs.New(c, vfs.Default)
			dir := t.TempDir()
			opts := func() *pebble.Options {
				return &pebble.Options{
					FS:           fs,
					MemTableSize: 256 << 10, // many flushes
					Logger:       quietLogger{},
				}
			}
			db, err := pebble.Open(dir, opts())
			if err != nil {
				t.Fatal(err)
			}
			const batch = 500
			for i := 0; i < dbKeys; i += batch {
				b := db.NewBatch()
				for j := i; j < i+batch; j++ {
					if err := b.Set(dbKey(j), dbValue(j), nil); err != nil {
						t.Fatal(err)
					}
				}
				if err := b.Commit(pebble.Sync); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := db.Compact(context.Background(), dbKey(0), dbKey(dbKeys), true); err != nil {
				t.Fatal(err)
			}
			m := db.Metrics()
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			cst := c.Stats()
			written := cst.Requests + cst.Inline // and calls on the caller (§8.5)
			if written == 0 {
				t.Fatal("nothing went through the Context while writing")
			}

			db, err = pebble.Open(dir, opts())
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < dbKeys; i++ {
				v, closer, err := db.Get(dbKey(i))
				if err != nil {
					t.Fatalf("Get(%s): %v", dbKey(i), err)
				}
				if string(v) != string(dbValue(i)) {
					t.Fatalf("Get(%s) = %q", dbKey(i), v)
				}
				closer.Close()
			}
			it, err := db.NewIter(nil)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for it.First(); it.Valid(); it.Next() {
				if string(it.Key()) != string(dbKey(n)) || string(it.Value()) != string(dbValue(n)) {
					t.Fatalf("scan #%d: %q", n, it.Key())
				}
				n++
			}
			if err := it.Close(); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if n != dbKeys {
				t.Fatalf("scan saw %d keys, want %d", n, dbKeys)
			}
			st := fs.Stats()
			if st.Skipped != 0 || st.Routed == 0 {
				t.Fatalf("FS stats %+v: every file should be routed", st)
			}
			t.Logf("%s: %d keys verified by Get and by scan; %d flushes, %d compactions; "+
				"%d files routed, %d requests (%d while writing)",
				be, dbKeys, m.Flush.Count, m.Compact.Count, st.Routed, c.Stats().Requests, written)
		})
	}
}

// quietLogger keeps Pebble's informational lines out of the test output.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{})      {}
func (quietLogger) Errorf(f string, a ...interface{}) { pebble.DefaultLogger.Errorf(f, a...) }
func (quietLogger) Fatalf(f string, a ...interface{}) { pebble.DefaultLogger.Fatalf(f, a...) }
