package alerts

import "time"

// Config is the alerts' configuration. The product's defaults are set in
// package config; the zero values here only fall back to the same.
type Config struct {
	// CameraDownAfter: a camera that should record and has not for this
	// long is down. Default 60s.
	CameraDownAfter time.Duration
	// BacklogAfter: the oldest segment waiting for upload began longer ago
	// than this. Default 30m.
	BacklogAfter time.Duration
	// Cooldown: after a condition of a camera clears, it is not raised
	// again for this long; facts of one camera and type within it are
	// gathered into one event. 0 is none.
	Cooldown time.Duration
	// UploadFailingAfter, DiskMissingAfter and DiskNearLimitAfter are the
	// debounces of those conditions. Defaults 5m, 10s, 1m.
	UploadFailingAfter time.Duration
	DiskMissingAfter   time.Duration
	DiskNearLimitAfter time.Duration
	// DiskNearLimitPercent: footage not yet in S3 filling this share of
	// the limit is near it. Default 80.
	DiskNearLimitPercent float64
	// Poll is how often the daemon's state is observed. Default 1s.
	Poll time.Duration
	// RetryMin and RetryMax bound the pause between two attempts of one
	// delivery (doubling from RetryMin); RetryFor is how long a delivery
	// is tried before it is given up. Defaults 1s, 1m, 24h.
	RetryMin, RetryMax, RetryFor time.Duration
	// QueueLimit bounds the facts waiting for the alerts' goroutine;
	// beyond it the oldest are dropped (counted, warned). Default 1000.
	QueueLimit int
	// MaxEvents bounds the outbox; beyond it the oldest delivered events
	// go first, then the oldest waiting (counted, warned). Default 500.
	MaxEvents int
	// StopGrace is how long deliveries go on once the daemon stops (its
	// daemon-stop event among them). Default 3s.
	StopGrace time.Duration
	// StartWait is how long daemon-start waits for the outbox to be
	// readable (the state folder may be on a disk still being found).
	// Default 5s.
	StartWait time.Duration
	// OutboxPath is the outbox's file; "" keeps it in memory only.
	OutboxPath string
	// Host and Version name the box and its cctvd in every event.
	Host, Version string
}

// Default values (see Config).
const (
	DefaultCameraDownAfter      = time.Minute
	DefaultBacklogAfter         = 30 * time.Minute
	DefaultCooldown             = 5 * time.Minute
	DefaultUploadFailingAfter   = 5 * time.Minute
	DefaultDiskMissingAfter     = 10 * time.Second
	DefaultDiskNearLimitAfter   = time.Minute
	DefaultDiskNearLimitPercent = 80
	DefaultRetryMin             = time.Second
	DefaultRetryMax             = time.Minute
	DefaultRetryFor             = 24 * time.Hour
)

func (c *Config) setDefaults() {
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&c.CameraDownAfter, DefaultCameraDownAfter)
	set(&c.BacklogAfter, DefaultBacklogAfter)
	set(&c.UploadFailingAfter, DefaultUploadFailingAfter)
	set(&c.DiskMissingAfter, DefaultDiskMissingAfter)
	set(&c.DiskNearLimitAfter, DefaultDiskNearLimitAfter)
	set(&c.Poll, time.Second)
	set(&c.RetryMin, DefaultRetryMin)
	set(&c.RetryMax, DefaultRetryMax)
	set(&c.RetryFor, DefaultRetryFor)
	set(&c.StopGrace, 3*time.Second)
	set(&c.StartWait, 5*time.Second)
	if c.Cooldown < 0 {
		c.Cooldown = 0
	}
	if c.DiskNearLimitPercent <= 0 {
		c.DiskNearLimitPercent = DefaultDiskNearLimitPercent
	}
	if c.QueueLimit <= 0 {
		c.QueueLimit = 1000
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = 500
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
}

// RetryDelay is the pause before the next attempt of a delivery that
// failed attempts times: RetryMin doubling, at most RetryMax.
func RetryDelay(attempts int, min, max time.Duration) time.Duration {
	if attempts < 1 {
		return 0
	}
	d := min
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}
