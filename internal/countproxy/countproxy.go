// Package countproxy is a counting TCP proxy on loopback, for tests and
// benchmarks (a stand-in for a link, named as such): every connection to
// it is passed on to a target byte for byte, and the bytes each way are
// counted, so a test can tell what a client really sent (an upload cap,
// the parts a resumed upload sent again). Cut closes every connection
// open, as a link that drops does; a delay holds every chunk that long
// each way (round trips of a far server; the TCP connections either side
// of the proxy do not see it).
package countproxy

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/cctvd/cctvd/internal/watch"
)

// Counts are the bytes the proxy passed on, over every connection.
type Counts struct {
	// Up: from clients to the target; Down: back.
	Up, Down int64
	// Connections accepted.
	Connections int
}

// Proxy is a running proxy.
type Proxy struct {
	ln     net.Listener
	target string
	delay  time.Duration
	counts *watch.Value[Counts]

	mu     sync.Mutex
	conns  map[net.Conn]bool
	refuse bool
	wg     sync.WaitGroup
}

// Start listens on 127.0.0.1 (a free port) and passes connections on to
// target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return Serve(ln, target, 0), nil
}

// Serve passes the connections ln accepts on to target, each chunk held
// delay each way (0: none).
func Serve(ln net.Listener, target string, delay time.Duration) *Proxy {
	p := &Proxy{ln: ln, target: target, delay: delay, counts: watch.New(Counts{}), conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Counts are the bytes passed on so far.
func (p *Proxy) Counts() Counts { return p.counts.Get() }

// WaitFor returns once cond holds for the counts, or ctx ends.
func (p *Proxy) WaitFor(ctx context.Context, cond func(Counts) bool) error {
	return p.counts.WaitFor(ctx, cond)
}

// Cut closes every connection open now; new ones are accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Refuse makes the proxy close every connection it accepts from now on
// (on), as a link that is down; Refuse(false) brings it back.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
	if on {
		p.Cut()
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
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
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

type chunk struct {
	at   time.Time
	data []byte
}

func (p *Proxy) serve(c net.Conn) {
	defer c.Close()
	p.mu.Lock()
	refuse := p.refuse
	p.mu.Unlock()
	if refuse {
		return
	}
	t, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer t.Close()
	p.track(c, true)
	p.track(t, true)
	defer p.track(c, false)
	defer p.track(t, false)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, up bool) {
		defer func() { done <- struct{}{} }()
		send := func(b []byte) bool {
			if _, err := dst.Write(b); err != nil {
				return false
			}
			p.counts.Update(func(k *Counts) {
				if up {
					k.Up += int64(len(b))
				} else {
					k.Down += int64(len(b))
				}
			})
			return true
		}
		var held chan chunk
		if p.delay > 0 { // a writer that sends each chunk delay after it came
			held = make(chan chunk, 1024)
			wrote := make(chan struct{})
			defer func() { close(held); <-wrote }()
			go func() {
				defer close(wrote)
				for c := range held {
					time.Sleep(time.Until(c.at.Add(p.delay)))
					if !send(c.data) {
						dst.Close()
						for range held {
						}
						return
					}
				}
			}()
		}
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				if held != nil {
					held <- chunk{at: time.Now(), data: buf[:n]}
				} else if !send(buf[:n]) {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(t, c, true)
	go pipe(c, t, false)
	<-done // one way ended: the connection is over (HTTP does not half-close)
	c.Close()
	t.Close()
	<-done
}
