// Package alerts tells a person when the box needs one: a camera that
// stopped recording, an upload backlog that does not drain, uploads that
// keep failing, a disk near its limit or missing, footage deleted before
// S3 had it, damaged files piling up in quarantine, a step of the clock,
// the daemon's own start and stop, and (when asked for) activity on a camera.
//
// It turns what the daemon's components already report into events (each
// with a stable id, a type, the camera where there is one, the time and a
// sentence a person reads), keeps them in a small on-disk outbox, and
// hands each to its targets (package webhook, package mqtt) one at a time
// per target, retrying with backoff on the monotonic clock for a day.
//
// A condition (a camera down, a backlog) raises one event when it has held
// for its debounce and one when it clears; a cooldown per camera and type
// damps a condition that flaps. Facts that happen at an instant (a
// deletion before upload, a quarantined file, a clock step) raise an event
// each, and those of the same camera and type within the cooldown are
// gathered into one.
//
// The package imports none of the components it hears of, and none of
// them imports it: the daemon (cmd/cctvd) reads their states into an
// Observation and passes their facts to Report, which never blocks.
package alerts

import (
	"slices"
	"time"
)

// Schema names the version of the events' JSON shape (docs/alerts.md).
const Schema = "cctvd-alert/1"

// Type is an event's type.
type Type string

// The event types. A condition type's clearing carries the same type with
// State Cleared, except camera-down's, which is camera-up.
const (
	CameraDown          Type = "camera-down"
	CameraUp            Type = "camera-up"
	UploadBacklog       Type = "upload-backlog"
	UploadFailing       Type = "upload-failing"
	UploadDeficit       Type = "upload-deficit"
	DiskNearLimit       Type = "disk-near-limit"
	DiskMissing         Type = "disk-missing"
	DeletedBeforeUpload Type = "deleted-before-upload"
	QuarantineGrowing   Type = "quarantine-growing"
	ClockStep           Type = "clock-step"
	DaemonStart         Type = "daemon-start"
	DaemonStop          Type = "daemon-stop"
	// Activity is an activity interval beginning on a camera (only when
	// the config turns it on: alerts.activity).
	Activity Type = "activity"
	// Test is the event POST /api/v1/alerts/test sends to every target.
	Test Type = "test"
)

// Severity says how urgent an event is.
type Severity string

// The severities.
const (
	Critical Severity = "critical" // footage is being lost or will be
	Warning  Severity = "warning"  // the box cannot keep its promise for long
	Info     Severity = "info"     // all is well again, or for the record
)

// State says what an event is: a condition raised, a condition cleared, or
// a fact of one instant.
type State string

// The states.
const (
	Raised  State = "raised"
	Cleared State = "cleared"
	Once    State = "once"
)

// typeInfo is what the package knows of a type. Adding a type is a row
// here (and, for a condition, a row in conditions).
type typeInfo struct {
	severity Severity
	// clearedAs is the type of a condition's clearing event.
	clearedAs Type
	// subscribable: a webhook's events list may name it.
	subscribable bool
}

var types = map[Type]typeInfo{
	CameraDown:          {severity: Critical, clearedAs: CameraUp, subscribable: true},
	CameraUp:            {severity: Info, subscribable: true},
	UploadBacklog:       {severity: Warning, clearedAs: UploadBacklog, subscribable: true},
	UploadFailing:       {severity: Warning, clearedAs: UploadFailing, subscribable: true},
	UploadDeficit:       {severity: Critical, clearedAs: UploadDeficit, subscribable: true},
	DiskNearLimit:       {severity: Warning, clearedAs: DiskNearLimit, subscribable: true},
	DiskMissing:         {severity: Critical, clearedAs: DiskMissing, subscribable: true},
	DeletedBeforeUpload: {severity: Critical, subscribable: true},
	QuarantineGrowing:   {severity: Warning, subscribable: true},
	ClockStep:           {severity: Warning, subscribable: true},
	DaemonStart:         {severity: Info, subscribable: true},
	DaemonStop:          {severity: Info, subscribable: true},
	Activity:            {severity: Info, subscribable: true},
	Test:                {severity: Info},
}

// Types lists the types a webhook's events may name, sorted.
func Types() []Type {
	var out []Type
	for t, info := range types {
		if info.subscribable {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// Subscribable says whether a webhook's events list may name t.
func Subscribable(t string) bool { return types[Type(t)].subscribable }

// Event is one alert, as every target receives it (docs/alerts.md).
type Event struct {
	Schema string `json:"schema"`
	// ID is stable: every attempt to deliver the event carries it, so a
	// receiver drops what it has seen.
	ID       string   `json:"id"`
	Type     Type     `json:"type"`
	State    State    `json:"state"`
	Severity Severity `json:"severity"`
	// Camera is the camera's name, for the events of one camera.
	Camera string    `json:"camera,omitempty"`
	Time   time.Time `json:"time"`
	// Message is a sentence for a person, secrets masked.
	Message string `json:"message"`
	// Clears is, in a clearing, the id of the event that raised the
	// condition.
	Clears string `json:"clears,omitempty"`
	// Host and Version name the box and its cctvd.
	Host    string   `json:"host"`
	Version string   `json:"version"`
	Details *Details `json:"details,omitempty"`
}

// Details are an event's figures; each type fills its own (docs/alerts.md)
// and the others are left out.
type Details struct {
	// camera-down: the camera's state (backoff, stalled, starting,
	// discovering, ...), how long it has not recorded, and its last error.
	CameraState string `json:"cameraState,omitempty"`
	LastError   string `json:"lastError,omitempty"`
	// camera-up: how long the camera was without footage (the gap, from
	// its last footage to its new footage), the gap log's cause, and when
	// the gap began. ExitReason is the supervisor's reason for the last
	// ffmpeg exit of the outage.
	DownSeconds float64    `json:"downSeconds,omitempty"`
	Cause       string     `json:"cause,omitempty"`
	GapStart    *time.Time `json:"gapStart,omitempty"`
	ExitReason  string     `json:"exitReason,omitempty"`
	// Every clearing: how long the condition was raised.
	OpenSeconds float64 `json:"openSeconds,omitempty"`
	// upload-backlog (and the sensors): what waits for upload.
	BacklogSegments  int64   `json:"backlogSegments,omitempty"`
	BacklogBytes     int64   `json:"backlogBytes,omitempty"`
	OldestAgeSeconds float64 `json:"oldestAgeSeconds,omitempty"`
	// upload-deficit: the rates the plan was made of (Mbit/s), when
	// retention reaches footage waiting for upload (0: now) and how much of
	// what waits will be deleted before upload.
	UpMbps             float64 `json:"upMbps,omitempty"`
	RecordedMbps       float64 `json:"recordedMbps,omitempty"`
	LossInSeconds      float64 `json:"lossInSeconds,omitempty"`
	LostFootageSeconds float64 `json:"lostFootageSeconds,omitempty"`
	// upload-failing: since when the uploads fail.
	FailingSince *time.Time `json:"failingSince,omitempty"`
	// disk-near-limit: savePath's use, limit, free space and floor.
	UsedBytes  int64 `json:"usedBytes,omitempty"`
	LimitBytes int64 `json:"limitBytes,omitempty"`
	FreeBytes  int64 `json:"freeBytes,omitempty"`
	FloorBytes int64 `json:"floorBytes,omitempty"`
	// disk-missing: the volume guard's state (missing, foreign, changed,
	// unreadable).
	DiskState string `json:"diskState,omitempty"`
	// deleted-before-upload, quarantine-growing: how many segments or
	// files, the span of footage they held, and their names (at most
	// MaxFiles).
	Count int        `json:"count,omitempty"`
	From  *time.Time `json:"from,omitempty"`
	To    *time.Time `json:"to,omitempty"`
	Files []string   `json:"files,omitempty"`
	// clock-step: the step (negative: back) and its direction.
	StepSeconds float64 `json:"stepSeconds,omitempty"`
	Direction   string  `json:"direction,omitempty"`
	// daemon-start: whether the previous run stopped cleanly ("clean",
	// "unclean": killed, crashed or a power cut; "unknown").
	PreviousStop string `json:"previousStop,omitempty"`
}

// MaxFiles is the most file names one event lists.
const MaxFiles = 10

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
