//go:build integration

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/testenv"
)

// rawUpgrade sends a WebSocket upgrade request by hand and returns
// everything the server answered until it closed the connection or 5 s
// passed: the status line, headers and body, and any byte after them.
func rawUpgrade(t *testing.T, base, path string, header map[string]string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(base, "http://") +
		"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	for k, v := range header {
		req += k + ": " + v + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: no HTTP answer: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
}

// TestLiveView watches a camera live over the WebSocket as a script does,
// against a real cctvd recording the test camera in 3 s segments: refused
// without the token (401 before any media byte), with a wrong one, a
// forged or reused ticket, from another origin; with the token, the init
// segment, then fragments from a keyframe on one timeline across segment
// boundaries and across ffmpeg killed with SIGKILL; a third viewer beyond
// the per-camera limit of 2 refused with 429; the token in no log line.
func TestLiveView(t *testing.T) {
	s := newSetup(t, 3)
	d := startDaemon(t, "run", "--config", liveTestConfig(t, s, `, "liveMaxViewersPerCamera": 2`))
	c := newClient(t, d, apiToken)
	d.await(0, 60*time.Second, msgIs("ffmpeg started")) // its staging folder exists
	awaitStagingGrowth(t, s.savePath, "door", 20000)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Refused before the upgrade, as JSON, without a media byte.
	for _, tc := range []struct {
		what, path string
		header     map[string]string
		want       string
	}{
		{"no token", "/api/v1/cameras/door/live", nil, "401 application/json"},
		{"a wrong token", "/api/v1/cameras/door/live", map[string]string{"Authorization": "Bearer not-the-t0ken"}, "401 application/json"},
		{"a forged ticket", "/api/v1/cameras/door/live?ticket=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", nil, "401 application/json"},
		{"another origin", "/api/v1/cameras/door/live", map[string]string{"Authorization": "Bearer " + apiToken, "Origin": "http://evil.example"}, "403 application/json"},
		{"an unknown camera", "/api/v1/cameras/gate/live", map[string]string{"Authorization": "Bearer " + apiToken}, "404 application/json"},
	} {
		got := rawUpgrade(t, c.base, tc.path, tc.header)
		if !strings.HasPrefix(got, tc.want+"\n{\"error\":") || strings.Contains(got, "ftyp") || strings.Contains(got, "moof") {
			t.Errorf("%s: answered\n%s\nwant %s and a JSON error, no media", tc.what, got, tc.want)
		}
	}
	if _, resp, err := dialLive(ctx, c.base, "door", "", nil, 0); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("a WebSocket client without the token: %v %+v, want 401", err, resp)
	}

	// A ticket opens one upgrade, once.
	var tk struct {
		Ticket    string    `json:"ticket"`
		ExpiresAt time.Time `json:"expiresAt"`
	}
	c.json("POST", "/api/v1/cameras/door/live/ticket", 200, &tk)
	if len(tk.Ticket) < 32 || time.Until(tk.ExpiresAt) > time.Minute || time.Until(tk.ExpiresAt) <= 0 {
		t.Fatalf("ticket %+v", tk)
	}
	byTicket, _, err := dialLive(ctx, c.base, "door", "?ticket="+tk.Ticket, nil, 0)
	if err != nil {
		t.Fatalf("the ticket's upgrade: %v", err)
	}
	if _, resp, err := dialLive(ctx, c.base, "door", "?ticket="+tk.Ticket, nil, 0); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("the ticket used again: %v, want 401", err)
	}

	// With the token, as a script: init, then fragments.
	conn, _, err := dialLive(ctx, c.base, "door", "", bearer(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	lc := &liveConn{t: t, c: conn}

	// A third viewer: over the limit of 2 for this camera.
	if _, resp, err := dialLive(ctx, c.base, "door", "", bearer(), 0); err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("a third viewer: %v, want 429", err)
	}
	if msg := c.jsonError("POST", "/api/v1/cameras/door/live/ticket", 429); !strings.Contains(msg, "at most 2") {
		t.Errorf("a ticket beyond the limit: %q", msg)
	}
	byTicket.CloseNow()

	m, err := lc.read(ctx)
	if err != nil || m.Type != "init" || !strings.HasPrefix(m.Text["mime"].(string), `video/mp4; codecs="avc1.`) {
		t.Fatalf("the first message: %+v %v, want the init message", m, err)
	}
	if m, err = lc.read(ctx); err != nil || m.Type != "initSegment" || m.Init.Width != 640 || m.Init.Height != 360 {
		t.Fatalf("the second message: %+v %v, want the init segment", m, err)
	}

	var door apiCamera
	c.json("GET", "/api/v1/cameras/door", 200, &door)
	pid := door.PID
	var prevEnd float64
	frags, clocks, killedAt := 0, 0, -1
	keyframeFirst := false
	for restarted := false; !restarted || frags < killedAt+8; {
		m, err := lc.read(ctx)
		if err != nil {
			t.Fatalf("after %d fragments: %v", frags, err)
		}
		switch m.Type {
		case "clock":
			clocks++
		case "init", "initSegment":
			t.Fatalf("a new init segment for the same stream (fragment %d)", frags)
		case "fragment":
			f := m.Frag
			if frags == 0 {
				keyframeFirst = f.Keyframe
			} else if got := lc.seconds(f.DecodeTime); got != prevEnd {
				t.Fatalf("fragment %d starts at %.3f s, the one before ended at %.3f s: not one timeline", frags, got, prevEnd)
			}
			prevEnd = lc.seconds(f.DecodeTime + f.Duration)
			frags++
			// After two segment boundaries, ffmpeg is killed.
			if clocks >= 3 && killedAt < 0 {
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatalf("kill ffmpeg: %v", err)
				}
				killedAt = frags
			}
			if killedAt >= 0 && !restarted {
				c.json("GET", "/api/v1/cameras/door", 200, &door)
				restarted = door.PID != 0 && door.PID != pid && door.State == "recording"
			}
		}
	}
	if !keyframeFirst {
		t.Error("the first fragment is not a keyframe")
	}
	t.Logf("%d fragments, %d clock messages, %.1f s of video on one timeline; ffmpeg %d killed, then %d", frags, clocks, prevEnd, pid, door.PID)
	assertNoSecret(t, d.output(), apiToken)
	// The ticket is not logged either: the access log names the route.
	if strings.Contains(d.output(), tk.Ticket) {
		t.Error("a live ticket is in the log")
	}
}

// dirBytes is the size of every file under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestLiveSlowViewer: a viewer that reads nothing for 20 s (a small
// receive window, so the kernel's buffers hold little) is dropped to the
// keyframe or disconnected, and cctvd's resident memory does not grow
// with what the camera sent meanwhile (8 Mbit/s of noise).
func TestLiveSlowViewer(t *testing.T) {
	testenv.RequireTools(t)
	s := &setup{duration: 10, savePath: t.TempDir()}
	s.cam = testenv.StartCamera(t, testenv.CameraOptions{Mounts: map[string]string{"/cam1": "640x360@25"},
		User: "admin", Password: e2ePassword, Auth: "digest", Pattern: "snow", BitrateKbps: 8000})
	s.minio = testenv.StartMinIO(t)
	s.minio.CreateBucket("test-bucket")
	// cctvd as shipped: a binary built without the race detector, whose
	// shadow memory would make the resident set say nothing of cctvd's.
	bin := filepath.Join(t.TempDir(), "cctvd")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cctvd: %v %s", err, out)
	}
	d := startBinary(t, exec.Command(bin, "run", "--config", liveTestConfig(t, s, "")), os.Environ())
	c := newClient(t, d, apiToken)
	d.await(0, 60*time.Second, msgIs("ffmpeg started")) // its staging folder exists
	awaitStagingGrowth(t, s.savePath, "door", 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	conn, _, err := dialLive(ctx, c.base, "door", "", bearer(), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	lc := &liveConn{t: t, c: conn}
	for got := 0; got < 3; { // init, init segment, a fragment: the stream flows
		m, err := lc.read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == "init" || m.Type == "initSegment" || m.Type == "fragment" {
			got++
		}
	}
	pid := d.cmd.Process.Pid
	rssBefore, bytesBefore := rss(t, pid), dirBytes(s.savePath)
	time.Sleep(20 * time.Second) // the viewer reads nothing: the time is what the test is about
	rssAfter, produced := rss(t, pid), dirBytes(s.savePath)-bytesBefore
	if produced < 8<<20 {
		t.Fatalf("the camera sent only %d bytes in 20 s: this test needs its 8 Mbit/s", produced)
	}
	if grew := rssAfter - rssBefore; grew > produced/4 {
		t.Errorf("cctvd's RSS grew by %d bytes (from %d) while the viewer read nothing and the camera sent %d", grew, rssBefore, produced)
	}

	// Now it reads: what is left is a little (the sockets' buffers), then
	// either the end of the connection or a drop and a keyframe.
	var after int64
	outcome := ""
	for outcome == "" {
		rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
		m, err := lc.read(rctx)
		rcancel()
		switch {
		case err != nil && ctx.Err() == nil:
			outcome = "disconnected: " + err.Error()
		case err != nil:
			t.Fatal(err)
		case m.Type == "drop":
			n, err := lc.read(ctx)
			if err != nil || n.Type != "fragment" || !n.Frag.Keyframe {
				t.Fatalf("after the drop message: %+v %v, want a keyframe", n, err)
			}
			outcome = "dropped to the keyframe"
		default:
			after += int64(m.Size)
		}
		if after > produced/2 {
			t.Fatalf("the viewer read %d bytes after its stall: it was buffered for", after)
		}
	}
	var st struct {
		Live struct {
			Viewers int   `json:"viewers"`
			Drops   int64 `json:"drops"`
		} `json:"live"`
	}
	c.json("GET", "/api/v1/status", 200, &st)
	t.Logf("%s; %d bytes read after the stall; the camera sent %d meanwhile; RSS %d -> %d; live status %+v", outcome, after, produced, rssBefore, rssAfter, st.Live)
}

// TestStillOfTheOpenSegment: with 5-minute segments, a still taken right
// after a scene change on the test camera shows the new scene, from the
// segment still being written (no segment has closed).
func TestStillOfTheOpenSegment(t *testing.T) {
	testenv.RequireTools(t)
	s := &setup{duration: 300, savePath: t.TempDir()}
	s.cam = testenv.StartCamera(t, testenv.CameraOptions{Mounts: map[string]string{"/cam1": "640x360@25"},
		User: "admin", Password: e2ePassword, Auth: "digest", Pattern: "blue", GOPSeconds: 1})
	s.minio = testenv.StartMinIO(t)
	s.minio.CreateBucket("test-bucket")
	d := startDaemon(t, "run", "--config", liveTestConfig(t, s, ""))
	c := newClient(t, d, apiToken)
	d.await(0, 60*time.Second, msgIs("ffmpeg started")) // its staging folder exists
	awaitStagingGrowth(t, s.savePath, "door", 20000)

	// still takes a still and says whether it is red (else blue).
	still := func() (red bool, hdr http.Header) {
		status, body, h := c.do("GET", "/api/v1/cameras/door/snapshot.jpg", nil)
		if status != 200 || h.Get("X-Segment-Open") != "true" {
			t.Fatalf("snapshot: %d %s %v, want a still of the open segment", status, body, h)
		}
		img, err := jpeg.Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("the still is not a JPEG: %v", err)
		}
		b := img.Bounds()
		r, _, bl, _ := img.At(b.Dx()/2, b.Dy()/2).RGBA()
		if r>>8 < 128 && bl>>8 < 128 || r>>8 >= 128 && bl>>8 >= 128 {
			t.Fatalf("the still's centre is neither red nor blue: r %d b %d", r>>8, bl>>8)
		}
		return r>>8 >= 128, h
	}
	if red, _ := still(); red {
		t.Fatal("the still is red before the scene changed")
	}
	s.cam.ChangeScene()
	changed := time.Now()
	deadline := changed.Add(15 * time.Second)
	for {
		red, h := still()
		if red {
			t.Logf("the new scene in a still %v after the change, from %s", time.Since(changed).Round(time.Millisecond), h.Get("X-Segment"))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("15 s after the scene changed, the still still shows the old one")
		}
		time.Sleep(250 * time.Millisecond) // a new keyframe is due within the camera's 1 s GOP; stills are made at most every 2 s
	}
	var recs struct {
		Recordings []any `json:"recordings"`
	}
	c.json("GET", "/api/v1/recordings?camera=door", 200, &recs)
	if len(recs.Recordings) != 0 {
		t.Fatalf("%d segments closed: the still was to come from the open one", len(recs.Recordings))
	}
}
