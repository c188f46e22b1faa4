package await

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps what a failing test would report.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	panic(r) // Fatalf does not return
}

// fails runs f and returns the failure it reported ("" if none).
func fails(f func(t testing.TB)) (msg string) {
	r := &recorder{}
	defer func() {
		if p := recover(); p != nil {
			if p != r {
				panic(p)
			}
			msg = r.msg
		}
	}()
	f(r)
	return ""
}

func TestRecv(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if got := Recv(t, ch, time.Second, "seven"); got != 7 {
		t.Errorf("Recv = %d", got)
	}
	msg := fails(func(tb testing.TB) { Recv(tb, make(chan int), 20*time.Millisecond, "answer") })
	if !strings.Contains(msg, "answer") || !strings.Contains(msg, "20ms") {
		t.Errorf("a receive that never comes reported %q", msg)
	}
}

func TestDone(t *testing.T) {
	Done(t, time.Second, "a quick wait", func() {})
	block := make(chan struct{})
	defer close(block)
	msg := fails(func(tb testing.TB) { Done(tb, 20*time.Millisecond, "the stop", func() { <-block }) })
	if !strings.Contains(msg, "the stop") {
		t.Errorf("a wait that never returns reported %q", msg)
	}
}
