//go:build integration

package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
)

// mountTmpfs mounts a tmpfs of size (e.g. "16m") on a new folder.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		testenv.NeedsRoot(t, "cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	return mnt
}

// fill writes a file until the filesystem is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = io.Copy(f, io.LimitReader(zeroReader{}, 1<<40))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestFullDiskReleasesTheReserve, on a real filesystem filled to the last
// block: without the reserve the catalog cannot record a deletion; with
// it, the write that fails releases the reserve and succeeds.
func TestFullDiskReleasesTheReserve(t *testing.T) {
	ctx := context.Background()
	for _, withReserve := range []bool{false, true} {
		t.Run(fmt.Sprintf("reserve %v", withReserve), func(t *testing.T) {
			mnt := mountTmpfs(t, "24m")
			save := filepath.Join(mnt, "rec")
			var logs bytes.Buffer
			opts := Options{Path: filepath.Join(save, ".cctvd", layout.CatalogName), SavePath: save, Log: zerolog.New(&logs)}
			if withReserve {
				opts.Reserve = NewReserve(filepath.Join(save, ".cctvd", layout.ReserveName), 2<<20)
			}
			c, err := OpenWith(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var ids []int64
			for i := range 200 {
				r, err := c.Add(ctx, writeSegment(t, save, "cam1", t0.Add(time.Duration(i)*10*time.Second), 1000), "k")
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, r.ID)
			}
			if withReserve {
				if created, err := opts.Reserve.Ensure(); err != nil || !created || !opts.Reserve.Held() {
					t.Fatalf("reserve not created: %v %v", created, err)
				}
			}
			fill(t, mnt)
			// Retention's writes: mark, one row at a time, as each frees
			// nothing until the unlink.
			var werr error
			for _, id := range ids {
				if werr = c.MarkDeleted(ctx, []int64{id}, CauseFreeSpace); werr != nil {
					break
				}
				if _, werr = c.AddGap(ctx, Gap{Camera: "cam1", Start: t0, End: t0.Add(time.Second), Cause: "retention", Detail: strings.Repeat("x", 500)}); werr != nil {
					break
				}
			}
			if !withReserve {
				if !IsFull(werr) {
					t.Fatalf("a full disk without reserve: %v, want a full-disk error", werr)
				}
				return
			}
			if werr != nil {
				t.Fatalf("with the reserve: %v", werr)
			}
			if opts.Reserve.Released() != 1 || opts.Reserve.Held() {
				t.Errorf("reserve released %d times, held %v", opts.Reserve.Released(), opts.Reserve.Held())
			}
			if !strings.Contains(logs.String(), "released the reserve") {
				t.Errorf("the release was not logged: %s", logs.String())
			}
			// The reserve comes back only once there is room.
			if created, _ := opts.Reserve.Ensure(); created {
				t.Error("reserve recreated on a full disk")
			}
			os.Remove(filepath.Join(mnt, "filler"))
			if created, err := opts.Reserve.Ensure(); !created || err != nil {
				t.Errorf("reserve not restored with room: %v", err)
			}
		})
	}
}

// TestReconcileOnAFullDisk: start-up reconciliation on a full filesystem
// gets its writes through the reserve.
func TestReconcileOnAFullDisk(t *testing.T) {
	ctx := context.Background()
	mnt := mountTmpfs(t, "24m")
	save := filepath.Join(mnt, "rec")
	res := NewReserve(filepath.Join(save, ".cctvd", layout.ReserveName), 2<<20)
	c, err := OpenWith(ctx, Options{Path: filepath.Join(save, ".cctvd", layout.CatalogName), SavePath: save, Reserve: res})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := res.Ensure(); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		writeSegment(t, save, "cam1", t0.Add(time.Duration(i)*10*time.Second), 100)
	}
	fill(t, mnt)
	got, err := c.Reconcile(ctx, key)
	if err != nil || got.Added != 300 {
		t.Fatalf("reconcile on a full disk: %+v %v", got, err)
	}
	if res.Released() != 1 {
		t.Errorf("reserve released %d times", res.Released())
	}
}
