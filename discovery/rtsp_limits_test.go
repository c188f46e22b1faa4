package discovery

import (
	"context"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestAnEndlessAnswerIsNotReadWithoutEnd: whatever answers on a camera's
// address may send an endless header; DESCRIBE reads at most
// maxConversation of it and fails, rather than fill the daemon's memory.
func TestAnEndlessAnswerIsNotReadWithoutEnd(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var sent atomic.Int64
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		conn.Read(buf) // the request
		header := []byte("X-A: " + strings.Repeat("a", 1000) + "\r\n")
		conn.Write([]byte("RTSP/1.0 200 OK\r\nCSeq: 1\r\n"))
		for sent.Load() < 64<<20 { // 64 MiB, or until the client hangs up
			n, err := conn.Write(header)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	u := &url.URL{Scheme: "rtsp", Host: l.Addr().String(), Path: "/live"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := describe(ctx, u, "admin", "secret", 15*time.Second); err == nil {
		t.Fatal("DESCRIBE of an endless answer succeeded")
	}
	// The client stopped reading at its bound: the server could not push
	// more than that plus what the sockets' buffers hold.
	if n := sent.Load(); n >= 64<<20 {
		t.Errorf("the server sent %d bytes: the client read the endless header to its end", n)
	}
}
