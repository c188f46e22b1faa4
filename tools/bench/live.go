package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/cctvd/cctvd/internal/mp4"
)

// live measures live view: latency and start time with a 1 s GOP on one
// camera, then cctvd's own CPU with 16 copy cameras and no viewer, 16
// viewers of one camera, and one viewer of each.
func (b *bench) live(ctx context.Context) error {
	src := filepath.Join(b.opts.Work, "src-720p-1M-gop1.mp4")
	if err := makeSourceGOP(src, "1280x720", 25, 20, "1M", false, 25); err != nil {
		return err
	}
	cams := make([]camSpec, 16)
	for i := range cams {
		cams[i] = camSpec{Name: fmt.Sprintf("cam%03d", i+1), URL: "file://" + src, FPS: 25, Res: "1280x720", Dur: 10, Mode: "copy"}
	}
	d, err := b.startDaemon(filepath.Join(b.opts.Work, "live"), cams, "")
	if err != nil {
		return err
	}
	defer d.stop()
	url := func(cam string) string { return fmt.Sprintf("ws://127.0.0.1:%d/api/v1/cameras/%s/live", d.port, cam) }

	// Latency: from each fragment's wall time (its segment's start plus
	// its media time: its first frame) to its arrival.
	var lat []float64
	lctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = watch(lctx, url("cam001"), func(f *mp4.Fragment, wall, arrived time.Time) bool {
		if !wall.IsZero() {
			lat = append(lat, arrived.Sub(wall).Seconds())
		}
		return len(lat) < 100
	})
	cancel()
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
	b.add(Row{Name: fmt.Sprintf("live view latency, fragment's first frame to a WebSocket client, 1 s GOP, p50 (%d fragments)", len(lat)),
		Value: fmt.Sprintf("%.3f s", p50), Baseline: "-", Ratio: "-", Target: "≤ 1 s", Met: met(p50 <= 1)})
	b.add(Row{Name: "live view latency, 1 s GOP, p99", Value: fmt.Sprintf("%.3f s", p99), Baseline: "-", Ratio: "-", Target: "-", Met: "-"})

	// Start: from opening the socket to the first keyframe's fragment (the
	// init segment before it): the first playable frame. Cold: the first
	// viewer of a camera (its reader starts, finds the newest keyframe);
	// warm: the camera has a viewer, or had one in the last 5 s.
	startOf := func(cam string) (float64, error) {
		t0 := time.Now()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var took float64
		err := watch(sctx, url(cam), func(f *mp4.Fragment, _, arrived time.Time) bool {
			if f.Keyframe {
				took = arrived.Sub(t0).Seconds()
			}
			return !f.Keyframe
		})
		return took, err
	}
	var cold, warm []float64
	for i := 3; i <= 12; i++ {
		v, err := startOf(cams[i-1].Name)
		if err != nil {
			return fmt.Errorf("start: %w", err)
		}
		cold = append(cold, v)
	}
	for range 20 {
		v, err := startOf("cam002")
		if err != nil {
			return fmt.Errorf("start: %w", err)
		}
		warm = append(warm, v)
	}
	b.add(Row{Name: fmt.Sprintf("live view start, socket opened to the first playable frame, a camera's first viewer, median (%d)", len(cold)),
		Value: fmt.Sprintf("%.3f s", median(cold)), Baseline: fmt.Sprintf("camera already read: %.3f s (%d)", median(warm), len(warm)), Ratio: "-", Target: "-", Met: "-"})

	// CPU: none, 16 viewers of cam001, one viewer of each camera.
	cpu := func(viewers []string) (float64, error) {
		vctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() { stop(); wg.Wait() }()
		errs := make(chan error, len(viewers))
		for _, cam := range viewers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := watch(vctx, url(cam), func(*mp4.Fragment, time.Time, time.Time) bool { return true }); err != nil && vctx.Err() == nil {
					errs <- err
				}
			}()
		}
		time.Sleep(warmup) // the viewers joined, a steady state
		var per []float64
		for range b.opts.Repeats {
			c0, t0 := procCPU(d.pid()), time.Now()
			time.Sleep(window)
			per = append(per, 100*(procCPU(d.pid())-c0)/time.Since(t0).Seconds())
		}
		select {
		case err := <-errs:
			return 0, err
		default:
		}
		return median(per), nil
	}
	none, err := cpu(nil)
	if err != nil {
		return err
	}
	oneCam := make([]string, 16)
	each := make([]string, 16)
	for i := range oneCam {
		oneCam[i], each[i] = "cam001", cams[i].Name
	}
	for _, m := range []struct {
		what    string
		viewers []string
	}{{"16 viewers of one camera", oneCam}, {"one viewer of each of 16 cameras", each}} {
		with, err := cpu(m.viewers)
		if err != nil {
			return err
		}
		per := (with - none) / 16
		b.add(Row{Name: "cctvd's own CPU, 16 copy cameras (720p25, 1 Mbit/s), " + m.what, Value: fmt.Sprintf("%.2f%% of a core (%.3f%% a viewer)", with, per),
			Baseline: fmt.Sprintf("no viewer: %.2f%%", none), Ratio: fmt.Sprintf("%.2f", with/none), Target: "≤ 0.2% a viewer", Met: met(per <= 0.2)})
	}
	return nil
}

// watch reads a live view at url, handing fn each fragment with its wall
// time (zero while unknown) and arrival, until fn returns false or ctx ends.
func watch(ctx context.Context, url string, fn func(f *mp4.Fragment, wall, arrived time.Time) bool) error {
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	var in *mp4.InitSegment
	var clockMedia float64
	var clockWall time.Time
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		arrived := time.Now()
		if typ == websocket.MessageText {
			var m struct {
				Type  string    `json:"type"`
				Media float64   `json:"media"`
				Wall  time.Time `json:"wall"`
			}
			if json.Unmarshal(data, &m) == nil && m.Type == "clock" {
				clockMedia, clockWall = m.Media, m.Wall
			}
			continue
		}
		if len(data) >= 8 && string(data[4:8]) == "ftyp" {
			if in, err = mp4.ParseInitSegment(data); err != nil {
				return err
			}
			continue
		}
		if in == nil {
			return fmt.Errorf("a fragment before the init segment")
		}
		f, err := mp4.ParseFragment(in, data)
		if err != nil {
			return err
		}
		var wall time.Time
		if !clockWall.IsZero() {
			wall = clockWall.Add(time.Duration((float64(f.DecodeTime)/float64(in.Timescale) - clockMedia) * float64(time.Second)))
		}
		if !fn(f, wall, arrived) {
			return nil
		}
	}
}
