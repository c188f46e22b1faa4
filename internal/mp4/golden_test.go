package mp4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Golden joins: what Read finds in real ffmpeg segments and what Build
// makes of them, byte for byte. An export's ETag and sha256 are promised
// stable (manifests already handed over name them), so the same sources
// and cuts must give the same bytes from one version to the next.
//
// The segments in testdata/golden were written once by real ffmpeg 5.1
// (Debian 12) with the segment muxer options cctvd records with:
//
//	h264     lavfi testsrc2 160x90 at 10 fps, libx264 ultrafast crf 40,
//	         a keyframe every second, three segments of 2 s
//	bframes  the same with -preset veryfast -bf 2 (composition offsets), two
//	hevc     libx265 ultrafast crf 40, -tag:v hvc1, one segment of 2 s
//	cam      the test camera (scripts/testcam.py, 320x180 at 10 fps, a
//	         keyframe every 2 s) copied over RTSP, two segments
//
// testdata/golden.txt holds the sha256 of each case, recorded with the
// hand-written reader and writer before they moved onto mp4ff; -update
// rewrites it (only when a change of the bytes is meant, and then the
// export layout version, export.mp4Layout, must change with it).

var update = flag.Bool("update", false, "rewrite testdata/golden.txt")

const goldenFile = "testdata/golden.txt"

// memFiles are sources in memory.
type memFiles [][]byte

func (m memFiles) ReadAt(src int, p []byte, off int64) (int, error) {
	return bytes.NewReader(m[src]).ReadAt(p, off)
}

// goldenSegments reads the segments of a testdata/golden folder, checking
// that Read and ReadAt agree.
func goldenSegments(t *testing.T, dir string) (memFiles, []*Segment) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join("testdata/golden", dir, "*.mp4"))
	if len(paths) == 0 {
		t.Fatalf("no segments in testdata/golden/%s", dir)
	}
	sort.Strings(paths)
	var fs memFiles
	var segs []*Segment
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, data)
		segs = append(segs, readBoth(t, p, data))
	}
	return fs, segs
}

func readBoth(t *testing.T, name string, data []byte) *Segment {
	t.Helper()
	seg, n, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("%s: read %d of %d bytes: %v", name, n, len(data), err)
	}
	at, err := ReadAt(bytes.NewReader(data), int64(len(data)))
	if err != nil || segmentDigest(at) != segmentDigest(seg) {
		t.Fatalf("%s: ReadAt differs from Read: %v", name, err)
	}
	return seg
}

// segmentDigest is what Read found, in the terms of the package's API.
func segmentDigest(s *Segment) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d %d %d %s %v %d|", s.Track.Timescale, s.Track.Width, s.Track.Height, s.Track.Codec, s.Truncated, s.PTS(0))
	for _, smp := range s.Samples {
		fmt.Fprintf(h, "%d %d %d %d %d %v|", smp.Offset, smp.Size, smp.DTS, smp.Duration, smp.CTO, smp.Sync)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fileDigest hashes a joined file through ReadAt in odd pieces, as an
// export is served.
func fileDigest(t *testing.T, f *File) string {
	t.Helper()
	h := sha256.New()
	buf := make([]byte, 7777)
	for off := int64(0); off < f.Size(); {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), f.Size()-off)], off)
		if n == 0 {
			t.Fatalf("ReadAt at %d of %d: %v", off, f.Size(), err)
		}
		h.Write(buf[:n])
		off += int64(n)
	}
	return fmt.Sprintf("%x %d", h.Sum(nil), f.Size())
}

// headDigest hashes a joined file's header and the extents of its
// sources, for joins whose sample bytes do not exist (synthetic sizes).
func headDigest(f *File) string {
	h := sha256.New()
	h.Write(f.head)
	for _, c := range f.chunks {
		fmt.Fprintf(h, "%d %d %d %d|", c.off, c.source, c.srcOff, c.n)
	}
	return fmt.Sprintf("%x %d", h.Sum(nil), f.Size())
}

func whole(segs []*Segment) []Part {
	var parts []Part
	for i, s := range segs {
		parts = append(parts, Part{Seg: s, Source: i, Last: len(s.Samples)})
	}
	return parts
}

// trimmed cuts the first segment at startSec into it (from the keyframe at
// or before it) and the last at endSec into it, the way export cuts.
func trimmed(segs []*Segment, startSec, endSec float64) Join {
	parts := whole(segs)
	first, last := segs[0], segs[len(segs)-1]
	ts := float64(first.Track.Timescale)
	start := first.PTS(0) + int64(startSec*ts)
	end := last.PTS(0) + int64(endSec*ts)
	for i := range first.Samples {
		if first.Samples[i].Sync && first.PTS(i) <= start {
			parts[0].First = i
		}
	}
	n := 0
	for i := range last.Samples {
		if last.Samples[i].DTS-last.Samples[0].DTS < end-last.PTS(0) {
			n = i + 1
		}
	}
	parts[len(parts)-1].Last = n
	return Join{Parts: parts, Start: start, End: end}
}

// synthetic is a copy of seg with its samples changed by fn, laid out
// back to back from offset 1000 (their bytes do not exist).
func synthetic(seg *Segment, fn func(i int, s *Sample)) *Segment {
	out := *seg
	out.Samples = append([]Sample(nil), seg.Samples...)
	off := int64(1000)
	for i := range out.Samples {
		fn(i, &out.Samples[i])
		out.Samples[i].Offset = off
		off += int64(out.Samples[i].Size)
	}
	return &out
}

func TestGolden(t *testing.T) {
	created := time.Date(2026, 1, 6, 14, 0, 0, 0, time.UTC)
	got := map[string]string{}
	for _, dir := range []string{"h264", "bframes", "hevc", "cam"} {
		fs, segs := goldenSegments(t, dir)
		for i, s := range segs {
			got[fmt.Sprintf("read %s/%d", dir, i)] = segmentDigest(s)
		}
		build := func(name string, j Join) {
			j.Created = created
			if j.End == 0 {
				j.End = math.MaxInt64
			}
			f, err := Build(j, fs)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got[name] = fmt.Sprintf("%s %v %d %v", fileDigest(t, f), f.Duration, f.Frames, f.Offsets)
		}
		build("whole "+dir, Join{Parts: whole(segs)})
		build("trimmed "+dir, trimmed(segs, 0.55, 1.25))
		build("first frame "+dir, Join{Parts: []Part{{Seg: segs[0], Last: 1}}})
	}

	// A recording cut short mid-fragment, as after a power cut.
	data, err := os.ReadFile("testdata/golden/cam/seg001.mp4")
	if err != nil {
		t.Fatal(err)
	}
	cut := data[:len(data)*2/3]
	seg := readBoth(t, "cut", cut)
	if !seg.Truncated {
		t.Fatal("a file cut short is not Truncated")
	}
	got["read cut"] = segmentDigest(seg)
	f, err := Build(Join{Parts: []Part{{Seg: seg, Last: len(seg.Samples)}}, End: math.MaxInt64, Created: created}, memFiles{cut})
	if err != nil {
		t.Fatal(err)
	}
	got["whole cut"] = fileDigest(t, f)

	// Headers that real short clips do not reach: 64-bit times (a creation
	// time after 2040, an edit list past 2^32 ticks), composition offsets
	// below zero, every sample a keyframe, and over 4 GiB of samples
	// (co64, a 64-bit mdat).
	_, segs := goldenSegments(t, "bframes")
	base := segs[0]
	for name, tc := range map[string]struct {
		seg     *Segment
		created time.Time
	}{
		"created 2050":     {base, time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)},
		"late edit":        {synthetic(base, func(_ int, s *Sample) { s.DTS += 1 << 33 }), created},
		"negative offsets": {synthetic(base, func(i int, s *Sample) { s.CTO -= int32(i%3) * 512 }), created},
		"all keyframes":    {synthetic(base, func(_ int, s *Sample) { s.Sync = true }), created},
		"over 4 GiB":       {synthetic(base, func(i int, s *Sample) { s.Size = 300<<20 + uint32(i) }), created},
	} {
		f, err := Build(Join{Parts: []Part{{Seg: tc.seg, Last: len(tc.seg.Samples)}, {Seg: tc.seg, Source: 1, First: 10, Last: len(tc.seg.Samples)}},
			Start: tc.seg.PTS(3), End: math.MaxInt64, Created: tc.created}, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got["head "+name] = fmt.Sprintf("%s %v %d", headDigest(f), f.Duration, f.Frames)
	}
	var lines []string
	for k, v := range got {
		lines = append(lines, k+": "+v)
	}
	sort.Strings(lines)
	text := strings.Join(lines, "\n") + "\n"
	if *update {
		if err := os.WriteFile(goldenFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
	if len(wantLines) != len(lines) {
		t.Errorf("%d cases, %s has %d", len(lines), goldenFile, len(wantLines))
	}
	for i := range min(len(lines), len(wantLines)) {
		if lines[i] != wantLines[i] {
			t.Errorf("changed:\n got  %s\n want %s", lines[i], wantLines[i])
		}
	}
}
