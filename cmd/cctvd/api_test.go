//go:build integration

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type apiCamera struct {
	Name          string  `json:"name"`
	State         string  `json:"state"`
	Desired       string  `json:"desired"`
	PID           int     `json:"pid"`
	UptimeSeconds float64 `json:"uptimeSeconds"`
	Mode          string  `json:"mode"`
	Live          *struct {
		FPS float64 `json:"fps"`
	} `json:"live"`
	LastSegment *struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"lastSegment"`
	Config struct {
		FrameRate     float64 `json:"frameRate"`
		Resolution    string  `json:"resolution"`
		VideoDuration float64 `json:"videoDuration"`
		Source        string  `json:"source"`
	} `json:"config"`
}

func scrape(t *testing.T, c *client) map[string]*dto.MetricFamily { // /metrics is open: no token
	t.Helper()
	resp, err := http.Get(c.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	c.mu.Lock()
	c.bodies.Write(body)
	c.mu.Unlock()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return fams
}

func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	return -1
}

// TestAPIOnTheRunningDaemon drives the API of a daemon that records a real
// camera and uploads to a real MinIO.
func TestAPIOnTheRunningDaemon(t *testing.T) {
	s := newSetup(t, 2)
	s.extra = fmt.Sprintf(`"api": {"listen": "127.0.0.1:0", "token": %q},`, apiToken)
	cfgText := strings.Replace(readFile(t, s.writeConfig(t)), `"api": {"listen": "127.0.0.1:0"},`, "", 1)
	cfg := filepath.Join(t.TempDir(), "api.json")
	os.WriteFile(cfg, []byte(cfgText), 0o600)

	d := startDaemon(t, "run", "--config", cfg)
	c := newClient(t, d, apiToken)
	_, i := d.await(0, 30*time.Second, msgIs("segment closed"))

	t.Run("auth", func(t *testing.T) {
		anon := &client{t: t, base: c.base}
		if msg := anon.jsonError("GET", "/api/v1/cameras", 401); msg != "missing or wrong bearer token" {
			t.Errorf("401 message %q", msg)
		}
		wrong := &client{t: t, base: c.base, token: "nope"}
		wrong.jsonError("GET", "/api/v1/status", 401)
		for _, open := range []string{"/healthz", "/readyz"} {
			anon.json("GET", open, 200, nil)
		}
		if status, _, _ := anon.do("GET", "/metrics", nil); status != 200 {
			t.Errorf("/metrics: %d", status)
		}
		c.bodies.Write(anon.bodies.Bytes())
		c.bodies.Write(wrong.bodies.Bytes())
	})

	t.Run("cameras", func(t *testing.T) {
		var list struct {
			Cameras []apiCamera `json:"cameras"`
		}
		c.json("GET", "/api/v1/cameras", 200, &list)
		if len(list.Cameras) != 1 {
			t.Fatalf("cameras: %+v", list)
		}
		cam := list.Cameras[0]
		if cam.Name != "door" || cam.State != "recording" || cam.Desired != "running" || cam.PID == 0 || cam.UptimeSeconds <= 0 ||
			cam.Live == nil || cam.LastSegment == nil || cam.Config.FrameRate != 5 || cam.Config.Resolution != "640x360" ||
			cam.Config.VideoDuration != 2 || !strings.Contains(cam.Config.Source, ":***@127.0.0.1:") {
			t.Errorf("camera: %+v", cam)
		}
		var one apiCamera
		c.json("GET", "/api/v1/cameras/door", 200, &one)
		if one.Name != "door" {
			t.Errorf("one camera: %+v", one)
		}
		c.jsonError("GET", "/api/v1/cameras/nope", 404)
		c.jsonError("POST", "/api/v1/cameras/nope/stop", 404)
		c.jsonError("GET", "/api/v1/nothing-here", 404)
	})

	t.Run("logs", func(t *testing.T) {
		var logs struct {
			Lines []struct {
				Seq   uint64         `json:"seq"`
				Entry map[string]any `json:"entry"`
			} `json:"lines"`
		}
		c.json("GET", "/api/v1/cameras/door/logs?tail=5", 200, &logs)
		if len(logs.Lines) != 5 {
			t.Fatalf("tail=5 gave %d lines", len(logs.Lines))
		}
		for _, l := range logs.Lines {
			if l.Entry["camera"] != "door" {
				t.Errorf("line %d is not the camera's: %v", l.Seq, l.Entry)
			}
		}
		c.json("GET", "/api/v1/logs?tail=3", 200, &logs)
		if len(logs.Lines) != 3 {
			t.Errorf("daemon tail=3 gave %d lines", len(logs.Lines))
		}
		for _, bad := range []string{"abc", "-1", "5000", "1.5"} {
			c.jsonError("GET", "/api/v1/cameras/door/logs?tail="+bad, 400)
		}
		c.jsonError("GET", "/api/v1/cameras/door/logs?follow=maybe", 400)
		c.jsonError("GET", "/api/v1/cameras/nope/logs", 404)
	})

	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/api/v1/cameras/door/logs?tail=0&follow=true", nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
		}
		connected := time.Now()
		// A segment closes every 2 s, and its line arrives as an event.
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			c.bodies.WriteString(line + "\n")
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			var entry map[string]any
			if err := json.Unmarshal([]byte(data), &entry); err != nil {
				t.Fatalf("event data is not a JSON log line: %s", data)
			}
			at, _ := time.Parse(time.RFC3339Nano, entry["time"].(string))
			if at.Before(connected.Add(-time.Second)) {
				t.Errorf("tail=0 sent an old line from %v", at)
			}
			if entry["message"] == "segment closed" {
				return
			}
		}
		t.Fatalf("stream ended without a new line: %v", sc.Err())
	})

	t.Run("recordings", func(t *testing.T) {
		d.await(i, 30*time.Second, msgIs("uploaded and verified"))
		var list struct {
			Recordings []struct {
				ID     int64  `json:"id"`
				Name   string `json:"name"`
				S3Key  string `json:"s3Key"`
				Upload string `json:"upload"`
				Bytes  int64  `json:"bytes"`
				File   string `json:"file"`
			} `json:"recordings"`
			Next string `json:"next"`
		}
		// A segment is in the catalog before its "segment closed" line:
		// after two, a first page of one has a next.
		_, j := d.await(0, 30*time.Second, msgIs("segment closed"))
		d.await(j+1, 30*time.Second, msgIs("segment closed"))
		c.json("GET", "/api/v1/recordings?camera=door&limit=1", 200, &list)
		if len(list.Recordings) != 1 || list.Next == "" {
			t.Fatalf("first page: %+v", list)
		}
		c.json("GET", "/api/v1/recordings?uploaded=true&limit=1000", 200, &list)
		if len(list.Recordings) == 0 {
			t.Fatal("no uploaded recording listed")
		}
		r := list.Recordings[0]
		if r.Upload != "uploaded" || !strings.HasPrefix(r.S3Key, "rec/2025/door/") || r.File == "" {
			t.Errorf("recording %+v", r)
		}
		var one struct {
			S3Key string `json:"s3Key"`
		}
		c.json("GET", fmt.Sprintf("/api/v1/recordings/%d", r.ID), 200, &one)
		if one.S3Key != r.S3Key {
			t.Errorf("by id: %+v", one)
		}
		// Range request: 206 and exactly those bytes of the file.
		status, body, h := c.do("GET", r.File, map[string]string{"Range": "bytes=100-199"})
		local, _ := os.ReadFile(filepath.Join(s.savePath, strings.TrimPrefix(r.S3Key, "rec/2025/")))
		if status != 206 || !bytes.Equal(body, local[100:200]) || h.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(local)) {
			t.Errorf("range: %d, %d bytes, %q", status, len(body), h.Get("Content-Range"))
		}
		c.jsonError("GET", "/api/v1/recordings/abc", 400)
		c.jsonError("GET", "/api/v1/recordings/999999", 404)
		c.jsonError("GET", "/api/v1/recordings/999999/file", 404)
		c.jsonError("GET", "/api/v1/recordings?from=yesterday", 400)
		c.jsonError("GET", "/api/v1/recordings?limit=0", 400)
		c.jsonError("GET", "/api/v1/recordings?uploaded=perhaps", 400)
		c.jsonError("GET", "/api/v1/recordings?cursor=%21%21", 400)
		c.jsonError("GET", "/api/v1/recordings?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", 400)
	})

	t.Run("status and metrics", func(t *testing.T) {
		var st struct {
			Uploader struct {
				State    string `json:"state"`
				Uploaded int    `json:"uploaded"`
			} `json:"uploader"`
			Backlog struct {
				Segments int64 `json:"segments"`
			} `json:"backlog"`
			Storage struct {
				UsedBytes  int64 `json:"usedBytes"`
				LimitBytes int64 `json:"limitBytes"`
				FreeBytes  int64 `json:"freeBytes"`
			} `json:"storage"`
			Cameras map[string]int `json:"cameras"`
		}
		c.json("GET", "/api/v1/status", 200, &st)
		if st.Uploader.Uploaded == 0 || st.Storage.LimitBytes != 1e9 || st.Storage.FreeBytes <= 0 || st.Storage.UsedBytes <= 0 || st.Cameras["recording"] != 1 {
			t.Errorf("status: %+v", st)
		}
		before := scrape(t, c)
		segs := metricValue(before, "cctvd_segments_total", map[string]string{"camera": "door"})
		if segs < 1 || metricValue(before, "cctvd_camera_up", map[string]string{"camera": "door"}) != 1 ||
			metricValue(before, "cctvd_uploads_total", nil) < 1 || metricValue(before, "cctvd_savepath_free_bytes", nil) <= 0 {
			t.Errorf("metrics: segments %v, up %v, uploads %v", segs, metricValue(before, "cctvd_camera_up", nil), metricValue(before, "cctvd_uploads_total", nil))
		}
		d.await(d.mark(), 30*time.Second, msgIs("segment closed"))
		if after := metricValue(scrape(t, c), "cctvd_segments_total", map[string]string{"camera": "door"}); after <= segs {
			t.Errorf("cctvd_segments_total did not move: %v then %v", segs, after)
		}
	})

	var pid int
	t.Run("stop and start", func(t *testing.T) {
		var cam apiCamera
		c.json("GET", "/api/v1/cameras/door", 200, &cam)
		pid = cam.PID
		j := d.mark()
		stopAt := time.Now()
		cam = apiCamera{}
		c.json("POST", "/api/v1/cameras/door/stop", 200, &cam)
		if took := time.Since(stopAt); took > 5*time.Second {
			t.Errorf("stop took %v", took)
		}
		if cam.State != "stopped" || cam.Desired != "stopped" || cam.PID != 0 {
			t.Errorf("after stop: %+v", cam)
		}
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("ffmpeg %d still runs after stop", pid)
		}
		// The open segment was finalised and named.
		d.await(j, 10*time.Second, func(m map[string]any) bool {
			return m["message"] == "segment closed" && m["salvaged"] == false
		})
		c.json("POST", "/api/v1/cameras/door/stop", 200, &cam) // idempotent
		// The operator leaves the camera stopped for a while: the hole in
		// the footage must be well above the gap log's tolerance.
		time.Sleep(3 * time.Second)
	})

	// A camera stopped by an operator stays stopped across a restart.
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	d2 := startDaemon(t, "run", "--config", cfg)
	c2 := newClient(t, d2, apiToken)
	t.Run("stays stopped", func(t *testing.T) {
		var cam apiCamera
		c2.json("GET", "/api/v1/cameras/door", 200, &cam)
		if cam.State != "stopped" || cam.Desired != "stopped" {
			t.Errorf("after restart: %+v", cam)
		}
		if strings.Contains(d2.output(), "ffmpeg started") {
			t.Error("ffmpeg started for a camera an operator stopped")
		}
		cam = apiCamera{}
		c2.json("POST", "/api/v1/cameras/door/start", 200, &cam)
		if cam.State == "stopped" || cam.Desired != "running" {
			t.Errorf("after start: %+v", cam)
		}
		d2.await(0, 30*time.Second, msgIs("recording"))
		c2.json("POST", "/api/v1/cameras/door/start", 200, &cam) // idempotent
	})
	t.Run("gaps", func(t *testing.T) {
		// The stop left a hole in the footage until the start: an
		// operator-stop gap, closed by the first new segment.
		d2.await(0, 30*time.Second, msgIs("gap in the footage"))
		var gaps struct {
			Gaps []struct {
				Cause   string    `json:"cause"`
				Start   time.Time `json:"start"`
				End     time.Time `json:"end"`
				Seconds float64   `json:"seconds"`
			} `json:"gaps"`
			TotalSeconds float64 `json:"totalSeconds"`
		}
		c2.json("GET", "/api/v1/cameras/door/gaps", 200, &gaps)
		var found bool
		for _, g := range gaps.Gaps {
			if g.Cause == "operator-stop" && !g.End.IsZero() && g.Seconds >= 1 {
				found = true
			}
		}
		if !found || gaps.TotalSeconds <= 0 {
			t.Errorf("gaps %+v", gaps)
		}
		c2.jsonError("GET", "/api/v1/cameras/door/gaps?from=soon", 400)
		c2.jsonError("GET", "/api/v1/cameras/nope/gaps", 404)
		if v := metricValue(scrape(t, c2), "cctvd_gaps_total", map[string]string{"camera": "door", "cause": "operator-stop"}); v != 1 {
			t.Errorf("cctvd_gaps_total{cause=operator-stop} = %v", v)
		}
	})
	d2.cmd.Process.Signal(syscall.SIGTERM)
	d2.wait(30 * time.Second)

	all := c.bodies.String() + c2.bodies.String() + d.output() + d2.output()
	assertNoSecret(t, all, apiToken, s.minio.SecretKey)
}
