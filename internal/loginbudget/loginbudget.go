// Package loginbudget keeps the failed logins at each camera address under
// the camera's lockout. Cameras lock an address out after a few failed
// logins (Hikvision's "illegal login lock", Dahua: about five within 30
// minutes, then the address is refused for about 30 minutes, the owner's
// phone app on the same network too), and every part of cctvd that logs
// in (ffmpeg's runs, ffprobe's stream probes, discovery's ONVIF calls and
// RTSP DESCRIBEs) takes its login from one Budget, so that together they
// stay under a Limit: at most Max refused logins per address within
// Window, logins in flight counted as if they would fail.
//
// An address is a host (IP or name), whatever the port or path: a camera
// counts the logins of its RTSP and HTTP (ONVIF) services together.
// Credentials the camera accepted at its last login go ahead whatever the
// count: they do not fail, and a camera that is recording must be able to
// reconnect. An operator's retry (or new credentials in a reload) is a
// Grant: the next login with those credentials goes ahead once even when
// the budget is spent, and counts if refused, like any other.
//
// Time is the monotonic clock's (retries are ordered on it, never on the
// wall clock). The budget lives in memory: a restart of the daemon starts
// it afresh.
package loginbudget

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"
)

// Limit is how many refused logins an address may get within a window.
type Limit struct {
	// Max refused logins within Window (at least 1).
	Max int
	// Window is how long a refused login counts.
	Window time.Duration
}

func (l Limit) String() string { return fmt.Sprintf("%d in %v", l.Max, l.Window) }

// MaxWindow is the longest window a failure is kept for.
const MaxWindow = 24 * time.Hour

// maxFailures bounds the failures kept per address, maxCreds the
// credentials remembered per address.
const (
	maxFailures = 256
	maxCreds    = 16
)

// ErrSpent is wrapped by SpentError: the address's budget is spent.
var ErrSpent = errors.New("failed-login budget spent")

// SpentError says an address's budget is spent, and for how long.
type SpentError struct {
	Host string
	// Failures is the refused logins within the window (and the logins in
	// flight, counted as if they would fail).
	Failures int
	Limit    Limit
	// Wait is how long until a login may go (at most: a login in flight
	// that succeeds frees its slot earlier).
	Wait time.Duration
}

func (e *SpentError) Error() string {
	return fmt.Sprintf("%d failed logins at %s within %v (the most cctvd allows itself: cameras lock out an address after about five); next login in %v",
		e.Failures, e.Host, e.Limit.Window, e.Wait.Round(time.Second))
}

func (e *SpentError) Unwrap() error { return ErrSpent }

// Key identifies credentials without keeping them: a SHA-256 of the user
// name and password, for the budget's memory of which were accepted.
func Key(user, password string) string {
	h := sha256.Sum256([]byte(user + "\x00" + password))
	return hex.EncodeToString(h[:])
}

// Host is the address a login is counted at: the host of hostport
// (host[:port], an IPv6 address in brackets or not), in lower case.
func Host(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]"))
}

// outcome is what became of the last login with some credentials.
type outcome int

const (
	unknown outcome = iota
	accepted
	refused
)

type address struct {
	failures []time.Duration // monotonic, ascending
	inFlight int             // logins taken that may yet fail
	creds    map[string]outcome
	order    []string        // creds, oldest first, to bound them
	passes   map[string]bool // credentials granted one login past the budget
}

// Budget counts failed logins per address. Safe for concurrent use.
type Budget struct {
	mono func() time.Duration

	mu      sync.Mutex
	addrs   map[string]*address
	changed chan struct{}
}

// New returns a budget on the monotonic clock mono.
func New(mono func() time.Duration) *Budget {
	return &Budget{mono: mono, addrs: map[string]*address{}, changed: make(chan struct{})}
}

func (b *Budget) addr(host string) *address {
	a := b.addrs[host]
	if a == nil {
		a = &address{creds: map[string]outcome{}, passes: map[string]bool{}}
		b.addrs[host] = a
	}
	return a
}

// notify wakes whoever waits on Changed; b.mu held.
func (b *Budget) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// Changed returns a channel closed at the next change of any address (a
// login ended). A waiter takes again then: a login in flight that
// succeeded frees its slot before its wait ends.
func (b *Budget) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// Login is one login taken from the budget: say how it ended with
// Refused, Accepted or Release (once; later calls do nothing).
type Login struct {
	b        *Budget
	host     string
	cred     string
	inFlight bool // counted in its address's inFlight
	ended    bool
}

// Take asks for one login at host with credentials cred (a Key) under
// lim. It returns the login, or a *SpentError saying how long to wait.
// Credentials the camera accepted last time, and those granted a retry,
// go ahead whatever the count.
func (b *Budget) Take(host, cred string, lim Limit) (*Login, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.mono()
	a := b.addr(host)
	a.prune(now)
	switch {
	case a.creds[cred] == accepted:
		return &Login{b: b, host: host, cred: cred}, nil
	case a.passes[cred]:
		delete(a.passes, cred)
		a.inFlight++
		return &Login{b: b, host: host, cred: cred, inFlight: true}, nil
	}
	if used := a.used(now, lim.Window); used < max(lim.Max, 1) {
		a.inFlight++
		return &Login{b: b, host: host, cred: cred, inFlight: true}, nil
	}
	used, wait := a.spent(now, lim)
	return nil, &SpentError{Host: host, Failures: used, Limit: lim, Wait: wait}
}

// Check says whether a login at host with cred would go now (nil), or
// how long it waits, as Take would, without taking one: a grant stays.
func (b *Budget) Check(host, cred string, lim Limit) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.mono()
	a := b.addr(host)
	a.prune(now)
	if a.creds[cred] == accepted || a.passes[cred] || a.used(now, lim.Window) < max(lim.Max, 1) {
		return nil
	}
	used, wait := a.spent(now, lim)
	return &SpentError{Host: host, Failures: used, Limit: lim, Wait: wait}
}

// Grant lets the next login at host with cred go ahead once whatever the
// count: an operator's retry, or new credentials. If it is refused, it
// counts like any other. It wakes no one (whoever granted it wakes the
// camera that is to use it).
func (b *Budget) Grant(host, cred string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addr(host).passes[cred] = true
}

// Failures is the refused logins at host within lim's window.
func (b *Budget) Failures(host string, lim Limit) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.addrs[host]
	if a == nil {
		return 0
	}
	return a.within(b.mono(), lim.Window)
}

// Refused records a failed login: the camera refused the credentials.
func (l *Login) Refused() { l.end(refused) }

// Accepted records that the camera accepted the credentials.
func (l *Login) Accepted() { l.end(accepted) }

// Release ends a login that never reached the camera's verdict (the
// camera was unreachable, the path wrong, the run stopped): nothing is
// counted, nothing learnt.
func (l *Login) Release() { l.end(unknown) }

func (l *Login) end(o outcome) {
	if l == nil {
		return
	}
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if l.ended {
		return
	}
	l.ended = true
	a := b.addr(l.host)
	if l.inFlight {
		a.inFlight--
	}
	switch o {
	case refused:
		now := b.mono()
		a.failures = append(a.failures, now)
		if len(a.failures) > maxFailures {
			a.failures = a.failures[len(a.failures)-maxFailures:]
		}
		a.remember(l.cred, refused)
	case accepted:
		a.remember(l.cred, accepted)
	}
	b.notify()
}

func (a *address) remember(cred string, o outcome) {
	if _, known := a.creds[cred]; !known {
		a.order = append(a.order, cred)
		if len(a.order) > maxCreds {
			delete(a.creds, a.order[0])
			a.order = a.order[1:]
		}
	}
	a.creds[cred] = o
}

// prune drops failures older than MaxWindow.
func (a *address) prune(now time.Duration) {
	i := sort.Search(len(a.failures), func(i int) bool { return now-a.failures[i] < MaxWindow })
	a.failures = a.failures[i:]
}

// within counts the failures younger than window.
func (a *address) within(now, window time.Duration) int {
	i := sort.Search(len(a.failures), func(i int) bool { return now-a.failures[i] < window })
	return len(a.failures) - i
}

// used is the failures within window and the logins in flight.
func (a *address) used(now, window time.Duration) int { return a.within(now, window) + a.inFlight }

// spent says how many count and how long until one slot frees: the
// logins in flight count as failures now (if all fail, they age out last).
func (a *address) spent(now time.Duration, lim Limit) (int, time.Duration) {
	times := append([]time.Duration(nil), a.failures[len(a.failures)-a.within(now, lim.Window):]...)
	for range a.inFlight {
		times = append(times, now)
	}
	used := len(times)
	k := used - max(lim.Max, 1) // the (k+1)th oldest must leave the window
	if k < 0 {
		return used, 0
	}
	return used, times[k] + lim.Window - now
}
