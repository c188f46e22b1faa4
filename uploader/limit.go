package uploader

import (
	"context"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limiter caps the bytes the uploader writes on its S3 connections: a
// token bucket (golang.org/x/time/rate) on every write of every
// connection the S3 client dials (ClientConfig.Limiter), so requests,
// retries, parts and their headers all count, and TLS's framing with them.
// A write larger than the bucket's burst goes out in bursts the bucket
// allows. The rate changes at run time (a schedule's boundary, the API)
// without cutting any upload: writes waiting on the old rate take the new
// one at once. A rate of 0 pauses: writes wait until the rate is raised or
// their connection is closed.
//
// It also counts what was sent, for the achieved rate (Meter).
type Limiter struct {
	mu      sync.Mutex
	bps     float64 // bytes a second; +Inf: no cap; 0: paused
	lim     *rate.Limiter
	changed chan struct{} // closed and replaced at every change

	sent  atomic.Int64
	meter *Meter
}

// Unlimited is the rate of a Limiter without a cap.
var Unlimited = math.Inf(1)

// NewLimiter returns a Limiter without a cap, metering on the machine's
// monotonic clock.
func NewLimiter() *Limiter {
	origin := time.Now()
	return &Limiter{bps: Unlimited, lim: rate.NewLimiter(rate.Inf, 0), changed: make(chan struct{}),
		meter: NewMeter(func() time.Duration { return time.Since(origin) })}
}

// minBurst and maxBurst bound the bucket's burst, which is 200 ms at the
// rate: small enough that the rate holds over a second, large enough that
// a writer held up for a moment (a busy core, the garbage collector) does
// not lose the tokens it would have had, and that a fast link is not
// written a few bytes at a time.
const (
	minBurst = 16 << 10
	maxBurst = 4 << 20
)

// burstFor is the bucket's burst at bps bytes a second.
func burstFor(bps float64) int {
	return int(min(max(bps/5, minBurst), maxBurst))
}

// SetMbps sets the cap in Mbit/s (10^6 bits a second): +Inf for none, 0
// to pause.
func (l *Limiter) SetMbps(mbps float64) {
	bps := mbps * 1e6 / 8
	l.mu.Lock()
	defer l.mu.Unlock()
	if bps == l.bps {
		return
	}
	l.bps = bps
	switch {
	case math.IsInf(bps, 1):
		l.lim.SetLimit(rate.Inf)
	case bps > 0:
		l.lim.SetLimit(rate.Limit(bps))
		l.lim.SetBurst(burstFor(bps))
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// Mbps is the cap in force: +Inf for none, 0 paused.
func (l *Limiter) Mbps() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bps * 8 / 1e6
}

// Changed is closed at the next change of the rate.
func (l *Limiter) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Sent is how many bytes were written through the limiter.
func (l *Limiter) Sent() int64 { return l.sent.Load() }

// Meter is the limiter's account of what was sent.
func (l *Limiter) Meter() *Meter { return l.meter }

// take waits until up to n bytes may be written and returns how many (at
// most the burst), or an error once done is closed.
func (l *Limiter) take(done <-chan struct{}, n int) (int, error) {
	for {
		l.mu.Lock()
		bps, lim, changed := l.bps, l.lim, l.changed
		l.mu.Unlock()
		if math.IsInf(bps, 1) {
			return n, nil
		}
		if bps <= 0 { // paused
			select {
			case <-changed:
				continue
			case <-done:
				return 0, net.ErrClosed
			}
		}
		k := min(n, burstFor(bps))
		r := lim.ReserveN(time.Now(), k)
		if !r.OK() { // the burst changed under us
			continue
		}
		d := r.Delay()
		if d <= 0 {
			return k, nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
			return k, nil
		case <-changed:
			t.Stop()
			r.Cancel()
		case <-done:
			t.Stop()
			r.Cancel()
			return 0, net.ErrClosed
		}
	}
}

func (l *Limiter) count(n int) {
	if n > 0 {
		l.sent.Add(int64(n))
		l.meter.Add(int64(n))
	}
}

// Dial wraps dial so that every connection it makes writes through l.
func (l *Limiter) Dial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &limitedConn{Conn: c, l: l, closed: make(chan struct{})}, nil
	}
}

// limitedConn is a connection whose writes go through a Limiter; closing
// it releases a write that waits.
type limitedConn struct {
	net.Conn
	l      *Limiter
	closed chan struct{}
	once   sync.Once
}

func (c *limitedConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		k, err := c.l.take(c.closed, len(p))
		if err != nil {
			return written, err
		}
		n, err := c.Conn.Write(p[:k])
		written += n
		c.l.count(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// Meter measures the achieved upload rate: the bytes sent over the last
// MeterWindow, divided by the time within it when the uploader wanted to
// send (it had uploads in flight that the schedule did not pause), so that
// an idle hour or a paused window does not read as a slow link (the plan
// counts a schedule's pauses by their share of the week).
type Meter struct {
	mono func() time.Duration

	mu      sync.Mutex
	at      int64 // the second the last bucket is
	bytes   [meterSeconds]int64
	wanted  [meterSeconds]bool
	wanting bool
}

// MeterWindow is the span the achieved rate is measured over.
const MeterWindow = meterSeconds * time.Second

const meterSeconds = 300

// NewMeter returns a meter on the monotonic clock mono.
func NewMeter(mono func() time.Duration) *Meter { return &Meter{mono: mono} }

// advance moves the buckets to now, marking the seconds passed with
// whether the uploader wanted to send. Under mu.
func (m *Meter) advance() int {
	now := int64(m.mono() / time.Second)
	if now-m.at >= meterSeconds {
		m.bytes, m.wanted = [meterSeconds]int64{}, [meterSeconds]bool{}
		m.at = now - meterSeconds
	}
	for m.at < now {
		m.at++
		i := m.at % meterSeconds
		m.bytes[i], m.wanted[i] = 0, m.wanting
	}
	return int(now % meterSeconds)
}

// Add counts n bytes sent now.
func (m *Meter) Add(n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.advance()
	m.bytes[i] += n
	m.wanted[i] = true
}

// SetWanting says whether the uploader wants to send from now on.
func (m *Meter) SetWanting(w bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.advance()
	m.wanting = w
	if w {
		m.wanted[i] = true
	}
}

// Rate is the achieved rate in bytes a second, and false when the
// uploader wanted to send for less than 10 s of the window (too little to
// tell).
func (m *Meter) Rate() (float64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance()
	var sum int64
	var wanted int
	for i := range meterSeconds {
		sum += m.bytes[i]
		if m.wanted[i] {
			wanted++
		}
	}
	if wanted < 10 {
		return 0, false
	}
	return float64(sum) / float64(wanted), true
}
