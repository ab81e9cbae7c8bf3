package aio_test

import (
	"testing"

	"github.com/uringaio/uringaio/aio"
)

// The zero CancelResult is no answer (contract §6.1): a result read before
// CancelFD's error cannot pass for an outcome, as aio_cancel(3)'s -1 cannot.
func TestCancelResultZero(t *testing.T) {
	var zero aio.CancelResult
	if zero != aio.NoCancelResult {
		t.Fatalf("the zero CancelResult is %v, want NoCancelResult", zero)
	}
	for _, r := range []aio.CancelResult{aio.Canceled, aio.NotCanceled, aio.AllDone} {
		if r == zero {
			t.Errorf("%v is the zero CancelResult", r)
		}
	}
	for r, want := range map[aio.CancelResult]string{
		aio.NoCancelResult: "NoCancelResult", aio.Canceled: "Canceled",
		aio.NotCanceled: "NotCanceled", aio.AllDone: "AllDone", aio.AllDone + 1: "CancelResult(4)",
	} {
		if got := r.String(); got != want {
			t.Errorf("CancelResult %d: String %q, want %q", int(r), got, want)
		}
	}
}
