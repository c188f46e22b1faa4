package api

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/logring"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/supervisor"
	"github.com/cctvd/cctvd/uploader"
)

// The secrets of the test config: a short camera password (cameras ship
// with 12345), a token inside a stream URL and the API token.
const (
	shortPassword = "12345"
	urlToken      = "url-t0ken-abcdef"
	apiToken      = "api-t0ken-s3cret"
)

// env is an API server over real parts: a real supervisor whose camera's
// ffmpeg does not exist (so it waits in backoff, wanting to run: a stop
// is visible in its state), a real catalog in a temporary folder with one
// recording of 2026, the log hub, and a log buffer.
type env struct {
	s    *Server
	sup  *supervisor.Supervisor
	cat  *catalog.Catalog
	hub  *logring.Hub
	logs *testenv.Buffer
	rec  catalog.Record
}

func newEnv(t *testing.T, cfg Config, tweak func(*Deps)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{hub: logring.NewHub(100, 100), logs: &testenv.Buffer{}}
	red := redact.New(shortPassword, urlToken, apiToken)
	log := zerolog.New(redact.NewWriter(red, zerolog.MultiLevelWriter(e.logs, e.hub)))
	var err error
	e.cat, err = catalog.Open(context.Background(), filepath.Join(dir, "catalog.db"), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cat.Close() })
	start := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	seg := segment.Segment{Camera: "door", FeedID: "f1", Start: start, End: start.Add(10 * time.Second), Size: 3,
		Path: filepath.Join(dir, layout.DayRel("door", start), segment.Name("door", "f1", start, start.Add(10*time.Second), 0))}
	if e.rec, err = e.cat.Add(context.Background(), seg, "rec/door/x.mp4"); err != nil {
		t.Fatal(err)
	}
	cams := []config.Camera{
		{CameraName: "door", IPAddress: "127.0.0.1", UserName: "admin", Password: shortPassword, RTSPPort: 1, RTSPPath: "/",
			FrameRate: 2, Resolution: "640x360", VideoDuration: 10, VideoFeedID: "f1", RTSPTransport: "tcp", Mode: config.ModeTranscode},
		{CameraName: "gate", StreamURL: "rtsp://127.0.0.1:1/live?token=" + urlToken,
			FrameRate: 2, Resolution: "640x360", VideoDuration: 10, VideoFeedID: "f1", RTSPTransport: "tcp", Mode: config.ModeTranscode},
	}
	e.sup = supervisor.New(supervisor.Config{SavePath: dir, Owner: "test", FFmpegPath: filepath.Join(dir, "no-ffmpeg"), ProbePath: "ffprobe",
		Preset: "veryfast", StallTimeout: time.Hour, StopTimeout: time.Second, BackoffInitial: time.Hour, BackoffMax: time.Hour},
		cams, nil, supervisor.Deps{Log: log, Redactor: red})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.sup.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("the supervisor did not stop")
		}
	})
	deps := Deps{Log: log, Supervisor: e.sup, Catalog: e.cat, Logs: e.hub, Redactor: red, Registry: prometheus.NewRegistry(),
		Reload: func(context.Context) (ReloadResult, error) { return ReloadResult{}, nil }}
	if tweak != nil {
		tweak(&deps)
	}
	e.s = mustNew(t, cfg, deps)
	return e
}

// desired says whether the camera is wanted running.
func (e *env) desired(t *testing.T, name string) bool {
	t.Helper()
	st, err := e.sup.Status(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Desired
}

// request is one request of an attack.
type request struct {
	method, path string
	header       map[string]string
	host         string // default 127.0.0.1:8080
}

func (e *env) do(r request) *httptest.ResponseRecorder {
	req := httptest.NewRequest(r.method, r.path, nil)
	req.Host = "127.0.0.1:8080"
	if r.host != "" {
		req.Host = r.host
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.s.Handler().ServeHTTP(rec, req)
	return rec
}

// errorBody decodes a JSON error answer.
func errorBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]string {
	t.Helper()
	var v map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || v["error"] == "" {
		t.Fatalf("%d %q is not a JSON error: %v", rec.Code, rec.Body.String(), err)
	}
	return v
}

// TestAttacks walks the findings of issue 14, each an attack with the
// status it must get and the state it must leave. (Item 6, upload
// verification, is the uploader's; item 7, ffmpeg's environment, is
// tested in package supervisor and the unit and install in cmd/cctvd.)
func TestAttacks(t *testing.T) {
	t.Run("1 a reload cannot switch off the token while the API is exposed", testReloadKeepsTheTokenRule)
	t.Run("1 an exposed listener never serves without a token", testExposedListenerNeedsAToken)
	t.Run("3 error messages do not echo the request", testNoEcho)
	t.Run("3 short secrets keep log lines JSON", testShortSecretLogLines)
	t.Run("4 stream URL credentials are masked in responses", testStreamURLMasked)
	t.Run("5 connections and followers are bounded", testLimits)
	t.Run("5 a follower outlives the write timeout", testFollowerOutlivesWriteTimeout)
	t.Run("5 a file download outlives the write timeout", testDownloadOutlivesWriteTimeout)
	t.Run("8 host check and cross-site requests", testHostAndCSRF)
	t.Run("9 TLS reloads its certificate", testTLS)
	t.Run("9 metrics can require the token", testMetricsAuth)
	t.Run("10 errors, readiness and time bounds", testErrorsAndTimes)
}

// serve runs s on its listener until the test ends.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the API did not stop")
		}
	})
	select {
	case <-s.Listening():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the API did not listen")
	}
	_, port, _ := net.SplitHostPort(s.Addr())
	return "127.0.0.1:" + port
}

func get(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Item 1, on a real listener on 0.0.0.0 (all addresses, so not loopback;
// the test connects through 127.0.0.1).
func testReloadKeepsTheTokenRule(t *testing.T) {
	e := newEnv(t, Config{Listen: "0.0.0.0:0", Settings: Settings{Token: apiToken}}, nil)
	addr := serve(t, e.s)
	base := "http://" + addr + "/api/v1/cameras"
	if code := get(t, base, ""); code != 401 {
		t.Fatalf("without the token: %d", code)
	}
	// The reloaded config listens on loopback without a token: the
	// listener on 0.0.0.0 stays until a restart, so the reload is refused.
	_, err := e.s.Prepare(Settings{Token: ""})
	if !errors.Is(err, ErrTokenRequired) || !strings.Contains(err.Error(), "0.0.0.0:") {
		t.Fatalf("Prepare without a token = %v, want ErrTokenRequired naming 0.0.0.0", err)
	}
	if code := get(t, base, ""); code != 401 {
		t.Errorf("after the refused reload, without the token: %d", code)
	}
	// A new token is fine, and only it works from then on.
	commit, err := e.s.Prepare(Settings{Token: "a-new-t0ken-123"})
	if err != nil {
		t.Fatal(err)
	}
	commit()
	if a, b := get(t, base, apiToken), get(t, base, "a-new-t0ken-123"); a != 401 || b != 200 {
		t.Errorf("old token %d, new token %d; want 401, 200", a, b)
	}
}

func testExposedListenerNeedsAToken(t *testing.T) {
	// Config validation refuses this; the server refuses it on its own
	// too, for the address it actually bound.
	s := mustNew(t, Config{Listen: "0.0.0.0:0"}, Deps{Log: zerolog.Nop()})
	err := s.Run(context.Background())
	if !errors.Is(err, ErrTokenRequired) {
		t.Fatalf("Run on 0.0.0.0 without a token = %v", err)
	}
	// On loopback, no token is fine, and a reload may drop it.
	e := newEnv(t, Config{Listen: "127.0.0.1:0", Settings: Settings{Token: apiToken}}, nil)
	serve(t, e.s)
	if _, err := e.s.Prepare(Settings{}); err != nil {
		t.Errorf("dropping the token on loopback: %v", err)
	}
}

// Item 3: nothing a request sends comes back in an error, so an API
// client cannot test password guesses against the redactor.
func testNoEcho(t *testing.T) {
	e := newEnv(t, Config{Listen: "127.0.0.1:0"}, nil)
	for _, path := range []string{
		"/api/v1/recordings?limit=" + shortPassword,
		"/api/v1/recordings?limit=" + apiToken,
		"/api/v1/recordings?from=" + shortPassword,
		"/api/v1/recordings?uploaded=" + shortPassword,
		"/api/v1/recordings/" + shortPassword + "x",
		"/api/v1/recordings/" + shortPassword,
		"/api/v1/recordings?cursor=" + shortPassword,
		"/api/v1/cameras/" + shortPassword,
		"/api/v1/cameras/door/logs?tail=" + shortPassword,
		"/api/v1/cameras/door/logs?follow=" + shortPassword,
		"/api/v1/cameras/" + shortPassword + "/gaps",
		"/api/v1/" + shortPassword,
		"/api/v1/" + shortPassword + "x/unrouted",
	} {
		rec := e.do(request{method: "GET", path: path})
		if rec.Code < 400 || rec.Code >= 500 {
			t.Errorf("GET %s: %d, want a 4xx", path, rec.Code)
		}
		msg := errorBody(t, rec)["error"]
		if strings.Contains(msg, shortPassword) || strings.Contains(msg, "***") || strings.Contains(msg, apiToken) {
			t.Errorf("GET %s: the error %q echoes the request", path, msg)
		}
	}
	// Nor do the logs: the access log names the route, not the path.
	if strings.Contains(e.logs.String(), shortPassword+"x") {
		t.Errorf("the log holds request input:\n%s", e.logs.String())
	}
}

// Item 3: the short password does not turn numbers and words of the log
// into masks: the lines the API serves stay JSON.
func testShortSecretLogLines(t *testing.T) {
	e := newEnv(t, Config{Listen: "127.0.0.1:0"}, nil)
	log := zerolog.New(redact.NewWriter(redact.New(shortPassword, "level"), e.hub)).With().Str("camera", "door").Logger()
	log.Info().Int("pid", 12345).Str("url", "rtsp://admin:12345@10.0.0.1:554/").Msg("ffmpeg started at level 12345")
	rec := e.do(request{method: "GET", path: "/api/v1/cameras/door/logs?tail=1"})
	var out struct {
		Lines []LogLine `json:"lines"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out.Lines) != 1 {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	var entry map[string]any
	if err := json.Unmarshal(out.Lines[0].Entry, &entry); err != nil {
		t.Fatalf("the log line is not JSON any more: %q (text %q)", out.Lines[0].Entry, out.Lines[0].Text)
	}
	if entry["level"] != "info" || entry["pid"] != float64(12345) || entry["url"] != "rtsp://admin:***@10.0.0.1:554/" {
		t.Errorf("entry %v", entry)
	}
}

// Item 4.
func testStreamURLMasked(t *testing.T) {
	e := newEnv(t, Config{Listen: "127.0.0.1:0"}, nil)
	rec := e.do(request{method: "GET", path: "/api/v1/cameras"})
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	body := rec.Body.String()
	if strings.Contains(body, urlToken) || !strings.Contains(body, `"source":"rtsp://127.0.0.1:1/live?token=***"`) ||
		!strings.Contains(body, `"source":"rtsp://admin:***@127.0.0.1:1/"`) {
		t.Errorf("cameras: %s", body)
	}
}

// Item 5, on a real listener with small limits.
func testLimits(t *testing.T) {
	e := newEnv(t, Config{Listen: "127.0.0.1:0", Limits: Limits{MaxConnections: 3, MaxFollowers: 2, IdleTimeout: time.Minute,
		ReadHeaderTimeout: 300 * time.Millisecond, MaxBodyBytes: 1024}}, nil)
	addr := serve(t, e.s)

	t.Run("connections beyond the cap wait", func(t *testing.T) {
		var held []*keptConn
		for range 3 {
			held = append(held, dialGet(t, addr, "/healthz"))
		}
		extra := dialGet(t, addr, "") // connected (kernel queue), not served
		extra.send(t, "/healthz")
		if line, err := extra.readLine(500 * time.Millisecond); err == nil {
			t.Fatalf("a 4th connection was served beyond the cap of 3: %q", line)
		}
		held[0].c.Close() // a slot frees up: the waiting one is served
		if line, err := extra.readLine(5 * time.Second); err != nil || !strings.Contains(line, "200") {
			t.Fatalf("the waiting connection: %q %v", line, err)
		}
		for _, k := range append(held[1:], extra) {
			k.c.Close()
		}
	})

	t.Run("a slow header is cut", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n") // and never the end
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the server kept a request with unfinished headers open for 5 s")
		}
	})

	t.Run("followers beyond the cap get 429", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		first := follow(t, ctx, addr)
		follow(t, ctx, addr)
		resp, err := http.Get("http://" + addr + "/api/v1/logs?follow=true")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 429 || !strings.Contains(string(body), `"error":"too many log followers: at most 2 at once"`) {
			t.Errorf("third follower: %d %s", resp.StatusCode, body)
		}
		first.Body.Close() // one leaves: room again
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/api/v1/logs?follow=true&tail=0")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a follower left and there is still no room: %d", resp.StatusCode)
			}
			time.Sleep(10 * time.Millisecond) // polling: the server's side of the leaving is not observable
		}
	})

	t.Run("a big body is refused", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/reload", strings.NewReader(strings.Repeat("x", 4096)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !json.Valid(body) {
			t.Errorf("4 KiB body: %d %s", resp.StatusCode, body)
		}
	})
}

// Item 5: the write timeout bounds each write of a stream, not the stream.
func testFollowerOutlivesWriteTimeout(t *testing.T) {
	e := newEnv(t, Config{Listen: "127.0.0.1:0", Limits: Limits{WriteTimeout: time.Second, ReadTimeout: time.Second}}, nil)
	addr := serve(t, e.s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp := follow(t, ctx, addr)
	defer resp.Body.Close()
	// Let both timeouts pass several times over: that is the point.
	time.Sleep(3 * time.Second)
	e.hub.Write([]byte(`{"message":"after the timeouts"}` + "\n"))
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "after the timeouts") {
			return
		}
	}
	t.Fatalf("the follower was cut: %v", sc.Err())
}

// Item 5: a big file to a client that reads steadily but slowly takes far
// longer than the write timeout, and is not cut.
func testDownloadOutlivesWriteTimeout(t *testing.T) {
	e := newEnv(t, Config{Listen: "127.0.0.1:0", Limits: Limits{WriteTimeout: time.Second}}, nil)
	addr := serve(t, e.s)
	const size = 32 << 20 // beyond what the loopback's socket buffers hold
	os.MkdirAll(filepath.Dir(e.rec.Path), 0o755)
	if err := os.WriteFile(e.rec.Path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/api/v1/recordings/%d/file", addr, e.rec.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start, n := time.Now(), 0
	buf := make([]byte, 1<<20)
	for {
		m, err := io.ReadFull(resp.Body, buf)
		n += m
		if err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // a slow reader: each pause well under the write timeout
	}
	if n != size {
		t.Fatalf("got %d of %d bytes in %v", n, size, time.Since(start))
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("the download took only %v: the reader was not slow enough to test anything", took)
	}
}

// Item 8, on the handler: each attack, its status, and the camera still
// wanted running (or stopped, for the one request that may stop it).
func testHostAndCSRF(t *testing.T) {
	e := newEnv(t, Config{Listen: "127.0.0.1:8080", Settings: Settings{AllowedHosts: []string{"NVR.local."}}}, nil)
	jsonCT := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name    string
		req     request
		status  int
		running bool // the camera's desired state after the request
	}{
		{"DNS rebinding: a foreign name", request{method: "POST", path: "/api/v1/cameras/door/stop", host: "evil.example:8080", header: jsonCT}, 403, true},
		{"DNS rebinding: reading logs", request{method: "GET", path: "/api/v1/logs", host: "evil.example"}, 403, true},
		{"DNS rebinding: metrics", request{method: "GET", path: "/metrics", host: "rebind.evil.example:8080"}, 403, true},
		{"a form post (simple request)", request{method: "POST", path: "/api/v1/cameras/door/stop",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 403, true},
		{"a text/plain post", request{method: "POST", path: "/api/v1/cameras/door/stop", header: map[string]string{"Content-Type": "text/plain"}}, 403, true},
		{"no content type", request{method: "POST", path: "/api/v1/cameras/door/stop"}, 403, true},
		{"reload by a form", request{method: "POST", path: "/api/v1/reload"}, 403, true},
		{"cross-site by Sec-Fetch-Site", request{method: "POST", path: "/api/v1/cameras/door/stop",
			header: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}}, 403, true},
		{"cross-site by Origin", request{method: "POST", path: "/api/v1/cameras/door/stop",
			header: map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}}, 403, true},
		{"GET on localhost", request{method: "GET", path: "/api/v1/cameras", host: "localhost:8080"}, 200, true},
		{"GET on [::1]", request{method: "GET", path: "/api/v1/cameras", host: "[::1]:8080"}, 200, true},
		{"GET on a LAN address", request{method: "GET", path: "/healthz", host: "192.168.1.20:8080"}, 200, true},
		{"GET on an allowed name", request{method: "GET", path: "/healthz", host: "nvr.local:8080"}, 200, true},
		{"a JSON post from a script", request{method: "POST", path: "/api/v1/cameras/door/stop", header: jsonCT}, 200, false},
		{"X-Requested-With from a script", request{method: "POST", path: "/api/v1/cameras/door/start",
			header: map[string]string{"X-Requested-With": "curl"}}, 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do(tt.req)
			if rec.Code != tt.status {
				t.Errorf("%d %s, want %d", rec.Code, rec.Body.String(), tt.status)
			}
			if rec.Code >= 400 {
				errorBody(t, rec)
			}
			if got := e.desired(t, "door"); got != tt.running {
				t.Errorf("camera wanted running: %v, want %v", got, tt.running)
			}
		})
	}
	// With a token, the token is what counts (a page cannot send it).
	e2 := newEnv(t, Config{Listen: "127.0.0.1:8080", Settings: Settings{Token: apiToken}}, nil)
	if rec := e2.do(request{method: "POST", path: "/api/v1/cameras/door/stop", header: map[string]string{"Content-Type": "text/plain"}}); rec.Code != 401 || !e2.desired(t, "door") {
		t.Errorf("no token: %d", rec.Code)
	}
	if rec := e2.do(request{method: "POST", path: "/api/v1/cameras/door/stop", header: map[string]string{"Authorization": "Bearer " + apiToken}}); rec.Code != 200 || e2.desired(t, "door") {
		t.Errorf("with the token: %d %s", rec.Code, rec.Body.String())
	}
}

// Item 9: TLS, its pair read again at a reload; on or off needs a restart.
func testTLS(t *testing.T) {
	dir := t.TempDir()
	certA, keyA := writeCert(t, dir, "a")
	certB, keyB := writeCert(t, dir, "b")
	e := newEnv(t, Config{Listen: "127.0.0.1:0", Settings: Settings{Token: apiToken, TLSCert: certA, TLSKey: keyA}}, nil)
	addr := serve(t, e.s)
	if got := servedCert(t, addr); got != "a" {
		t.Fatalf("served %q, want a", got)
	}
	// Plain HTTP on the TLS port gets nothing useful.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the TLS listener")
		}
	}
	commit, err := e.s.Prepare(Settings{Token: apiToken, TLSCert: certB, TLSKey: keyB})
	if err != nil {
		t.Fatal(err)
	}
	if got := servedCert(t, addr); got != "a" {
		t.Errorf("before commit: served %q", got)
	}
	commit()
	if got := servedCert(t, addr); got != "b" {
		t.Errorf("after the reload: served %q, want b", got)
	}
	if _, err := e.s.Prepare(Settings{Token: apiToken}); err == nil || !strings.Contains(err.Error(), "takes a restart") {
		t.Errorf("turning TLS off by a reload: %v", err)
	}
	os.WriteFile(certB, []byte("not a certificate"), 0o600)
	if _, err := e.s.Prepare(Settings{Token: apiToken, TLSCert: certB, TLSKey: keyB}); err == nil || !strings.HasPrefix(err.Error(), "api.tlsCert, api.tlsKey: ") {
		t.Errorf("a broken pair: %v", err)
	}
	if got := servedCert(t, addr); got != "b" {
		t.Errorf("after a refused reload: served %q, want b", got)
	}
}

func testMetricsAuth(t *testing.T) {
	for _, tt := range []struct {
		metricsAuth        bool
		without, withToken int
	}{{false, 200, 200}, {true, 401, 200}} {
		e := newEnv(t, Config{Listen: "127.0.0.1:0", Settings: Settings{Token: apiToken, MetricsAuth: tt.metricsAuth}}, nil)
		if rec := e.do(request{method: "GET", path: "/metrics"}); rec.Code != tt.without {
			t.Errorf("metricsAuth %v, no token: %d", tt.metricsAuth, rec.Code)
		}
		if rec := e.do(request{method: "GET", path: "/metrics", header: map[string]string{"Authorization": "Bearer " + apiToken}}); rec.Code != tt.withToken {
			t.Errorf("metricsAuth %v, token: %d", tt.metricsAuth, rec.Code)
		}
	}
}

// Item 10.
func testErrorsAndTimes(t *testing.T) {
	e := newEnv(t, Config{Listen: "127.0.0.1:0"}, func(d *Deps) {
		d.Ready = func() error {
			return &NotReadyError{Reason: "savePath is not writable", Err: errors.New("access /var/cctv/secret-place: read-only file system")}
		}
		d.Uploader = func() uploader.Status { panic("boom at /var/cctv/secret-place") }
	})
	rec := e.do(request{method: "GET", path: "/readyz"})
	if rec.Code != 503 || strings.TrimSpace(rec.Body.String()) != `{"error":"savePath is not writable","status":"not ready"}` {
		t.Errorf("readyz: %d %s", rec.Code, rec.Body.String())
	}
	e.do(request{method: "GET", path: "/readyz"})
	if n := strings.Count(e.logs.String(), "read-only file system"); n != 1 {
		t.Errorf("the readiness detail is logged %d times, want once", n)
	}

	// A panic and a failing catalog: 500, a generic message, an id the log has.
	for _, path := range []string{"/api/v1/status", "/api/v1/recordings"} {
		if path == "/api/v1/recordings" {
			e.cat.Close()
		}
		rec := e.do(request{method: "GET", path: path})
		body := errorBody(t, rec)
		if rec.Code != 500 || body["error"] != "internal error" || len(body["id"]) != 12 {
			t.Errorf("%s: %d %v", path, rec.Code, body)
		}
		if !strings.Contains(e.logs.String(), `"id":"`+body["id"]+`"`) {
			t.Errorf("%s: no log line carries the id %s", path, body["id"])
		}
	}
	if !strings.Contains(e.logs.String(), "boom at /var/cctv/secret-place") {
		t.Error("the panic's detail is not in the log")
	}

	// Times far off are clamped, not overflowed.
	e = newEnv(t, Config{Listen: "127.0.0.1:0"}, nil)
	for _, tt := range []struct {
		query string
		n     int
	}{
		{"to=9999-12-31T00:00:00Z", 1},
		{"from=0001-01-01T00:00:00Z", 1},
		{"from=0001-01-01T00:00:00Z&to=9999-12-31T00:00:00Z", 1},
		{"from=9000-01-01T00:00:00Z", 0},
		{"to=1000-01-01T00:00:00Z", 0},
		{"from=2026-01-06T12:00:05Z&to=2026-01-06T12:00:06Z", 1},
	} {
		rec := e.do(request{method: "GET", path: "/api/v1/recordings?" + tt.query})
		var out struct {
			Recordings []Recording `json:"recordings"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); rec.Code != 200 || err != nil || len(out.Recordings) != tt.n {
			t.Errorf("?%s: %d %s, want %d recordings", tt.query, rec.Code, rec.Body.String(), tt.n)
		}
	}
	for _, q := range []string{"from=2026-13-01T00:00:00Z", "to=yesterday", "from=2027-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"} {
		if rec := e.do(request{method: "GET", path: "/api/v1/recordings?" + q}); rec.Code != 400 {
			t.Errorf("?%s: %d", q, rec.Code)
		}
	}
}

// keptConn is a raw keep-alive connection.
type keptConn struct {
	c net.Conn
	r *bufio.Reader
}

// dialGet connects and, with a path, sends a GET and reads its answer,
// leaving the connection open.
func dialGet(t *testing.T, addr, path string) *keptConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	k := &keptConn{c: c, r: bufio.NewReader(c)}
	if path != "" {
		k.send(t, path)
		if line, err := k.readLine(5 * time.Second); err != nil || !strings.Contains(line, "200") {
			t.Fatalf("GET %s: %q %v", path, line, err)
		}
		k.drain()
	}
	return k
}

func (k *keptConn) send(t *testing.T, path string) {
	fmt.Fprintf(k.c, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path)
}

func (k *keptConn) readLine(timeout time.Duration) (string, error) {
	k.c.SetReadDeadline(time.Now().Add(timeout))
	return k.r.ReadString('\n')
}

// drain reads the rest of a small answer (headers and a short body).
func (k *keptConn) drain() {
	k.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		if _, err := k.r.ReadString('\n'); err != nil {
			return
		}
	}
}

// follow opens a log follower and waits for its 200.
func follow(t *testing.T, ctx context.Context, addr string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/api/v1/logs?follow=true&tail=0", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("follow: %d", resp.StatusCode)
	}
	return resp
}

// writeCert writes a self-signed certificate for 127.0.0.1 whose common
// name is name, and its key.
func writeCert(t *testing.T, dir, name string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certPath, keyPath
}

// servedCert connects with TLS, checks /healthz answers, and returns the
// common name of the certificate served.
func servedCert(t *testing.T, addr string) string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("healthz over TLS: %d", resp.StatusCode)
	}
	return resp.TLS.PeerCertificates[0].Subject.CommonName
}
