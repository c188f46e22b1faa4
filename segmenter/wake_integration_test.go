//go:build integration

package segmenter

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/staging"
	"github.com/cctvd/cctvd/supervisor"
)

// TestEverySegmentOnceWokenOnlyByCloses: with rescans out of the way (an
// hour apart), the segmenter's wake-ups alone (a segment created or closed,
// metadata put in place) bring every closed segment exactly once, in order,
// and soon after it closed: while it runs; across a restart of the
// segmenter, during which a segment closed (found by its first scan); and
// when ffmpeg is killed mid-segment (the unlisted segment salvaged once, as
// the run's metadata says it exited), then records on in a new run.
func TestEverySegmentOnceWokenOnlyByCloses(t *testing.T) {
	testenv.RequireTools(t)
	cam := testenv.StartCamera(t, testenv.CameraOptions{Mounts: map[string]string{"/cam1": "640x360@10"}, User: "admin", Password: camPassword, Auth: "digest"})
	c := camera(cam, "camera1", "/cam1", camPassword, 5, "640x360", 2)
	c.Mode = config.ModeTranscode
	savePath := t.TempDir()
	logs := &testenv.Buffer{}
	red := redact.New(camPassword)
	log := zerolog.New(redact.NewWriter(red, logs)).With().Timestamp().Logger()
	sup := supervisor.New(supervisor.Config{SavePath: savePath, Owner: "owner", StallTimeout: 15 * time.Second, StopTimeout: 5 * time.Second},
		[]config.Camera{c}, nil, supervisor.Deps{Log: log, Redactor: red})
	supCtx, supCancel := context.WithCancel(context.Background())
	supDone := make(chan struct{})
	go func() { defer close(supDone); sup.Run(supCtx) }()
	defer func() { supCancel(); await.Recv(t, supDone, time.Minute, "supervisor stop") }()

	type report struct {
		seg segment.Segment
		at  time.Time
	}
	reports := make(chan report, 100)
	startSegmenter := func() (stop func()) {
		s := New(Config{SavePath: savePath, Owner: "owner", Rescan: time.Hour}, Deps{Log: log, OnSegment: func(sg segment.Segment) {
			reports <- report{sg, time.Now()}
		}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		return func() { cancel(); await.Recv(t, done, time.Minute, "segmenter stop") }
	}
	var got []report
	next := func(what string) report {
		t.Helper()
		r := await.Recv(t, reports, time.Minute, what)
		got = append(got, r)
		return r
	}
	// listed counts the rows of the run's segment list.
	stagingDir := layout.StagingDir(savePath, c.CameraName)
	listed := func(runID string) int {
		data, _ := os.ReadFile(staging.Run{Dir: stagingDir, ID: runID}.ListPath())
		return bytes.Count(data, []byte("\n"))
	}

	stop := startSegmenter()
	first := next("the first segment")
	for range 2 {
		if r := next("a segment"); time.Since(r.seg.End) > 5*time.Second {
			t.Errorf("%s reported %v after its end: not woken by its close", filepath.Base(r.seg.Path), r.at.Sub(r.seg.End))
		}
	}
	run := first.seg.Run

	// The segmenter stops; a segment closes while none runs.
	stop()
	for n := listed(run); n < len(got)+2; n = listed(run) { // two more rows: the first of them closed
		if time.Since(got[len(got)-1].at) > time.Minute {
			t.Fatalf("no segment closed in a minute (%d listed)", n)
		}
		time.Sleep(20 * time.Millisecond) // polling the list ffmpeg writes
	}
	stop = startSegmenter()
	defer func() { stop() }()
	for range 2 {
		next("a segment after the restart")
	}

	// ffmpeg killed mid-segment: what it had not listed is salvaged once,
	// then the camera records on in a new run.
	// (Once the open segment holds a fragment: one with none is no footage,
	// removed rather than salvaged.)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) { // polling what ffmpeg writes
		open := staging.Run{Dir: stagingDir, ID: run}.SegmentPath(listed(run))
		if fragments, _, err := boxes(open); err == nil && fragments > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the open segment got no fragment in a minute")
		}
	}
	pid := sup.Statuses()[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for {
		r := next("the salvaged segment, then the new run's")
		if r.seg.Run != run {
			break
		}
	}

	salvaged := 0
	names := map[string]bool{}
	for i, r := range got {
		name := filepath.Base(r.seg.Path)
		t.Logf("%s run %s salvaged %v reported %v after its end", name, r.seg.Run, r.seg.Salvaged, r.at.Sub(r.seg.End))
		if names[name] {
			t.Errorf("%s reported twice", name)
		}
		names[name] = true
		if r.seg.Salvaged {
			salvaged++
			if r.seg.Run != run {
				t.Errorf("%s salvaged from run %s, want the killed run %s", name, r.seg.Run, run)
			}
		}
		if i > 0 && r.seg.Run == got[i-1].seg.Run {
			// Within a run, each segment starts where the one before ended:
			// none skipped, none twice.
			if gap := r.seg.Start.Sub(got[i-1].seg.End); gap.Abs() > time.Second {
				t.Errorf("%s starts %v after the previous one ends", name, gap)
			}
		}
	}
	if salvaged != 1 {
		t.Errorf("%d salvaged segments, want 1 (the one ffmpeg was writing when killed)", salvaged)
	}
	if n := listed(run); n != 0 {
		t.Errorf("the killed run's list still has %d rows in staging", n)
	}
	if got[len(got)-2].seg.Run != run || !got[len(got)-2].seg.Salvaged {
		t.Errorf("the last segment of the killed run is %+v, want the salvaged one", got[len(got)-2].seg)
	}
	t.Logf("%d segments, one salvaged", len(got))
}
