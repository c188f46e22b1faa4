package export

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/mem"

	"github.com/cctvd/cctvd/retention"
)

// ErrNoSpace is wrapped by a *SpaceError.
var ErrNoSpace = errors.New("not enough temporary space for the export")

// SpaceError says that downloading the footage of a range that only S3
// holds would take room the box needs: push the filesystem of the export's
// temporary folder under its free-space floor, or, on savePath's
// filesystem, into the room the recordings may still take before their
// limit (either way retention would delete recordings to make it), or, on
// a tmpfs, take more than half of the memory available.
type SpaceError struct {
	// Need is what the download needs (an estimate before it starts, or
	// what it was about to write); Free what the filesystem has free then,
	// less what other exports have reserved; Floor the free space it keeps.
	Need, Free, Floor int64
	// OnSavePath: the temporary folder is on savePath's filesystem.
	OnSavePath bool
	// Headroom is, on savePath's filesystem, the room kept above the floor
	// for the recordings: what they may still grow by before retention
	// stops them at clearWhenFilePathReachGB, at most what the filesystem
	// has above its floor. UsedUnknown: how much they hold was not known
	// yet, so they were counted as holding nothing.
	Headroom    int64
	UsedUnknown bool
	// InRAM: the temporary folder is a tmpfs, held in memory; Memory is
	// what a download there may take (half of MemAvailable, less what
	// other exports reserved).
	InRAM  bool
	Memory int64
}

func (e *SpaceError) Error() string {
	way := "export a shorter range, or set storageConfig.exportTempDir to a filesystem with room"
	if e.InRAM {
		return fmt.Sprintf("%v: the range's footage that only S3 holds needs about %s in the export temporary folder, a tmpfs held in memory, where an export may take only %s (half of the memory available); %s (on a disk, not tmpfs)",
			ErrNoSpace, mib(e.Need), mib(max(0, e.Memory)), way)
	}
	where, floor := "the export temporary folder's filesystem", "its free-space floor (1 GB, or 5 % of a smaller filesystem)"
	if e.OnSavePath {
		where, floor = "savePath's filesystem", "the free-space floor retention keeps by deleting recordings (storageConfig.minFreeGB)"
	}
	msg := fmt.Sprintf("%v: the range's footage that only S3 holds needs about %s on %s, which has %s free and must keep %s, %s",
		ErrNoSpace, mib(e.Need), where, mib(max(0, e.Free)), mib(e.Floor), floor)
	if e.Headroom > 0 {
		msg += fmt.Sprintf(", and above it the room the recordings may still take before they reach clearWhenFilePathReachGB, %s", mib(e.Headroom))
		if e.UsedUnknown {
			msg += " (what they hold is not measured yet)"
		}
		msg += ": the download would make retention delete recordings while savePath is under its limit"
	}
	if e.OnSavePath {
		way = "export a shorter range, or set storageConfig.exportTempDir to a folder on another filesystem with room"
	}
	return msg + "; " + way
}

func (e *SpaceError) Unwrap() error { return ErrNoSpace }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// TempSpace is where exports download the sources only S3 holds, and the
// room they leave there. Builds check it before they start (with what the
// other builds under way have reserved) and as they write. A download
// keeps, on the temporary folder's filesystem:
//
//   - its free-space floor: retention's (storageConfig.minFreeGB) on
//     savePath's filesystem, else that filesystem's default floor;
//   - on savePath's filesystem, above the floor, the room the recordings
//     may still take before their limit (LimitBytes less Used: retention
//     deletes recordings once free space is under the floor, even with
//     savePath under its limit). A limit larger than the filesystem can
//     hold is bounded by it: the recordings can grow at most to the floor,
//     so the room kept is at most the free space above the floor, and on
//     such a box (recordings filling the disk to its floor) a download
//     there always costs recordings: it is refused;
//   - on a tmpfs (the unit's PrivateTmp /tmp is one on Debian 13), held in
//     memory: at most half of MemAvailable when the build began, less
//     what the other builds reserved.
//
// Safe for concurrent use (set its fields before, then Configure and
// Recordings); share one among the builds of a box.
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
	// LimitBytes is savePath's limit (clearWhenFilePathReachGB; 0: no room
	// kept for the recordings), and Used, if set, what cctvd's recordings
	// hold there now (false: not known yet, counted as nothing).
	LimitBytes int64
	Used       func() (int64, bool)
	// memAvailable reads MemAvailable (a test's stand-in; nil: the
	// kernel's).
	memAvailable func() (int64, error)

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

// Recordings sets savePath's limit and what its recordings hold (the
// daemon's retention counts them).
func (t *TempSpace) Recordings(limitBytes int64, used func() (int64, bool)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.LimitBytes, t.Used = limitBytes, used
}

func (t *TempSpace) dir() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Dir == "" {
		return os.TempDir()
	}
	return t.Dir
}

// room is what the temporary filesystem has for downloads now.
type room struct {
	free, floor int64
	onSave      bool
	headroom    int64 // on savePath's filesystem: kept for the recordings
	usedUnknown bool
	inRAM       bool
	memory      int64 // on a tmpfs: MemAvailable
}

// tmpfsMagic is statfs's f_type of a tmpfs.
const tmpfsMagic = 0x01021994

// measure reads the temporary filesystem's free space, its floor, the
// room kept for the recordings and, on a tmpfs, the memory available.
func (t *TempSpace) measure() (room, error) {
	t.mu.Lock()
	dir, savePath, minFree, limit, used, memAvail := t.Dir, t.SavePath, t.MinFreeBytes, t.LimitBytes, t.Used, t.memAvailable
	t.mu.Unlock()
	if dir == "" {
		dir = os.TempDir()
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return room{}, fmt.Errorf("export: measure the temporary folder's free space: %w", err)
	}
	total := st.Blocks * uint64(st.Bsize)
	rm := room{free: int64(st.Bavail) * st.Bsize, floor: retention.DefaultFloor(total)}
	if savePath != "" && sameFilesystem(dir, savePath) {
		rm.onSave = true
		if minFree > 0 {
			rm.floor = minFree
		}
		if limit > 0 {
			var u int64
			ok := false
			if used != nil {
				u, ok = used()
			}
			rm.usedUnknown = !ok
			rm.headroom = min(max(limit-u, 0), max(rm.free-rm.floor, 0))
		}
	}
	if st.Type == tmpfsMagic {
		if memAvail == nil {
			memAvail = kernelMemAvailable
		}
		m, err := memAvail()
		if err != nil {
			return room{}, fmt.Errorf("export: the temporary folder is a tmpfs, held in memory, and the memory available cannot be read: %w", err)
		}
		rm.inRAM, rm.memory = true, m
	}
	return rm, nil
}

// kernelMemAvailable is /proc/meminfo's MemAvailable.
func kernelMemAvailable() (int64, error) {
	v, err := mem.VirtualMemory()
	if err != nil {
		return 0, err
	}
	return int64(v.Available), nil
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

// grant is what a build reserved: bytes, and on a tmpfs the memory the
// downloads must leave available (half of what was, when it began).
type grant struct {
	bytes   int64
	memKeep int64
}

// check says whether n more bytes may be written, with others reserved
// by the other builds: above the floor and the recordings' room, and on
// a tmpfs, above the memory to keep.
func (rm room) check(n, others, memKeep int64) error {
	if rm.free-others-n < rm.floor+rm.headroom {
		return &SpaceError{Need: n, Free: rm.free - others, Floor: rm.floor, OnSavePath: rm.onSave, Headroom: rm.headroom, UsedUnknown: rm.usedUnknown}
	}
	if rm.inRAM && rm.memory-others-n < memKeep {
		return &SpaceError{Need: n, Free: rm.free - others, Floor: rm.floor, InRAM: true, Memory: rm.memory - others - memKeep}
	}
	return nil
}

// reserve checks that need more bytes fit (check), with what the builds
// under way reserved, and reserves them until release.
// A build that needs nothing known (local files, or sizes not known) is
// not refused here: what it downloads is checked as it is written.
func (t *TempSpace) reserve(need int64) (release func(), g grant, err error) {
	rm, err := t.measure()
	if need <= 0 {
		if err == nil && rm.inRAM {
			g.memKeep = rm.memory / 2
		}
		return func() {}, g, nil
	}
	if err != nil {
		return nil, grant{}, err
	}
	g = grant{bytes: need}
	if rm.inRAM {
		g.memKeep = rm.memory / 2
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := rm.check(g.bytes, t.reserved, g.memKeep); err != nil {
		return nil, grant{}, err
	}
	t.reserved += g.bytes
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			t.reserved -= g.bytes
			t.mu.Unlock()
		})
	}, g, nil
}

// allow says whether a download of a build that reserved g may write n
// more: the others' reservations are kept, and what was written so far
// is on the filesystem's (and the memory's) books.
func (t *TempSpace) allow(n int64, g grant) error {
	rm, err := t.measure()
	if err != nil {
		return err
	}
	t.mu.Lock()
	others := t.reserved - g.bytes
	t.mu.Unlock()
	return rm.check(n, others, g.memKeep)
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
