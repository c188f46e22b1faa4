//go:build integration

package retention

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
)

// TestFreeSpaceFloorOnARealFilesystem fills a small tmpfs until it is below
// the floor and checks that a decision brings it back above.
func TestFreeSpaceFloorOnARealFilesystem(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		testenv.NeedsRoot(t, "cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	e := newEnv(t, mnt, 0, 0, 0)
	ctx := context.Background()
	// Fill: 100 KiB segments until less than 2 MiB is free.
	for i := 0; ; i++ {
		u, err := GopsutilUsage(ctx, mnt)
		if err != nil {
			t.Fatal(err)
		}
		if u.Free < 2<<20 {
			break
		}
		e.add(t0.Add(time.Duration(i)*10*time.Second), 100<<10, i%2 == 0)
	}
	r, _ := e.retention(Config{LimitBytes: 1 << 40, MinFreeBytes: 3 << 20}, nil) // the real statfs
	if err := r.Decide(ctx); err != nil {
		t.Fatal(err)
	}
	u, _ := GopsutilUsage(ctx, mnt)
	if u.Free < 3<<20 {
		t.Errorf("free %d after the decision, want at least the 3 MiB floor", u.Free)
	}
	// Only uploaded (even-numbered) segments went: there were enough.
	for i, rec := range e.recs {
		if _, err := os.Stat(rec.Path); err != nil && i%2 == 1 {
			t.Errorf("segment %d, not uploaded, was deleted while uploaded ones were left", i)
		}
	}
	if st := r.Status(); st.DeletedUploaded == 0 || st.DeletedNotUploaded != 0 {
		t.Errorf("status %+v", st)
	}
}

// fullDisk is a small tmpfs holding the catalog (and its reserve, if
// reserve) and the recordings, with n segments of 200 KiB, the even ones
// uploaded, then filled to the last block.
func fullDisk(t *testing.T, n int, reserve bool) (*env, *catalog.Reserve) {
	t.Helper()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt).CombinedOutput(); err != nil {
		testenv.NeedsRoot(t, "cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	save := filepath.Join(mnt, "rec")
	opts := catalog.Options{Path: filepath.Join(save, ".cctvd", layout.CatalogName), SavePath: save}
	var res *catalog.Reserve
	if reserve {
		res = catalog.NewReserve(filepath.Join(save, ".cctvd", layout.ReserveName), 2<<20)
		opts.Reserve = res
	}
	cat, err := catalog.OpenWith(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	e := &env{t: t, save: save, cat: cat, logs: &testenv.Buffer{}}
	for i := range n {
		e.add(t0.Add(time.Duration(i)*10*time.Second), 200<<10, i%2 == 0)
	}
	if reserve {
		if created, err := res.Ensure(); !created || err != nil {
			t.Fatalf("reserve: %v %v", created, err)
		}
	}
	f, _ := os.Create(filepath.Join(mnt, "filler"))
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	// Use up the slack of the catalog's write-ahead log, so that the next
	// write needs a block the filesystem does not have.
	if !reserve {
		for i := 0; ; i++ {
			if _, err := cat.AddGap(context.Background(), catalog.Gap{Camera: "x", Start: t0, End: t0, Cause: "fill", Detail: strings.Repeat("x", 4000)}); err != nil {
				if !catalog.IsFull(err) {
					t.Fatalf("filling the catalog: %v", err)
				}
				break
			}
			if i > 100000 {
				t.Fatal("the catalog never filled up")
			}
		}
	}
	return e, res
}

// TestFullDiskReserveLetsRetentionRecord: on a filesystem full to the
// last block, the decision's catalog write gets the reserve's blocks, the
// deletions are recorded, then the files go.
func TestFullDiskReserveLetsRetentionRecord(t *testing.T) {
	e, res := fullDisk(t, 40, true)
	ctx := context.Background()
	r, deleted := e.retention(Config{LimitBytes: 1 << 40, MinFreeBytes: 3 << 20}, nil) // the real statfs
	if err := r.Decide(ctx); err != nil {
		t.Fatal(err)
	}
	if len(*deleted) == 0 || res.Released() != 1 {
		t.Fatalf("deleted %d, reserve released %d times", len(*deleted), res.Released())
	}
	for _, rec := range e.recs {
		got, _ := e.cat.Get(ctx, rec.ID)
		_, statErr := os.Stat(rec.Path)
		if gone := statErr != nil; gone != (got.Local == catalog.Deleted) {
			t.Errorf("%s: file gone %v, row %s", rec.Name(), gone, got.Local)
		}
		if statErr != nil && rec.Upload != catalog.Uploaded {
			t.Errorf("%s, not uploaded, was deleted while uploaded ones were left", rec.Name())
		}
	}
}

// TestFullDiskWithoutRoomForTheCatalog: when even the catalog cannot
// write, uploaded segments go without their record, and the next decision
// repairs the catalog from the disk.
func TestFullDiskWithoutRoomForTheCatalog(t *testing.T) {
	e, _ := fullDisk(t, 40, false)
	ctx := context.Background()
	r, deleted := e.retention(Config{LimitBytes: 1 << 40, MinFreeBytes: 3 << 20}, nil)
	if err := r.Decide(ctx); err != nil {
		t.Fatal(err)
	}
	if len(*deleted) == 0 || !strings.Contains(e.logs.String(), "without their record") {
		t.Fatalf("deleted %v; log:\n%s", *deleted, e.logs.String())
	}
	if st := r.Status(); st.DeletedUploaded != int64(len(*deleted)) || !strings.Contains(e.logs.String(), fmt.Sprintf(`"deleted":%d`, len(*deleted))) {
		t.Errorf("status counts %d deleted, log says:\n%s\nwant %d", st.DeletedUploaded, e.logs.String(), len(*deleted))
	}
	for _, rec := range e.recs {
		if _, err := os.Stat(rec.Path); err != nil && rec.Upload != catalog.Uploaded {
			t.Errorf("%s, not uploaded, was deleted without a record", rec.Name())
		}
	}
	if err := r.Decide(ctx); err != nil { // repairs, then decides
		t.Fatal(err)
	}
	for _, rec := range e.recs {
		got, _ := e.cat.Get(ctx, rec.ID)
		_, statErr := os.Stat(rec.Path)
		if gone := statErr != nil; gone != (got.Local != catalog.Present) {
			t.Errorf("%s: file gone %v, row %s", rec.Name(), gone, got.Local)
		}
	}
	if !strings.Contains(e.logs.String(), "catalog repaired") {
		t.Errorf("no repair logged:\n%s", e.logs.String())
	}
}
