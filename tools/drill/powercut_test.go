//go:build integration

package drill

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/tools/internal/loopfs"
)

// TestPowerCut is the power-cut drill's short form, in `make test`: one
// camera, one cut; `make drill` runs several cuts with two cameras.
func TestPowerCut(t *testing.T) {
	if err := CanCut(); err != nil {
		testenv.NeedsRoot(t, "cannot simulate a power cut: %v", err) // says what this machine lacks: root, loop devices or a tool
	}
	dir := t.TempDir()
	t.Cleanup(func() {
		// Nothing of the drill may outlive it, even when it failed.
		if m := loopfs.MountsUnder(dir); len(m) > 0 {
			t.Errorf("mounts left behind: %v", m)
			for i := len(m) - 1; i >= 0; i-- {
				loopfs.Run("umount", "-l", m[i])
			}
		}
		if l := loopfs.LoopsOf(dir); len(l) > 0 {
			t.Errorf("loop devices left behind: %v", l)
			for _, dev := range l {
				loopfs.Run("losetup", "-d", dev)
			}
		}
	})
	bin := filepath.Join(dir, "cctvd")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/cctvd").CombinedOutput(); err != nil {
		t.Fatalf("build cctvd: %v: %s", err, out)
	}
	r, err := RunPowerCut(context.Background(), PowerCutOptions{Binary: bin, WorkDir: filepath.Join(dir, "work"), Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	r.Write(&b)
	t.Log("\n" + b.String())
	if !r.OK() {
		t.Error("the power-cut drill failed")
	}
}
