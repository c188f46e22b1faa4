// Package metrics exposes cctvd's Prometheus metrics: counters fed by the
// components' events (segments, uploads, retention deletions, gaps) and
// gauges read from their state at scrape time (camera up, restarts,
// stalls, upload backlog, savePath usage). It registers on a registry of its
// own, never the global one.
package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/clockstep"
	"github.com/cctvd/cctvd/keeper"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/supervisor"
	"github.com/cctvd/cctvd/uploader"
	"github.com/cctvd/cctvd/volume"
)

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Sources are the components whose state is read at scrape time.
type Sources struct {
	Cameras   func() []supervisor.Status
	Uploader  func() uploader.Status
	Retention func() retention.Status
	Backlog   func(ctx context.Context) (catalog.Backlog, error)
	// Volume and Catalog, if set, say whether savePath is cctvd's disk
	// and whether the catalog is usable.
	Volume  func() volume.Status
	Catalog func() keeper.Status
	Now     func() time.Time
	// Limiter, if set, is the upload cap, and counts what it let through.
	Limiter *uploader.Limiter
}

// Metrics holds the counters the components' events feed.
type Metrics struct {
	Registry *prometheus.Registry

	segments       *prometheus.CounterVec
	segmentBytes   *prometheus.CounterVec
	salvaged       *prometheus.CounterVec
	uploads        prometheus.Counter
	uploadFailures prometheus.Counter
	verifyFailures prometheus.Counter
	conflicts      prometheus.Counter
	quarantined    *prometheus.CounterVec
	uploadSeconds  prometheus.Histogram
	deletions      *prometheus.CounterVec
	gaps           *prometheus.CounterVec
	gapSeconds     *prometheus.CounterVec
	clockSteps     *prometheus.CounterVec
}

// New builds the metrics on a new registry.
func New(src Sources) *Metrics {
	if src.Now == nil {
		src.Now = time.Now
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		segments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cctvd_segments_total",
			Help: "Segments closed and named, by camera."}, []string{"camera"}),
		segmentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cctvd_segment_bytes_total",
			Help: "Bytes of closed segments, by camera."}, []string{"camera"}),
		salvaged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cctvd_segments_salvaged_total",
			Help: "Segments recovered after ffmpeg died without closing them, by camera."}, []string{"camera"}),
		uploads: prometheus.NewCounter(prometheus.CounterOpts{Name: "cctvd_uploads_total",
			Help: "Segments uploaded to S3 and verified."}),
		uploadFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "cctvd_upload_failures_total",
			Help: "Failed upload attempts (each is retried)."}),
		verifyFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "cctvd_upload_verification_failures_total",
			Help: "Failed upload attempts where S3's copy did not match the local file (also in cctvd_upload_failures_total)."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "cctvd_upload_conflicts_total",
			Help: "Segments S3 held different content for under their key: that object was kept and the segment went up beside it."}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cctvd_upload_quarantined_total",
			Help: "Damaged segment files (empty, truncated, undecodable) moved to the quarantine instead of uploaded, by camera."}, []string{"camera"}),
		uploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cctvd_upload_duration_seconds",
			Help: "Time to upload and verify one segment.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
		deletions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cctvd_retention_deletions_total",
			Help: "Local segments deleted by retention, by kind: uploaded, or not_uploaded (footage S3 does not have)."}, []string{"kind"}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cctvd_gaps_total",
			Help: "Intervals without footage while a camera should have been recording, by camera and cause."}, []string{"camera", "cause"}),
		gapSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cctvd_gap_seconds_total",
			Help: "Seconds without footage while a camera should have been recording, by camera and cause."}, []string{"camera", "cause"}),
		clockSteps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cctvd_clock_steps_total",
			Help: "Steps of the wall clock (more than 2 s off the time that passed), by direction: forward or back."}, []string{"direction"}),
	}
	for _, dir := range []string{"forward", "back"} {
		m.clockSteps.WithLabelValues(dir)
	}
	for _, kind := range []string{"uploaded", "not_uploaded"} {
		m.deletions.WithLabelValues(kind) // exported at 0 before the first deletion
	}
	reg.MustRegister(m.segments, m.segmentBytes, m.salvaged, m.uploads, m.uploadFailures, m.verifyFailures, m.conflicts, m.quarantined,
		m.uploadSeconds, m.deletions,
		m.gaps, m.gapSeconds, m.clockSteps, &stateCollector{src: src},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Segment counts a closed segment.
func (m *Metrics) Segment(s segment.Segment) {
	m.segments.WithLabelValues(s.Camera).Inc()
	m.segmentBytes.WithLabelValues(s.Camera).Add(float64(s.Size))
	if s.Salvaged {
		m.salvaged.WithLabelValues(s.Camera).Inc()
	}
}

// Uploaded counts a verified upload.
func (m *Metrics) Uploaded(_ catalog.Record, took time.Duration) {
	m.uploads.Inc()
	m.uploadSeconds.Observe(took.Seconds())
}

// UploadFailed counts a failed attempt.
func (m *Metrics) UploadFailed(_ catalog.Record, err error) {
	m.uploadFailures.Inc()
	if errors.Is(err, uploader.ErrVerify) {
		m.verifyFailures.Inc()
	}
}

// UploadConflict counts a segment that went up beside different content.
func (m *Metrics) UploadConflict(catalog.Record) { m.conflicts.Inc() }

// Quarantined counts a damaged file the uploader quarantined.
func (m *Metrics) Quarantined(r catalog.Record, _ string, _ bool) {
	m.quarantined.WithLabelValues(r.Camera).Inc()
}

// Deleted counts a retention deletion.
func (m *Metrics) Deleted(r catalog.Record, _ string) {
	kind := "not_uploaded"
	if r.Upload == catalog.Uploaded {
		kind = "uploaded"
	}
	m.deletions.WithLabelValues(kind).Inc()
}

// Gap counts an interval without footage.
func (m *Metrics) Gap(camera, cause string, d time.Duration) {
	m.gaps.WithLabelValues(camera, cause).Inc()
	m.gapSeconds.WithLabelValues(camera, cause).Add(d.Seconds())
}

// ClockStep counts a step of the wall clock.
func (m *Metrics) ClockStep(s clockstep.Step) { m.clockSteps.WithLabelValues(s.Direction()).Inc() }

// stateCollector reads the components' state at scrape time.
type stateCollector struct{ src Sources }

var (
	descUp       = prometheus.NewDesc("cctvd_camera_up", "1 while the camera is recording, 0 otherwise.", []string{"camera"}, nil)
	descState    = prometheus.NewDesc("cctvd_camera_state", "1 for the camera's current state.", []string{"camera", "state"}, nil)
	descRestarts = prometheus.NewDesc("cctvd_camera_restarts_total", "ffmpeg restarts after an exit that was not a stop.", []string{"camera"}, nil)
	descStalls   = prometheus.NewDesc("cctvd_camera_stalls_total", "ffmpeg runs ended by the stall watchdog.", []string{"camera"}, nil)
	descFPS      = prometheus.NewDesc("cctvd_camera_fps", "ffmpeg's output frame rate.", []string{"camera"}, nil)
	descBacklog  = prometheus.NewDesc("cctvd_upload_backlog_segments", "Segments waiting for upload.", nil, nil)
	descBacklogB = prometheus.NewDesc("cctvd_upload_backlog_bytes", "Bytes waiting for upload.", nil, nil)
	descOldest   = prometheus.NewDesc("cctvd_upload_backlog_oldest_age_seconds", "Age of the oldest segment waiting for upload (0 when none).", nil, nil)
	descFailing  = prometheus.NewDesc("cctvd_upload_failing", "1 while the last upload attempt failed.", nil, nil)
	descDecoding = prometheus.NewDesc("cctvd_upload_decode_waiting_segments",
		"Segments waiting for upload that wait for their decode check first (files cctvd did not see close: rebuilt from the disk, salvaged).", nil, nil)
	descSkipped = prometheus.NewDesc("cctvd_upload_decode_skipped_total",
		"Files uploaded with the structural check only, their decode check having failed to run too often (flagged decode-check: skipped).", nil, nil)
	descCap     = prometheus.NewDesc("cctvd_upload_cap_bits_per_second", "The upload cap in force: +Inf without one, 0 while the schedule pauses the uploads.", nil, nil)
	descSent    = prometheus.NewDesc("cctvd_upload_sent_bytes_total", "Bytes written to S3 by the uploader (requests, parts and retries), as the cap counts them.", nil, nil)
	descAchieve = prometheus.NewDesc("cctvd_upload_achieved_bits_per_second", "The achieved upload rate over the last 5 minutes the uploads wanted the link (0 before it is known).", nil, nil)
	descRecord  = prometheus.NewDesc("cctvd_recorded_bits_per_second", "What each camera records, over the last hour of segments.", []string{"camera"}, nil)
	descFootage = prometheus.NewDesc("cctvd_upload_backlog_footage_seconds", "Seconds of footage waiting for upload.", nil, nil)
	descPlan    = prometheus.NewDesc("cctvd_upload_plan", "1 for the upload plan's state: ok (the backlog drains), deficit (retention will delete footage before upload), unknown.", []string{"state"}, nil)
	descLossIn  = prometheus.NewDesc("cctvd_upload_deficit_loss_in_seconds", "In a deficit, when retention reaches footage waiting for upload (0: now); 0 otherwise.", nil, nil)
	descLost    = prometheus.NewDesc("cctvd_upload_deficit_lost_footage_seconds", "In a deficit, the seconds of footage waiting now that will be deleted before upload; 0 otherwise.", nil, nil)
	descLeft    = prometheus.NewDesc("cctvd_upload_deficit_skipped_total", "Segments the uploader left because they could not reach S3 before retention deletes them.", nil, nil)
	descDelWait = prometheus.NewDesc("cctvd_upload_deficit_deleted_waiting_total", "Segments retention deleted before upload while a later one went up in their place.", nil, nil)
	descUsed    = prometheus.NewDesc("cctvd_savepath_bytes", "Bytes cctvd holds in savePath (segments, being written, quarantined).", nil, nil)
	descLimit   = prometheus.NewDesc("cctvd_savepath_limit_bytes", "clearWhenFilePathReachGB in bytes.", nil, nil)
	descFree    = prometheus.NewDesc("cctvd_savepath_free_bytes", "Free bytes on savePath's filesystem.", nil, nil)
	descVolume  = prometheus.NewDesc("cctvd_savepath_volume_ok", "1 while savePath is cctvd's recordings disk; 0 while it is missing (recording waits).", nil, nil)
	descCatalog = prometheus.NewDesc("cctvd_catalog_ready", "1 while the catalog is usable; 0 while it is opened, rebuilt or unavailable (uploads and retention wait).", nil, nil)
	descMoved   = prometheus.NewDesc("cctvd_catalog_moved_aside_total", "Corrupt catalogs moved aside and rebuilt since the daemon started.", nil, nil)
	descHeld    = prometheus.NewDesc("cctvd_catalog_held_operations", "Operations waiting for the catalog to be usable.", nil, nil)
)

var states = []supervisor.StateName{supervisor.Discovering, supervisor.Starting, supervisor.Recording, supervisor.Backoff, supervisor.Stalled, supervisor.WaitingCredentials, supervisor.Stopped}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descState, descRestarts, descStalls, descFPS, descBacklog, descBacklogB, descOldest, descFailing, descUsed, descLimit, descFree,
		descVolume, descCatalog, descMoved, descHeld, descDecoding, descSkipped, descCap, descSent, descAchieve, descRecord, descFootage, descPlan,
		descLossIn, descLost, descLeft, descDelWait} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.Cameras != nil {
		for _, s := range c.src.Cameras() {
			up := 0.0
			if s.State == supervisor.Recording {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, s.Camera)
			for _, st := range states {
				v := 0.0
				if s.State == st {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, s.Camera, string(st))
			}
			ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(s.Restarts), s.Camera)
			ch <- prometheus.MustNewConstMetric(descStalls, prometheus.CounterValue, float64(s.Stalls), s.Camera)
			fps := 0.0
			if s.Progress != nil {
				fps = s.Progress.FPS
			}
			ch <- prometheus.MustNewConstMetric(descFPS, prometheus.GaugeValue, fps, s.Camera)
		}
	}
	if c.src.Backlog != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if b, err := c.src.Backlog(ctx); err == nil {
			age := 0.0
			if !b.Oldest.IsZero() {
				age = c.src.Now().Sub(b.Oldest).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(b.Count))
			ch <- prometheus.MustNewConstMetric(descBacklogB, prometheus.GaugeValue, float64(b.Bytes))
			ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age)
			ch <- prometheus.MustNewConstMetric(descDecoding, prometheus.GaugeValue, float64(b.Decoding))
		}
	}
	if c.src.Uploader != nil {
		u := c.src.Uploader()
		ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, boolValue(u.State == uploader.Failing))
		ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(u.DecodeSkipped))
		ch <- prometheus.MustNewConstMetric(descAchieve, prometheus.GaugeValue, u.AchievedMbps*1e6)
		for cam, mbps := range u.RecordedMbpsByCamera {
			ch <- prometheus.MustNewConstMetric(descRecord, prometheus.GaugeValue, mbps*1e6, cam)
		}
		ch <- prometheus.MustNewConstMetric(descFootage, prometheus.GaugeValue, u.BacklogSeconds)
		for _, st := range []string{uploader.PlanOK, uploader.PlanDeficit, uploader.PlanUnknown} {
			ch <- prometheus.MustNewConstMetric(descPlan, prometheus.GaugeValue, boolValue(u.Plan.State == st || (st == uploader.PlanUnknown && u.Plan.State == "")), st)
		}
		ch <- prometheus.MustNewConstMetric(descLossIn, prometheus.GaugeValue, u.Plan.LossInSeconds)
		ch <- prometheus.MustNewConstMetric(descLost, prometheus.GaugeValue, u.Plan.LostFootageSeconds)
		ch <- prometheus.MustNewConstMetric(descLeft, prometheus.CounterValue, float64(u.Plan.Skipped))
		ch <- prometheus.MustNewConstMetric(descDelWait, prometheus.CounterValue, float64(u.Plan.DeletedWaiting))
	}
	if l := c.src.Limiter; l != nil {
		ch <- prometheus.MustNewConstMetric(descCap, prometheus.GaugeValue, l.Mbps()*1e6)
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(l.Sent()))
	}
	if c.src.Volume != nil {
		ch <- prometheus.MustNewConstMetric(descVolume, prometheus.GaugeValue, boolValue(c.src.Volume().State == volume.OK))
	}
	if c.src.Catalog != nil {
		s := c.src.Catalog()
		ch <- prometheus.MustNewConstMetric(descCatalog, prometheus.GaugeValue, boolValue(s.State == keeper.Ready))
		ch <- prometheus.MustNewConstMetric(descMoved, prometheus.CounterValue, float64(len(s.MovedAside)))
		ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, float64(s.Held))
	}
	if c.src.Retention != nil {
		r := c.src.Retention()
		ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, float64(r.UsedBytes))
		ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(r.LimitBytes))
		ch <- prometheus.MustNewConstMetric(descFree, prometheus.GaugeValue, float64(r.FreeBytes))
	}
}
