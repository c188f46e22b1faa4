package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/alerts"
	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/clockstep"
	"github.com/cctvd/cctvd/gaplog"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/supervisor"
	"github.com/cctvd/cctvd/uploader"
)

// The daemon as the alerts' hub: it reads what the components report into
// an Observation (on the alerts' goroutine, never on theirs) and hands
// their facts to Report, which never blocks. Package alerts imports none
// of them.

// buildAlerts makes the alerts service and its targets from the config.
func (d *daemon) buildAlerts() error {
	cfg := d.config()
	targets, err := alertTargets(cfg, d.log)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	d.alerts = alerts.New(alertsConfig(cfg, host), alerts.Deps{Log: d.log, Clock: d.clock, Observe: d.observe, Gap: d.gapAt,
		Redact: d.red.String, Targets: targets})
	if cfg.Alerts.Activity {
		d.SetActivityHook(d.activityAlert)
	}
	return nil
}

// activityAlert reports an activity interval's beginning (alerts.activity).
func (d *daemon) activityAlert(ev activity.Event) {
	if !ev.Started {
		return
	}
	d.alerts.Report(alerts.Fact{Type: alerts.Activity, Camera: ev.Camera, From: ev.At, To: ev.At,
		Detail: fmt.Sprintf("%.1f%% of the picture changed", ev.Level*100)})
}

// observe reads the components' states for the alerts.
func (d *daemon) observe(ctx context.Context) alerts.Observation {
	var o alerts.Observation
	v := d.vol.Status()
	o.Disk, o.DiskMessage = string(v.State), v.Message
	for _, s := range d.sup.Statuses() {
		c := alerts.CameraObservation{Name: s.Camera, Desired: s.Desired, Recording: s.State == supervisor.Recording,
			RecordingSince: s.RecordingSince, State: string(s.State), LastError: s.LastError}
		if s.LastExit != nil {
			c.ExitReason = string(s.LastExit.Reason)
		}
		o.Cameras = append(o.Cameras, c)
	}
	u := d.uploaderStatus()
	if u.State == uploader.Failing {
		o.UploadFailing, o.UploadFailingSince, o.UploadError = true, u.Since, u.LastError
	}
	o.UploadPlan, o.UploadPlanMessage = u.Plan.State, u.Plan.Message
	o.UploadUpMbps, o.UploadRecordedMbps = u.Plan.UpMbps, u.Plan.RecordedMbps
	o.UploadLossInSeconds, o.UploadLostFootageSeconds = u.Plan.LossInSeconds, u.Plan.LostFootageSeconds
	if b, err := d.keep.Backlog(ctx); err == nil {
		o.BacklogKnown, o.BacklogSegments, o.BacklogBytes, o.BacklogOldest = true, b.Count, b.Bytes, b.Oldest
	}
	if r := d.retentionStatus(); !r.LastDecision.IsZero() {
		o.StorageKnown, o.UsedBytes, o.LimitBytes, o.FreeBytes, o.FloorBytes = true, r.UsedBytes, r.LimitBytes, r.FreeBytes, r.FloorBytes
	}
	return o
}

// gapAt is the gap log's gap of camera covering at (the newest, a clock
// step's entry aside): the hole a camera-up ends.
func (d *daemon) gapAt(ctx context.Context, camera string, at time.Time) (alerts.GapInfo, bool) {
	gaps, err := d.gap.Gaps(ctx, camera, at, at.Add(time.Nanosecond))
	if err != nil {
		return alerts.GapInfo{}, false
	}
	for i := len(gaps) - 1; i >= 0; i-- {
		if g := gaps[i]; g.Cause != gaplog.CauseClockStep {
			return alerts.GapInfo{Start: g.Start, End: g.End, Cause: g.Cause}, true
		}
	}
	return alerts.GapInfo{}, false
}

// deletedFact tells the alerts of a segment retention deleted before S3
// had it.
func (d *daemon) deletedFact(r catalog.Record, cause string) {
	if r.Upload == catalog.Uploaded || cause == retention.CauseQuarantineNoFootage { // S3 has it; nothing was in it
		return
	}
	why := cause
	switch cause {
	case catalog.CauseSizeLimit:
		why = "savePath under clearWhenFilePathReachGB"
	case catalog.CauseFreeSpace:
		why = "the filesystem's free-space floor"
	case retention.CauseQuarantineLimit:
		why = "the quarantine of damaged files within storageConfig.quarantinePercent while space had to be freed"
	}
	d.alerts.Report(alerts.Fact{Type: alerts.DeletedBeforeUpload, Camera: r.Camera, From: r.Start, To: r.End, File: r.Name(), Detail: why})
}

// quarantinedFact tells the alerts of a damaged file moved to quarantine:
// by the uploader (r, why), or by the segmenter (a file it could not
// salvage).
func (d *daemon) quarantinedFact(r catalog.Record, why string) {
	d.alerts.Report(alerts.Fact{Type: alerts.QuarantineGrowing, Camera: r.Camera, From: r.Start, To: r.End, File: r.Name(), Detail: why})
}

func (d *daemon) unsalvageableFact(camera, file string) {
	d.alerts.Report(alerts.Fact{Type: alerts.QuarantineGrowing, Camera: camera, File: filepath.Base(file), Detail: "it could not be salvaged"})
}

func (d *daemon) clockStepFact(s clockstep.Step) {
	d.alerts.Report(alerts.Fact{Type: alerts.ClockStep, Step: s.Size})
}
