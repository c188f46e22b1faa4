package api

import (
	"errors"
	"testing"
	"time"
)

// A live ticket opens one upgrade of one camera's live view, under the
// settings it was issued with, until it expires.
func TestTickets(t *testing.T) {
	now := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, other := &state{token: "a"}, &state{token: "b"}
	tests := []struct {
		name   string
		after  time.Duration // from issue to redeem
		camera string
		st     *state
		twice  bool
		want   bool
	}{
		{"at once", 0, "door", st, false, true},
		{"just before it expires", TicketTTL - time.Millisecond, "door", st, false, true},
		{"as it expires", TicketTTL, "door", st, false, false},
		{"long after", time.Hour, "door", st, false, false},
		{"another camera", 0, "yard", st, false, false},
		{"after a reload", 0, "door", other, false, false},
		{"used twice", time.Second, "door", st, true, false},
	}
	for _, tt := range tests {
		now = time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
		tk := newTickets(TicketTTL, 8, clock)
		v, exp, err := tk.issue("door", st)
		if err != nil || len(v) != 64 || !exp.Equal(now.Add(TicketTTL)) {
			t.Fatalf("%s: issue: %q %v %v", tt.name, v, exp, err)
		}
		now = now.Add(tt.after)
		got := tk.redeem(v, tt.camera, tt.st)
		if tt.twice {
			got = tk.redeem(v, tt.camera, tt.st)
		}
		if got != tt.want {
			t.Errorf("%s: redeemed %v, want %v", tt.name, got, tt.want)
		}
		if tk.outstanding() != 0 {
			t.Errorf("%s: a ticket presented is kept", tt.name)
		}
	}
}

// Outstanding tickets are bounded; expired ones make room.
func TestTicketsBounded(t *testing.T) {
	now := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	tk := newTickets(TicketTTL, 3, func() time.Time { return now })
	seen := map[string]bool{}
	for range 3 {
		v, _, err := tk.issue("door", nil)
		if err != nil || seen[v] {
			t.Fatalf("issue: %v (repeated: %v)", err, seen[v])
		}
		seen[v] = true
	}
	if _, _, err := tk.issue("door", nil); !errors.Is(err, errTooManyTickets) {
		t.Errorf("a fourth ticket: %v", err)
	}
	if tk.redeem("not-a-ticket", "door", nil) {
		t.Error("a made-up ticket redeemed")
	}
	now = now.Add(TicketTTL)
	if _, _, err := tk.issue("door", nil); err != nil || tk.outstanding() != 1 {
		t.Errorf("after the others expired: %v, %d outstanding", err, tk.outstanding())
	}
}
