package discovery

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	camUser     = "admin"
	camPassword = "adm1n@cam:/#%"
)

func fastFinder() *Finder {
	return New(Config{PathInterval: time.Millisecond, PathBurst: 100, Timeout: 5 * time.Second})
}

// closedPort is a TCP port on 127.0.0.1 where nothing listens.
func closedPort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

type attempts struct {
	mu   sync.Mutex
	list []Attempt
	at   []time.Time
}

func (a *attempts) report(x Attempt) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.list = append(a.list, x)
	a.at = append(a.at, time.Now())
}

func (a *attempts) paths() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var p []string
	for _, x := range a.list {
		if x.Path != "" { // the ONVIF step
			p = append(p, x.Path)
		}
	}
	return p
}

func TestUnreachable(t *testing.T) {
	var a attempts
	tg := Target{Host: "127.0.0.1", RTSPPort: closedPort(), ONVIFPort: closedPort(), User: camUser, Password: camPassword, Width: 640, Height: 360, FPS: 5}
	_, err := fastFinder().Find(context.Background(), tg, a.report)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err %v, want ErrUnreachable", err)
	}
	if len(a.paths()) != 1 {
		t.Errorf("attempts %v, want one (a refused connection stops the probing)", a.paths())
	}
}

// closingCamera is a fake RTSP server (a behaviour the GStreamer test
// camera does not have): it closes the connection right after its
// challenge, as some cameras do, and answers an authorized DESCRIBE on the
// next connection with an SDP.
func closingCamera(t *testing.T) (port int, answered *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	answered = &atomic.Int32{}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			n, _ := conn.Read(buf)
			req := string(buf[:n])
			if !strings.Contains(req, "Authorization: Digest ") {
				conn.Write([]byte("RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Digest realm=\"cam\", nonce=\"abc\"\r\n\r\n"))
			} else {
				answered.Add(1)
				sdp := "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n"
				conn.Write([]byte("RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp))
			}
			conn.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, answered
}

func TestCameraThatClosesAfterItsChallenge(t *testing.T) {
	port, answered := closingCamera(t)
	f := New(Config{Paths: []KnownPath{{"/stream1", "x"}}, PathInterval: time.Millisecond, PathBurst: 10})
	found, err := f.Paths(context.Background(), Target{Host: "127.0.0.1", RTSPPort: port, User: "u", Password: "p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if found.Codec != "H265" || answered.Load() != 1 {
		t.Errorf("found %+v, answered %d", found, answered.Load())
	}
}
