package alerts

import (
	"context"
	"errors"
	"time"
)

// Target is where events go: a webhook, an MQTT broker. Deliver is called
// for one event at a time per target, oldest first; an error means "try
// again later", unless it wraps ErrRejected.
type Target interface {
	// Name identifies the target in the outbox and the API, stable across
	// restarts ("webhook-1a2b3c4d", "mqtt"); it holds no secret.
	Name() string
	// Kind is "webhook" or "mqtt".
	Kind() string
	// Address is what a person may be shown of where it is: a host and
	// port, never a path, a query or credentials.
	Address() string
	// Wants says whether the target takes events of this type.
	Wants(Type) bool
	// Deliver sends the event, whose JSON is body.
	Deliver(ctx context.Context, ev Event, body []byte) error
}

// ErrRejected wraps a target's refusal of an event for good (a webhook's
// 4xx answer): it is not tried again.
var ErrRejected = errors.New("rejected")

// ErrNoTargets: a test event needs a target.
var ErrNoTargets = errors.New("no alert target is configured (alerts.webhooks, alerts.mqtt)")

// Runner is a target with a life of its own (a broker connection): the
// service runs it from its start until its deliveries are over.
type Runner interface {
	Run(ctx context.Context) error
}

// Waker is a target that says when it can take deliveries again (a
// broker connection is back): a delivery waiting for its next attempt is
// tried at once.
type Waker interface {
	Ready() <-chan struct{}
}

// StateSink is a target that shows the box's state as it is (MQTT's
// retained status topics and Home Assistant's sensors): it is given the
// state at every observation, and must not block.
type StateSink interface {
	SetState(Snapshot)
}

// The camera statuses a StateSink shows.
const (
	StatusRecording   = "recording"
	StatusDown        = "down"
	StatusStopped     = "stopped"
	StatusWaitingDisk = "waiting-disk"
)

// Snapshot is the box's state for a StateSink.
type Snapshot struct {
	// Cameras are every configured camera, by name.
	Cameras []CameraStatus
	// The backlog, when known.
	BacklogKnown         bool
	BacklogSegments      int64
	BacklogBytes         int64
	BacklogOldestSeconds float64
	// savePath's use, when known.
	StorageKnown bool
	UsedBytes    int64
	LimitBytes   int64
	FreeBytes    int64
}

// CameraStatus is one camera's status: one of the Status constants, or ""
// while it is neither (starting, or in a short outage not yet called
// down): then the last status shown stands.
type CameraStatus struct {
	Name   string
	Status string
}

// TargetStatus is how a target fares, for the API.
type TargetStatus struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Address string `json:"address"`
	// State is "ok" (the last attempt succeeded, or none was needed) or
	// "failing".
	State       string    `json:"state"`
	LastError   string    `json:"lastError,omitempty"`
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	Pending     int       `json:"pending"`
}
