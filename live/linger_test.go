package live

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// openSegmentFixture makes camera cam1's staging folder hold a run whose
// ffmpeg is alive (a sleeping stand-in process whose command line names the run) and whose open segment is
// a real fragmented segment of the test camera.
func openSegmentFixture(t *testing.T) (savePath, segment string) {
	t.Helper()
	save := t.TempDir()
	dir := layout.StagingDir(save, "cam1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	id := staging.NewRunID(time.Now())
	// The run's ffmpeg: its command line names the run, as ffmpeg's does.
	cmd := exec.Command("sh", "-c", "sleep 600; :", id)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	run := staging.Run{Dir: dir, ID: id}
	if err := staging.WriteMeta(run.MetaPath(), staging.Meta{RunID: id, Camera: "cam1", PID: cmd.Process.Pid, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../internal/mp4/testdata/golden/cam/seg000.mp4")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(run.SegmentPath(0), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return save, run.SegmentPath(0)
}

// openDescriptors counts this process's descriptors of path.
func openDescriptors(path string) int {
	fds, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasSuffix(l, filepath.Base(path)) {
			n++
		}
	}
	return n
}

// TestReaderStopsAfterItsLinger: once a camera's last viewer has gone and
// the linger passed, its reader stops and lets go of the open segment.
// (Readers ran on the hub's context, so each viewer session left one
// behind, reading and holding the file, until the daemon stopped.)
func TestReaderStopsAfterItsLinger(t *testing.T) {
	save, seg := openSegmentFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	h := New(Config{SavePath: save, Linger: 10 * time.Millisecond, Poll: 5 * time.Millisecond}, Deps{Log: zerolog.Nop()})
	ran := make(chan struct{})
	go func() { defer close(ran); h.Run(ctx) }()
	t.Cleanup(func() { cancel(); await.Recv(t, ran, 10*time.Second, "the hub's stop") })
	deadline := time.Now().Add(10 * time.Second)
	for h.Admits("cam1") != nil { // Run has started
		if time.Now().After(deadline) {
			t.Fatal("the hub did not start")
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 5 {
		v, err := h.Join("cam1")
		if err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		src := h.sources["cam1"]
		h.mu.Unlock()
		fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := v.Next(fctx); err != nil { // its reader has the file open
			t.Fatalf("viewer %d: %v", i, err)
		}
		fcancel()
		v.Close()
		await.Recv(t, src.done, 10*time.Second, "the reader's stop after the linger")
	}
	if n := openDescriptors(seg); n != 0 {
		t.Errorf("%d descriptors of the open segment are held with no viewer", n)
	}
	if st := h.Stats(); st.Cameras != 0 || st.Viewers != 0 {
		t.Errorf("stats %+v after every viewer left", st)
	}
}
