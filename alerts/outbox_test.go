package alerts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func ev(id string) (Event, []byte) {
	e := Event{Schema: Schema, ID: id, Type: Test, State: Once, Time: t0}
	b, _ := json.Marshal(e)
	return e, b
}

func TestOutboxOrderAndBound(t *testing.T) {
	o := NewOutbox("", 3)
	for _, id := range []string{"a", "b", "c"} {
		e, b := ev(id)
		o.Add(e, b, []string{"w", "m"})
	}
	head := func(target string) string {
		e, _, _, ok := o.Head(target)
		if !ok {
			return ""
		}
		return e.ID
	}
	if head("w") != "a" || head("m") != "a" || head("x") != "" {
		t.Fatalf("heads: %q %q %q", head("w"), head("m"), head("x"))
	}
	o.Update("a", "w", func(d *Delivery) { d.State = Delivered })
	if head("w") != "b" || head("m") != "a" {
		t.Fatalf("after a to w: %q %q", head("w"), head("m"))
	}
	// Full: the oldest settled event goes first; "a" still waits for m.
	o.Update("b", "w", func(d *Delivery) { d.State = Delivered })
	o.Update("b", "m", func(d *Delivery) { d.State = Delivered })
	e, b := ev("d")
	if dropped := o.Add(e, b, []string{"w"}); dropped != 0 {
		t.Fatalf("dropped %d with a settled event to spare", dropped)
	}
	var ids []string
	for _, en := range o.Recent(10) {
		ids = append(ids, en.Event.ID)
	}
	if strings.Join(ids, ",") != "d,c,a" {
		t.Fatalf("kept %v, want d,c,a (b settled, went first)", ids)
	}
	// Every event waits: the oldest is dropped and counted.
	e, b = ev("e")
	if dropped := o.Add(e, b, []string{"w"}); dropped != 1 {
		t.Fatalf("dropped %d, want 1", dropped)
	}
	if pending, dropped := o.Waiting(); dropped != 1 || pending != 4 {
		t.Errorf("waiting %d dropped %d", pending, dropped)
	}
	if head("m") != "c" {
		t.Errorf("m's head after a was dropped: %q", head("m"))
	}
}

func TestOutboxFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.json")
	o := NewOutbox(path, 10)
	if err := o.Save(); err != nil || fileExists(path) {
		t.Fatalf("saved before it was loaded: %v", err)
	}
	e, b := ev("old")
	o.Add(e, b, []string{"w", "gone"})
	if _, had, _, err := o.Load([]string{"w", "gone"}, t0); err != nil || had {
		t.Fatalf("load of no file: %v %v", had, err)
	}
	o.SetOpen([]OpenCondition{{ID: "old", Type: CameraDown, Camera: "door", Since: t0}})
	if err := o.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file: %v %v", fi, err)
	}

	// The next run: its own event first in memory, the file's before it;
	// a target no longer configured loses its deliveries.
	o2 := NewOutbox(path, 10)
	e2, b2 := ev("new")
	o2.Add(e2, b2, []string{"w"})
	open, had, clean, err := o2.Load([]string{"w"}, t0.Add(time.Hour))
	if err != nil || !had || clean || len(open) != 1 || open[0].Camera != "door" {
		t.Fatalf("load: %v %v %v %+v", err, had, clean, open)
	}
	got := o2.Recent(10)
	if len(got) != 2 || got[1].Event.ID != "old" || got[0].Event.ID != "new" {
		t.Fatalf("after load: %+v", got)
	}
	if d := got[1].Deliveries; d[0].State != Pending || d[1].State != Dropped {
		t.Errorf("deliveries of old: %+v", d)
	}
	if head, body, _, _ := o2.Head("w"); head.ID != "old" || string(body) != string(b) {
		t.Errorf("the file's event is due first, byte for byte: %s %s", head.ID, body)
	}

	// A file that cannot be read is moved aside, kept, and the outbox
	// starts from what it holds.
	os.WriteFile(path, []byte("{garbage"), 0o600)
	o3 := NewOutbox(path, 10)
	if _, _, _, err := o3.Load(nil, t0); err == nil || !strings.Contains(err.Error(), "moved aside") {
		t.Fatalf("garbage: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if fileExists(path) || len(entries) != 1 || !strings.HasPrefix(names[0], "alerts.json.corrupt-") {
		t.Errorf("folder after garbage: %v", names)
	}
	if err := o3.Save(); err != nil || !fileExists(path) {
		t.Errorf("a new outbox after garbage: %v", err)
	}
}

func TestEventIDsAreUniqueAndStable(t *testing.T) {
	s1 := New(Config{}, Deps{RunID: "aaa"})
	s2 := New(Config{}, Deps{}) // random run id
	s3 := New(Config{}, Deps{})
	seen := map[string]bool{}
	for _, s := range []*Service{s1, s2, s3} {
		for range 100 {
			id := s.newID()
			if seen[id] {
				t.Fatalf("id %s twice", id)
			}
			seen[id] = true
		}
	}
	if id := s1.newID(); id != "aaa-101" {
		t.Errorf("id %s", id)
	}
	if len(s2.deps.RunID) != 12 || s2.deps.RunID == s3.deps.RunID {
		t.Errorf("run ids %q %q: want 12 random hex digits each", s2.deps.RunID, s3.deps.RunID)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
