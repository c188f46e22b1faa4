package logring

import (
	"fmt"
	"testing"
)

func texts(lines []Line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

func TestRingTailAndWrap(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		appended int
		tail     int
		want     string
	}{
		{"empty", 3, 0, 5, "[]"},
		{"fewer than capacity", 3, 2, 5, "[l1 l2]"},
		{"tail smaller than kept", 3, 2, 1, "[l2]"},
		{"exactly full", 3, 3, 3, "[l1 l2 l3]"},
		{"wrapped", 3, 7, 3, "[l5 l6 l7]"},
		{"wrapped, short tail", 3, 7, 2, "[l6 l7]"},
		{"tail zero", 3, 7, 0, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRing(tt.capacity)
			for i := 1; i <= tt.appended; i++ {
				r.Append(fmt.Sprintf("l%d", i))
			}
			if got := fmt.Sprint(texts(r.Tail(tt.tail))); got != tt.want {
				t.Errorf("Tail(%d) = %s, want %s", tt.tail, got, tt.want)
			}
		})
	}
}

func TestRingSinceWakesFollower(t *testing.T) {
	r := NewRing(4)
	r.Append("a")
	lines, changed := r.Since(0)
	if fmt.Sprint(texts(lines)) != "[a]" {
		t.Fatalf("Since(0) = %v", texts(lines))
	}
	select {
	case <-changed:
		t.Fatal("changed closed before any new line")
	default:
	}
	r.Append("b")
	<-changed // closed by the append: the follower wakes
	lines, _ = r.Since(lines[len(lines)-1].Seq)
	if fmt.Sprint(texts(lines)) != "[b]" || lines[0].Seq != 2 {
		t.Fatalf("Since(1) = %+v", lines)
	}
	// A follower that fell behind gets what is still kept.
	for i := range 10 {
		r.Append(fmt.Sprint(i))
	}
	lines, _ = r.Since(2)
	if fmt.Sprint(texts(lines)) != "[6 7 8 9]" {
		t.Fatalf("Since after overrun = %v", texts(lines))
	}
}

func TestHubRoutesByCamera(t *testing.T) {
	h := NewHub(10, 10)
	fmt.Fprintln(h, `{"level":"info","camera":"cam1","message":"x"}`)
	fmt.Fprint(h, "{\"level\":\"info\",\"message\":\"daemon\"}\n{\"camera\":\"cam2\",\"message\":\"y\"}\n")
	if n := len(h.Daemon().Tail(10)); n != 3 {
		t.Errorf("daemon ring has %d lines, want 3", n)
	}
	if got := texts(h.Camera("cam1").Tail(10)); len(got) != 1 || got[0] != `{"level":"info","camera":"cam1","message":"x"}` {
		t.Errorf("cam1 ring = %v", got)
	}
	if n := len(h.Camera("cam2").Tail(10)); n != 1 {
		t.Errorf("cam2 ring has %d lines", n)
	}
}

func TestLongLinesAreCut(t *testing.T) {
	r := NewRing(1)
	r.Append(string(make([]byte, MaxLineBytes+100)))
	if n := len(r.Tail(1)[0].Text); n != MaxLineBytes {
		t.Errorf("kept %d bytes", n)
	}
}
