package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/await"
)

// fakeTarget is a stand-in target (a fake, named as such): it records
// every attempt and answers from its script, then with ok.
type fakeTarget struct {
	name string
	mu   sync.Mutex
	// fail: how many attempts fail before the first success; reject:
	// event types it refuses for good.
	fail     int
	reject   map[Type]bool
	attempts []attempt
	got      chan attempt // every successful delivery
	tried    chan attempt // every attempt
}

type attempt struct {
	id   string
	typ  Type
	body []byte
	ok   bool
}

func newFake(name string, fail int) *fakeTarget {
	return &fakeTarget{name: name, fail: fail, reject: map[Type]bool{}, got: make(chan attempt, 100), tried: make(chan attempt, 1000)}
}

func (f *fakeTarget) Name() string      { return f.name }
func (f *fakeTarget) Kind() string      { return "fake" }
func (f *fakeTarget) Address() string   { return "fake:0" }
func (f *fakeTarget) Wants(t Type) bool { return true }
func (f *fakeTarget) Deliver(_ context.Context, ev Event, body []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := attempt{id: ev.ID, typ: ev.Type, body: append([]byte(nil), body...)}
	var err error
	switch {
	case f.reject[ev.Type]:
		err = errors.Join(errors.New("answered 400"), ErrRejected)
	case f.fail > 0:
		f.fail--
		err = errors.New("answered 500")
	default:
		a.ok = true
	}
	f.attempts = append(f.attempts, a)
	select {
	case f.tried <- a:
	default:
	}
	if a.ok {
		f.got <- a
	}
	return err
}

func (f *fakeTarget) setFail(n int) {
	f.mu.Lock()
	f.fail = n
	f.mu.Unlock()
}

func (f *fakeTarget) tries(id string) []attempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []attempt
	for _, a := range f.attempts {
		if a.id == id {
			out = append(out, a)
		}
	}
	return out
}

// fastConfig retries within milliseconds on the real clock: the tests
// await deliveries, they do not time them.
func fastConfig(path string) Config {
	return Config{OutboxPath: path, Poll: 5 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond,
		StopGrace: time.Second, StartWait: time.Second, Host: "nvr-1", Version: "1.2.3", CameraDownAfter: time.Hour}
}

// started runs s until the test ends (or stop is called).
func started(t *testing.T, s *Service) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			await.Done(t, 10*time.Second, "the alerts service's stop", func() { <-done })
		})
	}
	t.Cleanup(stop)
	return stop
}

func awaitType(t *testing.T, f *fakeTarget, typ Type) attempt {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case a := <-f.got:
			if a.typ == typ {
				return a
			}
		case <-deadline:
			t.Fatalf("%s: no %s delivered", f.name, typ)
		}
	}
}

func TestARetryCarriesTheSameIDAndBody(t *testing.T) {
	f := newFake("fake-1", 3)
	s := New(fastConfig(""), Deps{Log: zerolog.Nop(), Targets: []Target{f}, RunID: "run1"})
	s.SetPersistent(true)
	started(t, s)
	a := awaitType(t, f, DaemonStart)
	tries := f.tries(a.id)
	if len(tries) != 4 || a.id != "run1-1" {
		t.Fatalf("daemon-start %s: %d attempts, want 3 failures and a success", a.id, len(tries))
	}
	for _, tr := range tries {
		if !bytes.Equal(tr.body, tries[0].body) {
			t.Fatalf("a retry sent another body:\n%s\n%s", tr.body, tries[0].body)
		}
	}
	var ev Event
	if err := json.Unmarshal(a.body, &ev); err != nil || ev.ID != a.id || ev.Schema != Schema || ev.Host != "nvr-1" || ev.Version != "1.2.3" {
		t.Fatalf("body %s: %v", a.body, err)
	}
	v := awaitView(t, s, "the delivery settled", func(v View) bool {
		return len(v.Events) > 0 && v.Events[0].Deliveries[0].State != Pending
	})
	if v.Events[0].Deliveries[0].State != Delivered || v.Events[0].Deliveries[0].Attempts != 4 || v.Targets[0].State != "ok" {
		t.Errorf("view: %+v", v)
	}
}

// awaitView returns the service's view once ok says it is what the test
// waits for, awaiting the outbox's changes (a delivery reaches the target
// before the service has recorded it).
func awaitView(t *testing.T, s *Service, what string, ok func(View) bool) View {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		changed := s.outbox.Changed()
		if v := s.View(10); ok(v) {
			return v
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%s: not in the view after 10s: %+v", what, s.View(10))
		}
	}
}

func TestOneInFlightPerTargetInOrder(t *testing.T) {
	slow, fast := newFake("slow", 5), newFake("fast", 0)
	s := New(fastConfig(""), Deps{Log: zerolog.Nop(), Targets: []Target{slow, fast}, RunID: "r"})
	started(t, s)
	awaitType(t, fast, DaemonStart)
	var ids []string
	for range 3 {
		ev, names, err := s.Test()
		if err != nil || len(names) != 2 {
			t.Fatalf("Test: %v %v", names, err)
		}
		ids = append(ids, ev.ID)
	}
	for _, id := range ids { // the fast target is not held up by the slow one
		if a := awaitType(t, fast, Test); a.id != id {
			t.Fatalf("fast got %s, want %s", a.id, id)
		}
	}
	awaitType(t, slow, DaemonStart)
	for _, id := range ids {
		if a := awaitType(t, slow, Test); a.id != id {
			t.Fatalf("slow got %s, want %s (oldest first)", a.id, id)
		}
	}
}

func TestARejectedEventIsNotTriedAgain(t *testing.T) {
	f := newFake("picky", 0)
	f.reject[Test] = true
	s := New(fastConfig(""), Deps{Log: zerolog.Nop(), Targets: []Target{f}, RunID: "r"})
	started(t, s)
	awaitType(t, f, DaemonStart)
	ev, _, _ := s.Test()
	s.Report(Fact{Type: ClockStep, Step: time.Hour})
	awaitType(t, f, ClockStep) // the rejected event did not hold up the next one
	if n := len(f.tries(ev.ID)); n != 1 {
		t.Errorf("a rejected event was tried %d times", n)
	}
	if d := s.View(10).Events[1].Deliveries[0]; d.State != Rejected || !strings.Contains(d.LastError, "400") {
		t.Errorf("rejected delivery: %+v", d)
	}
}

func TestARestartDeliversWhatTheOutboxHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.json")
	f := newFake("hook", 1<<30) // fails until told otherwise
	s := New(fastConfig(path), Deps{Log: zerolog.Nop(), Targets: []Target{f}, RunID: "run1"})
	s.SetPersistent(true)
	stop := started(t, s)
	await.Recv(t, f.tried, 10*time.Second, "the first attempt of daemon-start")
	ev, _, err := s.Test()
	if err != nil {
		t.Fatal(err)
	}
	s.Stopping(5 * time.Second) // daemon-stop is in the file before the state folder is let go
	var file outboxFile
	if err := json.Unmarshal(readFile(t, path), &file); err != nil || !file.CleanStop || len(file.Events) != 3 {
		t.Fatalf("outbox after Stopping: %v %+v", err, file)
	}
	stop()
	before := map[string][]byte{}
	for _, id := range []string{"run1-1", ev.ID, "run1-3"} {
		tries := f.tries(id) // head of line: only daemon-start was tried
		if (len(tries) == 0) != (id != "run1-1") {
			t.Fatalf("%s tried %d times", id, len(tries))
		}
		if len(tries) > 0 {
			before[id] = tries[0].body
		}
	}

	f.setFail(0)
	s2 := New(fastConfig(path), Deps{Log: zerolog.Nop(), Targets: []Target{f}, RunID: "run2"})
	s2.SetPersistent(true)
	started(t, s2)
	got := map[string]attempt{}
	for len(got) < 4 {
		a := await.Recv(t, f.got, 10*time.Second, "a delivery after the restart")
		got[a.id] = a
	}
	for _, id := range []string{"run1-1", ev.ID, "run1-3", "run2-1"} {
		if _, ok := got[id]; !ok {
			t.Errorf("%s not delivered after the restart; got %v", id, got)
		}
	}
	for id, b := range before {
		if !bytes.Equal(got[id].body, b) {
			t.Errorf("%s: the body changed across the restart", id)
		}
	}
	var start Event
	_ = json.Unmarshal(got["run2-1"].body, &start)
	if start.Type != DaemonStart || start.Details == nil || start.Details.PreviousStop != "clean" {
		t.Errorf("daemon-start after a clean stop: %s", got["run2-1"].body)
	}
}

func TestAnUncleanStopIsSaid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.json")
	os.WriteFile(path, []byte(`{"format":"cctvd-alerts-outbox/1","cleanStop":false,"open":[],"events":[]}`), 0o600)
	f := newFake("hook", 0)
	s := New(fastConfig(path), Deps{Log: zerolog.Nop(), Targets: []Target{f}})
	s.SetPersistent(true)
	started(t, s)
	a := awaitType(t, f, DaemonStart)
	if !strings.Contains(string(a.body), `"previousStop":"unclean"`) {
		t.Errorf("daemon-start: %s", a.body)
	}
}

func TestReportNeverBlocks(t *testing.T) {
	var logs bytes.Buffer
	s := New(Config{QueueLimit: 2}, Deps{Log: zerolog.New(&logs)})
	for range 5 {
		s.Report(Fact{Type: ClockStep, Step: time.Hour}) // nobody runs the service
	}
	v := s.View(10)
	if v.Queue.Waiting != 2 || v.Queue.Dropped != 3 {
		t.Errorf("queue: %+v", v.Queue)
	}
	if n := strings.Count(logs.String(), "dropping the oldest"); n != 1 {
		t.Errorf("warned %d times, want once per episode:\n%s", n, logs.String())
	}
	if _, _, err := s.Test(); !errors.Is(err, ErrNoTargets) {
		t.Errorf("Test without targets: %v", err)
	}
}

func TestCameraUpCarriesTheGap(t *testing.T) {
	f := newFake("hook", 0)
	gapStart := t0.Add(-90 * time.Second)
	var asked time.Time
	obs := make(chan Observation, 1)
	obs <- down
	cfg := fastConfig("")
	cfg.CameraDownAfter = 10 * time.Millisecond
	s := New(cfg, Deps{Log: zerolog.Nop(), Targets: []Target{f}, RunID: "r",
		Observe: func(context.Context) Observation { o := <-obs; obs <- o; return o },
		Gap: func(_ context.Context, camera string, at time.Time) (GapInfo, bool) {
			asked = at
			return GapInfo{Start: gapStart, Cause: "unreachable"}, camera == "door"
		}})
	started(t, s)
	awaitType(t, f, CameraDown)
	back := cam("recording", true, true)
	back.Cameras[0].RecordingSince = t0
	back.Cameras[0].ExitReason = "unreachable"
	<-obs
	obs <- back
	a := awaitType(t, f, CameraUp)
	var ev Event
	json.Unmarshal(a.body, &ev)
	if ev.Details == nil || ev.Details.DownSeconds != 90 || ev.Details.Cause != "unreachable" || !ev.Details.GapStart.Equal(gapStart) ||
		ev.Details.ExitReason != "unreachable" || !strings.Contains(ev.Message, "after 1m30s without footage (cause: unreachable)") {
		t.Errorf("camera-up: %s", a.body)
	}
	if asked.IsZero() {
		t.Error("the gap log was not asked")
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
