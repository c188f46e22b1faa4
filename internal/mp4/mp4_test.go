//go:build integration

package mp4

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// segmentOptions are the segment muxer's options cctvd records with
// (supervisor.segmentFormatOptions): fragmented, a fragment every half
// second.
const segmentOptions = "movflags=+frag_keyframe+empty_moov+default_base_moof:frag_duration=500000:flush_packets=1"

// record has real ffmpeg write segments of secs seconds the way cctvd
// does (segment muxer, timestamps reset per segment, a keyframe every gop
// frames and at every cut) from a test pattern; extra are encoder options.
func record(t *testing.T, dir, size string, fps, gop int, total, secs float64, extra ...string) []string {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
		fmt.Sprintf("testsrc2=size=%s:rate=%d", size, fps), "-t", strconv.FormatFloat(total, 'f', -1, 64),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", strconv.Itoa(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p",
		"-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%g)", secs)}
	args = append(args, extra...)
	args = append(args, "-f", "segment", "-segment_time", strconv.FormatFloat(secs, 'f', -1, 64), "-reset_timestamps", "1",
		"-segment_format", "mp4", "-segment_format_options", segmentOptions, filepath.Join(dir, "seg%03d.mp4"))
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "seg*.mp4"))
	if len(paths) == 0 {
		t.Fatal("ffmpeg wrote no segment")
	}
	return paths
}

// files reads sources from paths, for tests.
type files []*os.File

func (fs files) ReadAt(src int, p []byte, off int64) (int, error) { return fs[src].ReadAt(p, off) }

func openAll(t *testing.T, paths []string) (files, []*Segment) {
	t.Helper()
	var fs files
	var segs []*Segment
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fi, _ := f.Stat()
		seg, n, err := Read(bufio.NewReader(f), fi.Size())
		if err != nil || n != fi.Size() {
			t.Fatalf("%s: read %d of %d bytes: %v", p, n, fi.Size(), err)
		}
		// Reading the headers alone finds the same samples.
		if hs, err := ReadAt(f, fi.Size()); err != nil || fmt.Sprint(hs) != fmt.Sprint(seg) {
			t.Fatalf("%s: ReadAt differs from Read: %v", p, err)
		}
		fs, segs = append(fs, f), append(segs, seg)
	}
	return fs, segs
}

// write writes a joined file to disk for ffprobe, through ReadAt in odd
// pieces, as a Range-serving HTTP server would.
func write(t *testing.T, f *File, path string) {
	t.Helper()
	if err := os.WriteFile(path, readAll(t, f), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, f *File) []byte {
	t.Helper()
	out := make([]byte, f.Size())
	for off := int64(0); off < f.Size(); {
		n := min(int64(7777), f.Size()-off)
		m, err := f.ReadAt(out[off:off+n], off)
		if int64(m) != n || (err != nil && !errors.Is(err, io.EOF)) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, m, err)
		}
		off += n
	}
	return out
}

type probed struct {
	frames    int     // decoded frames, after the edit list
	duration  float64 // the container's
	firstPTS  float64 // first packet's, seconds (negative before the edit start)
	endPTS    float64 // last packet's pts + duration
	created   string
	keyframes int
}

// probe asks ffprobe what a file holds, decoding every frame.
func probe(t *testing.T, path string) probed {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames:format=duration:format_tags=creation_time:packet=pts_time,duration_time,flags",
		"-of", "json", path).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("ffprobe %s: %v %s", path, err, stderr)
	}
	var res struct {
		Packets []struct {
			PTS   string `json:"pts_time"`
			Dur   string `json:"duration_time"`
			Flags string `json:"flags"`
		} `json:"packets"`
		Streams []struct {
			Frames string `json:"nb_read_frames"`
		} `json:"streams"`
		Format struct {
			Duration string            `json:"duration"`
			Tags     map[string]string `json:"tags"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Streams) == 0 || len(res.Packets) == 0 {
		t.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	var p probed
	p.frames, _ = strconv.Atoi(res.Streams[0].Frames)
	p.duration, _ = strconv.ParseFloat(res.Format.Duration, 64)
	p.firstPTS = math.Inf(1)
	p.endPTS = math.Inf(-1)
	for _, pk := range res.Packets {
		pts, _ := strconv.ParseFloat(pk.PTS, 64)
		dur, _ := strconv.ParseFloat(pk.Dur, 64)
		p.firstPTS = min(p.firstPTS, pts)
		p.endPTS = max(p.endPTS, pts+dur)
		if len(pk.Flags) > 0 && pk.Flags[0] == 'K' {
			p.keyframes++
		}
	}
	p.created = res.Format.Tags["creation_time"]
	return p
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestReadSegments(t *testing.T) {
	paths := record(t, t.TempDir(), "320x180", 10, 10, 8, 4)
	_, segs := openAll(t, paths)
	if len(segs) != 2 {
		t.Fatalf("%d segments", len(segs))
	}
	for i, s := range segs {
		if s.Track.Codec != "avc1" || s.Track.Width != 320 || s.Track.Height != 180 || s.Track.Timescale == 0 {
			t.Errorf("segment %d: track %+v", i, s.Track)
		}
		if len(s.Samples) != 40 || s.Truncated {
			t.Errorf("segment %d: %d samples (want 40), truncated %v", i, len(s.Samples), s.Truncated)
		}
		keys := 0
		for j, smp := range s.Samples {
			if smp.Sync {
				keys++
			}
			if j > 0 && smp.DTS != s.Samples[j-1].DTS+int64(s.Samples[j-1].Duration) {
				t.Errorf("segment %d sample %d: DTS %d after %d+%d", i, j, smp.DTS, s.Samples[j-1].DTS, s.Samples[j-1].Duration)
			}
		}
		if !s.Samples[0].Sync || keys != 4 {
			t.Errorf("segment %d: first sync %v, %d keyframes (want 4, one a second)", i, s.Samples[0].Sync, keys)
		}
		if got := float64(s.PTS(len(s.Samples)-1)) / float64(s.Track.Timescale); !near(got, 3.9, 0.001) {
			t.Errorf("segment %d: last PTS %.3f s, want 3.9", i, got)
		}
	}
	if !segs[0].Track.SameFormat(segs[1].Track) {
		t.Error("two segments of one recording differ in format")
	}
}

func TestJoinWholeSegments(t *testing.T) {
	dir := t.TempDir()
	paths := record(t, dir, "320x180", 10, 10, 12, 4)
	fs, segs := openAll(t, paths)
	var parts []Part
	for i, s := range segs {
		parts = append(parts, Part{Seg: s, Source: i, First: 0, Last: len(s.Samples)})
	}
	created := time.Date(2026, 1, 6, 14, 3, 0, 0, time.UTC)
	f, err := Build(Join{Parts: parts, Start: 0, End: math.MaxInt64, Created: created}, fs)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "joined.mp4")
	write(t, f, out)
	p := probe(t, out)
	if p.frames != 120 || !near(p.duration, 12, 0.01) || f.Duration != 12*time.Second || f.Frames != 120 {
		t.Errorf("joined: %+v; File duration %v, %d frames; want 120 frames, 12 s", p, f.Duration, f.Frames)
	}
	if p.created != "2026-01-06T14:03:00.000000Z" {
		t.Errorf("creation_time %q", p.created)
	}
	if want := []time.Duration{0, 4 * time.Second, 8 * time.Second}; fmt.Sprint(f.Offsets) != fmt.Sprint(want) {
		t.Errorf("offsets %v, want %v", f.Offsets, want)
	}
	// The moov comes before the mdat (plays while it downloads).
	data, _ := os.ReadFile(out)
	if i, j := bytes.Index(data, []byte("moov")), bytes.Index(data, []byte("mdat")); i < 0 || j < 0 || i > j {
		t.Errorf("moov at %d, mdat at %d", i, j)
	}
	// The same parts give the same bytes.
	f2, _ := Build(Join{Parts: parts, Start: 0, End: math.MaxInt64, Created: created}, fs)
	if !bytes.Equal(readAll(t, f2), data) {
		t.Error("two builds of one join differ")
	}
}

// TestJoinTrims cuts mid-GOP at both ends: the file holds the keyframe at
// or before the start, its edit list starts playing at the start, and it
// stops at the end.
func TestJoinTrims(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"no B-frames", []string{"-bf", "0"}},
		{"B-frames", []string{"-bf", "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := record(t, dir, "320x180", 10, 10, 12, 4, tc.extra...)
			fs, segs := openAll(t, paths)
			ts := int64(segs[0].Track.Timescale)
			// Start 1.55 s into the first segment (keyframes every second),
			// end 2.55 s into the third: 2.45 + 4 + 2.55 = 9 s.
			start := segs[0].PTS(0) + ts*155/100
			end := segs[2].PTS(0) + ts*255/100
			first := 0
			for i := range segs[0].Samples {
				if segs[0].Samples[i].Sync && segs[0].PTS(i) <= start {
					first = i
				}
			}
			last := 0
			for i := range segs[2].Samples {
				if segs[2].Samples[i].DTS-segs[2].Samples[0].DTS < ts*255/100 {
					last = i + 1
				}
			}
			parts := []Part{
				{Seg: segs[0], Source: 0, First: first, Last: len(segs[0].Samples)},
				{Seg: segs[1], Source: 1, First: 0, Last: len(segs[1].Samples)},
				{Seg: segs[2], Source: 2, First: 0, Last: last},
			}
			f, err := Build(Join{Parts: parts, Start: start, End: end, Created: time.Unix(1767708180, 0)}, fs)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "trimmed.mp4")
			write(t, f, out)
			p := probe(t, out)
			if f.Duration != 9*time.Second || !near(p.duration, 9, 0.05) {
				t.Errorf("duration: File %v, ffprobe %.3f; want 9 s", f.Duration, p.duration)
			}
			// Decoding starts at the keyframe at 1.0 s: half a second
			// (5 frames) before the start, hidden by the edit list.
			if !near(p.firstPTS, -0.55, 0.051) {
				t.Errorf("first packet at %.3f s, want -0.55 (the keyframe at or before the start)", p.firstPTS)
			}
			// Cut in decode order: with B-frames, a P-frame shown after the
			// end may remain; the edit list stops playing at the end.
			if !near(p.endPTS, 9, 0.15) {
				t.Errorf("last packet ends at %.3f s, want 9", p.endPTS)
			}
			if p.frames < 89 || p.frames > 92 {
				t.Errorf("%d frames decoded, want about 90 (9 s at 10 fps)", p.frames)
			}
			want := []time.Duration{0, 2450 * time.Millisecond, 6450 * time.Millisecond}
			for i, o := range f.Offsets {
				if (o - want[i]).Abs() > time.Millisecond {
					t.Errorf("offsets %v, want %v", f.Offsets, want)
					break
				}
			}
		})
	}
}

func TestTruncatedSegment(t *testing.T) {
	dir := t.TempDir()
	paths := record(t, dir, "320x180", 10, 10, 4, 4)
	data, _ := os.ReadFile(paths[0])
	cut := filepath.Join(dir, "cut.mp4")
	os.WriteFile(cut, data[:len(data)*2/3], 0o644) // mid-fragment, as after a power cut
	fs, segs := openAll(t, []string{cut})          // ReadAt too
	s := segs[0]
	if !s.Truncated || len(s.Samples) < 20 || len(s.Samples) >= 40 {
		t.Fatalf("truncated %v, %d samples", s.Truncated, len(s.Samples))
	}
	f, err := Build(Join{Parts: []Part{{Seg: s, First: 0, Last: len(s.Samples)}}, End: math.MaxInt64}, fs)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.mp4")
	write(t, f, out)
	if p := probe(t, out); p.frames != len(s.Samples) {
		t.Errorf("%d frames decoded of %d samples", p.frames, len(s.Samples))
	}
}

func TestMixedFormatsRefused(t *testing.T) {
	a := record(t, t.TempDir(), "320x180", 10, 10, 2, 2)
	b := record(t, t.TempDir(), "640x360", 10, 10, 2, 2)
	fs, segs := openAll(t, append(a, b...))
	parts := []Part{{Seg: segs[0], Source: 0, Last: len(segs[0].Samples)}, {Seg: segs[1], Source: 1, Last: len(segs[1].Samples)}}
	if _, err := Build(Join{Parts: parts, End: math.MaxInt64}, fs); !errors.Is(err, ErrMixedFormats) {
		t.Errorf("joining 320x180 and 640x360: %v", err)
	}
}

func TestNotFragmented(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.mp4")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=5",
		"-t", "1", "-c:v", "libx264", "-preset", "ultrafast", plain).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for name, data := range map[string][]byte{
		"plain MP4": must(os.ReadFile(plain)),
		"garbage":   []byte("this is not an mp4 file at all, not even close"),
		"empty":     nil,
	} {
		if _, _, err := Read(bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
		if _, err := ReadAt(bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: ReadAt: %v, want ErrFormat", name, err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestReadAtAnywhere reads random ranges and compares them with the whole.
func TestReadAtAnywhere(t *testing.T) {
	paths := record(t, t.TempDir(), "160x90", 10, 10, 6, 2)
	fs, segs := openAll(t, paths)
	var parts []Part
	for i, s := range segs {
		parts = append(parts, Part{Seg: s, Source: i, Last: len(s.Samples)})
	}
	f, err := Build(Join{Parts: parts, End: math.MaxInt64}, fs)
	if err != nil {
		t.Fatal(err)
	}
	whole := readAll(t, f)
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		off := r.Int64N(f.Size())
		n := r.Int64N(70000)
		buf := make([]byte, n)
		m, err := f.ReadAt(buf, off)
		want := whole[off:min(off+n, f.Size())]
		if !bytes.Equal(buf[:m], want) || (m < len(buf) && !errors.Is(err, io.EOF)) || (m == len(buf) && err != nil) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", n, off, m, err)
		}
	}
}
