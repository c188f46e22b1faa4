package drill

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShortDrill is the drill's short form, in `make test`: three cameras
// for four minutes with every fault. `make drill` runs the full one.
func TestShortDrill(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "cctvd")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/cctvd").CombinedOutput(); err != nil {
		t.Fatalf("build cctvd: %v: %s", err, out)
	}
	r, err := Run(context.Background(), Options{Binary: bin, Duration: 4 * time.Minute, WorkDir: filepath.Join(dir, "work"), Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	r.Write(&b)
	t.Log("\n" + b.String())
	if !r.OK() {
		t.Error("the drill failed")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

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
