package drill

import (
	"testing"
	"time"
)

func TestIntervals(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	iv := func(a, b int) interval { return interval{at(a), at(b)} }
	m := merge([]interval{iv(5, 8), iv(0, 3), iv(3, 4), iv(7, 10)})
	if len(m) != 2 || m[0] != iv(0, 4) || m[1] != iv(5, 10) {
		t.Errorf("merge = %v", m)
	}
	s := subtract([]interval{iv(0, 10)}, []interval{iv(2, 3), iv(8, 12)})
	if len(s) != 2 || s[0] != iv(0, 2) || s[1] != iv(3, 8) {
		t.Errorf("subtract = %v", s)
	}
	// [0,4]∩[0,2] = 2, [0,4]∩[3,8] = 1, [5,10]∩[3,8] = 3.
	if got := measure(intersect(m, s)); got != 6 {
		t.Errorf("measure(intersect) = %v, want 6", got)
	}
}

// TestResumedAt: a fault's recovery is the start of the next stretch of
// footage, not of a segment that began a moment before the fault (the
// last of the run it ended).
func TestResumedAt(t *testing.T) {
	at := func(s float64) time.Time { return time.Unix(1000, 0).Add(time.Duration(s * float64(time.Second))) }
	seg := func(from, to float64) object {
		return object{camera: "c", start: at(from), end: at(to), played: at(to).Sub(at(from))}
	}
	tests := []struct {
		name  string
		found []object
		fault float64
		want  float64
		ok    bool
	}{
		{"killed 0.3 s into a segment, back 2 s later", []object{seg(0, 4), seg(4, 8), seg(8, 8.3), seg(10.3, 14)}, 8.3, 10.3, true},
		{"killed mid-segment, back later", []object{seg(0, 4), seg(4, 6), seg(9, 13)}, 6, 9, true},
		{"footage never stopped", []object{seg(0, 4), seg(4, 8), seg(8, 12)}, 6, 6, true},
		{"never back", []object{seg(0, 4), seg(4, 6)}, 6, 0, false},
	}
	for _, tt := range tests {
		got, ok := resumedAt(tt.found, "c", at(tt.fault))
		if ok != tt.ok || (ok && !got.Equal(at(tt.want))) {
			t.Errorf("%s: resumed %v, %v; want %v, %v", tt.name, got.Sub(at(0)).Seconds(), ok, tt.want, tt.ok)
		}
	}
}
