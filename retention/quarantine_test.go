package retention

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// quarantineFiles writes n damaged files of size bytes into the camera's
// quarantine, the first the oldest (mtime a minute apart), and returns
// their paths.
func (e *env) quarantineFiles(camera string, n, size int) []string {
	e.t.Helper()
	dir := layout.QuarantineDir(e.save, camera)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("%s-q%02d.mp4", camera, i))
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			e.t.Fatal(err)
		}
		mt := t0.Add(-time.Hour + time.Duration(i)*time.Minute)
		if err := os.Chtimes(p, mt, mt); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// running starts r.Run, as the daemon does, and returns a function that
// waits for the status to satisfy cond (at least one decision more than
// when it was called) and returns it; Run is stopped when the test ends.
func running(t *testing.T, r *Retention) func(cond func(Status) bool) Status {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10 s of its context's end")
		}
	})
	return func(cond func(Status) bool) Status {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		defer wcancel()
		if err := r.WaitFor(wctx, cond); err != nil {
			t.Fatalf("retention's status never got there within 20 s: %+v", r.Status())
		}
		return r.Status()
	}
}

func exists(paths []string) []int {
	var idx []int
	for i, p := range paths {
		if _, err := os.Stat(p); err == nil {
			idx = append(idx, i)
		}
	}
	return idx
}

// TestQuarantineIsBounded: a quarantine near the low-water mark used to
// make every decision delete every recording and still miss its target.
// It has a bound of its own now: beyond it, its oldest files go (logged),
// and the recordings stay.
func TestQuarantineIsBounded(t *testing.T) {
	e := newEnv(t, "", 10, 1000, 10)
	q := e.quarantineFiles("cam1", 6, 1500) // 9000 of damaged copies
	r, _ := e.retention(Config{LimitBytes: 10000, Interval: time.Hour, MinGap: time.Millisecond}, plenty)
	wait := running(t, r)
	wait(func(st Status) bool { return st.Decisions >= 1 })
	if got := exists(q); len(got) != 0 {
		t.Errorf("quarantined files left %v: 9000 bytes are far over the default bound (2%% of 10000)", got)
	}
	// 10000 of segments at a 10000 limit: down to 9500, one goes.
	if got := e.present(); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("recordings left %v, want [1..9]: the quarantine made retention delete them", got)
	}
	if n := strings.Count(e.logs.String(), "deleted a quarantined file"); n != 6 {
		t.Errorf("%d quarantined files logged deleted, want 6:\n%s", n, e.logs.String())
	}
}

// TestQuarantineOldestGoFirst: over its bound (30% of the limit here),
// the quarantine's oldest files go until it is at the low-water mark of
// the bound; a quarantined row in the catalog says why its file is gone;
// the status has the quarantine's figures.
func TestQuarantineOldestGoFirst(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "", 10, 1000, 10)
	q := e.quarantineFiles("cam1", 6, 1500)
	// The oldest is a segment the uploader found damaged: it has a row.
	start := t0.Add(-2 * time.Hour)
	bad := e.add(start, 1500, false)
	if err := os.Remove(q[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bad.Path, q[0]); err != nil {
		t.Fatal(err)
	}
	mt := t0.Add(-time.Hour)
	os.Chtimes(q[0], mt, mt)
	if err := e.cat.MarkQuarantined(ctx, bad.ID, q[0], "the file is empty"); err != nil {
		t.Fatal(err)
	}
	e.recs = e.recs[:10]

	r, _ := e.retention(Config{LimitBytes: 10000, QuarantineShare: 0.3}, plenty)
	if err := r.Decide(ctx); err != nil {
		t.Fatal(err)
	}
	// 9000 over a bound of 3000: down to 2850, the newest alone is left.
	if got := exists(q); !slices.Equal(got, []int{5}) {
		t.Errorf("quarantined files left %v, want [5]: the oldest go first", got)
	}
	if got, _ := e.cat.Get(ctx, bad.ID); got.Local != "deleted" || got.DeleteCause != CauseQuarantineLimit {
		t.Errorf("the quarantined row: %s (%s), want deleted (%s)", got.Local, got.DeleteCause, CauseQuarantineLimit)
	}
	// 10000 of segments and 1500 quarantined, limit 10000: down to 9500.
	if got := e.present(); !slices.Equal(got, []int{2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("recordings left %v, want [2..9]", got)
	}
	st := r.Status()
	want := QuarantineStatus{Bytes: 1500, Files: 1, LimitBytes: 3000, DeletedFiles: 5, DeletedBytes: 7500}
	if st.Quarantine != want || st.UsedBytes != 9500 || st.Shortfall != "" {
		t.Errorf("status %+v, want quarantine %+v, used 9500, no shortfall", st, want)
	}
}

// TestShortfallNamesTheQuarantine: when what is left that retention may
// not delete keeps savePath over its target, the status says so, the
// quarantine first; the next decision that reaches its target clears it.
func TestShortfallNamesTheQuarantine(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "", 1, 500, 1)
	e.quarantineFiles("cam1", 1, 4900)
	dir := layout.StagingDir(e.save, "cam1")
	os.MkdirAll(dir, 0o755)
	open := filepath.Join(dir, staging.SegmentName("R", 0))
	os.WriteFile(open, make([]byte, 5000), 0o644)
	r, _ := e.retention(Config{LimitBytes: 10000, QuarantineShare: 0.5}, plenty)
	if err := r.Decide(ctx); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	for _, want := range []string{"savePath holds 9.9 kB, 400 bytes over the cleanup target, and nothing more can be deleted",
		"the quarantine holds 4.9 kB of damaged files (its bound is 5.0 kB)", "5.0 kB are segments being written"} {
		if !strings.Contains(st.Shortfall, want) {
			t.Errorf("shortfall %q lacks %q", st.Shortfall, want)
		}
	}
	if st.Quarantine.Bytes != 4900 || st.Quarantine.Files != 1 || st.Quarantine.LimitBytes != 5000 {
		t.Errorf("quarantine status %+v", st.Quarantine)
	}
	os.WriteFile(open, make([]byte, 4000), 0o644) // the open segment is closed, a new one begins
	if err := r.Decide(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.Shortfall != "" {
		t.Errorf("under the limit, the shortfall stays: %q", st.Shortfall)
	}
}

// TestShortfallOnTheFloor: below the free-space floor with nothing left
// to delete, the status says what holds the filesystem.
func TestShortfallOnTheFloor(t *testing.T) {
	e := newEnv(t, "", 1, 1000, 1)
	e.quarantineFiles("cam1", 1, 2000)
	other := filepath.Join(e.save, "other")
	os.WriteFile(other, make([]byte, 15000), 0o644)
	// 20000-byte disk: 1000 + 2000 + 15000 held, 2000 free; floor 4000.
	r, _ := e.retention(Config{LimitBytes: 1 << 30, MinFreeBytes: 4000, QuarantineShare: 0.5}, fakeDisk(e.save, 20000))
	if err := r.Decide(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	for _, want := range []string{"the filesystem has 3.0 kB free, 1.2 kB short of its floor and nothing more can be deleted",
		"the quarantine holds 2.0 kB", "15.0 kB of the filesystem are files cctvd does not own"} {
		if !strings.Contains(st.Shortfall, want) {
			t.Errorf("shortfall %q lacks %q", st.Shortfall, want)
		}
	}
}

// TestQuarantineTrackedAsFilesMoveIn: a file the uploader or segmenter
// moves into the quarantine counts at the next decision, which its report
// asks for, not only at the hourly cross-check; over the bound, the
// oldest goes.
func TestQuarantineTrackedAsFilesMoveIn(t *testing.T) {
	e := newEnv(t, "", 2, 1000, 2)
	r, _ := e.retention(Config{LimitBytes: 10000, QuarantineShare: 0.5, Interval: time.Hour, MinGap: time.Millisecond}, plenty)
	wait := running(t, r)
	wait(func(st Status) bool { return st.Decisions >= 1 })

	dir := layout.QuarantineDir(e.save, "cam1")
	os.MkdirAll(dir, 0o755)
	first := filepath.Join(dir, "first.mp4")
	os.WriteFile(first, make([]byte, 2000), 0o644)
	old := t0.Add(-time.Hour)
	os.Chtimes(first, old, old)
	d0 := r.Status().Decisions
	r.QuarantineChanged("cam1")
	st := wait(func(st Status) bool { return st.Decisions > d0 }) // the decision it asked for, finished
	if st.Quarantine.Files != 1 || st.Quarantine.Bytes != 2000 || st.UsedBytes != 4000 {
		t.Errorf("after a file moved in: %+v, want 2000 quarantined, 4000 used", st)
	}

	second := filepath.Join(layout.QuarantineDir(e.save, "cam2"), "second.mp4")
	os.MkdirAll(filepath.Dir(second), 0o755)
	os.WriteFile(second, make([]byte, 4000), 0o644) // 6000 over a bound of 5000
	d0 = r.Status().Decisions
	r.QuarantineChanged("cam2")
	st = wait(func(st Status) bool { return st.Decisions > d0 })
	if _, err := os.Stat(first); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the oldest quarantined file is still there: %v", err)
	}
	if _, err := os.Stat(second); err != nil {
		t.Errorf("the newest quarantined file went: %v", err)
	}
	if st.Quarantine.Bytes != 4000 || st.Quarantine.Files != 1 || st.Quarantine.DeletedBytes != 2000 {
		t.Errorf("quarantine status %+v, want 4000 in 1 file, 2000 deleted", st.Quarantine)
	}
}
