package loginbudget

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// clock is a monotonic clock the test moves.
type clock struct{ now time.Duration }

func (c *clock) mono() time.Duration { return c.now }

var lim = Limit{Max: 3, Window: 30 * time.Minute}

// step is one action on the budget: advance the clock, then take a login
// at host with cred and end it as told, or grant.
type step struct {
	at    time.Duration // the clock, from the start
	host  string        // default "cam"
	cred  string        // default "wrong"
	grant bool          // Grant instead of Take
	end   string        // "refused", "accepted", "release", "" (left in flight)
	// What Take must say: ok, or spent with this wait and count.
	spent    bool
	wait     time.Duration
	failures int
}

func TestBudget(t *testing.T) {
	min := time.Minute
	tests := []struct {
		name  string
		steps []step
	}{
		{"three refused, then spent until the first leaves the window", []step{
			{at: 0, end: "refused"},
			{at: 1 * time.Second, end: "refused"},
			{at: 3 * time.Second, end: "refused"},
			{at: 7 * time.Second, spent: true, wait: 30*min - 7*time.Second, failures: 3},
			{at: 29 * min, spent: true, wait: min, failures: 3},
			{at: 30 * min, end: "refused"}, // the first aged out: one slot
			{at: 30*min + 500*time.Millisecond, spent: true, wait: 500 * time.Millisecond, failures: 3},
			{at: 30*min + time.Second, end: "release"}, // the second aged out
		}},
		{"the address is the host: another camera at it shares the count", []step{
			{at: 0, cred: "a", end: "refused"},
			{at: 0, cred: "b", end: "refused"},
			{at: 0, cred: "c", end: "refused"},
			{at: time.Second, cred: "d", spent: true, wait: 30*min - time.Second, failures: 3},
			{at: time.Second, host: "other", cred: "d", end: "refused"},
		}},
		{"logins in flight count as if they would fail", []step{
			{at: 0, end: ""},
			{at: 0, end: ""},
			{at: 0, end: "refused"},
			{at: time.Second, spent: true, wait: 30*min - time.Second, failures: 3}, // the refused one leaves first
		}},
		{"a release counts nothing", []step{
			{at: 0, end: "release"}, {at: 0, end: "release"}, {at: 0, end: "release"}, {at: 0, end: "release"},
			{at: 0, end: "refused"},
		}},
		{"credentials accepted last time go ahead whatever the count", []step{
			{at: 0, cred: "right", end: "accepted"},
			{at: 0, end: "refused"}, {at: 0, end: "refused"}, {at: 0, end: "refused"},
			{at: time.Second, spent: true, wait: 30*min - time.Second, failures: 3},
			{at: time.Second, cred: "right", end: "accepted"},
			{at: 2 * time.Second, cred: "right", end: "refused"}, // the camera's password changed: counted
			{at: 3 * time.Second, cred: "right", spent: true, wait: 30*min - 3*time.Second, failures: 4},
		}},
		{"a grant is one login past the budget, counted if refused", []step{
			{at: 0, end: "refused"}, {at: 0, end: "refused"}, {at: 0, end: "refused"},
			{at: time.Second, spent: true, wait: 30*min - time.Second, failures: 3},
			{at: time.Second, grant: true},
			{at: time.Second, end: "refused"},
			{at: 2 * time.Second, spent: true, wait: 30*min - 2*time.Second, failures: 4},
			{at: 30 * min, end: "release"}, // the three at 0 left; the one at 1s stays
		}},
		{"a grant is for the credentials granted", []step{
			{at: 0, end: "refused"}, {at: 0, end: "refused"}, {at: 0, end: "refused"},
			{at: 0, cred: "new", grant: true},
			{at: time.Second, spent: true, wait: 30*min - time.Second, failures: 3},
			{at: time.Second, cred: "new", end: "accepted"},
			{at: 2 * time.Second, cred: "new", end: "accepted"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{}
			b := New(c.mono)
			for i, s := range tt.steps {
				c.now = s.at
				host, cred := s.host, s.cred
				if host == "" {
					host = "cam"
				}
				if cred == "" {
					cred = "wrong"
				}
				if s.grant {
					b.Grant(host, cred)
					continue
				}
				checked := b.Check(host, cred, lim)
				l, err := b.Take(host, cred, lim)
				if (checked == nil) != (err == nil) || (err != nil && checked.Error() != err.Error()) {
					t.Fatalf("step %d: Check says %v, Take %v", i, checked, err)
				}
				var se *SpentError
				switch {
				case s.spent && !errors.As(err, &se):
					t.Fatalf("step %d: Take = %v, want spent", i, err)
				case s.spent:
					if se.Wait != s.wait || se.Failures != s.failures || !errors.Is(err, ErrSpent) {
						t.Fatalf("step %d: spent for %v with %d failures, want %v with %d", i, se.Wait, se.Failures, s.wait, s.failures)
					}
					continue
				case err != nil:
					t.Fatalf("step %d: Take = %v, want a login", i, err)
				}
				switch s.end {
				case "refused":
					l.Refused()
				case "accepted":
					l.Accepted()
				case "release":
					l.Release()
				}
			}
		})
	}
}

// Ending a login twice counts once, and wakes whoever waits on Changed.
func TestLoginEndsOnce(t *testing.T) {
	c := &clock{}
	b := New(c.mono)
	ch := b.Changed()
	l, err := b.Take("cam", "k", lim)
	if err != nil {
		t.Fatal(err)
	}
	l.Refused()
	l.Refused()
	l.Release()
	select {
	case <-ch:
	default:
		t.Error("Changed not closed after a login ended")
	}
	if n := b.Failures("cam", lim); n != 1 {
		t.Errorf("failures %d, want 1", n)
	}
	c.now = 30 * time.Minute
	if n := b.Failures("cam", lim); n != 0 {
		t.Errorf("failures %d after the window, want 0", n)
	}
}

func TestHostAndKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.168.0.1": "192.168.0.1", "192.168.0.1:554": "192.168.0.1", "Cam.Local:80": "cam.local",
		"[fe80::1]:554": "fe80::1", "fe80::1": "fe80::1", "[fe80::1]": "fe80::1",
	} {
		if got := Host(in); got != want {
			t.Errorf("Host(%q) = %q, want %q", in, got, want)
		}
	}
	k := Key("admin", "p@ss")
	if k == Key("admin", "p@sS") || k == Key("admin:", "p@ss"[1:]) || strings.Contains(k, "p@ss") {
		t.Errorf("keys do not tell credentials apart, or show the password: %s", k)
	}
	e := (&SpentError{Host: "cam", Failures: 3, Limit: lim, Wait: 90 * time.Second}).Error()
	if !strings.Contains(e, "3 failed logins at cam within 30m0s") || !strings.Contains(e, "next login in 1m30s") {
		t.Errorf("error %q", e)
	}
}
