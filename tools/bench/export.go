package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// exportHour: one hour of 10 s segments (360 files, copies of one 640x360
// 10 fps segment in cctvd's fragmented format) exported through the API,
// from local disk, then from MinIO (the local files removed): time to the
// first byte of the answer and to its last, against the bare ffmpeg concat
// of the same files (-f concat -c copy -movflags +faststart, the MinIO
// objects through presigned URLs), alternating in the same run.
func (b *bench) exportHour(ctx context.Context) error {
	const (
		camera = "door"
		n      = 360
		dur    = 10 * time.Second
	)
	dir := filepath.Join(b.opts.Work, "export")
	rec := filepath.Join(dir, "rec")
	os.RemoveAll(dir)
	seg := filepath.Join(b.opts.Work, "export-segment.mp4")
	if err := makeSegment(seg); err != nil {
		return err
	}
	data, err := os.ReadFile(seg)
	if err != nil {
		return err
	}
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	var files []string
	for i := range n {
		start := t0.Add(time.Duration(i) * dur)
		p := layout.SegmentPath(rec, camera, start, segment.Name(camera, "bench", start, start.Add(dur), 0))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		files = append(files, p)
	}
	b.logf("export: %d segments of %d kB", n, len(data)/1000)

	// One live camera keeps the daemon as it runs on a box; the hour is
	// another camera's, found on disk at start-up and uploaded.
	live := filepath.Join(b.opts.Work, "src-360p-256k.mp4")
	if err := makeSource(live, "640x360", 10, 20, "256k", false); err != nil {
		return err
	}
	cams := []camSpec{{Name: "live", URL: "file://" + live, FPS: 10, Res: "640x360", Dur: 10, Mode: "copy"}}
	d, err := b.startDaemonClearing(dir, cams, "", false)
	if err != nil {
		return err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", d.port)
	if err := awaitUploaded(ctx, base, camera, 5*time.Minute); err != nil {
		d.stop()
		return err
	}
	from, to := t0, t0.Add(n*dur)
	local, err := b.compareExport(ctx, base, camera, from, to, concatList(files), "local disk")
	d.stop()
	if err != nil {
		return err
	}

	// The files leave the box; the catalog finds them gone at start-up.
	if err := os.RemoveAll(filepath.Join(rec, camera)); err != nil {
		return err
	}
	var urls []string
	presign := s3.NewPresignClient(b.minio.Client())
	for _, f := range files {
		rel, _ := filepath.Rel(rec, f)
		req, err := presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String("export/" + filepath.ToSlash(rel))},
			s3.WithPresignExpires(time.Hour))
		if err != nil {
			return err
		}
		urls = append(urls, req.URL)
	}
	d, err = b.startDaemonClearing(dir, cams, "", false)
	if err != nil {
		return err
	}
	defer d.stop()
	remote, err := b.compareExport(ctx, fmt.Sprintf("http://127.0.0.1:%d", d.port), camera, from, to, concatList(urls), "MinIO")
	if err != nil {
		return err
	}
	b.logf("export: local %+v, MinIO %+v", local, remote)
	return nil
}

// makeSegment encodes one 10 s segment as cctvd records them: 640x360 at
// 10 fps, a keyframe every 2 s, fragmented every half second.
func makeSegment(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=10",
		"-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "20", "-b:v", "512k", "-maxrate", "512k",
		"-bufsize", "512k", "-pix_fmt", "yuv420p", "-f", "mp4",
		"-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "500000", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("make segment: %v: %s", err, out)
	}
	return nil
}

// concatList is an ffmpeg concat demuxer script of the inputs.
func concatList(inputs []string) string {
	var sb strings.Builder
	sb.WriteString("ffconcat version 1.0\n")
	for _, in := range inputs {
		fmt.Fprintf(&sb, "file '%s'\n", in)
	}
	return sb.String()
}

// awaitUploaded waits until S3 has every segment of camera the catalog
// knows.
func awaitUploaded(ctx context.Context, base, camera string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var pending, all struct {
			Recordings []json.RawMessage `json:"recordings"`
		}
		if getJSON(base+"/api/v1/recordings?camera="+camera+"&uploaded=false&limit=1", &pending) == nil &&
			getJSON(base+"/api/v1/recordings?camera="+camera+"&limit=1", &all) == nil &&
			len(pending.Recordings) == 0 && len(all.Recordings) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond): // polling the API from outside
		}
	}
	return errors.New("export: the segments were not all uploaded in time")
}

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// exportTimes are one way's medians.
type exportTimes struct {
	TTFB, Total, Bare float64
	Bytes             int64
}

// compareExport times the export of [from, to) through the API against
// the bare ffmpeg concat of list, alternating, and adds the rows.
func (b *bench) compareExport(ctx context.Context, base, camera string, from, to time.Time, list, where string) (exportTimes, error) {
	listPath := filepath.Join(b.opts.Work, "export-concat.txt")
	if err := os.WriteFile(listPath, []byte(list), 0o644); err != nil {
		return exportTimes{}, err
	}
	out := filepath.Join(b.opts.Work, "export-bare.mp4")
	var ttfb, total, bare []float64
	var size int64
	for rep := range b.opts.Repeats {
		start := time.Now()
		cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-protocol_whitelist", "file,http,tcp",
			"-f", "concat", "-safe", "0", "-i", listPath, "-c", "copy", "-movflags", "+faststart", out)
		if o, err := cmd.CombinedOutput(); err != nil {
			return exportTimes{}, fmt.Errorf("bare ffmpeg concat: %v: %s", err, o)
		}
		bare = append(bare, time.Since(start).Seconds())

		// A range a little shorter each time: a new clip, not the one
		// kept ready from the previous request.
		q := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Add(-time.Duration(rep) * time.Second).Format(time.RFC3339Nano)}}
		first, all, n, err := timeGet(ctx, base+"/api/v1/cameras/"+camera+"/export?"+q.Encode())
		if err != nil {
			return exportTimes{}, err
		}
		ttfb, total, size = append(ttfb, first), append(total, all), n
	}
	os.Remove(out)
	t := exportTimes{TTFB: median(ttfb), Total: median(total), Bare: median(bare), Bytes: size}
	name := fmt.Sprintf("export 1 h of 10 s segments (360 files, %d MB) from %s", size/1_000_000, where)
	ttfbTarget, ttfbMet := "-", "-"
	if where == "local disk" {
		ttfbTarget, ttfbMet = "< 1 s", met(t.TTFB < 1)
	}
	b.add(Row{Name: name + ": time to first byte", Value: fmt.Sprintf("%.2f s", t.TTFB),
		Baseline: fmt.Sprintf("bare ffmpeg %.2f s (+faststart: nothing before the end)", t.Bare), Ratio: fmt.Sprintf("%.2f", t.TTFB/t.Bare),
		Target: ttfbTarget, Met: ttfbMet})
	b.add(Row{Name: name + ": total", Value: fmt.Sprintf("%.2f s", t.Total), Baseline: fmt.Sprintf("bare ffmpeg concat %.2f s", t.Bare),
		Ratio: fmt.Sprintf("%.2f", t.Total/t.Bare), Target: "≤ 1.2× bare ffmpeg", Met: met(t.Total <= 1.2*t.Bare)})
	return t, nil
}

// timeGet GETs u and returns the seconds to the first byte of the body
// and to its end, and its length.
func timeGet(ctx context.Context, u string) (float64, float64, int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return 0, 0, 0, fmt.Errorf("export: %s: %s", resp.Status, body)
	}
	buf := make([]byte, 256<<10)
	n, err := resp.Body.Read(buf)
	if n == 0 && err != nil {
		return 0, 0, 0, fmt.Errorf("export: no body: %w", err)
	}
	first := time.Since(start).Seconds()
	rest, err := io.CopyBuffer(io.Discard, resp.Body, buf)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("export: read: %w", err)
	}
	return first, time.Since(start).Seconds(), int64(n) + rest, nil
}
