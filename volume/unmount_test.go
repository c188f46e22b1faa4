//go:build integration

package volume

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/testenv"
)

// TestGuardSeesAnUnmountWhileRunning: savePath is a real mount (a tmpfs
// with the marker); a lazy unmount leaves the folder on the filesystem
// below, and the next check stops recording; mounting it back resumes.
func TestGuardSeesAnUnmountWhileRunning(t *testing.T) {
	base := t.TempDir()
	save := filepath.Join(base, "rec")
	disk := filepath.Join(base, "disk")
	os.MkdirAll(save, 0o755)
	os.MkdirAll(disk, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", disk).CombinedOutput(); err != nil {
		testenv.NeedsRoot(t, "cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { syscall.Unmount(disk, syscall.MNT_DETACH) })
	bind := func() {
		t.Helper()
		if out, err := exec.Command("mount", "--bind", disk, save).CombinedOutput(); err != nil {
			t.Fatalf("bind mount: %v %s", err, out)
		}
	}
	bind()
	t.Cleanup(func() { syscall.Unmount(save, syscall.MNT_DETACH) })
	g, _ := newGuard(t, save, filepath.Join(base, "state"))
	first := g.Check()
	if first.State != OK {
		t.Fatal(first)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := syscall.Unmount(save, syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if st := g.Check(); st.State != Missing || st.Filesystem == first.Filesystem {
		t.Fatalf("after the unmount: %+v", st)
	}
	bind()
	if st := g.Check(); st.State != OK || st.ID != first.ID {
		t.Fatalf("mounted back: %+v", st)
	}
	if err := g.WaitFor(ctx, func(s Status) bool { return s.State == OK }); err != nil {
		t.Fatal(err)
	}
}
