//go:build integration

package retention

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/testenv"
)

// setImmutable sets or clears a file's immutable flag (chattr +i): not
// even root can unlink it then. It needs CAP_LINUX_IMMUTABLE and a
// filesystem with the flag (ext4, tmpfs, ...).
func setImmutable(path string, on bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return err
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags))
}

// readOnly makes dir a read-only bind mount of itself: nothing in it can
// be unlinked, by root either. It returns the function that undoes it.
func readOnly(dir string) (func() error, error) {
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		return nil, err
	}
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		syscall.Unmount(dir, syscall.MNT_DETACH)
		return nil, err
	}
	return func() error { return syscall.Unmount(dir, syscall.MNT_DETACH) }, nil
}

// TestUnlinkFails: a segment whose unlink fails (the file immutable, or its
// day folder read-only) is back to present in the catalog, with no cause,
// counted in the totals, not reported as deleted; the decision deletes the
// next ones instead and says what failed; once the file can go, the next
// decision deletes it.
func TestUnlinkFails(t *testing.T) {
	for _, how := range []string{"immutable file", "read-only day folder"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t, "", 0, 0, 0)
			e.add(t0.Add(-48*time.Hour), 1000, true) // alone in its day folder
			for i := range 4 {
				e.add(t0.Add(time.Duration(i)*10*time.Second), 1000, true)
			}
			stuck := e.recs[0]
			var undo func() error
			switch how {
			case "immutable file":
				if err := setImmutable(stuck.Path, true); err != nil {
					testenv.NeedsRoot(t, "cannot make a file immutable here (needs root and a filesystem with chattr +i): %v", err)
				}
				undo = func() error { return setImmutable(stuck.Path, false) }
			default:
				var err error
				if undo, err = readOnly(filepath.Dir(stuck.Path)); err != nil {
					testenv.NeedsRoot(t, "cannot make a read-only bind mount here (needs root): %v", err)
				}
			}
			undone := false
			t.Cleanup(func() {
				if !undone {
					undo()
				}
			})
			if err := os.Remove(stuck.Path); err == nil {
				t.Fatal("the file could be unlinked: the test would prove nothing")
			}

			ctx := context.Background()
			// 5000 held, limit 3000: down to 2850, three segments go.
			r, deleted := e.retention(Config{LimitBytes: 3000}, plenty)
			err := r.Decide(ctx)
			if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EROFS) {
				t.Errorf("Decide: %v, want the unlink's error", err)
			}
			if got := e.present(); !slices.Equal(got, []int{0, 4}) {
				t.Errorf("left on disk %v, want [0 4]: the stuck one and the newest", got)
			}
			got, _ := e.cat.Get(ctx, stuck.ID)
			if got.Local != catalog.Present || got.DeleteCause != "" {
				t.Errorf("the row of the file that could not go: %s (%q), want present with no cause", got.Local, got.DeleteCause)
			}
			for _, i := range []int{1, 2, 3} {
				if got, _ := e.cat.Get(ctx, e.recs[i].ID); got.Local != catalog.Deleted || got.DeleteCause != catalog.CauseSizeLimit {
					t.Errorf("segment %d: %s (%q), want deleted for the size limit", i, got.Local, got.DeleteCause)
				}
			}
			if tot, _ := e.cat.Totals(ctx); tot.Count != 2 || tot.Bytes != 2000 {
				t.Errorf("totals %+v, want the 2 files on disk", tot)
			}
			if slices.ContainsFunc(*deleted, func(d string) bool { return strings.HasPrefix(d, stuck.Name()) }) || len(*deleted) != 3 {
				t.Errorf("reported deleted: %v", *deleted)
			}
			if st := r.Status(); st.DeletedUploaded != 3 || st.DeletedNotUploaded != 0 {
				t.Errorf("status counts %d uploaded, %d not uploaded deleted; want 3, 0", st.DeletedUploaded, st.DeletedNotUploaded)
			}
			if !strings.Contains(e.logs.String(), "cannot delete recording") || !strings.Contains(e.logs.String(), stuck.Name()) {
				t.Errorf("the failed unlink is not logged with its segment:\n%s", e.logs.String())
			}

			// Once it can go, it goes first (the oldest).
			if err := undo(); err != nil {
				t.Fatal(err)
			}
			undone = true
			r.Reconfigure(Config{LimitBytes: 2000})
			if err := r.Decide(ctx); err != nil {
				t.Fatal(err)
			}
			if got := e.present(); !slices.Equal(got, []int{4}) {
				t.Errorf("after the file could go: left %v, want [4]", got)
			}
		})
	}
}

// TestEveryUnlinkFails: when nothing can be deleted, every row stays
// present, the decision fails, and it ends (no loop over the same files).
func TestEveryUnlinkFails(t *testing.T) {
	e := newEnv(t, "", 3, 1000, 1)
	undo, err := readOnly(filepath.Dir(e.recs[0].Path))
	if err != nil {
		testenv.NeedsRoot(t, "cannot make a read-only bind mount here (needs root): %v", err)
	}
	t.Cleanup(func() { undo() })
	r, deleted := e.retention(Config{LimitBytes: 1000}, plenty)
	done := make(chan error, 1)
	go func() { done <- r.Decide(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("Decide: %v, want EROFS", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Decide did not return within 30 s with every unlink failing")
	}
	if got := e.present(); !slices.Equal(got, []int{0, 1, 2}) || len(*deleted) != 0 {
		t.Errorf("left %v, reported deleted %v", got, *deleted)
	}
	if tot, _ := e.cat.Totals(context.Background()); tot.Count != 3 {
		t.Errorf("totals %+v: every row must be present again", tot)
	}
	if !strings.Contains(e.logs.String(), "nothing left to delete") {
		t.Errorf("no warning that nothing else could go:\n%s", e.logs.String())
	}
}

// TestRunReportsFailedDecisions: a decision that fails is in the status
// and the log; the next successful one clears it.
func TestRunReportsFailedDecisions(t *testing.T) {
	e := newEnv(t, "", 3, 1000, 3)
	undo, err := readOnly(filepath.Dir(e.recs[0].Path))
	if err != nil {
		testenv.NeedsRoot(t, "cannot make a read-only bind mount here (needs root): %v", err)
	}
	defer undo()
	r, _ := e.retention(Config{LimitBytes: 2000, Interval: time.Hour, MinGap: time.Millisecond}, plenty)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := r.WaitFor(wctx, func(st Status) bool { return st.LastError != "" }); err != nil {
		cancel()
		t.Fatal("no failed decision in the status within 20 s")
	}
	failedAt := r.Status().Decisions
	if !strings.Contains(r.Status().LastError, "read-only file system") || !strings.Contains(e.logs.String(), "retention decision failed") {
		t.Errorf("status error %q; log:\n%s", r.Status().LastError, e.logs.String())
	}
	undo()
	r.Notify()
	if err := r.WaitFor(wctx, func(st Status) bool { return st.Decisions > failedAt && st.LastError == "" }); err != nil {
		cancel()
		t.Fatalf("no successful decision after the folder came back: status %+v", r.Status())
	}
	if left := e.present(); len(left) != 1 {
		t.Errorf("the decision after the folder came back left %v, want one", left)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of its context's end")
	}
}

// TestStuckUploadedIsNotReplacedByFootageS3Lacks: when the uploaded
// segments cannot be deleted (their day folder read-only), a decision for
// the size limit does not delete the segments S3 does not have instead;
// it stops and says so. (For the free-space floor it would: recording
// itself is at stake.)
func TestStuckUploadedIsNotReplacedByFootageS3Lacks(t *testing.T) {
	e := newEnv(t, "", 0, 0, 0)
	e.add(t0.Add(-48*time.Hour), 1000, true) // uploaded, alone in its day folder
	e.add(t0.Add(-48*time.Hour+10*time.Second), 1000, true)
	for i := range 3 {
		e.add(t0.Add(time.Duration(i)*10*time.Second), 1000, false)
	}
	undo, err := readOnly(filepath.Dir(e.recs[0].Path))
	if err != nil {
		testenv.NeedsRoot(t, "cannot make a read-only bind mount here (needs root): %v", err)
	}
	t.Cleanup(func() { undo() })
	r, deleted := e.retention(Config{LimitBytes: 2000}, plenty)
	if err := r.Decide(context.Background()); !errors.Is(err, syscall.EROFS) {
		t.Errorf("Decide: %v, want EROFS", err)
	}
	if got := e.present(); !slices.Equal(got, []int{0, 1, 2, 3, 4}) || len(*deleted) != 0 {
		t.Errorf("left %v, reported deleted %v: footage S3 lacks went in place of uploaded footage that could not", got, *deleted)
	}
	if st := r.Status(); st.DeletedNotUploaded != 0 {
		t.Errorf("status counts %d not-uploaded deletions", st.DeletedNotUploaded)
	}
	if !strings.Contains(e.logs.String(), "nothing left to delete") {
		t.Errorf("no warning that nothing else could go:\n%s", e.logs.String())
	}
}

// TestStuckUploadedLeavesQuarantinedFootage: the same for the quarantine
// over its bound: when uploaded segments cannot go under the size limit,
// only its files that cost no footage (here an empty one) go, not those
// that may hold footage S3 lacks.
func TestStuckUploadedLeavesQuarantinedFootage(t *testing.T) {
	e := newEnv(t, "", 0, 0, 0)
	e.add(t0.Add(-48*time.Hour), 1000, true) // uploaded, alone in its day folder
	e.add(t0.Add(time.Second), 1000, false)
	q := e.quarantineFiles("cam1", 1, 1000)
	empty := filepath.Join(filepath.Dir(q[0]), "R1-00000.mp4")
	os.WriteFile(empty, nil, 0o644)
	e.movedIn(empty, t0)
	undo, err := readOnly(filepath.Dir(e.recs[0].Path))
	if err != nil {
		testenv.NeedsRoot(t, "cannot make a read-only bind mount here (needs root): %v", err)
	}
	t.Cleanup(func() { undo() })
	r, deleted := e.retention(Config{LimitBytes: 2000, QuarantineShare: 0.01}, plenty) // 3000 held; bound 20
	if err := r.Decide(context.Background()); !errors.Is(err, syscall.EROFS) {
		t.Errorf("Decide: %v, want EROFS", err)
	}
	if got := exists(q); len(got) != 1 {
		t.Errorf("the quarantined file that may hold footage went (left %v) in place of uploaded footage that could not", got)
	}
	if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the empty quarantined file is still there: %v", err)
	}
	if want := []string{"R1-00000.mp4 " + CauseQuarantineNoFootage}; !slices.Equal(*deleted, want) {
		t.Errorf("deleted %v, want %v", *deleted, want)
	}
	if got := e.present(); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("recordings left %v", got)
	}
}

// TestUnlinkFailuresEndTheDecision: with many rows and every unlink
// failing, a decision gives up after a bounded number of failures rather
// than walking the whole catalog.
func TestUnlinkFailuresEndTheDecision(t *testing.T) {
	e := newEnv(t, "", 0, 0, 0)
	for i := range 3 * maxUnlinkFailures {
		e.add(t0.Add(time.Duration(i)*10*time.Second), 1000, true)
	}
	undo, err := readOnly(filepath.Dir(e.recs[0].Path))
	if err != nil {
		testenv.NeedsRoot(t, "cannot make a read-only bind mount here (needs root): %v", err)
	}
	t.Cleanup(func() { undo() })
	r, _ := e.retention(Config{LimitBytes: 1000}, plenty)
	if err := r.Decide(context.Background()); !errors.Is(err, syscall.EROFS) {
		t.Errorf("Decide: %v, want EROFS", err)
	}
	if n := strings.Count(e.logs.String(), "cannot delete recording"); n != maxUnlinkFailures {
		t.Errorf("%d unlinks failed in one decision, want it to stop at %d", n, maxUnlinkFailures)
	}
	if !strings.Contains(e.logs.String(), "too many recordings could not be deleted") {
		t.Errorf("no warning that the decision gave up:\n%s", e.logs.String())
	}
	if tot, _ := e.cat.Totals(context.Background()); tot.Count != int64(len(e.recs)) {
		t.Errorf("totals %+v: every row must be present again", tot)
	}
}
