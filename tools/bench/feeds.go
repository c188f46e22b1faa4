package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

// feeds: two feeds per camera on a narrow uplink (issue 24). Four
// cameras record a main feed at 4 Mbit/s and a sub feed at 0.3 Mbit/s in
// 10 s segments (files of random bytes behind an MP4 head, written in real
// time, each added to cctvd's catalog as the segmenter adds it), the
// uploader capped at 10 % of the mains (1.6 Mbit/s) with uploadFeeds sub,
// into MinIO, for feedsRun: the share of the sub segments in S3 within
// 2 minutes of closing, and the p99 of that delay. Then an incident: a
// request for camera 1's last 5 minutes of main footage, and the time
// until all of it is in S3. Shorter than the 30 minutes, to keep
// make bench's length: the backlog of mains grows the same way every
// minute, and the subs' delay is measured over every segment.
func (b *bench) feeds(ctx context.Context) error {
	const (
		cameras   = 4
		seg       = 10 * time.Second
		mainMbps  = 4.0
		subMbps   = 0.3
		capMbps   = cameras * mainMbps / 10
		feedsRun  = 10 * time.Minute
		incident  = 5 * time.Minute
		within    = 2 * time.Minute
		mainBytes = int64(mainMbps * 1e6 / 8 * 10)
		subBytes  = int64(subMbps * 1e6 / 8 * 10)
	)
	save, err := os.MkdirTemp(b.opts.Work, "feeds")
	if err != nil {
		return err
	}
	defer os.RemoveAll(save)
	cat, err := catalog.Open(ctx, layout.Catalog(layout.DefaultStateDir(save)), save, nil)
	if err != nil {
		return err
	}
	defer cat.Close()
	lim := uploader.NewLimiter()
	lim.SetMbps(capMbps)
	client, err := uploader.NewClient(ctx, uploader.ClientConfig{Region: "us-east-1", Endpoint: b.minio.Endpoint, PathStyle: true,
		AccessKeyID: b.minio.AccessKey, SecretAccessKey: b.minio.SecretKey, Limiter: lim})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	closed := map[int64]time.Time{} // segment id -> when it closed
	uploaded := map[int64]time.Time{}
	wake := make(chan struct{}, 1)
	u := uploader.New(uploader.Config{Bucket: "bench", Prefix: "feeds", Feeds: config.UploadFeedsSub},
		uploader.Deps{Log: zerolog.Nop(), Catalog: cat, S3: client, Limiter: lim, OnUploaded: func(r catalog.Record, _ time.Duration) {
			mu.Lock()
			uploaded[r.ID] = time.Now()
			mu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
		}})
	uctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { u.Run(uctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()

	var subs []int64
	mainsOf := map[time.Time][]int64{} // camera 1's main segments by start
	add := func(camera, feed string, sub bool, start time.Time, size int64) (int64, error) {
		end := start.Add(seg)
		rel := layout.SegmentRel(camera, start, segment.Name(camera, feed, start, end, 0))
		p := filepath.Join(save, rel)
		if err := randomMP4(p, size); err != nil {
			return 0, err
		}
		r, err := cat.Add(ctx, segment.Segment{Camera: camera, FeedID: feed, Start: start, End: end, Path: p, Size: size, Sub: sub},
			uploader.Key("feeds", rel))
		if err != nil {
			return 0, err
		}
		mu.Lock()
		closed[r.ID] = time.Now()
		mu.Unlock()
		return r.ID, nil
	}
	b.logf("feeds: %d cameras, main %.1f + sub %.1f Mbit/s each, cap %.1f Mbit/s, uploadFeeds sub, %v", cameras, mainMbps, subMbps, capMbps, feedsRun)
	begin := time.Now().UTC().Truncate(seg)
	tick := time.NewTicker(seg)
	defer tick.Stop()
	for start := begin; start.Before(begin.Add(feedsRun)); start = start.Add(seg) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		for c := range cameras {
			name := fmt.Sprintf("cam%d", c+1)
			id, err := add(name, "main", false, start, mainBytes)
			if err != nil {
				return err
			}
			if c == 0 {
				mainsOf[start] = append(mainsOf[start], id)
			}
			if id, err = add(name, "main-sub", true, start, subBytes); err != nil {
				return err
			}
			subs = append(subs, id)
		}
		u.Notify()
	}
	// The last sub segments get their 2 minutes too (no longer than it
	// takes them all to be in S3).
	allUp := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range subs {
			if _, ok := uploaded[id]; !ok {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && !allUp() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-time.After(time.Until(deadline)):
		}
	}
	mu.Lock()
	var delays []float64
	inTime := 0
	for _, id := range subs {
		d := within * 10 // not up: counted late
		if at, ok := uploaded[id]; ok {
			d = at.Sub(closed[id])
		}
		delays = append(delays, d.Seconds())
		if d <= within {
			inTime++
		}
	}
	mu.Unlock()
	share := 100 * float64(inTime) / float64(len(subs))
	b.add(Row{Name: fmt.Sprintf("feeds: sub segments in S3 within 2 min of closing (4 cameras, cap 10 %% of the mains, uploadFeeds sub, %v)", feedsRun),
		Value: fmt.Sprintf("%.1f %% of %d", share, len(subs)), Baseline: "-", Ratio: "-", Target: "100 %", Met: met(inTime == len(subs))})
	p99 := percentile(delays, 0.99)
	b.add(Row{Name: "feeds: sub segment close to S3, p99", Value: fmt.Sprintf("%.1f s", p99), Baseline: "-", Ratio: "-", Target: "≤ 120 s", Met: met(p99 <= within.Seconds())})

	// The incident: camera 1's last 5 minutes of main footage.
	var want []int64
	from := begin.Add(feedsRun - incident)
	for start, ids := range mainsOf {
		if !start.Before(from) {
			want = append(want, ids...)
		}
	}
	asked := time.Now()
	if _, err := cat.AddUploadRequest(ctx, "cam1", from, begin.Add(feedsRun)); err != nil {
		return err
	}
	u.Notify()
	limit := time.Now().Add(30 * time.Minute)
	for {
		mu.Lock()
		left, last := 0, asked
		for _, id := range want {
			if at, ok := uploaded[id]; ok {
				last = maxT(last, at)
			} else {
				left++
			}
		}
		mu.Unlock()
		if left == 0 {
			took := last.Sub(asked)
			ideal := float64(len(want)) * float64(mainBytes) * 8 / 1e6 / capMbps // the request's bytes at the whole cap
			b.add(Row{Name: "feeds: an incident's 5 main-quality minutes of one camera in S3 after the request", Value: fmt.Sprintf("%.0f s", took.Seconds()),
				Baseline: fmt.Sprintf("%.0f s (its bytes at the cap)", ideal), Ratio: fmt.Sprintf("%.2f", took.Seconds()/ideal), Target: "-", Met: "-"})
			return nil
		}
		if time.Now().After(limit) {
			return fmt.Errorf("the incident's main footage is not in S3 after 30 minutes: %d of %d segments left", left, len(want))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-time.After(10 * time.Second):
		}
	}
}
