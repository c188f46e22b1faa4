//go:build integration

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cctvd/cctvd/internal/mp4"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/staging"
)

// liveTestConfig is a daemon with an API token and one camera "door" on the
// test camera (mount /cam1), segments of s.duration seconds; api holds
// more members of the api block, each preceded by a comma.
func liveTestConfig(t *testing.T, s *setup, api string) string {
	t.Helper()
	cfg := fmt.Sprintf(`{
  "cameras": [{"cameraName": "door", "ipAddress": "127.0.0.1", "userName": "admin", "password": %q,
    "frameRate": 25, "resolution": "640x360", "videoDuration": %d, "videoFeedId": "f1", "rtspPort": %d, "rtspPath": "/cam1"}],
  "s3Config": {"s3Bucket": "test-bucket", "s3Path": "rec/2025", "endpoint": %q},
  "awsCredentials": {"accessKeyId": %q, "secretAccessKey": %q},
  "storageConfig": {"savePath": %q, "clearAfterUpload": false, "clearWhenFilePathReachGB": 1},
  "api": {"listen": "127.0.0.1:0", "token": %q %s},
  "log": {"format": "json", "level": "debug"}
}`, e2ePassword, s.duration, s.cam.Port, s.minio.Endpoint, s.minio.AccessKey, s.minio.SecretKey, s.savePath, apiToken, api)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// liveMsg is one message of the live WebSocket, parsed.
type liveMsg struct {
	Type string // init, clock, drop, waiting (text); initSegment, fragment (binary)
	Text map[string]any
	Frag *mp4.Fragment
	Init *mp4.InitSegment
	Size int
	At   time.Time // when it arrived
}

// liveConn is a live view client, as a script would be.
type liveConn struct {
	t    *testing.T
	c    *websocket.Conn
	init *mp4.InitSegment
	// clock maps media seconds to wall time, from the last clock message.
	clockMedia float64
	clockWall  time.Time
}

// dialLive opens the camera's live view with header (the token, or none)
// and query (a ticket); it returns the HTTP answer when the upgrade is
// refused. rcvBuf, if > 0, is the socket's receive buffer.
func dialLive(ctx context.Context, base, camera, query string, header http.Header, rcvBuf int) (*websocket.Conn, *http.Response, error) {
	dialer := &net.Dialer{}
	if rcvBuf > 0 {
		dialer.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf) })
			return errors.Join(err, serr)
		}
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	u := "ws" + strings.TrimPrefix(base, "http") + "/api/v1/cameras/" + camera + "/live" + query
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: header, HTTPClient: hc})
	if c != nil {
		c.SetReadLimit(64 << 20)
	}
	return c, resp, err
}

func bearer() http.Header { return http.Header{"Authorization": {"Bearer " + apiToken}} }

// read reads the next message.
func (l *liveConn) read(ctx context.Context) (liveMsg, error) {
	typ, b, err := l.c.Read(ctx)
	if err != nil {
		return liveMsg{}, err
	}
	m := liveMsg{Size: len(b), At: time.Now()}
	if typ == websocket.MessageText {
		if err := json.Unmarshal(b, &m.Text); err != nil {
			l.t.Fatalf("a text message that is not JSON: %q", b)
		}
		m.Type, _ = m.Text["type"].(string)
		if m.Type == "clock" {
			// A run's wall clock is unknown until the supervisor has
			// written its epoch: its clock message carries no wall time.
			l.clockMedia, _ = m.Text["media"].(float64)
			w, _ := m.Text["wall"].(string)
			l.clockWall, _ = time.Parse(time.RFC3339Nano, w) // zero when absent
		}
		return m, nil
	}
	if len(b) >= 8 && string(b[4:8]) == "ftyp" {
		in, err := mp4.ParseInitSegment(b)
		if err != nil {
			l.t.Fatalf("the init segment does not parse: %v", err)
		}
		l.init, m.Init, m.Type = in, in, "initSegment"
		return m, nil
	}
	if l.init == nil {
		l.t.Fatalf("a fragment before any init segment")
	}
	f, err := mp4.ParseFragment(l.init, b)
	if err != nil {
		l.t.Fatalf("a fragment that does not parse: %v", err)
	}
	m.Frag, m.Type = f, "fragment"
	return m, nil
}

// seconds is a media time of the stream, in seconds.
func (l *liveConn) seconds(t uint64) float64 { return float64(t) / float64(l.init.Timescale) }

// wall is the wall-clock time of media time t (seconds), by the last
// clock message.
func (l *liveConn) wall(t float64) time.Time {
	return l.clockWall.Add(time.Duration((t - l.clockMedia) * float64(time.Second)))
}

// newestFragment is the wall-clock end of the newest whole fragment ffmpeg
// has written of the camera's open segment, read from the staging folder
// as the test sees it (the run's epoch, ffmpeg's segment list, the file's
// boxes), and the wall-clock time of its run's first frame (the epoch); ok
// is false when there is none.
func newestFragment(t *testing.T, savePath, camera string) (end, runStart time.Time, ok bool) {
	t.Helper()
	dir := layout.StagingDir(savePath, camera)
	entries, _ := os.ReadDir(dir)
	var segs []string
	for _, e := range entries {
		if kind, _, _ := staging.Classify(e.Name()); kind == staging.Segment {
			segs = append(segs, e.Name())
		}
	}
	sort.Strings(segs)
	for i := len(segs) - 1; i >= 0; i-- {
		_, id, index := staging.Classify(segs[i])
		run := staging.Run{Dir: dir, ID: id}
		meta, err := staging.ReadMeta(run.MetaPath())
		if err != nil || meta.Epoch.IsZero() {
			continue
		}
		start := 0.0
		if index > 0 {
			list, _ := os.ReadFile(run.ListPath())
			found := false
			for _, line := range strings.Split(string(list), "\n") {
				var s, e float64
				f := strings.Split(line, ",")
				if len(f) == 3 && filepath.Base(f[0]) == staging.SegmentName(id, index-1) {
					if _, err := fmt.Sscanf(f[1]+" "+f[2], "%g %g", &s, &e); err == nil {
						start, found = e, true
					}
				}
			}
			if !found {
				continue
			}
		}
		b, err := os.ReadFile(run.SegmentPath(index))
		if err != nil {
			continue
		}
		var in *mp4.InitSegment
		var last *mp4.Fragment
		r := bytesAt(b)
		for off := int64(0); ; {
			h, err := mp4.ReadBoxHeader(r, off, int64(len(b)))
			if err != nil {
				break
			}
			switch h.Type {
			case "moov":
				in, _ = mp4.ParseInitSegment(b[:off+h.Size])
			case "moof":
				d, err := mp4.ReadBoxHeader(r, off+h.Size, int64(len(b)))
				if err != nil || in == nil {
					break
				}
				if f, err := mp4.ParseFragment(in, b[off:off+h.Size+d.Size]); err == nil {
					last = f
				}
				off += d.Size
			}
			off += h.Size
		}
		if last == nil {
			continue
		}
		secs := start + float64(last.DecodeTime+last.Duration)/float64(in.Timescale)
		return meta.Epoch.Add(time.Duration(secs * float64(time.Second))), meta.Epoch, true
	}
	return time.Time{}, time.Time{}, false
}

type bytesAt []byte

func (b bytesAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// rss is a process's resident set, from /proc.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
