package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"time"
)

// Live tickets: a browser's WebSocket cannot send the Authorization
// header, and the token must not travel in a URL (logs, history, a
// proxy's access log). So the page asks for a ticket with the token
// (POST .../live/ticket, the usual bearer header) and opens the WebSocket
// with ?ticket=: a random value good for one upgrade, of one camera, for
// TicketTTL, and only under the settings (token) it was issued with. Used
// or expired, a ticket is worth nothing, so one that reaches a log has
// already lost its use. Clients that can send headers (scripts, other
// NVRs) send Authorization: Bearer on the upgrade and need no ticket.

// TicketTTL is how long a live ticket is good for.
const TicketTTL = 30 * time.Second

// maxTickets bounds the tickets outstanding, so that asking for them
// cannot fill memory; more are refused until some expire or are used.
const maxTickets = 256

var errTooManyTickets = errors.New("too many live tickets outstanding: try again in a few seconds")

type ticket struct {
	camera  string
	st      *state // the settings in force when it was issued
	expires time.Time
}

// tickets are the live tickets outstanding, by the SHA-256 of their value.
type tickets struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[[32]byte]ticket
}

func newTickets(ttl time.Duration, max int, now func() time.Time) *tickets {
	return &tickets{ttl: ttl, max: max, now: now, m: map[[32]byte]ticket{}}
}

// issue makes a ticket for one upgrade of camera's live view under st.
func (t *tickets) issue(camera string, st *state) (string, time.Time, error) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, v := range t.m {
		if !now.Before(v.expires) {
			delete(t.m, k)
		}
	}
	if len(t.m) >= t.max {
		return "", time.Time{}, errTooManyTickets
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	value := hex.EncodeToString(b)
	exp := now.Add(t.ttl)
	t.m[sha256.Sum256([]byte(value))] = ticket{camera: camera, st: st, expires: exp}
	return value, exp, nil
}

// redeem uses the ticket value for camera under st: true once, while it
// has not expired, for the camera and settings it was issued for. A
// ticket presented is gone, whether it was good or not.
func (t *tickets) redeem(value, camera string, st *state) bool {
	k := sha256.Sum256([]byte(value))
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	tk, ok := t.m[k]
	delete(t.m, k)
	return ok && now.Before(tk.expires) && tk.camera == camera && tk.st == st
}

// outstanding counts the tickets not yet used (expired ones included until
// the next issue).
func (t *tickets) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
