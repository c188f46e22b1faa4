// Package rtspcount is a loopback RTSP proxy for tests that counts logins
// where a camera would: it passes every connection on to a real RTSP
// server (the test camera) byte for byte, reads the requests and answers
// as they go by, and counts each request that carried an Authorization
// header and how the server answered it. A camera that locks an address
// out after failed logins counts exactly these: the proxy lets a test
// assert how many wrong-password logins reached the camera.
//
// It reads RTSP/1.0 messages (request or status line, headers, a body of
// Content-Length bytes) and the interleaved binary frames ('$', channel,
// 16-bit length) of RTP over TCP; a stream it cannot read is passed on
// uncounted.
package rtspcount

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"

	"github.com/cctvd/cctvd/internal/watch"
)

// Counts are what the proxy saw, over every connection.
type Counts struct {
	// Connections accepted.
	Connections int
	// Requests: every RTSP request answered.
	Requests int
	// Logins: requests with an Authorization header that were answered.
	Logins int
	// Refused: logins answered 401 or 403 (a failed login).
	Refused int
}

// Proxy is a running proxy.
type Proxy struct {
	ln     net.Listener
	target string
	counts *watch.Value[Counts]
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

// Start listens on 127.0.0.1 (a free port) and passes connections on to
// target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, counts: watch.New(Counts{}), conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Port is the proxy's port on 127.0.0.1.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Counts returns the counts so far.
func (p *Proxy) Counts() Counts { return p.counts.Get() }

// WaitFor returns once cond holds for the counts, or ctx ends.
func (p *Proxy) WaitFor(ctx context.Context, cond func(Counts) bool) error {
	return p.counts.WaitFor(ctx, cond)
}

// Close stops listening, cuts every connection and waits for them.
// The counts stay readable.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track adds or removes a connection to cut at Close; false: the proxy
// is closing, do not serve.
func (p *Proxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on && p.closed {
		return false
	}
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.counts.Update(func(n *Counts) { n.Connections++ })
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve passes one connection on, reading both directions.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client, true) || !p.track(server, true) {
		_ = client.Close()
		_ = server.Close()
		return
	}
	defer func() {
		_ = client.Close()
		_ = server.Close()
		p.track(client, false)
		p.track(server, false)
	}()
	var mu sync.Mutex
	authorized := map[string]bool{} // CSeq → the request carried credentials
	done := make(chan struct{}, 2)
	go func() {
		readMessages(client, server, func(start string, h textproto.MIMEHeader) {
			mu.Lock()
			authorized[h.Get("Cseq")] = h.Get("Authorization") != ""
			mu.Unlock()
		})
		_ = server.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}()
	go func() {
		readMessages(server, client, func(start string, h textproto.MIMEHeader) {
			status := statusOf(start)
			if status == 0 {
				return // a request from the server (ANNOUNCE, GET_PARAMETER): not an answer
			}
			mu.Lock()
			auth, known := authorized[h.Get("Cseq")]
			delete(authorized, h.Get("Cseq"))
			mu.Unlock()
			if !known {
				return
			}
			p.counts.Update(func(n *Counts) {
				n.Requests++
				if auth {
					n.Logins++
					if status == 401 || status == 403 {
						n.Refused++
					}
				}
			})
		})
		_ = client.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}()
	<-done
	<-done
}

// readMessages reads RTSP messages and interleaved frames from src,
// passing every byte on to dst as it is read, and calls seen with each
// message's first line and headers. A stream that is not RTSP is passed
// on as it is.
func readMessages(src io.Reader, dst io.Writer, seen func(start string, h textproto.MIMEHeader)) {
	r := bufio.NewReader(io.TeeReader(src, dst))
	tp := textproto.NewReader(r)
	for {
		b, err := r.Peek(1)
		if err != nil {
			return
		}
		if b[0] == '$' { // interleaved: '$', channel, length, data
			var hdr [4]byte
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint16(hdr[2:]))); err != nil {
				return
			}
			continue
		}
		start, err := tp.ReadLine()
		if err != nil {
			return
		}
		if start == "" {
			continue // a stray line end between messages
		}
		h, err := tp.ReadMIMEHeader()
		if err != nil && !errors.Is(err, io.EOF) {
			_, _ = io.Copy(io.Discard, r)
			return
		}
		if n, perr := strconv.Atoi(strings.TrimSpace(h.Get("Content-Length"))); perr == nil && n > 0 {
			if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
				return
			}
		}
		seen(start, h)
		if err != nil {
			return
		}
	}
}

// statusOf is the status of an answer's first line ("RTSP/1.0 401
// Unauthorized"), 0 for a request's.
func statusOf(line string) int {
	proto, rest, _ := strings.Cut(line, " ")
	if !strings.HasPrefix(proto, "RTSP/") {
		return 0
	}
	code, _, _ := strings.Cut(rest, " ")
	n, _ := strconv.Atoi(code)
	return n
}
