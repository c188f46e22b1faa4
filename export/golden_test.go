package export

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/mp4"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// Golden exports: the bytes and the entity tag of clips cut from the test
// camera's real recordings (internal/mp4/testdata/golden/cam, see
// internal/mp4/golden_test.go), recorded in testdata/golden.txt before
// the MP4 code moved onto mp4ff. A clip's sha256 and ETag are promised
// stable: manifests already handed over name them. -update rewrites the
// file (only when a change of the bytes is meant, with a new mp4Layout).

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden.txt")

const goldenClips = "testdata/golden.txt"

// goldenRecordings are the camera's two segments, laid out back to back
// from t0, as the uploader names and describes them.
func goldenRecordings(t *testing.T) []Segment {
	t.Helper()
	paths, _ := filepath.Glob("../internal/mp4/testdata/golden/cam/*.mp4")
	sort.Strings(paths)
	if len(paths) != 2 {
		t.Fatalf("%d golden recordings, want 2", len(paths))
	}
	var segs []Segment
	start := t0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		seg, err := mp4.ReadAt(strings.NewReader(string(data)), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		last := seg.Samples[len(seg.Samples)-1]
		ticks := last.DTS + int64(last.Duration) - seg.Samples[0].DTS
		end := start.Add(time.Duration(ticks * int64(time.Second) / int64(seg.Track.Timescale))).Truncate(time.Millisecond)
		name := segment.Name("door", "f1", start, end, 0)
		abs, _ := filepath.Abs(p)
		sum := sha256.Sum256(data)
		segs = append(segs, Segment{Camera: "door", FeedID: "f1", Start: start, End: end, Name: name,
			Key: "golden/" + layout.DayRel("door", start) + "/" + name, Bytes: int64(len(data)), SHA256: fmt.Sprintf("%x", sum), Path: abs})
		start = end
	}
	return segs
}

// goldenRanges are the exports recorded: both segments whole, a cut
// mid-GOP inside each, and a range inside one.
var goldenRanges = []struct {
	name     string
	from, to float64 // seconds after t0
}{
	{"whole", -1, 20},
	{"across", 1.3, 8.25},
	{"inside", 2.05, 3.5},
}

// goldenClip builds a clip of segs and returns what must not change.
func goldenClip(t *testing.T, b *Builder, segs []Segment, from, to float64, made string) string {
	t.Helper()
	clip, err := b.Build(context.Background(), Request{Camera: "door", From: at(from), To: at(to), Segments: segs, Made: made})
	if err != nil {
		t.Fatal(err)
	}
	defer clip.Close()
	h := sha256.New()
	if _, err := clip.WriteTo(h); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x %d %s %s %v", h.Sum(nil), clip.Size(), clip.ETag(), clip.Name(), clip.Duration())
}

// checkGolden compares got with the recorded lines.
func checkGolden(t *testing.T, got map[string]string) {
	t.Helper()
	var lines []string
	for k, v := range got {
		lines = append(lines, k+": "+v)
	}
	sort.Strings(lines)
	if *updateGolden {
		if err := os.WriteFile(goldenClips, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(goldenClips)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(l, ": ")
		want[k] = v
	}
	for k, v := range got {
		if want[k] != v {
			t.Errorf("%s changed:\n got  %s\n want %s", k, v, want[k])
		}
	}
}

// TestGoldenClips: clips from the box's files give the recorded bytes.
func TestGoldenClips(t *testing.T) {
	segs := goldenRecordings(t)
	b := &Builder{Version: "test", Log: zerolog.Nop(), Now: func() time.Time { return t0 }}
	got := map[string]string{}
	for _, r := range goldenRanges {
		got[r.name] = goldenClip(t, b, segs, r.from, r.to, MadeOnBox)
	}
	checkGolden(t, got)
}
