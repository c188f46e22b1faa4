package segmenter

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// TestWritesIntoOpenSegmentsDoNotWake: ffmpeg writes a fragment into each
// open segment twice a second; with 64 cameras those writes were a third
// of cctvd's CPU when every one of them woke the segmenter. Only what can
// close a segment may wake it: a segment created or closed, a list or the
// run's metadata put in place. Two cameras write alternately (so the kernel
// cannot merge their events), then each opens its next segment.
func TestWritesIntoOpenSegmentsDoNotWake(t *testing.T) {
	savePath := t.TempDir()
	var mu sync.Mutex
	wakes := map[string]int{} // by file name
	seen := make(chan string, 1000)
	s := New(Config{SavePath: savePath, Owner: "me", Rescan: time.Hour, SyncInterval: -1}, Deps{Log: zerolog.Nop()})
	s.woke = func(name string) {
		mu.Lock()
		wakes[name]++
		mu.Unlock()
		seen <- name
	}
	var files []*os.File
	for _, cam := range []string{"cam1", "cam2"} {
		dir := layout.StagingDir(savePath, cam)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		run := staging.Run{Dir: dir, ID: "20260106T120000-00000000" + cam[3:]}
		if err := staging.WriteMeta(run.MetaPath(), staging.Meta{RunID: run.ID, Camera: cam, FeedID: "xx", Owner: "me"}); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(run.SegmentPath(0)) // before Run: found by its first scan
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); await.Recv(t, done, 30*time.Second, "segmenter stop") }()
	// Run has started watching once a file made now wakes it.
	probe := filepath.Join(layout.StagingDir(savePath, "cam1"), "20260106T115959-000000000.json")
	for waited := false; !waited; {
		if err := staging.WriteMeta(probe, staging.Meta{RunID: "20260106T115959-000000000", Camera: "cam1", Owner: "me", Exited: true}); err != nil {
			t.Fatal(err)
		}
		select {
		case name := <-seen:
			waited = name == filepath.Base(probe)
		case <-time.After(100 * time.Millisecond): // not watching yet: write it again
		}
	}

	fragment := make([]byte, 4096)
	for range 100 {
		for _, f := range files {
			if _, err := f.Write(fragment); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The next segments: the kernel delivers events in order, so once both
	// have woken the segmenter, every write before them has been seen.
	next := map[string]bool{}
	for i, cam := range []string{"cam1", "cam2"} {
		run := staging.Run{Dir: layout.StagingDir(savePath, cam), ID: "20260106T120000-00000000" + cam[3:]}
		f, err := os.Create(run.SegmentPath(1))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		next[filepath.Base(run.SegmentPath(1))] = true
		_ = i
	}
	for len(next) > 0 {
		delete(next, await.Recv(t, seen, 30*time.Second, "the next segment's wake-up"))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, f := range files {
		if n := wakes[filepath.Base(f.Name())]; n > 0 {
			t.Errorf("%d writes into %s woke the segmenter %d times, want none", 100, filepath.Base(f.Name()), n)
		}
	}
}
