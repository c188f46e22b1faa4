//go:build integration

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/alerts"
	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/uploader"
)

// activityGOP is the scene camera's keyframe interval: the accuracy the
// copy-mode index promises (the keyframes are what it analyses).
const activityGOP = time.Second

// transcodeTolerance: transcoding, two frames a second are analysed (a
// quarter of a second at most from the midpoint rule), plus the transcode
// pipeline's own latency in the wall-clock mapping (which names the
// segments too; about 0.35 s more than copying, measured): well within
// the transcoded stream's GOP (4 s, one keyframe per segment).
const transcodeTolerance = 1500 * time.Millisecond

var activityTolerance = map[string]time.Duration{"door": activityGOP, "yard": transcodeTolerance}

// activitySetup is a scene camera (its motion and lights scripted) and
// MinIO, for two cameras on it: "door" copied (keyframes analysed) and
// "yard" transcoded (two frames a second analysed), and a webhook that
// takes the activity alerts (alerts.activity, each its own event).
func activitySetup(t *testing.T) (*setup, string, *receiver) {
	t.Helper()
	testenv.RequireTools(t)
	s := &setup{duration: 4, savePath: t.TempDir()}
	s.cam = testenv.StartCamera(t, testenv.CameraOptions{Mounts: map[string]string{"/cam1": "640x360@10"},
		User: "admin", Password: e2ePassword, Auth: "digest", Scene: true, GOPSeconds: activityGOP.Seconds()})
	s.minio = testenv.StartMinIO(t)
	s.minio.CreateBucket("test-bucket")
	hook := newReceiver(t)
	cfg := fmt.Sprintf(`{
  "cameras": [
    {"cameraName": "door", "ipAddress": "127.0.0.1", "userName": "admin", "password": %[1]q, "frameRate": 10, "resolution": "640x360",
     "videoDuration": 4, "videoFeedId": "f1", "rtspPort": %[2]d, "rtspPath": "/cam1", "mode": "copy"},
    {"cameraName": "yard", "ipAddress": "127.0.0.1", "userName": "admin", "password": %[1]q, "frameRate": 5, "resolution": "640x360",
     "videoDuration": 4, "videoFeedId": "f1", "rtspPort": %[2]d, "rtspPath": "/cam1", "mode": "transcode"}],
  "s3Config": {"s3Bucket": "test-bucket", "s3Path": "rec/2025", "endpoint": %[3]q},
  "awsCredentials": {"accessKeyId": %[4]q, "secretAccessKey": %[5]q},
  "storageConfig": {"savePath": %[6]q, "clearAfterUpload": true, "clearWhenFilePathReachGB": 1},
  "api": {"listen": "127.0.0.1:0"},
  "alerts": {"activity": true, "cooldown": "0s", "webhooks": [{"url": %[7]q, "events": ["activity"], "secret": %[8]q}]},
  "log": {"format": "json", "level": "info"}
}`, e2ePassword, s.cam.Port, s.minio.Endpoint, s.minio.AccessKey, s.minio.SecretKey, s.savePath, hook.url(), hookSecret)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, path, hook
}

// apiInterval is an activity interval as the API answers it.
type apiInterval struct {
	Camera string    `json:"camera"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Peak   time.Time `json:"peak"`
	Level  float64   `json:"level"`
}

func activityOf(c *client, camera string, from, to time.Time) []apiInterval {
	var a struct {
		Intervals []apiInterval `json:"intervals"`
	}
	c.json("GET", "/api/v1/cameras/"+camera+"/activity?from="+from.UTC().Format(time.RFC3339Nano)+"&to="+to.UTC().Format(time.RFC3339Nano), 200, &a)
	return a.Intervals
}

// checkActivity: the camera's intervals are the scripted ones, each edge
// within a GOP of the command that made it (a still scene with the lights
// switched between them is no interval).
func checkActivity(t *testing.T, what string, tol time.Duration, got []apiInterval, truth [][2]time.Time) {
	t.Helper()
	if len(got) != len(truth) {
		t.Errorf("%s: %d intervals, want %d (the scripted motion; the lights are no motion): %+v", what, len(got), len(truth), got)
		return
	}
	for i, iv := range got {
		ds, de := iv.Start.Sub(truth[i][0]), iv.End.Sub(truth[i][1])
		t.Logf("%s interval %d: start %+.2fs, end %+.2fs from the script; peak level %.3f", what, i, ds.Seconds(), de.Seconds(), iv.Level)
		if ds.Abs() > tol || de.Abs() > tol {
			t.Errorf("%s interval %d: %v to %v, scripted %v to %v: off by %v and %v, more than %v",
				what, i, iv.Start, iv.End, truth[i][0], truth[i][1], ds, de, tol)
		}
		if iv.Peak.Before(iv.Start) || iv.Peak.After(iv.End) || iv.Level <= 0 {
			t.Errorf("%s interval %d: peak %v (level %v) outside it", what, i, iv.Peak, iv.Level)
		}
	}
}

// TestActivityIndex: the test camera's scripted motion is found, by both
// modes, within a GOP of its edges; the lights switched on a still scene
// are no activity; each uploaded object carries its segment's activity;
// the activity survives a restart and a catalog rebuilt from S3.
func TestActivityIndex(t *testing.T) {
	s, cfg, hook := activitySetup(t)
	d := startDaemon(t, "run", "--config", cfg)
	c := newClient(t, d, "")
	for _, cam := range []string{"door", "yard"} {
		d.await(0, 60*time.Second, func(m map[string]any) bool { return m["message"] == "recording" && m["camera"] == cam })
	}
	// The scene is paced by the door's segments (4 s each), so a loaded
	// machine stretches it instead of cutting it short.
	at := d.mark()
	segments := func(n int) {
		t.Helper()
		for range n {
			_, i := d.await(at, 90*time.Second, func(m map[string]any) bool { return m["message"] == "segment closed" && m["camera"] == "door" })
			at = i + 1
		}
	}
	script := func(cmd string) time.Time {
		s.cam.Script(cmd)
		return time.Now()
	}
	segments(2) // the background learnt
	begin := time.Now()
	on1 := script("motion on")
	segments(2)
	off1 := script("motion off")
	segments(2)
	script("lights 0.35") // lights on, on a still scene
	segments(2)
	script("lights 0")
	segments(1)
	on2 := script("motion on")
	segments(1)
	off2 := script("motion off")
	segments(3) // past the end of the last interval, closed and recorded
	end := time.Now()
	truth := [][2]time.Time{{on1, off1}, {on2, off2}}

	byCamera := map[string][]apiInterval{}
	for _, cam := range []string{"door", "yard"} {
		byCamera[cam] = activityOf(c, cam, begin.Add(-time.Minute), end)
		checkActivity(t, cam, activityTolerance[cam], byCamera[cam], truth)
	}
	// Each interval's beginning was an activity alert, at its start.
	for _, cam := range []string{"door", "yard"} {
		for i, on := range []time.Time{on1, on2} {
			ev := hook.await(fmt.Sprintf("%s's activity alert %d", cam, i), 30*time.Second, func(e alerts.Event) bool {
				return e.Type == alerts.Activity && e.Camera == cam && e.Details != nil && e.Details.From != nil &&
					e.Details.From.Sub(on).Abs() <= activityTolerance[cam]
			})
			if ev.State != alerts.Once || !strings.Contains(ev.Message, "of the picture changed") {
				t.Errorf("%s's activity alert: %+v", cam, ev)
			}
		}
	}
	n := 0
	for _, hr := range hook.taken() {
		if !hr.signed || hr.ev.Type != alerts.Activity {
			t.Errorf("the webhook took %s (signed %v)", hr.ev.Type, hr.signed)
		}
		n++
	}
	if n != 4 {
		t.Errorf("%d activity alerts, want one per interval and camera (4): %v", n, hook.types())
	}
	var all struct {
		Intervals []apiInterval `json:"intervals"`
	}
	c.json("GET", "/api/v1/activity?from="+begin.Add(-time.Minute).UTC().Format(time.RFC3339), 200, &all)
	if len(all.Intervals) != 4 || all.Intervals[0].Start.After(all.Intervals[1].Start) {
		t.Errorf("every camera's activity: %+v", all.Intervals)
	}

	// The bucket knows: the objects of the segments with motion carry it.
	uploads := awaitUploads(d, 0, 10, 60*time.Second)
	active := 0
	for _, o := range s.minio.List("test-bucket", "rec/2025/door/") {
		h, err := s.minio.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("test-bucket"), Key: aws.String(o.Key)})
		if err != nil {
			t.Fatal(err)
		}
		if v := h.Metadata[uploader.MetaActivity]; v != "" {
			sum, err := activity.ParseMeta(v, h.Metadata[uploader.MetaActivityHeatmap])
			if err != nil {
				t.Errorf("%s: activity metadata %q: %v", o.Key, v, err)
			}
			if sum.Active() {
				active++
			}
		}
	}
	if active < 3 {
		t.Errorf("only %d of the door's objects carry activity (%d uploads seen)", active, len(uploads))
	}

	// An export cut to the activity, 2 s of footage on each side (from
	// the bucket: clearAfterUpload left no file on the box).
	q := "from=" + begin.Add(-time.Minute).UTC().Format(time.RFC3339) + "&to=" + end.UTC().Format(time.RFC3339Nano) + "&activity=1&pad=2s"
	var m struct {
		DurationSeconds float64 `json:"durationSeconds"`
		Cut             struct {
			By         string  `json:"by"`
			PadSeconds float64 `json:"padSeconds"`
			Windows    []struct {
				From time.Time `json:"from"`
				To   time.Time `json:"to"`
			} `json:"windows"`
		} `json:"cut"`
		Gaps []any `json:"gaps"`
	}
	c.json("GET", "/api/v1/cameras/door/export/manifest?"+q, 200, &m)
	door := byCamera["door"]
	if len(m.Cut.Windows) != len(door) || m.Cut.By != "activity" || m.Cut.PadSeconds != 2 || len(m.Gaps) != 0 {
		t.Fatalf("the activity export's manifest: %+v, want a window for each of %d intervals", m, len(door))
	}
	var played float64
	for i, w := range m.Cut.Windows {
		if w.From.Sub(door[i].Start.Add(-2*time.Second)).Abs() > time.Millisecond || w.To.Sub(door[i].End.Add(2*time.Second)).Abs() > time.Millisecond {
			t.Errorf("window %d: %v to %v, want interval %v to %v with 2 s each side", i, w.From, w.To, door[i].Start, door[i].End)
		}
		played += w.To.Sub(w.From).Seconds()
	}
	// Each window after the first starts at its keyframe (at most a GOP
	// before it): the clip plays the windows and no more.
	if m.DurationSeconds < played-0.3 || m.DurationSeconds > played+float64(len(m.Cut.Windows)-1)*activityGOP.Seconds()+0.3 {
		t.Errorf("the activity export plays %.2f s, the windows hold %.2f s", m.DurationSeconds, played)
	}
	status, clip, h := c.do("GET", "/api/v1/cameras/door/export?"+q, nil)
	if status != 200 || h.Get("Content-Type") != "video/mp4" || !strings.Contains(h.Get("Link"), "activity=1") {
		t.Fatalf("the activity export: %d %s, Link %q", status, h.Get("Content-Type"), h.Get("Link"))
	}
	clipPath := filepath.Join(t.TempDir(), "activity.mp4")
	if err := os.WriteFile(clipPath, clip, 0o644); err != nil {
		t.Fatal(err)
	}
	if p := testenv.ProbeClip(t, clipPath); (p.Duration.Seconds()-m.DurationSeconds) > 0.2 || (m.DurationSeconds-p.Duration.Seconds()) > 0.2 {
		t.Errorf("the clip plays %v (ffprobe), its manifest says %.2f s", p.Duration, m.DurationSeconds)
	}
	var st struct {
		Activity map[string]any `json:"activity"`
	}
	c.json("GET", "/api/v1/status", 200, &st)
	stop(t, d)
	if t.Failed() {
		t.Logf("the analysis: %v", st.Activity)
		dumpActivity(t, s.savePath, begin.Add(-time.Minute), end)
	}

	// A restart: the catalog kept it.
	d2 := startDaemon(t, "run", "--config", cfg)
	c2 := newClient(t, d2, "")
	awaitUploads(d2, 0, 1, 60*time.Second) // the uploader runs: the catalog is open
	for _, cam := range []string{"door", "yard"} {
		checkActivity(t, cam+" after a restart", activityTolerance[cam], activityOf(c2, cam, begin.Add(-time.Minute), end), truth)
	}
	stop(t, d2)

	// The catalog lost: rebuilt from S3 (clearAfterUpload left nothing on
	// the disk), the activity comes back from the objects' metadata.
	dbPath := filepath.Join(s.savePath, ".cctvd", layout.CatalogName)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(dbPath + suffix)
	}
	d3 := startDaemon(t, "run", "--config", cfg)
	d3.await(0, 90*time.Second, msgIs("catalog rebuilt from S3"))
	c3 := newClient(t, d3, "")
	for _, cam := range []string{"door", "yard"} {
		got := activityOf(c3, cam, begin.Add(-time.Minute), end)
		checkActivity(t, cam+" after a rebuild from S3", activityTolerance[cam], got, truth)
		for i := range min(len(got), len(byCamera[cam])) {
			if d := got[i].Start.Sub(byCamera[cam][i].Start).Abs() + got[i].End.Sub(byCamera[cam][i].End).Abs(); d > 50*time.Millisecond {
				t.Logf("%s interval %d moved by %v in the rebuild (metadata is to 10 ms; a segment finished late keeps its first summary in S3)", cam, i, d)
			}
		}
	}
	stop(t, d3)
	if out := d.output() + d2.output() + d3.output(); strings.Contains(out, "activity analysis is behind") {
		t.Logf("the analysis dropped frames on this machine")
	}
	assertNoSecret(t, d.output()+d2.output()+d3.output(), s.minio.SecretKey)
}

// dumpActivity logs each segment's activity as the catalog holds it (the
// daemon stopped), to tell a failure's cause.
func dumpActivity(t *testing.T, savePath string, from, to time.Time) {
	t.Helper()
	ctx := context.Background()
	cat, err := catalog.OpenReadOnly(ctx, filepath.Join(savePath, ".cctvd", layout.CatalogName), savePath)
	if err != nil {
		t.Logf("no catalog to dump: %v", err)
		return
	}
	defer cat.Close()
	for _, cam := range []string{"door", "yard"} {
		recs, _ := cat.InRange(ctx, cam, from, to)
		for _, r := range recs {
			sum, ok, err := cat.SegmentActivity(ctx, r.ID)
			t.Logf("%s %s..%s analysed %v (%v): score %.2f, %d frames, intervals %v", cam, r.Start.Format("15:04:05.000"), r.End.Format("15:04:05.000"), ok, err, sum.Score, sum.Frames, sum.Intervals)
		}
	}
}
