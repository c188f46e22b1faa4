// Package logring keeps the most recent log lines in memory, the daemon's
// and each camera's, for the log-tail API: bounded rings that can be read
// from the end and followed as new lines arrive.
//
// A Hub is an io.Writer placed in the daemon's log pipeline (after
// redaction): every JSON line goes into the daemon's ring, and a line with a
// "camera" field also goes into that camera's ring.
package logring

import (
	"bytes"
	"sync"
)

// MaxLineBytes caps one kept line; longer lines are cut.
const MaxLineBytes = 4096

// Line is one kept log line.
type Line struct {
	// Seq numbers lines from 1, per ring, without gaps.
	Seq uint64
	// Text is the line without its trailing newline.
	Text string
}

// Ring holds the last lines written to it. It is safe for concurrent use.
type Ring struct {
	mu      sync.Mutex
	lines   []Line // circular, len == capacity once full
	next    int    // index the next line goes to
	seq     uint64 // Seq of the newest line
	changed chan struct{}
}

// NewRing returns a ring that keeps the last capacity lines.
func NewRing(capacity int) *Ring {
	return &Ring{lines: make([]Line, 0, max(1, capacity)), changed: make(chan struct{})}
}

// Append adds one line.
func (r *Ring) Append(text string) {
	if len(text) > MaxLineBytes {
		text = text[:MaxLineBytes]
	}
	r.mu.Lock()
	r.seq++
	l := Line{Seq: r.seq, Text: text}
	if len(r.lines) < cap(r.lines) {
		r.lines = append(r.lines, l)
	} else {
		r.lines[r.next] = l
	}
	r.next = (r.next + 1) % cap(r.lines)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Tail returns up to n of the newest lines, oldest first.
func (r *Ring) Tail(n int) []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.after(r.seq - uint64(min(n, len(r.lines))))
}

// Since returns the lines after seq that are still kept, oldest first, and
// a channel that is closed when a line is appended after those. A follower
// loops: read Since(last), send, wait on the channel.
func (r *Ring) Since(seq uint64) ([]Line, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.after(seq), r.changed
}

// after must be called with mu held.
func (r *Ring) after(seq uint64) []Line {
	if seq >= r.seq {
		return nil
	}
	n := min(int(r.seq-seq), len(r.lines))
	out := make([]Line, 0, n)
	start := (r.next - n + cap(r.lines)) % cap(r.lines) // also right before the ring fills: next == len
	for i := range n {
		out = append(out, r.lines[(start+i)%cap(r.lines)])
	}
	return out
}

// Hub routes log lines into the daemon's ring and each camera's ring.
type Hub struct {
	daemon    *Ring
	perCamera int

	mu      sync.Mutex
	cameras map[string]*Ring
}

// NewHub returns a Hub keeping daemonLines for the daemon and
// cameraLines for each camera.
func NewHub(daemonLines, cameraLines int) *Hub {
	return &Hub{daemon: NewRing(daemonLines), perCamera: cameraLines, cameras: map[string]*Ring{}}
}

// Daemon is the ring of every line.
func (h *Hub) Daemon() *Ring { return h.daemon }

// Camera is the ring of one camera's lines, created on first use.
func (h *Hub) Camera(name string) *Ring {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.cameras[name]
	if !ok {
		r = NewRing(h.perCamera)
		h.cameras[name] = r
	}
	return r
}

var cameraKey = []byte(`"camera":"`)

// Write implements io.Writer for one or more newline-terminated JSON lines.
func (h *Hub) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		text := string(line)
		h.daemon.Append(text)
		if i := bytes.Index(line, cameraKey); i >= 0 {
			rest := line[i+len(cameraKey):]
			if j := bytes.IndexByte(rest, '"'); j > 0 {
				h.Camera(string(rest[:j])).Append(text)
			}
		}
	}
	return len(p), nil
}
