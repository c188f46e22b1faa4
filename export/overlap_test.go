//go:build integration

package export

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/internal/mp4"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

// placed lays recording r on the box's disk as if it had been recorded
// from start (a clock step moves where footage lands): the segment, with
// the sha256 recorded, not uploaded.
func placed(t *testing.T, dir string, r recording, start time.Time) Segment {
	t.Helper()
	end := start.Add(r.end.Sub(r.start))
	name := segment.Name("door", "f1", start, end, 0)
	path := filepath.Join(dir, filepath.FromSlash(layout.DayRel("door", start)), name)
	for i := 1; ; i++ { // names are to the second: two placements may share one
		if _, err := os.Stat(path); err != nil {
			break
		}
		name = segment.Name("door", "f1", start, end, i)
		path = filepath.Join(filepath.Dir(path), name)
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, r.data, 0o644); err != nil {
		t.Fatal(err)
	}
	return Segment{Camera: "door", FeedID: "f1", Start: start, End: end, Name: name, Key: "k/" + name,
		Bytes: int64(len(r.data)), SHA256: sha(r.data), Path: path}
}

// keyframesAt are the wall-clock times of r's keyframes were it recorded
// from start.
func keyframesAt(t *testing.T, r recording, start time.Time) []time.Time {
	t.Helper()
	seg, _, err := mp4.Read(bytes.NewReader(r.data), int64(len(r.data)))
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for i, s := range seg.Samples {
		if s.Sync {
			ticks := seg.PTS(i) - seg.PTS(0)
			out = append(out, start.Add(time.Duration(ticks*int64(time.Second)/int64(seg.Track.Timescale))))
		}
	}
	return out
}

// near says whether a and b are within d.
func near(a, b time.Time, d time.Duration) bool { return a.Sub(b).Abs() <= d }

// checkLaidOnce checks a clip's manifest against the wall clock: the
// sources' used ranges follow one another without overlap, each starts
// in the clip where the footage before it ends (gaps skipped), and they
// add up to what the clip plays.
func checkLaidOnce(t *testing.T, m Manifest) {
	t.Helper()
	var played time.Duration
	for i, s := range m.Sources {
		if !s.Used.From.Before(s.Used.To) {
			t.Errorf("source %d (%s) plays nothing: %+v", i, s.Name, s.Used)
			continue
		}
		if i > 0 {
			prev := m.Sources[i-1]
			if s.Used.From.Before(prev.Used.To.Add(-frame / 2)) {
				t.Errorf("source %d (%s) used from %v, before source %d ends (%v): footage played twice", i, s.Name, s.Used.From, i-1, prev.Used.To)
			}
		}
		if d := time.Duration(s.ClipSeconds*float64(time.Second)) - played; d.Abs() > frame/2 {
			t.Errorf("source %d (%s) starts %.3f s into the clip, after %v of footage before it", i, s.Name, s.ClipSeconds, played)
		}
		played += s.Used.To.Sub(s.Used.From)
	}
	if d := time.Duration(m.DurationSeconds*float64(time.Second)) - played; d.Abs() > frame {
		t.Errorf("the clip plays %.3f s, its sources' used ranges add up to %v", m.DurationSeconds, played)
	}
}

// TestOverlapAfterAClockStepBack: the clock stepped back 2.5 s between
// two segments, so the second claims 2.5 s the first holds (both rows are
// in the catalog). The clip plays each instant once, as the spans count
// it: the second segment starts at its last keyframe at or before the end
// of the first, the first stops there, and the manifest says so.
func TestOverlapAfterAClockStepBack(t *testing.T) {
	fixtures(t)
	dir := t.TempDir()
	a := placed(t, dir, fx.recs[0], fx.recs[0].start)
	bStart := a.End.Add(-2500 * time.Millisecond)
	b := placed(t, dir, fx.recs[1], bStart)
	c := placed(t, dir, fx.recs[2], b.End)
	segs := []Segment{c, b, a} // any order
	from, to := a.Start.Add(time.Second), c.Start.Add(time.Second)

	tl := Spans("door", segs, nil, from, to)
	if len(tl.Spans) != 1 || len(tl.Gaps) != 0 || tl.FootageSeconds != to.Sub(from).Seconds() {
		t.Fatalf("spans %+v, want one span of %v", tl, to.Sub(from))
	}
	clip, err := builder().Build(context.Background(), Request{Camera: "door", From: from, To: to, Segments: segs, Made: MadeOnBox})
	if err != nil {
		t.Fatal(err)
	}
	defer clip.Close()
	path, m := save(t, clip)
	want := time.Duration(tl.FootageSeconds * float64(time.Second))
	checkCut(t, path, want, from)
	checkLaidOnce(t, m)

	// Where the cut falls: b's last keyframe at or before a's end.
	var k time.Time
	for _, kf := range keyframesAt(t, fx.recs[1], bStart) {
		if !kf.After(a.End) {
			k = kf
		}
	}
	if len(m.Sources) != 3 {
		t.Fatalf("%d sources, want 3: %+v", len(m.Sources), m.Sources)
	}
	sa, sb, sc := m.Sources[0], m.Sources[1], m.Sources[2]
	if sa.Name != a.Name || sb.Name != b.Name || sc.Name != c.Name {
		t.Fatalf("sources %s, %s, %s", sa.Name, sb.Name, sc.Name)
	}
	if !sa.Used.From.Equal(from) || !near(sa.Used.To, k, frame) || !sb.Used.From.Equal(k) || !near(sb.Used.To, b.End, frame) ||
		!near(sc.Used.From, c.Start, frame) || !sc.Used.To.Equal(to) {
		t.Errorf("used: %v-%v, %v-%v, %v-%v; want %v-%v, %v-%v, %v-%v", sa.Used.From, sa.Used.To, sb.Used.From, sb.Used.To,
			sc.Used.From, sc.Used.To, from, k, k, b.End, c.Start, to)
	}
	if !strings.Contains(sa.Cut, b.Name) || (k.After(b.Start) && !strings.Contains(sb.Cut, a.Name)) || sc.Cut != "" {
		t.Errorf("cuts: %q / %q / %q", sa.Cut, sb.Cut, sc.Cut)
	}
	if m.Overlap == "" || len(m.Skipped) != 0 || len(m.Gaps) != 0 {
		t.Errorf("overlap rule %q, skipped %+v, gaps %+v", m.Overlap, m.Skipped, m.Gaps)
	}
}

// TestConflictCopyBesideAnEmptyObject: the previous release uploaded a
// segment empty; the real file went up beside it as its conflict copy.
// Listed from the bucket alone, or as the two rows a rebuild imports, the
// empty object is skipped as damaged and the copy plays: no gap, no
// failed export. Without the copy, the empty object's time is a gap whose
// cause says why. Two copies that both play are one: the plain key's.
func TestConflictCopyBesideAnEmptyObject(t *testing.T) {
	b := newBox(t)
	ctx := context.Background()
	r := fx.recs[1]
	empty := []byte{}
	put(t, b.segs[1].Key, empty, r.start, r.end, sha(empty)) // the old release's empty upload
	copyKey := uploader.ConflictKey(b.segs[1].Key, sha(r.data))
	from, to := fx.recs[0].start.Add(time.Second), fx.recs[2].start.Add(time.Second)

	for _, tc := range []struct {
		name     string
		withCopy bool
		made     string
	}{
		{"bucket alone, with the copy", true, MadeFromBucket},
		{"rebuilt catalog, with the copy", true, MadeOnBox},
		{"bucket alone, no copy", false, MadeFromBucket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.withCopy {
				put(t, copyKey, r.data, r.start, r.end, sha(r.data))
			} else {
				fx.minio.Client().DeleteObject(ctx, deleteInput(copyKey))
			}
			var segs []Segment
			if tc.made == MadeFromBucket {
				var err error
				if segs, err = ListBucket(ctx, fx.minio.Client(), bucket, b.prefix, "door", from, to); err != nil {
					t.Fatal(err)
				}
			} else { // rows for the key and its copy, the files gone from the box
				segs = remote(b.segs)
				cp := segs[1]
				cp.Name, cp.Key, cp.SHA256, cp.Bytes = filepath.Base(copyKey), copyKey, sha(r.data), int64(len(r.data))
				segs[1].Bytes, segs[1].SHA256 = 0, sha(empty)
				segs = append(segs, cp)
			}
			clip, err := builder().Build(ctx, Request{Camera: "door", From: from, To: to, Segments: segs, Made: tc.made})
			if err != nil {
				t.Fatalf("the export fails: %v", err)
			}
			defer clip.Close()
			path, m := save(t, clip)
			checkLaidOnce(t, m)
			if len(m.Skipped) == 0 || m.Skipped[0].Key != b.segs[1].Key || m.Skipped[0].Cause != CauseDamaged {
				t.Errorf("skipped %+v, want the empty object, damaged", m.Skipped)
			}
			if tc.withCopy {
				checkCut(t, path, to.Sub(from), from)
				if len(m.Sources) != 3 || m.Sources[1].Key != copyKey || len(m.Gaps) != 0 {
					t.Errorf("sources %+v, gaps %+v: want the copy in the middle, no gap", m.Sources, m.Gaps)
				}
				return
			}
			checkCut(t, path, to.Sub(from)-r.end.Sub(r.start), from)
			if len(m.Sources) != 2 || len(m.Gaps) != 1 || m.Gaps[0].Cause != CauseDamaged || !m.Gaps[0].Start.Equal(r.start) ||
				!m.Gaps[0].End.Equal(r.end) || !strings.Contains(m.Gaps[0].Detail, b.segs[1].Key) {
				t.Errorf("sources %+v, gaps %+v: want a gap at %v-%v, damaged", m.Sources, m.Gaps, r.start, r.end)
			}
		})
	}

	// Two objects for one segment that both play (two recordings given one
	// name): the plain key's plays, its conflict copy is skipped, covered.
	other := fx.recs[3].data
	put(t, b.segs[1].Key, r.data, r.start, r.end, sha(r.data))
	otherKey := uploader.ConflictKey(b.segs[1].Key, sha(other))
	put(t, otherKey, other, r.start, r.end, sha(other))
	fx.minio.Client().DeleteObject(ctx, deleteInput(copyKey))
	segs, err := ListBucket(ctx, fx.minio.Client(), bucket, b.prefix, "door", from, to)
	if err != nil {
		t.Fatal(err)
	}
	clip, err := builder().Build(ctx, Request{Camera: "door", From: from, To: to, Segments: segs, Made: MadeFromBucket})
	if err != nil {
		t.Fatal(err)
	}
	defer clip.Close()
	path, m := save(t, clip)
	checkCut(t, path, to.Sub(from), from)
	checkLaidOnce(t, m)
	if len(m.Sources) != 3 || m.Sources[1].Key != b.segs[1].Key || len(m.Skipped) != 1 || m.Skipped[0].Key != otherKey ||
		m.Skipped[0].Cause != CauseCovered || !strings.Contains(m.Skipped[0].Detail, b.segs[1].Name) {
		t.Errorf("sources %+v, skipped %+v: want the plain key played, the copy covered", m.Sources, m.Skipped)
	}
}

func deleteInput(key string) *s3.DeleteObjectInput {
	return &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
}
