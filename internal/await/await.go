// Package await gives tests waits with a deadline: each fails the test,
// naming what it waited for, instead of hanging until the test binary's
// own timeout (25 minutes in `make test`).
package await

import (
	"testing"
	"time"
)

// Recv receives from ch, or fails the test after timeout. A closed
// channel yields its zero value.
func Recv[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("no %s within %v", what, timeout)
	}
	panic("unreachable")
}

// Done runs wait, a call with no deadline of its own (sync.WaitGroup.Wait,
// a receive in a cleanup), and fails the test if it has not returned
// within timeout. The call is left running then: the test has failed.
func Done(t testing.TB, timeout time.Duration, what string, wait func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("%s did not happen within %v", what, timeout)
	}
}
