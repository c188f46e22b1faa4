package alerts

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)

// seqIDs returns ids e1, e2, ...
func seqIDs() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("e%d", n) }
}

// cam is an observation of one camera "door" on a healthy disk.
func cam(state string, recording, desired bool) Observation {
	return Observation{Disk: DiskOK, Cameras: []CameraObservation{{Name: "door", State: state, Recording: recording, Desired: desired,
		LastError: "camera unreachable"}}}
}

var (
	down    = cam("backoff", false, true)
	up      = cam("recording", true, true)
	stopped = cam("stopped", false, false)
)

func noDisk() Observation {
	o := down
	o.Disk = "missing"
	return o
}

// step is one observation at a time (seconds on both clocks), and the
// events it must produce, as "type/state/camera clears=id".
type step struct {
	at   int
	obs  Observation
	want []string
}

func describe(evs []Event) []string {
	var out []string
	for _, e := range evs {
		s := fmt.Sprintf("%s %s/%s/%s", e.ID, e.Type, e.State, e.Camera)
		if e.Clears != "" {
			s += " clears=" + e.Clears
		}
		out = append(out, s)
	}
	return out
}

func runSteps(t *testing.T, tr *Tracker, steps []step) {
	t.Helper()
	for _, s := range steps {
		d := time.Duration(s.at) * time.Second
		got := describe(tr.Observe(d, t0.Add(d), s.obs))
		if strings.Join(got, "; ") != strings.Join(s.want, "; ") {
			t.Fatalf("at %ds: events %q, want %q", s.at, got, s.want)
		}
	}
}

func TestCameraDownDebounceClearAndCooldown(t *testing.T) {
	cfg := Config{CameraDownAfter: 60 * time.Second, Cooldown: 5 * time.Minute}
	tests := []struct {
		name  string
		steps []step
	}{
		{"one down after the debounce, one up", []step{
			{0, down, nil}, {30, down, nil}, {59, down, nil},
			{60, down, []string{"e1 camera-down/raised/door"}},
			{61, down, nil}, {600, down, nil},
			{601, up, []string{"e2 camera-up/cleared/door clears=e1"}},
			{602, up, nil},
		}},
		{"a short outage is no event", []step{
			{0, down, nil}, {59, down, nil}, {60, up, nil}, {61, down, nil}, {120, down, nil},
			{121, down, []string{"e1 camera-down/raised/door"}},
		}},
		{"flapping is damped by the cooldown", []step{
			{0, down, nil}, {60, down, []string{"e1 camera-down/raised/door"}},
			{70, up, []string{"e2 camera-up/cleared/door clears=e1"}},
			{80, down, nil}, {140, down, nil}, // debounce over, cooldown not
			{200, up, nil}, {210, down, nil}, {300, down, nil},
			{369, down, nil},
			{370, down, []string{"e3 camera-down/raised/door"}}, // 300 s after the clear
		}},
		{"an operator's stop keeps it open; it clears when the camera records again", []step{
			{0, down, nil}, {60, down, []string{"e1 camera-down/raised/door"}},
			{100, stopped, nil}, {1000, stopped, nil},
			{1001, up, []string{"e2 camera-up/cleared/door clears=e1"}},
		}},
		{"a stopped camera is never down, and its debounce starts when it should record", []step{
			{0, stopped, nil}, {100, stopped, nil}, {101, down, nil}, {160, down, nil},
			{161, down, []string{"e1 camera-down/raised/door"}},
		}},
		{"waiting for the disk is not down (disk-missing says it)", []step{
			{0, noDisk(), nil}, {60, noDisk(), []string{"e1 disk-missing/raised/"}}, {200, noDisk(), nil},
			{210, down, []string{"e2 disk-missing/cleared/ clears=e1"}}, {269, down, nil},
			{270, down, []string{"e3 camera-down/raised/door"}},
		}},
		{"a camera removed from the config is forgotten", []step{
			{0, down, nil}, {60, down, []string{"e1 camera-down/raised/door"}},
			{61, Observation{Disk: DiskOK}, nil},
			{62, up, nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, NewTracker(cfg, seqIDs()), tt.steps)
		})
	}
}

func TestDiskMissing(t *testing.T) {
	tr := NewTracker(Config{DiskMissingAfter: 10 * time.Second}, seqIDs())
	checking := Observation{Disk: DiskChecking}
	runSteps(t, tr, []step{
		{0, checking, nil}, {100, checking, nil},
		{101, noDisk(), nil}, {110, noDisk(), nil},
		{111, noDisk(), []string{"e1 disk-missing/raised/"}},
		{200, Observation{Disk: DiskOK}, []string{"e2 disk-missing/cleared/ clears=e1"}},
	})
}

func TestRestoredConditions(t *testing.T) {
	cfg := Config{CameraDownAfter: time.Minute}
	// The previous run left door down.
	restored := []OpenCondition{{ID: "old-7", Type: CameraDown, Camera: "door", Since: t0.Add(-time.Hour)}}

	tr := NewTracker(cfg, seqIDs())
	tr.Restore(restored)
	runSteps(t, tr, []step{
		{0, cam("starting", false, true), nil}, {300, down, nil}, // still down: not raised again
		{301, up, []string{"e1 camera-up/cleared/door clears=old-7"}},
	})

	tr = NewTracker(cfg, seqIDs())
	tr.Restore(restored)
	evs := tr.Observe(0, t0, up)
	if len(evs) != 1 || evs[0].Clears != "old-7" || evs[0].Details.OpenSeconds != 3600 {
		t.Fatalf("a restored condition that no longer holds: %+v", evs)
	}
	if open := tr.Open(); len(open) != 0 {
		t.Errorf("open after the clear: %+v", open)
	}

	// A condition this run raised itself keeps its own id.
	tr = NewTracker(cfg, seqIDs())
	runSteps(t, tr, []step{{0, down, nil}, {60, down, []string{"e1 camera-down/raised/door"}}})
	tr.Restore(restored)
	if open := tr.Open(); len(open) != 1 || open[0].ID != "e1" {
		t.Errorf("open = %+v", open)
	}
}

func TestBoxConditions(t *testing.T) {
	cfg := Config{BacklogAfter: 30 * time.Minute, UploadFailingAfter: 5 * time.Minute, DiskNearLimitAfter: time.Minute}
	backlog := func(age time.Duration, n int64) Observation {
		return Observation{Disk: DiskOK, BacklogKnown: true, BacklogSegments: n, BacklogBytes: n * 1e6, BacklogOldest: t0.Add(-age)}
	}
	// The age is measured at each step's wall time: t0 + at.
	tests := []struct {
		name  string
		steps []step
	}{
		{"backlog older than backlogAfter", []step{
			{0, backlog(29*time.Minute, 5), nil},
			{60, backlog(29*time.Minute, 5), []string{"e1 upload-backlog/raised/"}}, // 30 min old now
			{61, Observation{Disk: DiskOK}, nil},                                    // catalog unavailable: unknown
			{62, backlog(0, 0), []string{"e2 upload-backlog/cleared/ clears=e1"}},
		}},
		{"an upload deficit, and its end", []step{
			{0, Observation{Disk: DiskOK, UploadPlan: "unknown"}, nil},
			{10, Observation{Disk: DiskOK, UploadPlan: "deficit", UploadPlanMessage: "Footage will be deleted before upload: at 4.1 Mbit/s up against 6.3 Mbit/s recorded.",
				UploadUpMbps: 4.1, UploadRecordedMbps: 6.3, UploadLossInSeconds: 3600}, []string{"e1 upload-deficit/raised/"}},
			{20, Observation{Disk: DiskOK, UploadPlan: "unknown"}, nil}, // cannot tell: stays raised
			{30, Observation{Disk: DiskOK, UploadPlan: "ok", UploadPlanMessage: "Uploads catch up."}, []string{"e2 upload-deficit/cleared/ clears=e1"}},
		}},
		{"uploads failing for 5 minutes", []step{
			{0, Observation{Disk: DiskOK, UploadFailing: true, UploadFailingSince: t0, UploadError: "S3 down"}, nil},
			{299, Observation{Disk: DiskOK, UploadFailing: true, UploadFailingSince: t0}, nil},
			{300, Observation{Disk: DiskOK, UploadFailing: true, UploadFailingSince: t0}, []string{"e1 upload-failing/raised/"}},
			{400, Observation{Disk: DiskOK}, []string{"e2 upload-failing/cleared/ clears=e1"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, NewTracker(cfg, seqIDs()), tt.steps) })
	}
}

func TestDiskNearLimitHysteresis(t *testing.T) {
	cfg := Config{DiskNearLimitAfter: time.Minute, DiskNearLimitPercent: 80}
	use := func(backlogGB, freeGB float64) Observation {
		return Observation{Disk: DiskOK, BacklogKnown: true, BacklogSegments: 1, BacklogBytes: int64(backlogGB * 1e9), BacklogOldest: t0,
			StorageKnown: true, UsedBytes: 9e9, LimitBytes: 10e9, FreeBytes: int64(freeGB * 1e9), FloorBytes: 1e9}
	}
	tr := NewTracker(cfg, seqIDs())
	runSteps(t, tr, []step{
		{0, use(7.9, 50), nil}, {100, use(8, 50), nil},
		{160, use(8, 50), []string{"e1 disk-near-limit/raised/"}},
		{170, use(7.6, 50), nil}, // under 80 %, not under 75 %
		{180, use(7.4, 50), []string{"e2 disk-near-limit/cleared/ clears=e1"}},
		{190, use(1, 1.9), nil}, // free under twice the floor
		{250, use(1, 1.9), []string{"e3 disk-near-limit/raised/"}},
		{260, use(1, 2.5), nil}, // raised: clears at three floors
		{270, use(1, 3), []string{"e4 disk-near-limit/cleared/ clears=e3"}},
	})
	o := use(8.5, 1.5)
	f := checkDiskUse(o, func() Config { c := cfg; c.setDefaults(); return c }(), t0, func(string) bool { return false })[0]
	if f.Verdict != Holds || !strings.Contains(f.Message, "85%") || !strings.Contains(f.Message, "1.5 GB free") {
		t.Errorf("both reasons: %+v", f)
	}
}

func TestFactsAreGatheredWithinTheCooldown(t *testing.T) {
	del := func(file string, min int) Fact {
		return Fact{Type: DeletedBeforeUpload, Camera: "door", File: file, Detail: "the size limit",
			From: t0.Add(time.Duration(min) * time.Minute), To: t0.Add(time.Duration(min+10) * time.Minute)}
	}
	tr := NewTracker(Config{Cooldown: 5 * time.Minute}, seqIDs())
	at := func(s int) (time.Duration, time.Time) {
		d := time.Duration(s) * time.Second
		return d, t0.Add(d)
	}
	m, w := at(0)
	evs := tr.Fact(m, w, del("a.mp4", 0))
	if len(evs) != 1 || evs[0].Details.Count != 1 || !strings.Contains(evs[0].Message, "a.mp4") || !strings.Contains(evs[0].Message, "to keep the size limit") {
		t.Fatalf("first deletion: %+v", evs)
	}
	for i, f := range []string{"b.mp4", "c.mp4"} {
		m, w = at(10 + i)
		if evs := tr.Fact(m, w, del(f, 10*(i+1))); len(evs) != 0 {
			t.Fatalf("within the cooldown: %+v", evs)
		}
	}
	m, w = at(10) // another camera is its own
	if evs := tr.Fact(m, w, Fact{Type: DeletedBeforeUpload, Camera: "yard"}); len(evs) != 1 {
		t.Fatalf("another camera: %+v", evs)
	}
	m, w = at(299)
	if evs := tr.Tick(m, w); len(evs) != 0 {
		t.Fatalf("tick before the cooldown ends: %+v", evs)
	}
	m, w = at(300)
	evs = tr.Tick(m, w)
	if len(evs) != 1 || evs[0].Details.Count != 2 || len(evs[0].Details.Files) != 2 ||
		!evs[0].Details.From.Equal(t0.Add(10*time.Minute)) || !evs[0].Details.To.Equal(t0.Add(30*time.Minute)) ||
		!strings.Contains(evs[0].Message, "2 more segments") {
		t.Fatalf("gathered: %+v %+v", evs, evs[0].Details)
	}
	m, w = at(900)
	if evs := tr.Tick(m, w); len(evs) != 0 {
		t.Fatalf("nothing left: %+v", evs)
	}

	// No cooldown: every fact is an event.
	tr = NewTracker(Config{}, seqIDs())
	for i := range 3 {
		m, w = at(i)
		if evs := tr.Fact(m, w, Fact{Type: ClockStep, Step: -time.Hour}); len(evs) != 1 || evs[0].Details.Direction != "back" || evs[0].Details.StepSeconds != -3600 {
			t.Fatalf("clock step %d: %+v", i, evs)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		attempts int
		want     time.Duration
	}{{0, 0}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second}, {7, time.Minute}, {100, time.Minute}}
	for _, tt := range tests {
		if got := RetryDelay(tt.attempts, time.Second, time.Minute); got != tt.want {
			t.Errorf("RetryDelay(%d) = %v, want %v", tt.attempts, got, tt.want)
		}
	}
}

func TestTypes(t *testing.T) {
	for _, ty := range []Type{CameraDown, CameraUp, UploadBacklog, UploadFailing, UploadDeficit, DiskNearLimit, DiskMissing, DeletedBeforeUpload,
		QuarantineGrowing, ClockStep, DaemonStart, DaemonStop, Activity} {
		if !Subscribable(string(ty)) {
			t.Errorf("%s is not subscribable", ty)
		}
	}
	if Subscribable("test") || Subscribable("camera-dowm") {
		t.Error("test or a misspelt type is subscribable")
	}
	for _, c := range conditions {
		if types[c.typ].clearedAs == "" {
			t.Errorf("condition %s has no clearing type", c.typ)
		}
	}
}

func TestActivityFacts(t *testing.T) {
	tr := NewTracker(Config{Cooldown: time.Minute}, seqIDs())
	act := func(s int) Fact {
		at := t0.Add(time.Duration(s) * time.Second)
		return Fact{Type: Activity, Camera: "door", From: at, To: at, Detail: "12.5% of the picture changed"}
	}
	evs := tr.Fact(0, t0, act(0))
	if len(evs) != 1 || evs[0].Severity != Info || evs[0].State != Once ||
		evs[0].Message != "Activity on camera door at "+t0.UTC().Format(timeLayout)+" (12.5% of the picture changed)." {
		t.Fatalf("first activity: %+v", evs)
	}
	for _, s := range []int{10, 20} {
		if evs := tr.Fact(time.Duration(s)*time.Second, t0.Add(time.Duration(s)*time.Second), act(s)); len(evs) != 0 {
			t.Fatalf("activity within the cooldown: %+v", evs)
		}
	}
	evs = tr.Tick(time.Minute, t0.Add(time.Minute))
	want := "2 more activity intervals on camera door, from " + t0.Add(10*time.Second).UTC().Format(timeLayout) + " to " + t0.Add(20*time.Second).UTC().Format(timeLayout) + "."
	if len(evs) != 1 || evs[0].Details.Count != 2 || evs[0].Message != want {
		t.Fatalf("gathered activity: %+v, want %q", evs, want)
	}
	evs = tr.Fact(3*time.Minute, t0.Add(3*time.Minute), act(180))
	if len(evs) != 1 || !strings.HasPrefix(evs[0].Message, "Activity again on camera door at ") {
		t.Fatalf("activity after the cooldown: %+v", evs)
	}
}
