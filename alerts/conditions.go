package alerts

import (
	"fmt"
	"strings"
	"time"
)

// Observation is what the daemon's components say at one moment, read by
// the daemon for the alerts (it never waits on a component's slow work).
type Observation struct {
	// Cameras are every configured camera.
	Cameras []CameraObservation
	// Disk is savePath's volume state: "ok", "checking" (not looked at
	// yet), or why it is not cctvd's disk ("missing", "foreign",
	// "changed", "unreadable"); DiskMessage says what is wrong.
	Disk        string
	DiskMessage string
	// UploadFailing: the uploader's last attempt failed, since
	// UploadFailingSince; UploadError says why (masked).
	UploadFailing      bool
	UploadFailingSince time.Time
	UploadError        string
	// UploadPlan is the uploader's plan (its state: "ok", "deficit",
	// "unknown", or empty before the first), UploadPlanMessage says it in
	// plain words; the rates and the loss are its figures.
	UploadPlan               string
	UploadPlanMessage        string
	UploadUpMbps             float64
	UploadRecordedMbps       float64
	UploadLossInSeconds      float64
	UploadLostFootageSeconds float64
	// Backlog is what waits for upload; BacklogKnown is false while the
	// catalog cannot say.
	BacklogKnown    bool
	BacklogSegments int64
	BacklogBytes    int64
	// BacklogOldest is the start of the oldest segment waiting.
	BacklogOldest time.Time
	// Storage is savePath's use as retention last measured it;
	// StorageKnown is false before its first decision.
	StorageKnown bool
	UsedBytes    int64
	LimitBytes   int64
	FreeBytes    int64
	FloorBytes   int64
}

// DiskOK is the volume state of a savePath that is cctvd's disk.
const DiskOK = "ok"

// DiskChecking is the volume state before the first check.
const DiskChecking = "checking"

// CameraObservation is one camera's state.
type CameraObservation struct {
	Name string
	// Desired: the camera should record (no operator stopped it).
	Desired bool
	// Recording: frames are being written; RecordingSince is when the run
	// began writing them.
	Recording      bool
	RecordingSince time.Time
	// State is the supervisor's state name; LastError its last error
	// (masked); ExitReason the reason of its last ffmpeg exit.
	State      string
	LastError  string
	ExitReason string
}

// Verdict is what a condition's check found.
type Verdict int

// The verdicts.
const (
	// Unknown: the check cannot tell; nothing changes.
	Unknown Verdict = iota
	// Holds: the condition holds now.
	Holds
	// Clear: it does not hold.
	Clear
	// Paused: it cannot hold for now (a camera an operator stopped, or
	// waiting for its disk): a raised condition stays raised, one not
	// yet raised starts its debounce again.
	Paused
)

// Finding is one condition's check, for one camera or for the box.
type Finding struct {
	Type    Type
	Camera  string
	Verdict Verdict
	// Message is the sentence of the event this finding would raise (with
	// Holds) or clear (with Clear).
	Message string
	Details Details
}

// condition is a state that raises an event when it has held for after,
// and another when it clears. check returns a finding per camera for a
// camera's condition, or one for the box; raised says whether a key is
// raised now (for hysteresis).
type condition struct {
	typ   Type
	after func(Config) time.Duration
	check func(o Observation, c Config, now time.Time, raised func(camera string) bool) []Finding
}

// conditions are checked at every observation, in this order.
var conditions = []condition{
	{typ: CameraDown, after: func(c Config) time.Duration { return c.CameraDownAfter }, check: checkCameras},
	{typ: DiskMissing, after: func(c Config) time.Duration { return c.DiskMissingAfter }, check: checkDisk},
	{typ: UploadBacklog, after: func(Config) time.Duration { return 0 }, check: checkBacklog},
	{typ: UploadFailing, after: func(c Config) time.Duration { return c.UploadFailingAfter }, check: checkUploads},
	{typ: UploadDeficit, after: func(Config) time.Duration { return 0 }, check: checkDeficit},
	{typ: DiskNearLimit, after: func(c Config) time.Duration { return c.DiskNearLimitAfter }, check: checkDiskUse},
}

func checkCameras(o Observation, c Config, now time.Time, raised func(string) bool) []Finding {
	out := make([]Finding, 0, len(o.Cameras))
	for _, cam := range o.Cameras {
		f := Finding{Type: CameraDown, Camera: cam.Name}
		switch {
		case o.Disk != DiskOK || !cam.Desired:
			// Waiting for the disk (disk-missing says so), or stopped by an
			// operator: not down, and a camera-down stays open until the
			// camera records again.
			f.Verdict = Paused
		case cam.Recording:
			f.Verdict = Clear
			f.Message = "Camera " + cam.Name + " records again."
		default:
			f.Verdict = Holds
			why := cam.State
			if cam.LastError != "" {
				why += ": " + cam.LastError
			}
			f.Message = fmt.Sprintf("Camera %s has not recorded for %s (%s).", cam.Name, round(c.CameraDownAfter), why)
			f.Details = Details{CameraState: cam.State, LastError: cam.LastError}
		}
		out = append(out, f)
	}
	return out
}

func checkDisk(o Observation, _ Config, _ time.Time, _ func(string) bool) []Finding {
	f := Finding{Type: DiskMissing}
	switch o.Disk {
	case "", DiskChecking:
		f.Verdict = Unknown
	case DiskOK:
		f.Verdict = Clear
		f.Message = "The recordings disk is back: the cameras record again."
	default:
		f.Verdict = Holds
		f.Message = "The recordings disk is not there (" + o.Disk + "): no camera records until it is back."
		if o.DiskMessage != "" {
			f.Message += " " + o.DiskMessage
		}
		f.Details = Details{DiskState: o.Disk}
	}
	return []Finding{f}
}

func checkBacklog(o Observation, c Config, now time.Time, _ func(string) bool) []Finding {
	f := Finding{Type: UploadBacklog}
	if !o.BacklogKnown {
		return []Finding{f}
	}
	var age time.Duration
	if o.BacklogSegments > 0 && !o.BacklogOldest.IsZero() {
		age = now.Sub(o.BacklogOldest)
	}
	f.Details = Details{BacklogSegments: o.BacklogSegments, BacklogBytes: o.BacklogBytes, OldestAgeSeconds: seconds(age)}
	if o.BacklogSegments > 0 && age >= c.BacklogAfter {
		f.Verdict = Holds
		f.Message = fmt.Sprintf("Uploads are behind: the oldest segment waiting began %s ago (%d segments, %s wait).",
			round(age), o.BacklogSegments, formatBytes(o.BacklogBytes))
		return []Finding{f}
	}
	f.Verdict = Clear
	if o.BacklogSegments == 0 {
		f.Message = "Uploads have caught up: nothing waits."
	} else {
		f.Message = fmt.Sprintf("Uploads have caught up: the oldest segment waiting began %s ago.", round(age))
	}
	return []Finding{f}
}

func checkUploads(o Observation, _ Config, now time.Time, _ func(string) bool) []Finding {
	f := Finding{Type: UploadFailing}
	if !o.UploadFailing {
		f.Verdict = Clear
		f.Message = "Uploads to S3 succeed again."
		return []Finding{f}
	}
	f.Verdict = Holds
	f.Message = fmt.Sprintf("Uploads to S3 have failed for %s", round(now.Sub(o.UploadFailingSince)))
	if o.UploadError != "" {
		f.Message += ": " + o.UploadError
	}
	f.Message += "."
	f.Details = Details{FailingSince: timePtr(o.UploadFailingSince), LastError: o.UploadError}
	return []Finding{f}
}

// checkDeficit: the uploader's plan says the cameras record more than
// goes up, and retention will delete footage before upload. (The plan is
// made every 10 s from rates measured over minutes: it needs no debounce
// of its own.)
func checkDeficit(o Observation, _ Config, _ time.Time, _ func(string) bool) []Finding {
	f := Finding{Type: UploadDeficit, Message: o.UploadPlanMessage}
	switch o.UploadPlan {
	case "deficit":
		f.Verdict = Holds
		f.Details = Details{UpMbps: o.UploadUpMbps, RecordedMbps: o.UploadRecordedMbps, LossInSeconds: o.UploadLossInSeconds,
			LostFootageSeconds: o.UploadLostFootageSeconds}
	case "ok":
		f.Verdict = Clear
	}
	return []Finding{f}
}

// checkDiskUse: the footage S3 does not have yet fills nearLimit of the
// limit (retention deletes it next when uploads do not catch up), or the
// filesystem's free space is under twice its floor (something else fills
// the disk, and retention deletes footage to keep the floor). A raised
// condition clears 5 points lower, and at three times the floor.
func checkDiskUse(o Observation, c Config, _ time.Time, raised func(string) bool) []Finding {
	f := Finding{Type: DiskNearLimit}
	if !o.StorageKnown || !o.BacklogKnown || o.LimitBytes <= 0 {
		return []Finding{f}
	}
	f.Details = Details{UsedBytes: o.UsedBytes, LimitBytes: o.LimitBytes, FreeBytes: o.FreeBytes, FloorBytes: o.FloorBytes,
		BacklogBytes: o.BacklogBytes}
	share, floors := c.DiskNearLimitPercent/100, 2.0
	if raised("") {
		share, floors = share-0.05, 3
	}
	backlogFull := float64(o.BacklogBytes) >= share*float64(o.LimitBytes)
	floorNear := o.FloorBytes > 0 && float64(o.FreeBytes) < floors*float64(o.FloorBytes)
	var why []string
	if backlogFull {
		why = append(why, fmt.Sprintf("footage S3 does not have yet fills %.0f%% of the recordings limit (%s of %s): retention deletes it next if uploads do not catch up",
			100*float64(o.BacklogBytes)/float64(o.LimitBytes), formatBytes(o.BacklogBytes), formatBytes(o.LimitBytes)))
	}
	if floorNear {
		why = append(why, fmt.Sprintf("savePath's filesystem has %s free, near its floor of %s: retention deletes footage to keep it",
			formatBytes(o.FreeBytes), formatBytes(o.FloorBytes)))
	}
	if len(why) == 0 {
		f.Verdict = Clear
		f.Message = "The recordings disk is out of danger: uploads keep up and the filesystem has room."
		return []Finding{f}
	}
	f.Verdict = Holds
	f.Message = "The recordings disk is near its limit: " + strings.Join(why, "; ") + "."
	return []Finding{f}
}

// round is d to the second, for sentences.
func round(d time.Duration) time.Duration {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second)
}

func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

// formatBytes is n in decimal units, as the config's GB.
func formatBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
