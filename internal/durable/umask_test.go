package durable

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWriteHonoursUmask: a file Write makes gets perm &^ umask, as one
// made by open(2) does, so an operator's umask 077 keeps an export and
// its manifest private. The umask is the process's: this test is not
// parallel.
func TestWriteHonoursUmask(t *testing.T) {
	tests := []struct {
		umask int
		perm  os.FileMode
		want  os.FileMode
	}{
		{0o077, 0o644, 0o600},
		{0o027, 0o644, 0o640},
		{0o022, 0o600, 0o600},
		{0o000, 0o640, 0o640},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		old := unix.Umask(tt.umask)
		p := filepath.Join(dir, "clip.mp4")
		err := WriteFile(p, []byte("footage"), tt.perm)
		unix.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tt.want {
			t.Errorf("umask %03o, perm %v: the file is %v, want %v", tt.umask, tt.perm, got, tt.want)
		}
	}
}
