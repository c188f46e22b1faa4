package uploader

import (
	"fmt"
	"math"
	"time"
)

// The plan's states, in Plan.State.
const (
	PlanUnknown = "unknown" // not measured yet (no upload rate, or retention has not measured the disk)
	PlanOK      = "ok"      // the backlog drains (or nothing waits)
	PlanDeficit = "deficit" // the cameras record more than goes up: retention will delete footage before upload
)

// PlanInput is what the plan is made of: the production rate (footage
// closed, per second), the achieved upload rate, what waits, and
// retention's view of the disk.
type PlanInput struct {
	// Recorded is the bytes of footage closed a second, all cameras, over
	// ProductionWindow; RecordedByCamera the same per camera.
	Recorded         float64
	RecordedByCamera map[string]float64
	// Up is the achieved upload rate in bytes a second (Meter); UpKnown
	// false when too little was sent to tell, then the cap in force (Cap,
	// bytes a second, +Inf: none) stands in for it when there is one.
	Up      float64
	UpKnown bool
	Cap     float64
	// What waits for upload: its bytes, how many segments, the seconds of
	// footage they hold.
	BacklogBytes   int64
	BacklogCount   int64
	BacklogSeconds float64
	// Retention's view: savePath's limit and use, and the bytes of
	// uploaded segments still on the disk (retention deletes those first).
	// StorageKnown false before retention's first measure.
	StorageKnown    bool
	LimitBytes      int64
	UsedBytes       int64
	UploadedPresent int64
}

// Plan is the uploader's honest account of whether the backlog drains.
type Plan struct {
	State string `json:"state"`
	// Message says it in plain words.
	Message string `json:"message"`
	// UpMbps and RecordedMbps are the rates it was made of (Mbit/s).
	UpMbps       float64 `json:"upMbps"`
	RecordedMbps float64 `json:"recordedMbps"`
	// DrainSeconds: with State ok and something waiting, how long until
	// the backlog is gone.
	DrainSeconds float64 `json:"drainSeconds,omitempty"`
	// With State deficit: LossInSeconds is when retention reaches footage
	// waiting for upload (0: it does now), LostFootageSeconds how much of
	// the footage waiting now will be deleted before it goes up.
	LossInSeconds      float64 `json:"lossInSeconds,omitempty"`
	LostFootageSeconds float64 `json:"lostFootageSeconds,omitempty"`
	// Skipped counts the segments the uploader left, since the daemon
	// started, because they could not reach S3 before retention deletes
	// them; DeletedWaiting those retention deleted before upload while a
	// later one went up in their place. Both are said in the log, once an
	// episode.
	Skipped        uint64 `json:"skipped"`
	DeletedWaiting uint64 `json:"deletedWaiting"`
	// Since is when the plan took its state.
	Since time.Time `json:"since,omitzero"`
}

// upRate is the rate the plan counts on: the achieved one, else the cap.
func (in PlanInput) upRate() (float64, bool) {
	if in.UpKnown {
		return in.Up, true
	}
	if in.Cap >= 0 && !math.IsInf(in.Cap, 1) {
		return in.Cap, true
	}
	return 0, false
}

// room is what the disk takes before retention reaches footage waiting
// for upload: the space under the limit, and the uploaded segments it
// deletes first.
func (in PlanInput) room() float64 {
	return float64(max(in.LimitBytes-in.UsedBytes, 0) + max(in.UploadedPresent, 0))
}

// MakePlan works out whether the backlog drains. Footage waiting grows by
// Recorded - Up a second; retention reaches it once the disk's room (the
// space under the limit, and the uploaded segments it deletes first) is
// filled, after room / (Recorded - Up) seconds; from then on it deletes
// the oldest waiting footage at Recorded - Up while Up goes to S3, so of
// the footage waiting now, what Up has not sent by then is lost in that
// share.
func MakePlan(in PlanInput) Plan {
	up, upKnown := in.upRate()
	p := Plan{State: PlanUnknown, UpMbps: mbps(up), RecordedMbps: mbps(in.Recorded)}
	rates := fmt.Sprintf("at %s up against %s recorded", formatMbps(up), formatMbps(in.Recorded))
	switch {
	case in.BacklogBytes <= 0:
		p.State = PlanOK
		p.Message = "Uploads keep up: nothing waits."
		if upKnown {
			p.Message = "Uploads keep up: " + rates + ", nothing waits."
		}
		return p
	case !upKnown:
		p.Message = fmt.Sprintf("%s (%s of footage) wait for upload; the upload rate is not measured yet.",
			formatBytes(in.BacklogBytes), formatDuration(in.BacklogSeconds))
		return p
	case up > in.Recorded:
		p.State = PlanOK
		p.DrainSeconds = float64(in.BacklogBytes) / (up - in.Recorded)
		p.Message = fmt.Sprintf("Uploads catch up: %s, the %s waiting (%s of footage) will be in S3 in %s.",
			rates, formatBytes(in.BacklogBytes), formatDuration(in.BacklogSeconds), formatDuration(p.DrainSeconds))
		return p
	case !in.StorageKnown || in.LimitBytes <= 0:
		p.Message = fmt.Sprintf("Uploads fall behind: %s, the backlog grows; retention has not measured the disk yet.", rates)
		return p
	}
	p.State = PlanDeficit
	gap := in.Recorded - up
	reach := in.room() / gap
	p.LossInSeconds = reach
	perByte := in.BacklogSeconds / float64(in.BacklogBytes) // footage seconds a byte, of what waits
	left := float64(in.BacklogBytes) - up*reach             // of what waits now, not sent by then
	if left > 0 && in.Recorded > 0 {
		p.LostFootageSeconds = left * gap / in.Recorded * perByte
	}
	switch {
	case reach < 1 && p.LostFootageSeconds > 0:
		p.Message = fmt.Sprintf("Footage is being deleted before upload: %s, the oldest %s waiting will not reach S3.",
			rates, formatDuration(p.LostFootageSeconds))
	case p.LostFootageSeconds > 0:
		p.Message = fmt.Sprintf("Footage will be deleted before upload: %s, the oldest %s waiting will be deleted before upload in %s.",
			rates, formatDuration(p.LostFootageSeconds), formatDuration(reach))
	default:
		p.Message = fmt.Sprintf("Footage will be deleted before upload: %s, the backlog grows by %s an hour and retention reaches footage waiting for upload in %s.",
			rates, formatBytes(int64(gap*3600)), formatDuration(reach))
	}
	return p
}

// DeleteIn is how long until retention deletes a segment waiting for
// upload behind older bytes of waiting footage (in flight or not): the
// disk's room and those bytes go first, at Recorded - Up a second. false:
// never (uploads keep up, or no limit).
func (in PlanInput) DeleteIn(older int64) (float64, bool) {
	up, ok := in.upRate()
	if !ok || up >= in.Recorded || !in.StorageKnown || in.LimitBytes <= 0 {
		return 0, false
	}
	return (in.room() + float64(older)) / (in.Recorded - up), true
}

// SendIn is how long a segment of size bytes takes to go up when it
// shares the upload rate with the others in flight (slots at once).
func (in PlanInput) SendIn(size int64, slots int) (float64, bool) {
	up, ok := in.upRate()
	if !ok || up <= 0 {
		return 0, false
	}
	return float64(size) * float64(max(slots, 1)) / up, true
}

func mbps(bps float64) float64 {
	if math.IsInf(bps, 0) || math.IsNaN(bps) {
		return 0
	}
	return math.Round(bps*8/1e6*100) / 100
}

// formatMbps is a rate in bytes a second, in bits as links are sold.
func formatMbps(bps float64) string {
	bits := bps * 8
	switch {
	case math.IsInf(bits, 1):
		return "no cap"
	case bits >= 1e6:
		return fmt.Sprintf("%.1f Mbit/s", bits/1e6)
	case bits >= 1e3:
		return fmt.Sprintf("%.0f kbit/s", bits/1e3)
	}
	return fmt.Sprintf("%.0f bit/s", bits)
}

// formatDuration is seconds in the unit a person reads them in.
func formatDuration(s float64) string {
	switch {
	case s < 90:
		return fmt.Sprintf("%.0f s", s)
	case s < 90*60:
		return fmt.Sprintf("%.0f min", s/60)
	case s < 72*3600:
		return fmt.Sprintf("%.0f h", s/3600)
	}
	return fmt.Sprintf("%.0f days", s/86400)
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
