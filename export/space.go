package export

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/disk"

	"github.com/cctvd/cctvd/retention"
)

// ErrNoSpace is wrapped by a *SpaceError.
var ErrNoSpace = errors.New("not enough temporary space for the export")

// SpaceError says that downloading the footage of a range that only S3
// holds would push the filesystem of the export's temporary folder under
// its free-space floor: on savePath's filesystem, retention would delete
// recordings to keep it.
type SpaceError struct {
	// Need is what the download needs (an estimate before it starts, or
	// what it was about to write); Free what the filesystem has free then,
	// less what other exports have reserved; Floor the free space it keeps.
	Need, Free, Floor int64
	// OnSavePath: the temporary folder is on savePath's filesystem.
	OnSavePath bool
}

func (e *SpaceError) Error() string {
	where, floor := "the export temporary folder's filesystem", "its free-space floor (1 GB, or 5 % of a smaller filesystem)"
	if e.OnSavePath {
		where, floor = "savePath's filesystem", "the free-space floor retention keeps by deleting recordings (storageConfig.minFreeGB)"
	}
	return fmt.Sprintf("%v: the range's footage that only S3 holds needs about %s on %s, which has %s free and must keep %s, %s; export a shorter range, or set storageConfig.exportTempDir to a filesystem with room",
		ErrNoSpace, mib(e.Need), where, mib(max(0, e.Free)), mib(e.Floor), floor)
}

func (e *SpaceError) Unwrap() error { return ErrNoSpace }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// TempSpace is where exports download the sources only S3 holds, and the
// free space they leave there. Builds check it before they start (with
// what the other builds under way have reserved) and as they write.
// Safe for concurrent use (set its fields before, then Configure); share
// one among the builds of a box.
type TempSpace struct {
	// Dir holds the downloads (each unlinked as soon as it is created).
	// Default: os.TempDir() ($TMPDIR).
	Dir string
	// SavePath and MinFreeBytes: on savePath's filesystem, the floor is
	// the one retention keeps there (storageConfig.minFreeGB; 0: its
	// default, retention.DefaultFloor); on another filesystem, that
	// filesystem's own default floor.
	SavePath     string
	MinFreeBytes int64

	mu       sync.Mutex
	reserved int64
}

// Configure changes the folder and the floor (after a reload); builds
// under way keep their downloads where they are.
func (t *TempSpace) Configure(dir, savePath string, minFreeBytes int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Dir, t.SavePath, t.MinFreeBytes = dir, savePath, minFreeBytes
}

// settings returns the folder downloads go to, savePath and its floor.
func (t *TempSpace) settings() (dir, savePath string, minFree int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dir = t.Dir
	if dir == "" {
		dir = os.TempDir()
	}
	return dir, t.SavePath, t.MinFreeBytes
}

func (t *TempSpace) dir() string {
	dir, _, _ := t.settings()
	return dir
}

// measure returns the temporary filesystem's free bytes and its floor.
func (t *TempSpace) measure() (free, floor int64, onSave bool, err error) {
	dir, savePath, minFree := t.settings()
	u, err := disk.Usage(dir)
	if err != nil {
		return 0, 0, false, fmt.Errorf("export: measure the temporary folder's free space: %w", err)
	}
	floor = retention.DefaultFloor(u.Total)
	if savePath != "" && sameFilesystem(dir, savePath) {
		onSave = true
		if minFree > 0 {
			floor = minFree
		}
	}
	return int64(u.Free), floor, onSave, nil
}

func sameFilesystem(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return false
	}
	sa, ok1 := fa.Sys().(*syscall.Stat_t)
	sb, ok2 := fb.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev
}

// reserve checks that need more bytes fit above the floor, with what the
// builds under way reserved, and reserves them until release.
func (t *TempSpace) reserve(need int64) (release func(), err error) {
	if need <= 0 {
		return func() {}, nil
	}
	free, floor, onSave, err := t.measure()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if free-t.reserved-need < floor {
		return nil, &SpaceError{Need: need, Free: free - t.reserved, Floor: floor, OnSavePath: onSave}
	}
	t.reserved += need
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			t.reserved -= need
			t.mu.Unlock()
		})
	}, nil
}

// allow says whether a download that reserved own bytes may write n more:
// the floor and the other builds' reservations are kept.
func (t *TempSpace) allow(n, own int64) error {
	free, floor, onSave, err := t.measure()
	if err != nil {
		return err
	}
	t.mu.Lock()
	others := t.reserved - own
	t.mu.Unlock()
	if free-others-n < floor {
		return &SpaceError{Need: n, Free: free - others, Floor: floor, OnSavePath: onSave}
	}
	return nil
}

// estimate is what downloading the sources of [from, to) that only S3
// holds stores: the part of each object the range covers (its bytes are
// kept only for the samples a clip may play; the keyframe before the
// range's start, which may add a little, is checked as it is written).
func estimate(segs []Segment, from, to time.Time, local func(Segment) bool) int64 {
	var need int64
	for _, s := range segs {
		if local(s) || !s.Uploaded || s.Bytes <= 0 {
			continue
		}
		d := s.End.Sub(s.Start)
		in := minTime(s.End, to).Sub(maxTime(s.Start, from))
		if d <= 0 || in >= d {
			need += s.Bytes
			continue
		}
		if in > 0 {
			need += int64(float64(s.Bytes) * float64(in) / float64(d))
		}
	}
	return need
}
