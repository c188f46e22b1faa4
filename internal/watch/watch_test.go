package watch

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWaitForWakesOnUpdate(t *testing.T) {
	v := New(0)
	done := make(chan error)
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	go func() { done <- v.WaitFor(wctx, func(n int) bool { return n >= 3 }) }()
	for range 3 {
		v.Update(func(n *int) { *n++ })
	}
	if err := <-done; err != nil || v.Get() != 3 { // WaitFor returns by wctx's deadline at the latest
		t.Fatalf("WaitFor = %v, value %d", err, v.Get())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := v.WaitFor(ctx, func(n int) bool { return n > 100 }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor on a condition that never holds = %v", err)
	}
}
