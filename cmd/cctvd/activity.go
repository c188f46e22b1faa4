package main

import (
	"context"
	"time"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/supervisor"
)

// The activity index's wiring. The supervisor hands every camera's
// activity feed (the recording ffmpeg's own small frames) to the analysis
// service through frame, which never blocks; each closed segment's summary
// goes into the catalog before the segment's row (so the uploader puts it
// in the object's metadata), and again when its last frames came late; the
// intervals' beginnings and ends go to the activity hook (alerts).

// buildActivity makes the analysis service.
func (d *daemon) buildActivity() {
	d.act = activity.NewService(activity.Config{}, activity.Deps{Log: d.log, OnFinal: d.activityFinal,
		OnEvent: d.activityEvent, Mono: d.clock.Mono, After: d.clock.After})
}

// frame passes a frame of a camera's feed on; it never blocks (the
// service drops and counts what it cannot take).
func (d *daemon) frame(f supervisor.Frame) {
	d.act.Offer(activity.Input{Camera: f.Camera, Run: f.Run, PTS: f.PTS, Epoch: f.Epoch, JPEG: f.JPEG, End: f.End})
}

// segmentActivity summarises a closed segment's activity; false when it
// was not analysed (activity off, a segment salvaged from an earlier run,
// one named from its file's time).
func (d *daemon) segmentActivity(seg segment.Segment) (activity.Summary, bool) {
	if seg.Epoch.IsZero() || seg.Run == "" || seg.Salvaged {
		return activity.Summary{}, false
	}
	sum, k := d.act.Segment(activity.SegmentRef{Camera: seg.Camera, Run: seg.Run,
		From: seg.Start.Sub(seg.Epoch), To: seg.End.Sub(seg.Epoch), Tag: seg})
	return sum, k != activity.Unknown
}

// recordActivity writes a segment's activity to the catalog; a failure
// costs the activity of that segment only.
func (d *daemon) recordActivity(cat *catalog.Catalog, seg segment.Segment, sum activity.Summary) {
	if err := cat.SetActivity(context.Background(), seg.Path, seg.Camera, seg.Start, seg.End, sum); err != nil {
		d.log.Error().Err(err).Str("segment", seg.Name()).Msg("cannot record the segment's activity")
	}
}

// activityFinal records the final summary of a segment whose last frames
// were analysed after it closed.
func (d *daemon) activityFinal(ref activity.SegmentRef, sum activity.Summary) {
	seg, ok := ref.Tag.(segment.Segment)
	if !ok {
		return
	}
	d.keep.Do(func(cat *catalog.Catalog) { d.recordActivity(cat, seg, sum) })
}

// SetActivityHook has fn called at every activity interval's beginning and
// end, on every camera, as the frames show them (for alerts). Off (nil)
// by default. fn must not block: it runs on the analysis goroutine.
func (d *daemon) SetActivityHook(fn func(activity.Event)) {
	if fn == nil {
		d.onActivity.Store(nil)
		return
	}
	d.onActivity.Store(&fn)
}

func (d *daemon) activityEvent(ev activity.Event) {
	if fn := d.onActivity.Load(); fn != nil {
		(*fn)(ev)
	}
}

// activityIntervals lists a camera's activity for the API (limit > 0:
// the first limit).
func (d *daemon) activityIntervals(ctx context.Context, camera string, from, to time.Time, limit int) ([]catalog.ActivityInterval, error) {
	return d.keep.ActivityUpTo(ctx, camera, from, to, limit)
}
