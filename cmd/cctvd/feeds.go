package main

import (
	"context"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/keeper"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/supervisor"
)

// A camera's sub feed is a second camera run: the gap log keeps its holes
// under a name of its own, the sub feed's staging name (<camera>~sub), so
// that the two feeds' runs, segments and deletions never open or close
// each other's gaps. A camera without a subStream is logged as before.

// subFeeds maps each camera with a subStream to its sub feed's id.
func subFeeds(cfg *config.Config) map[string]string {
	out := map[string]string{}
	for _, c := range cfg.Cameras {
		if sub, ok := c.SubCamera(); ok {
			out[c.CameraName] = sub.VideoFeedID
		}
	}
	return out
}

// gapNames are the gap log's names: every camera's, and its sub feed's.
func gapNames(cfg *config.Config) []string {
	var names []string
	for _, c := range cfg.Cameras {
		for _, f := range c.Feeds() {
			names = append(names, layout.FeedStagingName(f.CameraName, f.Feed))
		}
	}
	return names
}

// gapEvent, gapSegment and gapRecord put a sub feed's event, segment or
// row under its gap-log name.
func gapEvent(ev supervisor.Event) supervisor.Event {
	if ev.Feed == config.FeedSub {
		ev.Camera = layout.FeedStagingName(ev.Camera, ev.Feed)
	}
	return ev
}

func gapSegment(seg segment.Segment) segment.Segment {
	if seg.Sub {
		seg.Camera = layout.FeedStagingName(seg.Camera, config.FeedSub)
	}
	return seg
}

func gapRecord(r catalog.Record) catalog.Record {
	if r.Sub {
		r.Camera = layout.FeedStagingName(r.Camera, config.FeedSub)
	}
	return r
}

// gapCatalog is the keeper as the gap log reads it: a name's last footage
// is its feed's (a camera's main feed's, when it has a sub feed too).
type gapCatalog struct {
	*keeper.Keeper
	cfg func() *config.Config
}

func (g gapCatalog) Latest(ctx context.Context, name string) (catalog.Record, error) {
	camera, feed := layout.StagingFeed(name)
	cam, ok := g.cfg().Camera(camera)
	switch {
	case !ok || cam.SubStream == nil:
		return g.Keeper.Latest(ctx, name)
	case feed == config.FeedSub:
		sub, _ := cam.SubCamera()
		r, err := g.LatestFeed(ctx, camera, sub.VideoFeedID)
		return gapRecord(r), err
	}
	return g.LatestFeed(ctx, camera, cam.VideoFeedID)
}

// inWindow says whether a window of the upload schedule lets the uploads
// run now (the main feeds' time with uploadFeeds sub+schedule).
func (d *daemon) inWindow() bool {
	st := d.pacer.Status()
	return st.Window != nil && !st.Paused
}

// wakeUploader makes the uploader look at its queue now (an upload
// request came in).
func (d *daemon) wakeUploader() {
	d.partsMu.Lock()
	up := d.up
	d.partsMu.Unlock()
	if up != nil {
		up.Notify()
	}
}
