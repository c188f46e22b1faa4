//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/export"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/segment"
)

// feedSetup is a camera serving a main and a sub stream from one source
// (640x360 and 320x180), MinIO, and a config recording both feeds.
type feedSetup struct {
	cam      *testenv.Camera
	minio    *testenv.MinIO
	savePath string
	s3       string  // more s3Config members, each preceded by a comma
	limitGB  float64 // clearWhenFilePathReachGB
}

func newFeedSetup(t *testing.T) *feedSetup {
	t.Helper()
	testenv.RequireTools(t)
	s := &feedSetup{savePath: t.TempDir(), limitGB: 1}
	s.cam = testenv.StartCamera(t, testenv.CameraOptions{
		Pairs: []testenv.Pair{{MainPath: "/cam1", Main: "640x360@10", SubPath: "/cam1sub", Sub: "320x180"}},
		User:  "admin", Password: e2ePassword, Auth: "digest", BitrateKbps: 1200, SubBitrateKbps: 100, GOPSeconds: 1})
	s.minio = testenv.StartMinIO(t)
	s.minio.CreateBucket("test-bucket")
	return s
}

func (s *feedSetup) writeConfig(t *testing.T) string {
	t.Helper()
	cfg := fmt.Sprintf(`{
  "cameras": [{"cameraName": "door", "ipAddress": "127.0.0.1", "userName": "admin", "password": %q,
    "frameRate": 10, "resolution": "640x360", "videoDuration": 2, "videoFeedId": "f1",
    "rtspPort": %d, "rtspPath": "/cam1", "subStream": {"rtspPath": "/cam1sub"}}],
  "s3Config": {"s3Bucket": "test-bucket", "s3Path": "rec/2025", "endpoint": %q %s},
  "awsCredentials": {"accessKeyId": %q, "secretAccessKey": %q},
  "storageConfig": {"savePath": %q, "clearWhenFilePathReachGB": %v},
  "api": {"listen": "127.0.0.1:0"},
  "log": {"format": "json"}
}`, e2ePassword, s.cam.Port, s.minio.Endpoint, s.s3, s.minio.AccessKey, s.minio.SecretKey, s.savePath, s.limitGB)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// feedRec is a recording as the API lists it.
type feedRec struct {
	ID          int64     `json:"id"`
	FeedID      string    `json:"feedId"`
	Sub         bool      `json:"sub"`
	Name        string    `json:"name"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Upload      string    `json:"upload"`
	UploadedAt  time.Time `json:"uploadedAt"`
	Local       string    `json:"local"`
	DeleteCause string    `json:"deleteCause"`
	File        string    `json:"file"`
}

// feedRecordings lists the camera's recordings, oldest first.
func feedRecordings(c *client) []feedRec {
	var list struct {
		Recordings []feedRec `json:"recordings"`
	}
	status, body, _ := c.do("GET", "/api/v1/recordings?camera=door&limit=1000", nil)
	if status == 503 { // the catalog is opening
		return nil
	}
	if status != 200 || json.Unmarshal(body, &list) != nil {
		c.t.Fatalf("recordings: %d %s", status, body)
	}
	sort.Slice(list.Recordings, func(i, j int) bool { return list.Recordings[i].Start.Before(list.Recordings[j].Start) })
	return list.Recordings
}

// awaitRecordings waits, on the daemon's log, until cond holds for the
// camera's recordings.
func awaitRecordings(t *testing.T, d *proc, c *client, timeout time.Duration, what string, cond func([]feedRec) bool) []feedRec {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		mark := d.mark()
		recs := feedRecordings(c)
		if cond(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; recordings %+v\noutput:\n%s", what, timeout, recs, d.output())
		}
		d.await(mark, time.Minute, func(map[string]any) bool { return true }) // the next thing the daemon does
	}
}

func count(recs []feedRec, f func(feedRec) bool) int {
	n := 0
	for _, r := range recs {
		if f(r) {
			n++
		}
	}
	return n
}

var (
	mainName = regexp.MustCompile(`^door_f1_\d{8}T\d{6}Z_\d{8}T\d{6}Z(-\d+)?\.mp4$`)
	subName  = regexp.MustCompile(`^door_f1-sub_\d{8}T\d{6}Z_\d{8}T\d{6}Z(-\d+)?\.mp4$`)
)

// TestSubFeedOffSiteMainOnRequest: a camera with a subStream records both
// feeds (one RTSP session each, the same login), named by the note's rule
// with their own feed ids, each at its own size. The uplink (0.6 Mbit/s)
// is below the main feed (1.2) and above the sub (0.1), and
// uploadFeeds is "sub": the sub copy stays current in S3 while the main
// waits on the box; an incident's upload request sends its main range
// first. From the bucket alone, a range whose main copy is not there is
// handed over as the sub copy, and the manifest says so.
func TestSubFeedOffSiteMainOnRequest(t *testing.T) {
	s := newFeedSetup(t)
	s.s3 = `, "maxUploadMbps": 0.6, "uploadFeeds": "sub"`
	cfgPath := s.writeConfig(t)
	d := startDaemon(t, "run", "--config", cfgPath)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(d.output())
		}
	})
	c := newClient(t, d, "")

	recs := awaitRecordings(t, d, c, 3*time.Minute, "six sub segments in S3", func(rs []feedRec) bool {
		return count(rs, func(r feedRec) bool { return r.Sub && r.Upload == "uploaded" }) >= 6 && count(rs, func(r feedRec) bool { return !r.Sub }) >= 6
	})
	var aMain, aSub string
	for _, r := range recs {
		switch {
		case r.Sub && (r.FeedID != "f1-sub" || !subName.MatchString(r.Name)):
			t.Errorf("sub segment %+v not named by the rule with feed id f1-sub", r)
		case !r.Sub && (r.FeedID != "f1" || !mainName.MatchString(r.Name)):
			t.Errorf("main segment %+v not named by the rule with feed id f1", r)
		case !r.Sub && r.Upload == "uploaded":
			t.Errorf("a main segment went up without a request: %s", r.Name)
		}
		if r.Local == "present" && r.File != "" {
			if r.Sub {
				aSub = r.Name
			} else {
				aMain = r.Name
			}
		}
	}
	for name, want := range map[string][2]int{aMain: {640, 360}, aSub: {320, 180}} {
		info, err := segment.Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		p := testenv.ProbeFile(t, filepath.Join(s.savePath, "door", info.Start.UTC().Format("2006-01-02"), name))
		if p.Width != want[0] || p.Height != want[1] {
			t.Errorf("%s is %dx%d, want %dx%d", name, p.Width, p.Height, want[0], want[1])
		}
	}
	// The sub copy is current: each went up within 30 s of its end (the
	// bench measures the 2-minute goal), none waits that long.
	at := time.Now()
	for _, r := range recs {
		if !r.Sub {
			continue
		}
		if r.Upload == "uploaded" && r.UploadedAt.Sub(r.End) > 30*time.Second {
			t.Errorf("sub segment %s went up %v after its end", r.Name, r.UploadedAt.Sub(r.End))
		}
		if r.Upload != "uploaded" && at.Sub(r.End) > 30*time.Second {
			t.Errorf("sub segment %s waits %v after its end", r.Name, at.Sub(r.End))
		}
	}
	objs := s.minio.List("test-bucket", "rec/2025/door/")
	for _, o := range objs {
		if !strings.Contains(o.Key, "_f1-sub_") {
			t.Errorf("S3 holds %s before any request", o.Key)
		}
	}

	var st struct {
		Uploader struct {
			Plan  struct{ State string } `json:"plan"`
			Feeds *struct {
				Sub      struct{ State, Message string } `json:"sub"`
				Main     struct{ State, Message string } `json:"main"`
				MainHeld bool                            `json:"mainHeld"`
				Policy   string                          `json:"policy"`
			} `json:"feeds"`
		} `json:"uploader"`
	}
	c.json("GET", "/api/v1/status", 200, &st)
	if f := st.Uploader.Feeds; f == nil || !f.MainHeld || f.Policy != "sub" || !strings.Contains(f.Main.Message, "on request only") {
		t.Errorf("the status does not say the main feeds are held: %+v", st.Uploader)
	}
	var cam struct {
		Feeds []struct {
			Feed, FeedID, State string
			Local, Remote       time.Time
		} `json:"feeds"`
	}
	c.json("GET", "/api/v1/cameras/door", 200, &cam)
	if len(cam.Feeds) != 2 || cam.Feeds[0].Feed != "main" || cam.Feeds[1].Feed != "sub" || cam.Feeds[1].FeedID != "f1-sub" ||
		cam.Feeds[1].State != "recording" || cam.Feeds[0].Local.IsZero() || !cam.Feeds[0].Remote.IsZero() || cam.Feeds[1].Remote.IsZero() {
		t.Errorf("camera feeds: %+v", cam.Feeds)
	}

	// Bad requests: 4xx JSON that does not repeat what was sent.
	for _, bad := range []struct {
		q    string
		want int
	}{
		{"from=yesterday-ish&to=2026-01-06T12:00:00Z", 400},
		{"from=2026-01-06T12:00:00Z&to=2026-01-06T11:00:00Z", 400},
		{"from=2026-01-01T12:00:00Z&to=2026-01-06T12:00:00Z", 400},
		{"from=" + url.QueryEscape(at.Format(time.RFC3339)) + "&to=" + url.QueryEscape(at.Add(time.Hour).Format(time.RFC3339)), 400},
	} {
		msg := c.jsonError("POST", "/api/v1/cameras/door/upload?"+bad.q, bad.want)
		if strings.Contains(msg, "yesterday") || strings.Contains(msg, "T11:00") || strings.Contains(msg, "2026-01-01") {
			t.Errorf("the error echoes the request: %q", msg)
		}
	}
	c.jsonError("POST", "/api/v1/cameras/nosuch/upload?from=2026-01-06T11:00:00Z&to=2026-01-06T12:00:00Z", 404)

	// An incident: two main segments in the middle go up, ahead of
	// everything; no other main segment does.
	recs = feedRecordings(c)
	var mains []feedRec
	for _, r := range recs {
		if !r.Sub && r.Local == "present" {
			mains = append(mains, r)
		}
	}
	r1, r2 := mains[len(mains)/2-1], mains[len(mains)/2]
	from, to := r1.Start.Add(500*time.Millisecond), r2.End.Add(-500*time.Millisecond)
	covered := map[int64]bool{}
	for _, r := range mains {
		if r.Start.Before(to) && r.End.After(from) {
			covered[r.ID] = true
		}
	}
	asked := time.Now()
	var req struct {
		ID      int64 `json:"id"`
		Waiting int   `json:"waiting"`
	}
	q := "from=" + url.QueryEscape(from.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339Nano))
	c.json("POST", "/api/v1/cameras/door/upload?"+q, 202, &req)
	if req.Waiting != len(covered) || len(covered) < 2 {
		t.Errorf("the request covers %d main segments waiting, want %d", req.Waiting, len(covered))
	}
	recs = awaitRecordings(t, d, c, 2*time.Minute, "the incident's main segments in S3", func(rs []feedRec) bool {
		return count(rs, func(r feedRec) bool { return covered[r.ID] && r.Upload == "uploaded" }) == len(covered)
	})
	t.Logf("the incident's %d main segments were in S3 %v after the request", len(covered), time.Since(asked).Round(100*time.Millisecond))
	for _, r := range recs {
		if !r.Sub && r.Upload == "uploaded" && !covered[r.ID] {
			t.Errorf("main segment %s went up though no request covers it", r.Name)
		}
	}
	var reqs struct {
		Requests []struct {
			ID       int64     `json:"id"`
			Done     time.Time `json:"done"`
			Uploaded int       `json:"uploaded"`
		} `json:"requests"`
	}
	deadline := time.Now().Add(time.Minute)
	for {
		c.json("GET", "/api/v1/uploads/requests", 200, &reqs)
		if len(reqs.Requests) == 1 && !reqs.Requests[0].Done.IsZero() && reqs.Requests[0].Uploaded == len(covered) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the request is not closed: %+v", reqs)
		}
		d.await(d.mark(), time.Minute, func(map[string]any) bool { return true })
	}

	// From the bucket alone: a main segment's range not in S3 comes as the
	// sub copy, and says so.
	// The range: a sub segment in S3 recorded well after the request's
	// main segments, whose main copy is on the box only.
	var lastCovered time.Time
	for _, r := range mains {
		if covered[r.ID] {
			lastCovered = maxT(lastCovered, r.End)
		}
	}
	var efrom, eto time.Time
	awaitRecordings(t, d, c, time.Minute, "a sub segment in S3 after the request's range", func(rs []feedRec) bool {
		for _, r := range rs {
			if r.Sub && r.Upload == "uploaded" && r.Start.After(lastCovered.Add(3*time.Second)) {
				efrom, eto = r.Start.Add(300*time.Millisecond), r.End.Add(-300*time.Millisecond)
				return true
			}
		}
		return false
	})
	out := filepath.Join(t.TempDir(), "clip.mp4")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"export", "--from-s3", "--config", cfgPath, "--camera", "door",
		"--from", efrom.Format(time.RFC3339Nano), "--to", eto.Format(time.RFC3339Nano), "-o", out},
		&stdout, &stderr, func(string) string { return "" }, time.Now)
	if err != nil {
		t.Fatalf("export --from-s3: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	m := readManifest(t, export.ManifestPath(out))
	if m.Feed != "sub" || m.FeedNote == "" || m.FeedID != "f1-sub" || !strings.Contains(stdout.String(), "note:") {
		t.Errorf("the bucket's export does not say it is the sub copy: feed %q (%s), note %q\n%s", m.Feed, m.FeedID, m.FeedNote, stdout.String())
	}
	if p := testenv.ProbeFile(t, out); p.Width != 320 {
		t.Errorf("the clip: %+v", p)
	}
}

func readManifest(t *testing.T, path string) export.Manifest {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m export.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRetentionMainBeforeSubAndExportSubCopy: nothing goes up (a schedule
// pauses the uploads all day) and the disk limit is small, so retention
// must delete footage S3 lacks: a camera's main footage goes first, and
// its sub feed reaches further back, as the camera's status says. An
// export of a range whose main copy is gone hands over the sub copy and
// says so; a range of both feeds comes as parts, each its own MP4.
func TestRetentionMainBeforeSubAndExportSubCopy(t *testing.T) {
	s := newFeedSetup(t)
	s.s3 = `, "uploadSchedule": [{"from": "00:00", "to": "24:00", "mbps": 0}]`
	s.limitGB = 0.0012 // 1.2 MB: a few main segments (about 300 kB each)
	d := startDaemon(t, "run", "--config", s.writeConfig(t))
	c := newClient(t, d, "")
	recs := awaitRecordings(t, d, c, 3*time.Minute, "retention deletes four main segments", func(rs []feedRec) bool {
		return count(rs, func(r feedRec) bool { return !r.Sub && strings.HasPrefix(r.DeleteCause, "retention") }) >= 4
	})
	var firstSub, firstMain time.Time
	for _, r := range recs {
		if r.Sub && r.Local != "present" {
			t.Errorf("retention deleted sub segment %s (%s) while main footage was there", r.Name, r.DeleteCause)
		}
		if r.Local == "present" && r.Sub && firstSub.IsZero() {
			firstSub = r.Start
		}
		if r.Local == "present" && !r.Sub && firstMain.IsZero() {
			firstMain = r.Start
		}
	}
	if !firstSub.Before(firstMain) {
		t.Errorf("the sub feed reaches back to %v, the main to %v", firstSub, firstMain)
	}
	var cam struct {
		Feeds []struct {
			Feed  string
			Local time.Time
		} `json:"feeds"`
	}
	c.json("GET", "/api/v1/cameras/door", 200, &cam)
	if len(cam.Feeds) != 2 || !cam.Feeds[1].Local.Before(cam.Feeds[0].Local) {
		t.Errorf("the status does not say the sub feed reaches further back: %+v", cam.Feeds)
	}

	// A deleted main segment's range: the sub copy, said.
	var gone feedRec
	for _, r := range recs {
		if !r.Sub && r.Local != "present" && r.Start.After(firstSub.Add(time.Second)) {
			gone = r
			break
		}
	}
	if gone.ID == 0 {
		t.Fatalf("no deleted main segment after the sub feed's first: %+v", recs)
	}
	rq := func(from, to time.Time) string {
		return "from=" + url.QueryEscape(from.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339Nano))
	}
	var m export.Manifest
	c.json("GET", "/api/v1/cameras/door/export/manifest?"+rq(gone.Start.Add(200*time.Millisecond), gone.End.Add(-200*time.Millisecond)), 200, &m)
	if m.Feed != "sub" || m.FeedNote != export.NoteSubOnly || m.FeedID != "f1-sub" || len(m.Sources) == 0 {
		t.Errorf("the export of a range whose main copy is gone: feed %q (%s), note %q, %d sources", m.Feed, m.FeedID, m.FeedNote, len(m.Sources))
	}
	status, body, h := c.do("GET", "/api/v1/cameras/door/export?"+rq(gone.Start.Add(200*time.Millisecond), gone.End.Add(-200*time.Millisecond)), nil)
	if status != 200 || h.Get("Content-Type") != "video/mp4" {
		t.Fatalf("export: %d %s", status, h.Get("Content-Type"))
	}
	clip := filepath.Join(t.TempDir(), "sub.mp4")
	os.WriteFile(clip, body, 0o644)
	if p := testenv.ProbeFile(t, clip); p.Width != 320 || p.Height != 180 {
		t.Errorf("the sub clip: %+v", p)
	}

	// From the deleted main into the main still there: two parts, never
	// one MP4 of both feeds.
	var kept feedRec
	for _, r := range feedRecordings(c) {
		if !r.Sub && r.Local == "present" {
			kept = r
			break
		}
	}
	var mixed struct {
		Error string `json:"error"`
		Parts []struct {
			Feed, Export, Manifest string
		} `json:"parts"`
	}
	status, body, _ = c.do("GET", "/api/v1/cameras/door/export?"+rq(gone.Start.Add(200*time.Millisecond), kept.End.Add(-200*time.Millisecond)), nil)
	if status != 300 || json.Unmarshal(body, &mixed) != nil || len(mixed.Parts) < 2 || mixed.Parts[0].Feed != "sub" || mixed.Parts[len(mixed.Parts)-1].Feed != "main" {
		t.Fatalf("a range of both feeds: %d %s", status, body)
	}
	for _, p := range mixed.Parts {
		var pm export.Manifest
		c.json("GET", p.Manifest, 200, &pm)
		if pm.Feed != p.Feed {
			t.Errorf("part of the %s feed: its manifest says %q", p.Feed, pm.Feed)
		}
	}
}

func maxT(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minT(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
