package uringaio_test

import (
	"testing"

	"github.com/uringaio/uringaio/aio"
)

func init() {
	registerCompat("setup/backend-name", func(t *testing.T, be string) {
		c := newContext(t, be, 4)
		if got := c.Backend(); got != be {
			t.Fatalf("Backend() = %q, want %q", got, be)
		}
		p := c.Probes()
		if len(p) == 0 || p[len(p)-1].Backend != be || p[len(p)-1].Err != nil {
			t.Fatalf("Probes() = %v, want last entry {%s <nil>}", p, be)
		}
		var cb aio.IOCB
		cb.Op = aio.OpNop
		if n, err := c.Submit(&cb); n != 1 || err != nil {
			t.Fatalf("Submit(nop) = %d, %v", n, err)
		}
		evs := make([]aio.Event, 1)
		if n, err := c.GetEvents(1, evs, nil); n != 1 || err != nil || evs[0].IOCB != &cb || evs[0].Res != 0 {
			t.Fatalf("GetEvents = %d, %v, %+v", n, err, evs[0])
		}
	})
}
