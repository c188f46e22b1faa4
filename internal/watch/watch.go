// Package watch holds a value that many goroutines read and change, and
// that some wait on: a component's status, which the API shows and tests
// and handlers wait to reach a state.
package watch

import (
	"context"
	"sync"
)

// Value is a value with change notification. It is safe for concurrent use.
type Value[T any] struct {
	mu      sync.Mutex
	v       T
	changed chan struct{} // closed and replaced on every update
}

// New returns a Value holding v.
func New[T any](v T) *Value[T] {
	return &Value[T]{v: v, changed: make(chan struct{})}
}

// Get returns the value (a shallow copy).
func (w *Value[T]) Get() T {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.v
}

// Update changes the value under the lock and wakes every waiter. f must
// not call back into w.
func (w *Value[T]) Update(f func(v *T)) {
	w.mu.Lock()
	f(&w.v)
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// WaitFor returns once cond holds for the value, or ctx ends.
func (w *Value[T]) WaitFor(ctx context.Context, cond func(T) bool) error {
	for {
		w.mu.Lock()
		ok, ch := cond(w.v), w.changed
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
