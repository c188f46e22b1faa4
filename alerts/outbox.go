package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/cctvd/cctvd/internal/durable"
	"github.com/cctvd/cctvd/layout"
)

// DeliveryState is where one event stands with one target.
type DeliveryState string

// The delivery states.
const (
	Pending   DeliveryState = "pending"   // not delivered yet: tried again with backoff
	Delivered DeliveryState = "delivered" // the target took it
	Rejected  DeliveryState = "rejected"  // the target refused it for good (a 4xx answer)
	Expired   DeliveryState = "expired"   // tried for RetryFor without success
	Dropped   DeliveryState = "dropped"   // pushed out of a full outbox, or its target is no longer configured
)

// Delivery is one event's delivery to one target.
type Delivery struct {
	Target   string        `json:"target"`
	State    DeliveryState `json:"state"`
	Attempts int           `json:"attempts"`
	// TriedSeconds is how long the delivery has been tried, on the
	// monotonic clock, over every run of the daemon.
	TriedSeconds float64 `json:"triedSeconds"`
	LastError    string  `json:"lastError,omitempty"`
	// At is when it settled (delivered, rejected, expired, dropped).
	At time.Time `json:"at,omitzero"`

	next time.Duration // mono: no attempt before (this run only)
	last time.Duration // mono: the last attempt began (this run only; 0: none)
}

// entry is one event in the outbox. Body is the JSON every attempt sends,
// byte for byte (so a signature is the same on every attempt).
type entry struct {
	event      Event
	body       []byte
	deliveries []Delivery
}

func (e *entry) pending() bool {
	for _, d := range e.deliveries {
		if d.State == Pending {
			return true
		}
	}
	return false
}

// outboxFile is the outbox on disk.
type outboxFile struct {
	Format string `json:"format"`
	// CleanStop: the run that wrote it stopped cleanly (it wrote
	// daemon-stop).
	CleanStop bool            `json:"cleanStop"`
	Open      []OpenCondition `json:"open"`
	Events    []fileEntry     `json:"events"`
}

type fileEntry struct {
	Body       json.RawMessage `json:"body"`
	Deliveries []Delivery      `json:"deliveries"`
}

const outboxFormat = "cctvd-alerts-outbox/1"

// Outbox holds the events and their deliveries, in order, bounded. It is
// safe for concurrent use. Save writes it to its file (durable: fsync,
// rename, fsync of the folder) when the state folder is this daemon's;
// until then, and while it is not, it is kept in memory.
type Outbox struct {
	path string
	max  int

	mu        sync.Mutex
	entries   []*entry
	open      []OpenCondition
	cleanStop bool
	loaded    bool
	gen       uint64 // bumped at every change
	dropped   int64  // events pushed out while a delivery waited
	changed   chan struct{}

	saveMu   sync.Mutex // one save at a time
	savedGen uint64     // under mu
}

// NewOutbox returns an empty outbox kept in path ("" for memory only)
// holding at most max events.
func NewOutbox(path string, max int) *Outbox {
	if max <= 0 {
		max = 500
	}
	return &Outbox{path: path, max: max, changed: make(chan struct{})}
}

// bump marks a change and wakes who waits for one; under mu.
func (o *Outbox) bump() {
	o.gen++
	close(o.changed)
	o.changed = make(chan struct{})
}

// Changed is closed at the next change.
func (o *Outbox) Changed() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.changed
}

// Add appends an event to be delivered to targets. It returns the number
// of events with a delivery still waiting that a full outbox pushed out.
func (o *Outbox) Add(ev Event, body []byte, targets []string) (dropped int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := &entry{event: ev, body: body}
	for _, t := range targets {
		e.deliveries = append(e.deliveries, Delivery{Target: t, State: Pending})
	}
	o.entries = append(o.entries, e)
	dropped = o.trim(ev.Time)
	o.bump()
	return dropped
}

// trim keeps at most max events: the oldest settled go first, then the
// oldest still waiting (their deliveries dropped). Under mu.
func (o *Outbox) trim(now time.Time) (dropped int) {
	for len(o.entries) > o.max {
		i := 0
		for i < len(o.entries) && o.entries[i].pending() {
			i++
		}
		if i == len(o.entries) { // every event waits: the oldest goes
			i = 0
			dropped++
			o.dropped++
		}
		o.entries = append(o.entries[:i], o.entries[i+1:]...)
	}
	return dropped
}

// Head returns the oldest event waiting for target, with its delivery.
func (o *Outbox) Head(target string) (Event, []byte, Delivery, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.entries {
		for _, d := range e.deliveries {
			if d.Target == target && d.State == Pending {
				return e.event, e.body, d, true
			}
		}
	}
	return Event{}, nil, Delivery{}, false
}

// Update changes the delivery of event id to target with fn.
func (o *Outbox) Update(id, target string, fn func(d *Delivery)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.entries {
		if e.event.ID != id {
			continue
		}
		for i := range e.deliveries {
			if e.deliveries[i].Target == target {
				fn(&e.deliveries[i])
				o.bump()
				return
			}
		}
	}
}

// SetOpen records the conditions raised now, for the next run.
func (o *Outbox) SetOpen(open []OpenCondition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.open = append([]OpenCondition(nil), open...)
	o.bump()
}

// SetCleanStop records whether this run has stopped cleanly.
func (o *Outbox) SetCleanStop(clean bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cleanStop = clean
	o.bump()
}

// Entry is an event with its deliveries, as the API shows it.
type Entry struct {
	Event      Event      `json:"event"`
	Deliveries []Delivery `json:"deliveries"`
}

// Recent returns the newest n events, newest first.
func (o *Outbox) Recent(n int) []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Entry
	for i := len(o.entries) - 1; i >= 0 && len(out) < n; i-- {
		e := o.entries[i]
		out = append(out, Entry{Event: e.event, Deliveries: append([]Delivery(nil), e.deliveries...)})
	}
	return out
}

// Waiting counts the deliveries still pending, and the events dropped
// while one waited.
func (o *Outbox) Waiting() (pending int, dropped int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.entries {
		for _, d := range e.deliveries {
			if d.State == Pending {
				pending++
			}
		}
	}
	return pending, o.dropped
}

// Loaded says whether the file has been read.
func (o *Outbox) Loaded() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.loaded
}

// Load reads the file and puts its events before those of this run;
// deliveries to targets not in targets are dropped. It returns the
// conditions the previous run left raised and whether it stopped cleanly
// (false, false when there was no file). A file that cannot be decoded is
// moved aside (kept) and the outbox starts empty. Load reads only once.
func (o *Outbox) Load(targets []string, now time.Time) (open []OpenCondition, hadFile, cleanStop bool, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.loaded || o.path == "" {
		o.loaded = true
		return nil, false, false, nil
	}
	data, err := os.ReadFile(o.path)
	if errors.Is(err, fs.ErrNotExist) {
		o.loaded = true
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, fmt.Errorf("alerts: read the outbox: %w", err)
	}
	o.loaded = true
	var f outboxFile
	if err := json.Unmarshal(data, &f); err != nil || f.Format != outboxFormat {
		o.bump() // written anew at the next save
		aside := layout.Aside(o.path, "corrupt", now)
		if rerr := os.Rename(o.path, aside); rerr != nil {
			return nil, false, false, fmt.Errorf("alerts: the outbox %s cannot be read and cannot be moved aside: %v", o.path, rerr)
		}
		return nil, false, false, fmt.Errorf("alerts: the outbox cannot be read (moved aside to %s, kept): %v", aside, err)
	}
	known := map[string]bool{}
	for _, t := range targets {
		known[t] = true
	}
	var old []*entry
	seen := map[string]bool{}
	for _, fe := range f.Events {
		var ev Event
		if json.Unmarshal(fe.Body, &ev) != nil || ev.ID == "" || seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		e := &entry{event: ev, body: []byte(fe.Body)}
		for _, d := range fe.Deliveries {
			if d.State == Pending && !known[d.Target] {
				d.State, d.LastError, d.At = Dropped, "the target is no longer configured", now
			}
			e.deliveries = append(e.deliveries, d)
		}
		old = append(old, e)
	}
	for _, e := range o.entries {
		if !seen[e.event.ID] {
			old = append(old, e)
		}
	}
	o.entries = old
	o.trim(now)
	o.bump()
	return f.Open, true, f.CleanStop, nil
}

// Save writes the outbox to its file if it changed since the last save.
// Call it only while the state folder is this daemon's.
func (o *Outbox) Save() error {
	if o.path == "" {
		return nil
	}
	o.saveMu.Lock()
	defer o.saveMu.Unlock()
	o.mu.Lock()
	if !o.loaded || o.savedGen == o.gen {
		o.mu.Unlock()
		return nil
	}
	f := outboxFile{Format: outboxFormat, CleanStop: o.cleanStop, Open: o.open}
	if f.Open == nil {
		f.Open = []OpenCondition{}
	}
	f.Events = make([]fileEntry, 0, len(o.entries))
	for _, e := range o.entries {
		f.Events = append(f.Events, fileEntry{Body: e.body, Deliveries: e.deliveries})
	}
	gen := o.gen
	data, err := json.Marshal(f)
	o.mu.Unlock()
	if err != nil {
		return fmt.Errorf("alerts: encode the outbox: %w", err)
	}
	if err := durable.WriteFile(o.path, data, 0o600); err != nil {
		return fmt.Errorf("alerts: write the outbox: %w", err)
	}
	o.mu.Lock()
	if gen > o.savedGen {
		o.savedGen = gen
	}
	o.mu.Unlock()
	return nil
}

// Saved says whether every change so far is in the file.
func (o *Outbox) Saved() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.path == "" || o.savedGen == o.gen
}
