package segmenter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/staging"
)

// logSignal is a log writer that sends each line holding want, once.
type logSignal struct {
	mu   sync.Mutex
	want string
	sent bool
	ch   chan string
	all  strings.Builder
}

func newLogSignal(want string) *logSignal { return &logSignal{want: want, ch: make(chan string, 1)} }

func (l *logSignal) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	if !l.sent && strings.Contains(string(p), l.want) {
		l.sent = true
		l.ch <- string(p)
	}
	return len(p), nil
}

func (l *logSignal) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// endedRun writes, under prep (outside staging), a run of this daemon that
// ended with its one segment listed, to be renamed into a camera folder.
func endedRun(t *testing.T, prep string) staging.Run {
	t.Helper()
	if err := os.MkdirAll(prep, 0o755); err != nil {
		t.Fatal(err)
	}
	run := staging.Run{Dir: prep, ID: "20260106T120000-000000000"}
	makeClip(t, run.SegmentPath(0), 2)
	write(t, run.ListPath(), run.ID+"_00000.mp4,0.000000,2.000000\n")
	if err := staging.WriteMeta(run.MetaPath(), staging.Meta{RunID: run.ID, Camera: "cam1", FeedID: "f", Owner: "me", Exited: true,
		Epoch: time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC), EpochSettled: true}); err != nil {
		t.Fatal(err)
	}
	return run
}

// TestOverflowPassesEveryFolderAtOnce: with the full rescan an hour away,
// a segment closed while the kernel's inotify queue overflowed (its events
// lost) is found at once by the pass the overflow causes. The watch loop is
// held inside its handling of one event while 20000 events fill the queue
// (16384 by default), then a finished run is put in place, unseen.
func TestOverflowPassesEveryFolderAtOnce(t *testing.T) {
	testenv.RequireTools(t)
	savePath := t.TempDir()
	cam1, cam2 := layout.StagingDir(savePath, "cam1"), layout.StagingDir(savePath, "cam2")
	for _, d := range []string{cam1, cam2} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := endedRun(t, filepath.Join(savePath, "prep"))

	logs := newLogSignal(errOverflow.Error())
	segs := make(chan segment.Segment, 10)
	s := New(Config{SavePath: savePath, Owner: "me", Rescan: time.Hour, SyncInterval: -1},
		Deps{Log: zerolog.New(logs), OnSegment: func(sg segment.Segment) { segs <- sg }})
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.woke = func(name string) {
		if name == "hold" {
			once.Do(func() { close(held); <-release })
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); await.Recv(t, done, 30*time.Second, "segmenter stop") }()
	hold := filepath.Join(cam2, "hold")
	for waiting := true; waiting; {
		write(t, hold, "")
		select {
		case <-held:
			waiting = false
		case <-time.After(100 * time.Millisecond): // not watching yet: write it again
		}
	}
	for i := range 10000 { // a create and a close-write each
		write(t, filepath.Join(cam2, fmt.Sprintf("junk%05d", i)), "")
	}
	for _, p := range []string{run.SegmentPath(0), run.ListPath(), run.MetaPath()} {
		if err := os.Rename(p, filepath.Join(cam1, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	await.Recv(t, logs.ch, 30*time.Second, "the overflow (else this test tests nothing)")
	sg := await.Recv(t, segs, 30*time.Second, "the segment closed during the overflow")
	if !strings.HasSuffix(sg.Path, "cam1_f_20260106T120000Z_20260106T120002Z.mp4") || sg.Salvaged {
		t.Errorf("reported %+v, want the listed segment", sg)
	}
}

// TestFailedMoveIsRetriedWithoutAnEvent: a segment whose move failed (here
// its day folder cannot be made: a file is in the way) is moved by a retry
// pass once the cause is gone, though no event comes and the full rescan is
// an hour away.
func TestFailedMoveIsRetriedWithoutAnEvent(t *testing.T) {
	testenv.RequireTools(t)
	savePath := t.TempDir()
	cam1 := layout.StagingDir(savePath, "cam1")
	if err := os.MkdirAll(cam1, 0o755); err != nil {
		t.Fatal(err)
	}
	run := endedRun(t, filepath.Join(savePath, "prep"))
	for _, p := range []string{run.SegmentPath(0), run.ListPath(), run.MetaPath()} {
		if err := os.Rename(p, filepath.Join(cam1, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	blocker := filepath.Join(savePath, "cam1") // where the day folder goes
	write(t, blocker, "in the way")

	logs := newLogSignal("cannot move segment")
	segs := make(chan segment.Segment, 10)
	s := New(Config{SavePath: savePath, Owner: "me", Rescan: time.Hour, Retry: 50 * time.Millisecond, SyncInterval: -1},
		Deps{Log: zerolog.New(logs), OnSegment: func(sg segment.Segment) { segs <- sg }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); await.Recv(t, done, 30*time.Second, "segmenter stop") }()
	await.Recv(t, logs.ch, 30*time.Second, "the failed move")
	select {
	case sg := <-segs:
		t.Fatalf("reported %s while its folder could not be made", sg.Path)
	default:
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	sg := await.Recv(t, segs, 30*time.Second, "the segment, moved by a retry")
	if !strings.HasSuffix(sg.Path, "cam1_f_20260106T120000Z_20260106T120002Z.mp4") {
		t.Errorf("reported %+v", sg)
	}
	if s := logs.String(); !strings.Contains(s, "will retry") {
		t.Errorf("logs %s", s)
	}
}
