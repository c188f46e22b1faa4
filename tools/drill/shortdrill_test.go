//go:build integration

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
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/cctvd").CombinedOutput(); err != nil {
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
