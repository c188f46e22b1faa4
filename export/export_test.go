//go:build integration

package export

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// checkCut checks with ffprobe that a clip starts within one GOP of from
// (the keyframe at or before it, hidden by the edit list), plays for want,
// and ends within one GOP of to; and that its creation time is start.
func checkCut(t *testing.T, path string, want time.Duration, start time.Time) testenv.Clip {
	t.Helper()
	p := testenv.ProbeClip(t, path)
	if p.FirstPTS > 0 || p.FirstPTS < -gop {
		t.Errorf("first packet at %v: not within one GOP (%v) before the start", p.FirstPTS, gop)
	}
	if (p.Duration - want).Abs() > frame {
		t.Errorf("plays %v, want %v (within a frame)", p.Duration, want)
	}
	if p.EndPTS < want-frame || p.EndPTS > want+gop {
		t.Errorf("last packet ends at %v: not within one GOP of the end (%v)", p.EndPTS, want)
	}
	if frames := int(math.Round(want.Seconds() * 10)); p.Frames < frames-2 || p.Frames > frames+2 {
		t.Errorf("%d frames decoded, want about %d", p.Frames, frames)
	}
	if !p.CreationTime.Equal(start.Truncate(time.Second)) {
		t.Errorf("creation_time %v, want %v", p.CreationTime, start.Truncate(time.Second))
	}
	if p.Codec != "h264" || p.Width != 640 || p.Height != 360 {
		t.Errorf("stream %s %dx%d", p.Codec, p.Width, p.Height)
	}
	return p
}

// TestClipAcrossSegments exports a range across three segments that
// starts and ends mid-segment, from local files.
func TestClipAcrossSegments(t *testing.T) {
	b := newBox(t)
	from := fx.recs[0].start.Add(1300 * time.Millisecond)
	to := fx.recs[2].start.Add(2700 * time.Millisecond)
	clip, err := builder().Build(context.Background(), Request{Camera: "door", From: from, To: to, Segments: b.segs, Made: MadeOnBox})
	if err != nil {
		t.Fatal(err)
	}
	defer clip.Close()
	path, m := save(t, clip)
	checkCut(t, path, to.Sub(from), from)

	if len(m.Sources) != 3 {
		t.Fatalf("%d sources, want 3", len(m.Sources))
	}
	for i, s := range m.Sources {
		if s.Read != ReadLocal || s.SHA256 != b.segs[i].SHA256 || s.Bytes != b.segs[i].Bytes || s.Key != b.segs[i].Key || !s.Uploaded {
			t.Errorf("source %d: %+v", i, s)
		}
		want := b.segs[i].Start.Sub(from).Seconds()
		if i == 0 {
			want = 0
		}
		if math.Abs(s.ClipSeconds-want) > 0.001 {
			t.Errorf("source %d starts %.3f s into the clip, want %.3f", i, s.ClipSeconds, want)
		}
	}
	if m.Sources[0].Used.From != from || m.Sources[2].Used.To != to || m.Actual != (Range{from, to}) || m.Requested != (Range{from, to}) {
		t.Errorf("ranges: actual %+v, requested %+v, used %+v .. %+v", m.Actual, m.Requested, m.Sources[0].Used, m.Sources[2].Used)
	}
	if m.Export.SHA256 != fileSHA(t, path) || m.Export.File != "clip.mp4" || m.Export.Bytes != clip.Size() ||
		m.Camera != "door" || m.FeedID != "f1" || m.CctvdVersion != "test" || len(m.Gaps) != 0 || m.Format != ManifestFormat {
		t.Errorf("manifest: %+v", m)
	}
	if got, err := ReadManifest(ManifestPath(path)); err != nil || got.Export.SHA256 != m.Export.SHA256 {
		t.Errorf("manifest on disk: %v %+v", err, got)
	}
	if _, err := clip.Save(path, false); !errors.Is(err, ErrExists) {
		t.Errorf("saving over an export: %v, want ErrExists", err)
	}
}

// TestBoxAndBucketGiveTheSameBytes exports one range from local files,
// from S3 objects named by the catalog (clearAfterUpload), and from the
// bucket alone (listed by key, no catalog): three identical clips.
func TestBoxAndBucketGiveTheSameBytes(t *testing.T) {
	b := newBox(t)
	from := fx.recs[0].start.Add(2500 * time.Millisecond)
	to := fx.recs[3].start.Add(500 * time.Millisecond)
	ctx := context.Background()
	var sums []string
	listed, err := ListBucket(ctx, fx.minio.Client(), bucket, b.prefix, "door", from, to)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		segs []Segment
		made string
		read string
	}{
		{"local", b.segs, MadeOnBox, ReadLocal},
		{"catalog, files gone", remote(b.segs), MadeOnBox, ReadS3},
		{"bucket alone", listed, MadeFromBucket, ReadS3},
	} {
		clip, err := builder().Build(ctx, Request{Camera: "door", From: from, To: to, Segments: tc.segs, Made: tc.made})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		path, m := save(t, clip)
		clip.Close()
		for _, s := range m.Sources {
			if s.Read != tc.read {
				t.Errorf("%s: %s read %s", tc.name, s.Name, s.Read)
			}
		}
		if len(m.Sources) != 4 || m.Made != tc.made {
			t.Errorf("%s: %d sources, made %s", tc.name, len(m.Sources), m.Made)
		}
		checkCut(t, path, to.Sub(from), from)
		sums = append(sums, m.Export.SHA256)
	}
	if sums[0] != sums[1] || sums[1] != sums[2] {
		t.Errorf("sha256 of the clips: %v; one range, one result", sums)
	}
}

// TestClipAcrossAGap exports a range with a segment missing: what exists,
// in order, and the gap with its cause in the manifest.
func TestClipAcrossAGap(t *testing.T) {
	b := newBox(t)
	from := fx.recs[0].start.Add(1300 * time.Millisecond)
	to := fx.recs[2].start.Add(2700 * time.Millisecond)
	segs := []Segment{b.segs[0], b.segs[2]}
	logged := []catalog.Gap{{Camera: "door", Start: fx.recs[1].start, End: fx.recs[1].end, Cause: "operator-stop", Detail: "stopped through the API"}}
	clip, err := builder().Build(context.Background(), Request{Camera: "door", From: from, To: to, Segments: segs, Gaps: logged, Made: MadeOnBox})
	if err != nil {
		t.Fatal(err)
	}
	defer clip.Close()
	path, m := save(t, clip)
	before, after := fx.recs[1].start.Sub(from), to.Sub(fx.recs[2].start)
	checkCut(t, path, before+after, from)
	if len(m.Gaps) != 1 || m.Gaps[0].Start != fx.recs[1].start || m.Gaps[0].End != fx.recs[1].end || m.Gaps[0].Cause != "operator-stop" {
		t.Errorf("gaps %+v", m.Gaps)
	}
	if len(m.Sources) != 2 || math.Abs(m.Sources[1].ClipSeconds-before.Seconds()) > 0.001 {
		t.Errorf("sources %+v: the second should start %.3f s into the clip", m.Sources, before.Seconds())
	}
	if math.Abs(m.DurationSeconds-(before+after).Seconds()) > 0.001 {
		t.Errorf("duration %.3f, want %.3f", m.DurationSeconds, (before + after).Seconds())
	}
}

// TestChangedLocalFileIsReadFromS3: a local file that no longer matches
// its recorded sha256 is found out before any of its bytes is served: the
// clip cannot be read (nothing half-written is left), and the next build
// reads the S3 copy, making the same clip as from intact files.
func TestChangedLocalFileIsReadFromS3(t *testing.T) {
	b := newBox(t)
	from, to := fx.recs[0].start, fx.recs[1].end
	ctx := context.Background()
	good, err := builder().Build(ctx, Request{Camera: "door", From: from, To: to, Segments: b.segs})
	if err != nil {
		t.Fatal(err)
	}
	_, want := save(t, good)
	good.Close()
	data, _ := os.ReadFile(b.segs[1].Path)
	data[len(data)/2] ^= 0xff // bit rot: same size, different bytes
	os.WriteFile(b.segs[1].Path, data, 0o644)

	bld := builder()
	bld.Distrust = &Distrust{}
	clip, err := bld.Build(ctx, Request{Camera: "door", From: from, To: to, Segments: b.segs})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "clip.mp4")
	if _, err := clip.Save(path, false); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), b.segs[1].Name) {
		t.Errorf("saving a clip of a changed file: %v, want ErrMismatch naming it", err)
	}
	clip.Close()
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
	clip, err = bld.Build(ctx, Request{Camera: "door", From: from, To: to, Segments: b.segs})
	if err != nil {
		t.Fatal(err)
	}
	defer clip.Close()
	_, m := save(t, clip)
	if s := m.Sources[1]; s.Read != ReadS3 || !strings.Contains(s.Note, "does not match") || m.Sources[0].Read != ReadLocal {
		t.Errorf("sources %+v", m.Sources)
	}
	if m.Export.SHA256 != want.Export.SHA256 {
		t.Error("the clip differs from the one made from intact files")
	}
	// Not uploaded and changed: nothing to fall back on.
	segs := append([]Segment(nil), b.segs...)
	segs[1].Uploaded = false
	if _, err := bld.Build(ctx, Request{Camera: "door", From: from, To: to, Segments: segs}); !errors.Is(err, ErrMismatch) {
		t.Errorf("a changed file S3 does not have: %v, want ErrMismatch", err)
	}
	// A file cut short is found out at once, by its size.
	os.Truncate(b.segs[0].Path, b.segs[0].Bytes-1)
	clip2, err := builder().Build(ctx, Request{Camera: "door", From: from, To: to, Segments: b.segs[:1]})
	if err != nil {
		t.Fatal(err)
	}
	_, m = save(t, clip2)
	clip2.Close()
	if m.Sources[0].Read != ReadS3 || !strings.Contains(m.Sources[0].Note, "recorded") {
		t.Errorf("a shorter local file: %+v", m.Sources[0])
	}
}

// TestObjectNotMatchingItsMetadataFails: an S3 object whose bytes are not
// those its sha256 metadata names fails the export, naming the key.
func TestObjectNotMatchingItsMetadataFails(t *testing.T) {
	b := newBox(t)
	r := fx.recs[1]
	data := append([]byte(nil), r.data...)
	data[len(data)/2] ^= 0xff
	put(t, b.segs[1].Key, data, r.start, r.end, b.segs[1].SHA256) // new bytes, old metadata
	_, err := builder().Build(context.Background(), Request{Camera: "door", From: fx.recs[0].start, To: r.end, Segments: remote(b.segs)})
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), b.segs[1].Key) {
		t.Errorf("err = %v, want ErrMismatch naming %s", err, b.segs[1].Key)
	}
}

func TestFormatChangeIsRefused(t *testing.T) {
	b := newBox(t)
	// The camera comes back at another resolution after the last segment.
	last := fx.recs[len(fx.recs)-1]
	start, end := last.end, last.end.Add(2*time.Second)
	path := filepath.Join(b.save, "other.mp4")
	os.WriteFile(path, lavfi(t, "320x180", 2), 0o644)
	segs := append(b.segs, Segment{Camera: "door", FeedID: "f1", Start: start, End: end, Name: "other.mp4", Path: path})
	_, err := builder().Build(context.Background(), Request{Camera: "door", From: last.start, To: end, Segments: segs})
	var fe *FormatChangeError
	if !errors.As(err, &fe) || !fe.At.Equal(start) || fe.From != "avc1 640x360" || fe.To != "avc1 320x180" {
		t.Errorf("err = %v, want a format change at %v", err, start)
	}
}

// TestListBucket picks a camera's segments from the keys alone: the day
// before the range too, no other camera's, nothing that is not a segment.
func TestListBucket(t *testing.T) {
	fixtures(t)
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	keys := map[string]bool{ // key: picked for [00:00:05, 00:00:30) on 1 March
		"p/door/2026-02-28/door_f1_20260228T235958Z_20260301T000008Z.mp4":         true,  // starts the day before
		"p/door/2026-02-28/door_f1_20260228T235940Z_20260228T235950Z.mp4":         false, // ends before
		"p/door/2026-03-01/door_f1_20260301T000008Z_20260301T000018Z.mp4":         true,
		"p/door/2026-03-01/door_f1_20260301T000018Z_20260301T000028Z-1.mp4":       true,  // a collision suffix
		"p/door/2026-03-01/door_f1_20260301T000040Z_20260301T000050Z.mp4":         false, // starts after
		"p/door/2026-03-01/notes.txt":                                             false,
		"p/doorbell/2026-03-01/doorbell_f1_20260301T000008Z_20260301T000018Z.mp4": false,
		"p/door/2026-03-01/x/door_f1_20260301T000008Z_20260301T000018Z.mp4":       false,
		"q/door/2026-03-01/door_f1_20260301T000008Z_20260301T000018Z.mp4":         false,
	}
	for k := range keys {
		put(t, k, []byte("x"), day, day, "")
	}
	segs, err := ListBucket(context.Background(), fx.minio.Client(), bucket, "/p/", "door", day.Add(5*time.Second), day.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range segs {
		got[s.Key] = true
		if !s.Uploaded || s.Path != "" || s.Camera != "door" || s.FeedID != "f1" || s.Bytes != 1 {
			t.Errorf("%+v", s)
		}
	}
	for k, want := range keys {
		if got[k] != want {
			t.Errorf("%s: picked %v, want %v", k, got[k], want)
		}
	}
}

// TestVerify checks a manifest against the bucket: it passes, then fails
// for an object overwritten in S3 with the same metadata, and for a
// changed clip.
func TestVerify(t *testing.T) {
	b := newBox(t)
	ctx := context.Background()
	clip, err := builder().Build(ctx, Request{Camera: "door", From: fx.recs[0].start, To: fx.recs[2].end, Segments: remote(b.segs), Made: MadeOnBox})
	if err != nil {
		t.Fatal(err)
	}
	path, m := save(t, clip)
	clip.Close()
	dir := filepath.Dir(path)
	checks, err := Verify(ctx, &m, fx.minio.Client(), "", dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 4 {
		t.Fatalf("%d checks, want 3 sources and the clip", len(checks))
	}
	for _, c := range checks {
		if !c.OK || (c.How != "head" && c.How != "file") {
			t.Errorf("intact: %+v", c)
		}
	}
	if checks, _ := Verify(ctx, &m, fx.minio.Client(), "", dir, true); !checks[0].OK || checks[0].How != "download" {
		t.Errorf("full check: %+v", checks[0])
	}

	r := fx.recs[1]
	data := append([]byte(nil), r.data...)
	data[100] ^= 0x01
	put(t, b.segs[1].Key, data, r.start, r.end, b.segs[1].SHA256) // metadata as before: only the bytes tell
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0})
	f.Close()
	checks, err = Verify(ctx, &m, fx.minio.Client(), "", dir, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range checks {
		wantOK := i != 1 && i != 3
		if c.OK != wantOK {
			t.Errorf("check %d %s: ok %v, want %v (%s)", i, c.What, c.OK, wantOK, c.Problem)
		}
	}
	if c := checks[1]; c.How != "download" || !strings.Contains(c.Problem, "sha256") || !strings.Contains(c.What, b.segs[1].Key) {
		t.Errorf("changed object: %+v", c)
	}
	os.Remove(path)
	if checks, _ := Verify(ctx, &m, fx.minio.Client(), "", dir, false); !checks[3].Skipped || checks[3].OK {
		t.Errorf("clip not beside the manifest: %+v", checks[3])
	}
}

// TestService exports through the box's service over a real catalog:
// spans, one build shared by concurrent requests, nearest footage for a
// range without any, files released on close.
func TestService(t *testing.T) {
	b := newBox(t)
	ctx := context.Background()
	cat, err := catalog.Open(ctx, filepath.Join(b.save, ".cctvd", layout.CatalogName), b.save, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	for i, s := range b.segs {
		if i == 1 { // a hole: the gap log says why
			continue
		}
		r, err := cat.Add(ctx, segment.Segment{Camera: "door", FeedID: "f1", Start: s.Start, End: s.End, Path: s.Path, Size: s.Bytes}, s.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := cat.SetChecksums(ctx, r.ID, s.SHA256, "x"); err != nil {
			t.Fatal(err)
		}
		if err := cat.MarkUploaded(ctx, r.ID, s.ETag, "test"); err != nil {
			t.Fatal(err)
		}
		if i == 2 { // cleared after upload
			os.Remove(s.Path)
			cat.MarkLocalDeleted(ctx, r.ID, catalog.CauseClearAfterUpload)
		}
	}
	if _, err := cat.AddGap(ctx, catalog.Gap{Camera: "door", Start: b.segs[1].Start, End: b.segs[1].End, Cause: "stall"}); err != nil {
		t.Fatal(err)
	}
	svc := NewService(ServiceConfig{Bucket: bucket, Version: "test"}, ServiceDeps{Catalog: cat, S3: fx.minio.Client(), Log: zerolog.Nop()})
	defer svc.Close()

	from, to := b.segs[0].Start, b.segs[3].End
	tl, err := svc.Spans(ctx, "door", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Spans) != 2 || len(tl.Gaps) != 1 || tl.Gaps[0].Cause != "stall" || tl.Spans[1].Local || tl.Spans[1].LocalSegments != 1 || !tl.Spans[1].Uploaded {
		t.Errorf("timeline %+v", tl)
	}

	var wg sync.WaitGroup
	clips := make([]*Clip, 3)
	for i := range clips {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := svc.Clip(ctx, "door", from, to)
			if err != nil {
				t.Error(err)
				return
			}
			clips[i] = c
		}()
	}
	await.Done(t, 2*time.Minute, "the concurrent clips", wg.Wait)
	if t.Failed() {
		return
	}
	if clips[0].built != clips[1].built || clips[1].built != clips[2].built {
		t.Error("concurrent requests for one range built it more than once")
	}
	m, err := clips[0].Manifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reads := map[string]int{}
	for _, s := range m.Sources {
		reads[s.Read]++
	}
	if reads[ReadLocal] != 2 || reads[ReadS3] != 1 || len(m.Gaps) != 1 || m.Gaps[0].Cause != "stall" {
		t.Errorf("sources read %v, gaps %+v", reads, m.Gaps)
	}
	whole := make([]byte, clips[0].Size())
	if n, err := clips[2].ReadAt(whole, 0); n != len(whole) || err != nil || sha(whole) != m.Export.SHA256 {
		t.Errorf("read %d of %d: %v", n, len(whole), err)
	}

	// A local file changed since it was recorded: the clip fails to read
	// it, and the next request builds it again from the S3 copy.
	data, _ := os.ReadFile(b.segs[3].Path)
	data[len(data)/3] ^= 0x10
	os.WriteFile(b.segs[3].Path, data, 0o644)
	first, err := svc.Clip(ctx, "door", b.segs[3].Start, b.segs[3].End)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Manifest(ctx); !errors.Is(err, ErrMismatch) {
		t.Errorf("a clip of a changed file: %v, want ErrMismatch", err)
	}
	first.Close()
	again, err := svc.Clip(ctx, "door", b.segs[3].Start, b.segs[3].End)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := again.Manifest(ctx); err != nil || m.Sources[0].Read != ReadS3 || m.Sources[0].SHA256 != b.segs[3].SHA256 {
		t.Errorf("the next request: %v %+v", err, m.Sources)
	}
	again.Close()

	var nf *NoFootageError
	_, err = svc.Clip(ctx, "door", b.segs[3].End.Add(time.Minute), b.segs[3].End.Add(2*time.Minute))
	if !errors.As(err, &nf) || nf.Before == nil || !nf.Before.To.Equal(b.segs[3].End) || nf.After != nil {
		t.Errorf("a range after the footage: %v %+v", err, nf)
	}
	_, err = svc.Clip(ctx, "door", b.segs[1].Start.Add(time.Second), b.segs[1].End.Add(-time.Second))
	if !errors.As(err, &nf) || nf.Before == nil || nf.After == nil || !nf.After.From.Equal(b.segs[2].Start) {
		t.Errorf("a range in the gap: %v %+v", err, nf)
	}

	for _, c := range clips {
		c.Close()
	}
	svc.Close()
	if _, err := clips[0].ReadAt(make([]byte, 10), clips[0].Size()-10); !errors.Is(err, os.ErrClosed) {
		t.Errorf("after the last reader and Close, reading: %v, want the files closed", err)
	}
	if _, err := svc.Clip(ctx, "door", from, to); err == nil {
		t.Error("a clip after Close")
	}
}

// TestServiceFindsPrunedFootageInTheBucket: the catalog has pruned the rows
// of footage older than catalogRetentionDays that is no longer on the box;
// S3 still has it, and so the box still exports it.
func TestServiceFindsPrunedFootageInTheBucket(t *testing.T) {
	b := newBox(t)
	ctx := context.Background()
	cat, err := catalog.Open(ctx, layout.Catalog(layout.DefaultStateDir(b.save)), b.save, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	for i, s := range b.segs {
		if i < 2 { // pruned: gone from the box and from the catalog
			os.Remove(s.Path)
			continue
		}
		r, err := cat.Add(ctx, segment.Segment{Camera: "door", FeedID: "f1", Start: s.Start, End: s.End, Path: s.Path, Size: s.Bytes}, s.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := cat.SetChecksums(ctx, r.ID, s.SHA256, "x"); err != nil {
			t.Fatal(err)
		}
		if err := cat.MarkUploaded(ctx, r.ID, s.ETag, "test"); err != nil {
			t.Fatal(err)
		}
	}
	from, to := b.segs[0].Start, b.segs[3].End
	for _, tt := range []struct {
		name    string
		horizon time.Time
		want    int // segments the timeline counts
	}{
		{"the catalog keeps every row", time.Time{}, 2},
		{"rows before the third segment pruned", b.segs[2].Start, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc := NewService(ServiceConfig{Bucket: bucket, Prefix: b.prefix, Version: "test"},
				ServiceDeps{Catalog: cat, S3: fx.minio.Client(), Log: zerolog.Nop(), PrunedBefore: func() time.Time { return tt.horizon }})
			defer svc.Close()
			tl, err := svc.Spans(ctx, "door", from, to)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, sp := range tl.Spans {
				n += sp.Segments
			}
			if n != tt.want {
				t.Fatalf("the timeline counts %d segments, want %d: %+v", n, tt.want, tl)
			}
			if tt.want < 4 {
				return
			}
			c, err := svc.Clip(ctx, "door", from, to)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			m, err := c.Manifest(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Sources) != 4 || m.Sources[0].Read != "s3" || m.Sources[3].Read != "local" {
				t.Errorf("sources %+v", m.Sources)
			}
		})
	}
}

// TestServiceBuildsAtMostMaxBuildsAtOnce: each build reads (and may
// download) a range's footage; beyond MaxBuilds at once a new range is
// refused with ErrBusy rather than queued on a small box.
func TestServiceBuildsAtMostMaxBuildsAtOnce(t *testing.T) {
	save := t.TempDir()
	cat, err := catalog.Open(context.Background(), filepath.Join(save, layout.CatalogName), save, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	svc := NewService(ServiceConfig{MaxBuilds: 1}, ServiceDeps{Catalog: cat, Log: zerolog.Nop()})
	defer svc.Close()
	svc.mu.Lock()
	svc.building = 1 // one build under way
	svc.mu.Unlock()
	if _, err := svc.Clip(context.Background(), "door", t0, t0.Add(time.Minute)); !errors.Is(err, ErrBusy) {
		t.Fatalf("Clip while the only build slot is taken = %v, want ErrBusy", err)
	}
	svc.mu.Lock()
	svc.building = 0
	svc.mu.Unlock()
	if _, err := svc.Clip(context.Background(), "door", t0, t0.Add(time.Minute)); errors.Is(err, ErrBusy) || err == nil {
		t.Fatalf("Clip with a free slot = %v, want no footage", err)
	}
}

// TestFileClearedWhileTheExportIsMadeIsReadFromS3: the range was listed
// while its segments waited for upload; before the build opened them the
// uploader put them in S3 and clearAfterUpload deleted the files. The
// export reads S3 (the bytes still those recorded) and says so, instead
// of failing on a file that is gone.
func TestFileClearedWhileTheExportIsMadeIsReadFromS3(t *testing.T) {
	b := newBox(t)
	from, to := fx.recs[0].start, fx.recs[1].end
	ctx := context.Background()
	good, err := builder().Build(ctx, Request{Camera: "door", From: from, To: to, Segments: b.segs[:2]})
	if err != nil {
		t.Fatal(err)
	}
	_, want := save(t, good)
	good.Close()
	listed := append([]Segment(nil), b.segs[:2]...)
	for i := range listed {
		listed[i].Uploaded = false // as the listing saw them
		if err := os.Remove(listed[i].Path); err != nil {
			t.Fatal(err)
		}
	}
	clip, err := builder().Build(ctx, Request{Camera: "door", From: from, To: to, Segments: listed})
	if err != nil {
		t.Fatalf("an export of files uploaded and cleared while it was made: %v", err)
	}
	defer clip.Close()
	_, m := save(t, clip)
	if m.Export.SHA256 != want.Export.SHA256 {
		t.Errorf("the clip read from S3 differs from the one read from the files")
	}
	for _, s := range m.Sources {
		if s.Read != ReadS3 || !strings.Contains(s.Note, "went away while the export was made") {
			t.Errorf("source %s: read %s, note %q", s.Name, s.Read, s.Note)
		}
	}
}
