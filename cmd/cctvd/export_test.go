//go:build integration

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/export"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/uploader"
)

// exportGOP is the keyframe interval the test camera's footage is
// recorded with: transcoded at 5 fps with 3 s segments, a keyframe opens
// every segment and there is none between.
const exportGOP = 3 * time.Second

func recordings(c *client) []apiRecording {
	var list struct {
		Recordings []apiRecording `json:"recordings"`
	}
	c.json("GET", "/api/v1/recordings?camera=door&limit=1000", 200, &list)
	sort.Slice(list.Recordings, func(i, j int) bool { return list.Recordings[i].Start.Before(list.Recordings[j].Start) })
	return list.Recordings
}

func rangeQuery(from, to time.Time) string {
	return "from=" + url.QueryEscape(from.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339Nano))
}

// footage adds up the recordings' overlap with [from, to): what a clip of
// the range plays.
func footage(recs []apiRecording, from, to time.Time) time.Duration {
	var d time.Duration
	for _, r := range recs {
		s, e := r.Start, r.End
		if s.Before(from) {
			s = from
		}
		if e.After(to) {
			e = to
		}
		if e.After(s) {
			d += e.Sub(s)
		}
	}
	return d
}

// getClip downloads an export through the API into dir, and its manifest
// through the Link header.
func getClip(t *testing.T, c *client, q, dir string) (string, export.Manifest) {
	t.Helper()
	status, body, h := c.do("GET", "/api/v1/cameras/door/export?"+q, nil)
	if status != 200 || h.Get("Content-Type") != "video/mp4" || h.Get("Accept-Ranges") != "bytes" || h.Get("ETag") == "" {
		t.Fatalf("export: %d %v %.200s", status, h, body)
	}
	path := filepath.Join(dir, "api.mp4")
	os.WriteFile(path, body, 0o644)
	link := h.Get("Link")
	target, ok := strings.CutPrefix(strings.SplitN(link, ">", 2)[0], "<")
	if !ok || !strings.Contains(link, `rel="describedby"`) {
		t.Fatalf("Link %q", link)
	}
	var m export.Manifest
	c.json("GET", target, 200, &m)
	if m.Export.SHA256 != fileSHA(t, path) || m.Export.ETag != h.Get("ETag") {
		t.Errorf("the manifest's sha256 %s / ETag %s, the clip's %s / %s", m.Export.SHA256, m.Export.ETag, fileSHA(t, path), h.Get("ETag"))
	}
	return path, m
}

// checkClip checks with ffprobe that a clip starts within one GOP of its
// range's start, plays want (within tol), ends within one GOP of the end,
// and carries the range's wall-clock start.
func checkClip(t *testing.T, path string, want, tol time.Duration, start time.Time) {
	t.Helper()
	p := testenv.ProbeClip(t, path)
	t.Logf("%s: plays %v (want %v), first packet %v, ends %v, keyframes %v", filepath.Base(path), p.Duration, want, p.FirstPTS, p.EndPTS, p.Keyframes)
	if p.FirstPTS > 0 || p.FirstPTS < -exportGOP {
		t.Errorf("first packet at %v: not within one GOP (%v) before the start", p.FirstPTS, exportGOP)
	}
	if (p.Duration - want).Abs() > tol {
		t.Errorf("plays %v, want %v within %v", p.Duration, want, tol)
	}
	if p.EndPTS < p.Duration-tol || p.EndPTS > p.Duration+exportGOP {
		t.Errorf("last packet ends at %v: not within one GOP of the end (%v)", p.EndPTS, p.Duration)
	}
	if !p.CreationTime.Equal(start.Truncate(time.Second)) || p.Width != 640 || p.Height != 360 || p.Codec != "h264" {
		t.Errorf("creation_time %v (want %v), %s %dx%d", p.CreationTime, start.Truncate(time.Second), p.Codec, p.Width, p.Height)
	}
}

// TestExportEndToEnd records from the test camera with a gap (an operator
// stop), then exports: through the API (spans, bad requests, a range
// across three segments cut mid-segment, a range across the gap played in
// Chromium), with the command line from the box; after clearAfterUpload
// (every source from S3); from the bucket alone with the catalog removed;
// and verifies the manifest, then sees verification fail once one source
// object is changed in the bucket.
func TestExportEndToEnd(t *testing.T) {
	s := newSetup(t, 3)
	cfg := s.writeConfig(t)
	d := startDaemon(t, "run", "--config", cfg)
	c := newClient(t, d, "")
	closed := func(from, n int) int {
		i := from
		for range n {
			_, i = d.await(i, 60*time.Second, msgIs("segment closed"))
			i++
		}
		return i
	}
	closed(0, 4)
	c.json("POST", "/api/v1/cameras/door/stop", 200, nil)
	time.Sleep(2 * time.Second) // the gap itself: time has to pass, there is no event to await
	c.json("POST", "/api/v1/cameras/door/start", 200, nil)
	closed(d.mark(), 3)
	deadline := time.Now().Add(60 * time.Second)
	for { // every closed segment uploaded
		recs := recordings(c)
		pending := 0
		for _, r := range recs {
			if r.Upload != "uploaded" {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d segments not uploaded after 60 s", pending)
		}
		d.await(d.mark(), 30*time.Second, msgIs("uploaded and verified"))
	}
	recs := recordings(c)
	var tl export.Timeline
	c.json("GET", "/api/v1/cameras/door/spans?"+rangeQuery(recs[0].Start, recs[len(recs)-1].End), 200, &tl)
	if len(tl.Spans) != 2 || len(tl.Gaps) != 1 || tl.Gaps[0].Cause != "operator-stop" || !tl.Spans[0].Uploaded || !tl.Spans[0].Local {
		t.Fatalf("spans: %+v", tl)
	}
	var before, after []apiRecording
	for _, r := range recs {
		if r.Start.Before(tl.Gaps[0].Start) {
			before = append(before, r)
		} else {
			after = append(after, r)
		}
	}
	t.Logf("%d segments before the gap, %d after; gap %v", len(before), len(after), tl.Gaps[0])
	dir := t.TempDir()

	t.Run("bad requests", func(t *testing.T) {
		for q, want := range map[string]string{
			rangeQuery(recs[1].Start, recs[0].Start):                   "from must be before to",
			rangeQuery(recs[0].Start, recs[0].Start.Add(25*time.Hour)): "from and to are more than 24h0m0s apart (api.maxExportRange)",
			"from=soon&to=later":                                       "from is not an RFC 3339 time such as 2026-01-06T14:03:00Z or 2026-01-06T15:03:00.5+01:00",
		} {
			if got := c.jsonError("GET", "/api/v1/cameras/door/export?"+q, 400); got != want {
				t.Errorf("%s: %q, want %q", q, got, want)
			}
		}
		c.jsonError("GET", "/api/v1/cameras/nobody/export?"+rangeQuery(recs[0].Start, recs[1].Start), 404)
		var nf struct {
			Error         string
			Before, After *export.Range
		}
		c.json("GET", "/api/v1/cameras/door/export?"+rangeQuery(recs[0].Start.Add(-2*time.Hour), recs[0].Start.Add(-time.Hour)), 404, &nf)
		if nf.Before != nil || nf.After == nil || !nf.After.From.Equal(recs[0].Start.Truncate(time.Millisecond)) {
			t.Errorf("no footage: %+v", nf)
		}
	})

	// Three segments, cut mid-segment at both ends.
	from, to := before[0].Start.Add(1300*time.Millisecond), before[2].Start.Add(1700*time.Millisecond)
	var apiSum string
	t.Run("three segments, mid-segment", func(t *testing.T) {
		path, m := getClip(t, c, rangeQuery(from, to), t.TempDir())
		apiSum = m.Export.SHA256
		checkClip(t, path, footage(recs, from, to), 300*time.Millisecond, from)
		if len(m.Sources) != 3 || len(m.Gaps) != 0 || m.Made != export.MadeOnBox {
			t.Errorf("manifest: %d sources, gaps %v, made %s", len(m.Sources), m.Gaps, m.Made)
		}
		for _, src := range m.Sources {
			if src.Read != export.ReadLocal || !src.Uploaded || !strings.HasPrefix(src.Key, "rec/2025/door/") {
				t.Errorf("source %+v", src)
			}
		}
		// Range requests: the bytes asked for.
		status, part, h := c.do("GET", "/api/v1/cameras/door/export?"+rangeQuery(from, to), map[string]string{"Range": "bytes=1000-1999"})
		whole, _ := os.ReadFile(path)
		if status != 206 || !bytes.Equal(part, whole[1000:2000]) || h.Get("Content-Range") != fmt.Sprintf("bytes 1000-1999/%d", len(whole)) {
			t.Errorf("Range: %d %v", status, h)
		}
	})

	t.Run("command line, from the box", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "cli.mp4")
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"export", "--config", cfg, "--camera", "door",
			"--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano), "-o", out}, &stdout, &stderr, os.Getenv, time.Now)
		if err != nil {
			t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
		}
		if sum := fileSHA(t, out); sum != apiSum || !strings.Contains(stdout.String(), "sha256 "+sum) {
			t.Errorf("the command line's clip (%s) differs from the API's (%s):\n%s", sum, apiSum, stdout.String())
		}
		if _, err := export.ReadManifest(strings.TrimSuffix(out, ".mp4") + ".json"); err != nil {
			t.Error(err)
		}
	})

	t.Run("across the gap, in Chromium", func(t *testing.T) {
		gap := tl.Gaps[0]
		gfrom, gto := gap.Start.Add(-2*time.Second), gap.End.Add(1500*time.Millisecond)
		q := rangeQuery(gfrom, gto)
		path, m := getClip(t, c, q, t.TempDir())
		want := footage(recs, gfrom, gto)
		checkClip(t, path, want, 300*time.Millisecond, gfrom)
		if len(m.Gaps) != 1 || m.Gaps[0].Cause != "operator-stop" || !m.Gaps[0].Start.Equal(gap.Start) || !m.Gaps[0].End.Equal(gap.End) {
			t.Errorf("manifest gaps %+v, want %+v", m.Gaps, gap)
		}
		last := m.Sources[len(m.Sources)-1] // the first segment after the gap
		if !last.Start.Equal(gap.End) || (time.Duration(last.ClipSeconds*float64(time.Second))-footage(recs, gfrom, gap.Start)).Abs() > 10*time.Millisecond {
			t.Errorf("the source after the gap starts %.3f s into the clip, want %v: %+v", last.ClipSeconds, footage(recs, gfrom, gap.Start), m.Sources)
		}
		b := newBrowser(t)
		b.playVideo(c.base+"/healthz", c.base+"/api/v1/cameras/door/export?"+q, want, exportGOP)
	})

	// A restart with clearAfterUpload: the new segments go to S3 and leave
	// the box; their export reads S3 alone.
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	clearCfg := filepath.Join(t.TempDir(), "clear.json")
	os.WriteFile(clearCfg, []byte(strings.Replace(readFile(t, cfg), `"clearAfterUpload": false`, `"clearAfterUpload": true`, 1)), 0o600)
	d2 := startDaemon(t, "run", "--config", clearCfg)
	c2 := newClient(t, d2, "")
	j := 0
	for range 4 {
		_, j = d2.await(j, 60*time.Second, msgIs("uploaded and verified"))
		j++
	}
	var cleared []apiRecording
	for _, r := range recordings(c2) {
		if r.Upload == "uploaded" && r.Local == "deleted" {
			cleared = append(cleared, r)
		}
	}
	t.Run("after clearAfterUpload", func(t *testing.T) {
		if len(cleared) < 3 {
			t.Fatalf("%d segments cleared after upload", len(cleared))
		}
		cfrom, cto := cleared[0].Start.Add(500*time.Millisecond), cleared[2].Start.Add(2*time.Second)
		path, m := getClip(t, c2, rangeQuery(cfrom, cto), t.TempDir())
		checkClip(t, path, footage(cleared, cfrom, cto), 300*time.Millisecond, cfrom)
		for _, src := range m.Sources {
			if src.Read != export.ReadS3 {
				t.Errorf("source %s read %s, want s3 (the file was cleared)", src.Name, src.Read)
			}
		}
		if len(m.Sources) != 3 {
			t.Errorf("%d sources", len(m.Sources))
		}
	})
	d2.cmd.Process.Signal(syscall.SIGTERM)
	if err := d2.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	// The box is gone: no catalog. The bucket alone makes the same clip.
	if err := os.RemoveAll(filepath.Join(s.savePath, ".cctvd")); err != nil {
		t.Fatal(err)
	}
	clip := filepath.Join(dir, "s3.mp4")
	t.Run("from S3 alone, catalog removed", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		args := []string{"export", "--config", cfg, "--camera", "door", "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano), "-o", clip}
		err := run(context.Background(), args, &stdout, &stderr, os.Getenv, time.Now)
		if err == nil || !strings.Contains(err.Error(), "--from-s3") {
			t.Errorf("from the box without its catalog: %v, want a pointer to --from-s3", err)
		}
		// Only the S3 flags and the AWS environment: nothing of the box.
		t.Setenv("AWS_ACCESS_KEY_ID", s.minio.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", s.minio.SecretKey)
		args = []string{"export", "--from-s3", "--bucket", "test-bucket", "--prefix", "rec/2025", "--endpoint", s.minio.Endpoint,
			"--region", "us-east-1", "--camera", "door", "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano), "-o", clip}
		if err := run(context.Background(), args, &stdout, &stderr, os.Getenv, time.Now); err != nil {
			t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
		}
		m, err := export.ReadManifest(filepath.Join(dir, "s3.json"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Made != export.MadeFromBucket || m.Export.SHA256 != apiSum || fileSHA(t, clip) != apiSum || len(m.Sources) != 3 {
			t.Errorf("from the bucket alone: made %s, sha256 %s, want the box's %s; %d sources\n%s", m.Made, m.Export.SHA256, apiSum, len(m.Sources), stdout.String())
		}
		if err := run(context.Background(), args, &stdout, &stderr, os.Getenv, time.Now); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Errorf("exporting over an earlier export: %v", err)
		}
	})

	t.Run("verify", func(t *testing.T) {
		manifest := filepath.Join(dir, "s3.json")
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{"verify", "--config", cfg, manifest}, &stdout, &stderr, os.Getenv, time.Now); err != nil {
			t.Fatalf("verify an intact export: %v\n%s%s", err, stdout.String(), stderr.String())
		}
		if n := strings.Count(stdout.String(), "ok "); n != 4 {
			t.Errorf("%d checks ok, want 3 sources and the clip:\n%s", n, stdout.String())
		}
		// Someone with write access to the bucket changes one source,
		// metadata and all.
		m, _ := export.ReadManifest(manifest)
		victim := m.Sources[1]
		ctx := context.Background()
		obj, err := s.minio.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("test-bucket"), Key: aws.String(victim.Key)})
		if err != nil {
			t.Fatal(err)
		}
		var data bytes.Buffer
		data.ReadFrom(obj.Body)
		obj.Body.Close()
		changed := data.Bytes()
		changed[len(changed)/2] ^= 0x01
		if _, err := s.minio.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("test-bucket"), Key: aws.String(victim.Key),
			Body: bytes.NewReader(changed), Metadata: obj.Metadata}); err != nil {
			t.Fatal(err)
		}
		stdout.Reset()
		err = run(ctx, []string{"verify", "--config", cfg, manifest}, &stdout, &stderr, os.Getenv, time.Now)
		if !errors.Is(err, errVerifyFailed) || !strings.Contains(stdout.String(), "FAILED  s3://test-bucket/"+victim.Key) ||
			strings.Count(stdout.String(), "FAILED") != 1 || obj.Metadata[uploader.MetaSHA256] != victim.SHA256 {
			t.Errorf("verify after one object changed: %v\n%s", err, stdout.String())
		}
	})
	assertNoSecret(t, d.output()+d2.output()+c.bodies.String()+c2.bodies.String(), s.minio.SecretKey)
}
