//go:build integration

package export

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/retention"
)

// mountTmpfs mounts a tmpfs of size (e.g. "4m") on a new folder.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		testenv.NeedsRoot(t, "cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	return mnt
}

// freeBytes is what statfs says is free in dir, to an unprivileged user.
func freeBytes(t *testing.T, dir string) (free, total int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize
}

// leave fills dir's filesystem until above floor only room bytes are free.
func leave(t *testing.T, dir string, floor, room int64) {
	t.Helper()
	free, _ := freeBytes(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, free-floor-room), 0o644); err != nil {
		t.Fatal(err)
	}
	if free, _ := freeBytes(t, dir); free-floor > room || free-floor < room-8192 {
		t.Fatalf("%d bytes free above the floor, want %d", free-floor, room)
	}
}

// onlyFiller says whether dir holds the filler alone.
func onlyFiller(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "filler" {
		t.Errorf("the temporary folder holds %v", entries)
	}
}

// TestTempSpaceIsChecked: on a real small filesystem (a 4 MiB tmpfs as the
// export's temporary folder), an export of footage only S3 holds that
// would push it under its floor is refused before anything is downloaded;
// one that fits is made; one whose sizes the catalog does not know stops
// at the floor as it downloads; and only the range's part of an object is
// stored. On savePath's filesystem the floor is storageConfig.minFreeGB's.
func TestTempSpaceIsChecked(t *testing.T) {
	b := newBox(t)
	ctx := context.Background()
	tmp := mountTmpfs(t, "4m")
	_, total := freeBytes(t, tmp)
	floor := retention.DefaultFloor(uint64(total))
	segs := remote(b.segs)
	var all int64
	for _, s := range segs {
		all += s.Bytes
	}
	room := all / 2
	leave(t, tmp, floor, room)
	space := &TempSpace{Dir: tmp}
	bld := builder()
	bld.Temp = space
	before, _ := freeBytes(t, tmp)

	// All of it: refused, nothing downloaded.
	from, to := b.segs[0].Start, b.segs[len(b.segs)-1].End
	_, err := bld.Build(ctx, Request{Camera: "door", From: from, To: to, Segments: segs, Made: MadeOnBox})
	var se *SpaceError
	if !errors.As(err, &se) || se.Need != all || se.Floor != floor || se.OnSavePath || !strings.Contains(err.Error(), "storageConfig.exportTempDir") {
		t.Fatalf("err = %v, want a SpaceError needing %d bytes above a floor of %d", err, all, floor)
	}
	if after, _ := freeBytes(t, tmp); after != before {
		t.Errorf("free space went from %d to %d: something was written", before, after)
	}
	onlyFiller(t, tmp)

	// The last segment alone fits.
	last := b.segs[len(b.segs)-1]
	clip, err := bld.Build(ctx, Request{Camera: "door", From: last.Start, To: last.End, Segments: segs, Made: MadeOnBox})
	if err != nil {
		t.Fatalf("a range that fits: %v", err)
	}
	path, m := save(t, clip)
	clip.Close()
	checkCut(t, path, last.End.Sub(last.Start), last.Start)
	if len(m.Sources) != 1 || m.Sources[0].Read != ReadS3 || m.Sources[0].SHA256 != last.SHA256 {
		t.Errorf("sources %+v", m.Sources)
	}

	// Sizes not known before (a row without them): the download stops at
	// the floor, and gives back what it took.
	unknown := append([]Segment(nil), segs...)
	for i := range unknown {
		unknown[i].Bytes = 0
	}
	_, err = bld.Build(ctx, Request{Camera: "door", From: from, To: to, Segments: unknown, Made: MadeOnBox})
	if !errors.As(err, &se) {
		t.Fatalf("downloading past the floor: %v, want a SpaceError", err)
	}
	if after, _ := freeBytes(t, tmp); after != before {
		t.Errorf("after a refused download, free space went from %d to %d", before, after)
	}
	onlyFiller(t, tmp)

	// Of a range in the last second of a segment, only the samples from
	// the keyframe before it are stored, and the clip is the one the box
	// makes from the whole file.
	s0 := b.segs[0]
	part := Request{Camera: "door", From: s0.End.Add(-time.Second), To: s0.End, Made: MadeOnBox}
	part.Segments = segs
	clip, err = bld.Build(ctx, part)
	if err != nil {
		t.Fatal(err)
	}
	held, _ := freeBytes(t, tmp)
	_, m = save(t, clip)
	clip.Close()
	if stored := before - held; stored <= 0 || stored > s0.Bytes*3/4 {
		t.Errorf("stored %d bytes of a %d-byte object for its last second", stored, s0.Bytes)
	} else {
		t.Logf("stored %d bytes of a %d-byte object of %v for its last second", stored, s0.Bytes, s0.End.Sub(s0.Start))
	}
	part.Segments = b.segs
	local, err := builder().Build(ctx, part)
	if err != nil {
		t.Fatal(err)
	}
	_, lm := save(t, local)
	local.Close()
	if m.Export.SHA256 != lm.Export.SHA256 {
		t.Error("the clip from the stored part differs from the clip from the whole file")
	}

	// On savePath's filesystem, the floor is minFreeGB's.
	save := filepath.Join(tmp, "rec")
	os.Mkdir(save, 0o755)
	_, err = (&Builder{S3: bld.S3, Bucket: bucket, Temp: &TempSpace{Dir: tmp, SavePath: save, MinFreeBytes: floor + room - last.Bytes/2}}).
		Build(ctx, Request{Camera: "door", From: last.Start, To: last.End, Segments: segs, Made: MadeOnBox})
	if !errors.As(err, &se) || !se.OnSavePath || !strings.Contains(err.Error(), "storageConfig.minFreeGB") {
		t.Errorf("on savePath's filesystem: %v, want a SpaceError naming minFreeGB", err)
	}
}

// TestTempSpaceKeepsTheRecordingsHeadroom: on savePath's filesystem (a
// real tmpfs holding both), an export must leave, above the floor, the
// room the recordings may still take before retention stops them at their
// limit: a download that fits above the floor but eats into that room is
// refused (503), naming storageConfig.exportTempDir; with the recordings
// at their limit the same export is made. A limit larger than the
// filesystem can hold leaves no room for a download: recordings take it
// all down to the floor.
func TestTempSpaceKeepsTheRecordingsHeadroom(t *testing.T) {
	b := newBox(t)
	ctx := context.Background()
	tmp := mountTmpfs(t, "8m")
	save := filepath.Join(tmp, "rec")
	os.Mkdir(save, 0o755)
	segs := remote(b.segs)
	last := segs[len(segs)-1]
	const floor = 1 << 20
	free, total := freeBytes(t, tmp)
	// Recordings may grow by 2 MiB more; the download needs last.Bytes.
	const limit = 4 << 20
	used := int64(limit - 2<<20)
	if free-floor < 2<<20+last.Bytes+64<<10 || free-floor > total {
		t.Fatalf("%d free: not enough for the test", free)
	}
	leave(t, tmp, floor, 2<<20+last.Bytes/2) // room above the floor for the headroom and half the download
	space := &TempSpace{Dir: tmp, SavePath: save, MinFreeBytes: floor, LimitBytes: limit, Used: func() (int64, bool) { return used, true }}
	bld := &Builder{S3: builder().S3, Bucket: bucket, Temp: space}
	req := Request{Camera: "door", From: last.Start, To: last.End, Segments: segs, Made: MadeOnBox}
	_, err := bld.Build(ctx, req)
	var se *SpaceError
	if !errors.As(err, &se) || !se.OnSavePath || se.Headroom != 2<<20 ||
		!strings.Contains(err.Error(), "storageConfig.exportTempDir") || !strings.Contains(err.Error(), "room the recordings") {
		t.Fatalf("an export into the recordings' headroom: %v, want a SpaceError that names it and exportTempDir", err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 2 { // the filler and savePath
		t.Errorf("the temporary folder holds %v", entries)
	}

	used = limit // at their limit: retention makes room for every new segment
	clip, err := bld.Build(ctx, req)
	if err != nil {
		t.Fatalf("with the recordings at their limit: %v", err)
	}
	clip.Close()

	used = 0
	space.LimitBytes = 100 * total // larger than the filesystem
	if _, err := bld.Build(ctx, req); !errors.As(err, &se) || se.Headroom != se.Free-se.Floor {
		t.Fatalf("with a limit larger than the filesystem: %v, want the room above the floor kept for the recordings", err)
	}
}

// TestTempSpaceInRAM: a temporary folder on tmpfs (Debian's /tmp, the
// unit's PrivateTmp) holds a download in memory: an export may take at
// most half of MemAvailable there, however much the tmpfs could hold.
// (A real tmpfs; MemAvailable is the test's, as no test can make the
// machine's small.)
func TestTempSpaceInRAM(t *testing.T) {
	b := newBox(t)
	ctx := context.Background()
	tmp := mountTmpfs(t, "64m")
	segs := remote(b.segs)
	var all int64
	for _, s := range segs {
		all += s.Bytes
	}
	// As the kernel counts it: what the tmpfs holds is no longer available.
	avail := all // half of it is less than the export needs
	_, size := freeBytes(t, tmp)
	space := &TempSpace{Dir: tmp, memAvailable: func() (int64, error) {
		free, _ := freeBytes(t, tmp)
		return avail - (size - free), nil
	}}
	bld := &Builder{S3: builder().S3, Bucket: bucket, Temp: space}
	req := Request{Camera: "door", From: segs[0].Start, To: segs[len(segs)-1].End, Segments: segs, Made: MadeOnBox}
	_, err := bld.Build(ctx, req)
	var se *SpaceError
	if !errors.As(err, &se) || !se.InRAM || !strings.Contains(err.Error(), "memory") || !strings.Contains(err.Error(), "storageConfig.exportTempDir") {
		t.Fatalf("an export of %d bytes into tmpfs with %d available: %v, want a SpaceError about memory", all, avail, err)
	}
	// Sizes not known before: the download stops at half of what was
	// available when it began.
	unknown := append([]Segment(nil), segs...)
	for i := range unknown {
		unknown[i].Bytes = 0
	}
	if _, err := bld.Build(ctx, Request{Camera: "door", From: req.From, To: req.To, Segments: unknown, Made: MadeOnBox}); !errors.As(err, &se) || !se.InRAM {
		t.Fatalf("a download of unknown size into tmpfs: %v, want a SpaceError about memory", err)
	}
	avail = 4 * all
	clip, err := bld.Build(ctx, req)
	if err != nil {
		t.Fatalf("with room in memory: %v", err)
	}
	clip.Close()
}
