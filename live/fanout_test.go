package live

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// The drop rule, step by step: what a viewer's queue holds after each
// frame is pushed (and after each taken), with a bound of 3 fragments or
// 100 bytes.
func TestQueueDropRule(t *testing.T) {
	frag := func(name string, key bool, size int) *Frame {
		return &Frame{Data: []byte(name + strings.Repeat(".", size-len(name))), media: true, key: key}
	}
	ctl := func(name string) *Frame { return &Frame{Text: true, Data: []byte(name)} }
	type step struct {
		push   *Frame
		take   int // frames taken before the push
		behind bool
		want   string // names queued after the step, "|" between
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order within the bounds", []step{
			{push: frag("k1", true, 10), want: "k1"},
			{push: frag("p1", false, 10), want: "k1|p1"},
			{push: frag("p2", false, 10), want: "k1|p1|p2"},
			{take: 2, push: frag("p3", false, 10), want: "p2|p3"},
		}},
		{"too many fragments: dropped, resumed at the next keyframe with a drop message", []step{
			{push: frag("k1", true, 10), want: "k1"},
			{push: frag("p1", false, 10), want: "k1|p1"},
			{push: frag("p2", false, 10), want: "k1|p1|p2"},
			{push: frag("p3", false, 10), behind: true, want: ""},
			{push: frag("p4", false, 10), want: ""},
			{push: frag("k2", true, 10), want: `{"type":"drop","fragments":5}|k2`},
			{push: frag("p5", false, 10), want: `{"type":"drop","fragments":5}|k2|p5`},
		}},
		{"too many bytes, at a keyframe: straight to it", []step{
			{push: frag("k1", true, 60), want: "k1"},
			{push: frag("k2", true, 60), behind: true, want: `{"type":"drop","fragments":1}|k2`},
		}},
		{"control frames are kept through a drop, in order", []step{
			{push: frag("k1", true, 40), want: "k1"},
			{push: ctl("clock"), want: "k1|clock"},
			{push: frag("p1", false, 40), want: "k1|clock|p1"},
			{push: frag("p2", false, 40), behind: true, want: "clock"},
			{push: ctl("init"), want: "clock|init"},
			{push: frag("k2", true, 40), want: `clock|init|{"type":"drop","fragments":3}|k2`},
		}},
		{"a viewer keeping up is never dropped", []step{
			{push: frag("k1", true, 90), want: "k1"},
			{take: 1, push: frag("p1", false, 90), want: "p1"},
			{take: 1, push: frag("p2", false, 90), want: "p2"},
			{take: 1, push: frag("k2", true, 90), want: "k2"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(3, 100)
			for i, st := range tt.steps {
				for range st.take {
					if _, err := q.next(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				if behind := q.push(st.push); behind != st.behind {
					t.Errorf("step %d: fell behind %v, want %v", i, behind, st.behind)
				}
				if got := names(q); got != st.want {
					t.Errorf("step %d: queued %q, want %q", i, got, st.want)
				}
			}
		})
	}
}

func names(q *queue) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, f := range q.frames {
		out = append(out, strings.TrimRight(string(f.Data), "."))
	}
	return strings.Join(out, "|")
}

// A new viewer without a keyframe at hand starts at the next one, without
// a drop message; one given the newest keyframe's fragments starts there.
func TestQueueStart(t *testing.T) {
	q := newQueue(2, 1000)
	q.startAtKey()
	q.push(&Frame{Data: []byte("p"), media: true})
	q.push(&Frame{Data: []byte("k"), media: true, key: true})
	if got := names(q); got != "k" {
		t.Errorf("started at key: %q", got)
	}
	q = newQueue(2, 1000)
	for _, n := range []string{"k", "p1", "p2", "p3"} { // a group of pictures longer than the bound
		q.prefill(&Frame{Data: []byte(n), media: true, key: n == "k"})
	}
	if got := names(q); got != "k|p1|p2|p3" {
		t.Errorf("prefilled: %q", got)
	}
}

// next waits for a frame, and ends with the context or once closed, with
// nothing kept.
func TestQueueNextAndClose(t *testing.T) {
	q := newQueue(4, 1000)
	got := make(chan string, 1)
	go func() {
		f, err := q.next(context.Background())
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(f.Data)
	}()
	q.push(&Frame{Data: []byte("k"), media: true, key: true})
	select {
	case g := <-got:
		if g != "k" {
			t.Errorf("next: %q", g)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("next did not return the frame pushed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("next with a cancelled context: %v", err)
	}
	q.push(&Frame{Data: []byte("p"), media: true})
	q.close()
	if _, err := q.next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("next after close: %v", err)
	}
	if n, b, _ := q.stats(); n != 0 || b != 0 {
		t.Errorf("after close: %d frames, %d bytes kept", n, b)
	}
	if q.push(&Frame{Data: []byte("k"), media: true, key: true}); names(q) != "" {
		t.Error("a closed queue took a frame")
	}
}
