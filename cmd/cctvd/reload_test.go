//go:build integration

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// cameraJSON is one camera of the test camera's mount, with extra members.
func cameraJSON(s *setup, name, mount string, fps float64, extra string) string {
	return fmt.Sprintf(`{"cameraName": %q, "ipAddress": "127.0.0.1", "userName": "admin", "password": %q,
    "frameRate": %v, "resolution": "640x360", "videoDuration": 2, "videoFeedId": "f1",
    "rtspPort": %d, "rtspPath": %q %s}`, name, e2ePassword, fps, s.cam.Port, mount, extra)
}

// writeCameras writes a config for these cameras to path.
func writeCameras(t *testing.T, s *setup, path string, cams ...string) {
	t.Helper()
	cfg := fmt.Sprintf(`{
  "cameras": [%s],
  "s3Config": {"s3Bucket": "test-bucket", "s3Path": "rec/2025", "endpoint": %q},
  "awsCredentials": {"accessKeyId": %q, "secretAccessKey": %q},
  "storageConfig": {"savePath": %q, "clearAfterUpload": false, "clearWhenFilePathReachGB": 1},
  "api": {"listen": "127.0.0.1:0"},
  "log": {"format": "json"}
}`, strings.Join(cams, ",\n"), s.minio.Endpoint, s.minio.AccessKey, s.minio.SecretKey, s.savePath)
	// Written whole and renamed, as an editor or config management would.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newMultiSetup(t *testing.T, mounts ...string) *setup {
	t.Helper()
	testenv.RequireTools(t)
	s := &setup{savePath: t.TempDir()}
	m := map[string]string{}
	for _, mount := range mounts {
		m[mount] = "640x360@25"
	}
	s.cam = testenv.StartCamera(t, testenv.CameraOptions{Mounts: m, User: "admin", Password: e2ePassword, Auth: "digest"})
	s.minio = testenv.StartMinIO(t)
	s.minio.CreateBucket("test-bucket")
	return s
}

func cameraPIDs(c *client) map[string]int {
	var list struct {
		Cameras []apiCamera `json:"cameras"`
	}
	c.json("GET", "/api/v1/cameras", 200, &list)
	out := map[string]int{}
	for _, cam := range list.Cameras {
		out[cam.Name] = cam.PID
	}
	return out
}

// TestSIGHUPReload adds, removes, changes and keeps one camera each: the
// kept camera's ffmpeg is not touched; an invalid config changes nothing.
func TestSIGHUPReload(t *testing.T) {
	s := newMultiSetup(t, "/a", "/b", "/c", "/d")
	cfg := filepath.Join(t.TempDir(), "config.json")
	writeCameras(t, s, cfg,
		cameraJSON(s, "keep", "/a", 5, ""),
		cameraJSON(s, "remove", "/b", 5, ""),
		cameraJSON(s, "change", "/c", 5, ""))
	d := startDaemon(t, "run", "--config", cfg)
	c := newClient(t, d, "")
	recording := func(cam string) func(map[string]any) bool {
		return func(m map[string]any) bool { return m["message"] == "recording" && m["camera"] == cam }
	}
	for _, cam := range []string{"keep", "remove", "change"} {
		d.await(0, 30*time.Second, recording(cam))
	}
	before := cameraPIDs(c)

	// 1. An invalid config is rejected whole.
	writeCameras(t, s, cfg, cameraJSON(s, "keep", "/a", 5, ""), cameraJSON(s, "broken", "/d", 5, `, "resolution": "big"`))
	mark := d.mark()
	d.cmd.Process.Signal(syscall.SIGHUP)
	line, _ := d.await(mark, 10*time.Second, func(m map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(m["message"]), "reload: config rejected")
	})
	if !strings.Contains(line["message"].(string), `cameras[1].resolution: "big" is not WIDTHxHEIGHT`) {
		t.Errorf("rejection does not name the field: %v", line["message"])
	}
	if after := cameraPIDs(c); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("an invalid config changed the cameras: %v -> %v", before, after)
	}

	// 2. A valid one: keep as is, remove one, change one, add one.
	writeCameras(t, s, cfg,
		cameraJSON(s, "keep", "/a", 5, ""),
		cameraJSON(s, "change", "/c", 4, ""),
		cameraJSON(s, "added", "/d", 5, ""))
	mark = d.mark()
	d.cmd.Process.Signal(syscall.SIGHUP)
	line, _ = d.await(mark, 30*time.Second, msgIs("config reloaded"))
	if fmt.Sprint(line["added"], line["removed"], line["changed"]) != "[added] [remove] [change]" {
		t.Errorf("reload said added %v removed %v changed %v", line["added"], line["removed"], line["changed"])
	}
	// The removed camera's last segment was finalised and named.
	d.await(mark, 10*time.Second, func(m map[string]any) bool {
		return m["message"] == "segment closed" && m["camera"] == "remove" && m["salvaged"] == false
	})
	d.await(mark, 30*time.Second, recording("added"))
	d.await(mark, 30*time.Second, recording("change"))
	after := cameraPIDs(c)
	if after["keep"] != before["keep"] || after["keep"] == 0 {
		t.Errorf("the unchanged camera's ffmpeg changed: pid %d -> %d", before["keep"], after["keep"])
	}
	if after["change"] == before["change"] || after["change"] == 0 || after["added"] == 0 {
		t.Errorf("pids after reload: %v (before %v)", after, before)
	}
	if _, ok := after["remove"]; ok {
		t.Errorf("the removed camera is still listed: %v", after)
	}
	if err := syscall.Kill(before["remove"], 0); err == nil {
		t.Errorf("the removed camera's ffmpeg %d still runs", before["remove"])
	}
	var changed apiCamera
	c.json("GET", "/api/v1/cameras/change", 200, &changed)
	if changed.Config.FrameRate != 4 {
		t.Errorf("changed camera: %+v", changed.Config)
	}
	assertHandedOver(t, d, c, mark, "change")

	// 3. The API reloads too; nothing changed, nothing touched.
	var res struct {
		Status  string   `json:"status"`
		Changed []string `json:"changed"`
	}
	c.json("POST", "/api/v1/reload", 200, &res)
	if res.Status != "reloaded" || len(res.Changed) != 0 || cameraPIDs(c)["keep"] != before["keep"] {
		t.Errorf("API reload: %+v", res)
	}
	writeCameras(t, s, cfg, cameraJSON(s, "keep", "/a", 5, `, "unknownKey": 1`))
	if msg := c.jsonError("POST", "/api/v1/reload", 422); !strings.Contains(msg, "cameras[0].unknownKey: unknown field") {
		t.Errorf("API reload of a bad config: %q", msg)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, d.output()+c.bodies.String(), s.minio.SecretKey)
}

// assertHandedOver checks a reload that changed a recording camera
// (after mark): the new run recorded before the old one stopped, so the
// camera's footage in the catalog goes on across the reload (segments
// overlap, none is more than the gap log's tolerance after the footage
// before it) and no gap is logged. Issue 27: the restart left a hole of
// the stop plus ffmpeg's start, and a reconfigured gap.
func assertHandedOver(t *testing.T, d *proc, c *client, mark int, camera string) {
	t.Helper()
	is := func(msg string) func(map[string]any) bool {
		return func(m map[string]any) bool { return m["message"] == msg && m["camera"] == camera }
	}
	exited, atExit := d.await(mark, 30*time.Second, is("ffmpeg exited"))
	recording, _ := d.await(mark, 30*time.Second, is("recording"))
	if exited["reason"] != "reconfigured" {
		t.Errorf("the old run's exit: %v", exited)
	}
	oldRun, newRun := exited["run"], recording["run"]
	// Two of the new run's segments closed after the old run's exit: the
	// old run's last one (finalised at its stop, moved within the
	// segmenter's debounce) is in the catalog by then, and so would be a
	// gap the first of them closed.
	_, i := d.await(atExit, 30*time.Second, func(m map[string]any) bool { return is("segment closed")(m) && m["run"] == newRun })
	d.await(i+1, 30*time.Second, func(m map[string]any) bool { return is("segment closed")(m) && m["run"] == newRun })
	var list struct {
		Recordings []apiRecording `json:"recordings"`
	}
	c.json("GET", "/api/v1/recordings?camera="+camera+"&limit=1000", 200, &list)
	recs := list.Recordings
	sort.Slice(recs, func(i, j int) bool { return recs[i].Start.Before(recs[j].Start) })
	for i := 1; i < len(recs); i++ {
		reach := recs[0].End
		for _, r := range recs[:i] {
			if r.End.After(reach) {
				reach = r.End
			}
		}
		if hole := recs[i].Start.Sub(reach); hole >= time.Second {
			t.Errorf("a hole of %v in %s's footage before %s (runs %v -> %v)", hole, camera, recs[i].Name, oldRun, newRun)
		}
	}
	var gaps struct {
		Gaps []struct {
			Cause string    `json:"cause"`
			Start time.Time `json:"start"`
		} `json:"gaps"`
	}
	c.json("GET", "/api/v1/cameras/"+camera+"/gaps", 200, &gaps)
	if len(gaps.Gaps) != 0 {
		t.Errorf("gaps of %s across the reload: %+v", camera, gaps.Gaps)
	}
}

// TestPassthrough: a camera whose stream already matches its config is
// recorded as is (copy); one that does not is transcoded. The API says
// which, and the files show it.
func TestPassthrough(t *testing.T) {
	s := newMultiSetup(t, "/a", "/b")
	cfg := filepath.Join(t.TempDir(), "config.json")
	writeCameras(t, s, cfg,
		cameraJSON(s, "matching", "/a", 25, ""), // the camera sends H.264 640x360 at 25 fps
		cameraJSON(s, "slower", "/b", 5, ""))
	d := startDaemon(t, "run", "--config", cfg)
	c := newClient(t, d, "")
	closed := map[string]string{}
	for i := 0; len(closed) < 2; {
		line, j := d.await(i, 60*time.Second, msgIs("segment closed"))
		i = j + 1
		closed[line["camera"].(string)] = line["segment"].(string)
	}
	want := map[string]struct {
		mode string
		fps  float64
	}{"matching": {"copy", 25}, "slower": {"transcode", 5}}
	for name, w := range want {
		var cam apiCamera
		c.json("GET", "/api/v1/cameras/"+name, 200, &cam)
		if cam.Mode != w.mode {
			t.Errorf("%s: mode %q, want %q", name, cam.Mode, w.mode)
		}
		info, _ := segment.Parse(closed[name])
		p := testenv.ProbeFile(t, filepath.Join(s.savePath, layout.DayRel(name, info.Start), closed[name]))
		if p.FPS < w.fps*0.9 || p.FPS > w.fps*1.1 || p.Width != 640 || p.Height != 360 {
			t.Errorf("%s: %+v, want %v fps 640x360", name, p, w.fps)
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.wait(30 * time.Second)
}
