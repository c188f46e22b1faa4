package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/fixture"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// The big catalog: 16 cameras with 60 s segments for 43.4 days, a million
// rows (the "about six weeks"); the last day's files are on disk,
// the rest uploaded and deleted locally. cctvd v0.1.0 never pruned, so
// this is a box's first start after the upgrade: the rows older than
// catalogRetentionDays (30) are pruned in the background.
const (
	bigRows    = 1_000_000
	bigCameras = 16
	onDisk     = 24 * time.Hour
	// holdFor is how long each start is watched: past the first prune
	// (30 s after the catalog is ready).
	holdFor = 45 * time.Second
)

// startup is what one start of cctvd measured.
type startup struct {
	api, recording, ready time.Duration // from exec
	rss                   float64       // peak, MB
	pruned                int64
	pruneTook             time.Duration
}

// catalogStartup: start-up time and peak RSS with a million-row catalog,
// and with a garbage one, against cctvd on an empty savePath, same run.
func (b *bench) catalogStartup(ctx context.Context) error {
	src, err := b.lowSource()
	if err != nil {
		return err
	}
	base := filepath.Join(b.opts.Work, "catalog")
	now := time.Now().UTC().Truncate(time.Minute)
	b.logf("generating a %d-row catalog and the last day's files", bigRows)
	genStart := time.Now()
	tmplDB, tmplRec, err := generateCatalog(base, now)
	if err != nil {
		return err
	}
	fi, err := os.Stat(tmplDB)
	if err != nil {
		return err
	}
	size := float64(fi.Size()) / 1e6
	b.logf("catalog of %.0f MB generated in %v", size, time.Since(genStart).Round(time.Second))
	var checks []float64
	for range b.opts.Repeats {
		took, err := quickCheck(ctx, tmplDB, tmplRec)
		if err != nil {
			return err
		}
		checks = append(checks, took.Seconds())
	}

	variants := []struct {
		name    string
		prepare func(rec string) error
	}{
		{"empty", func(rec string) error { return os.MkdirAll(rec, 0o755) }},
		{"1M", func(rec string) error {
			if err := linkTree(tmplRec, rec); err != nil {
				return err
			}
			return copyFile(tmplDB, layout.Catalog(layout.DefaultStateDir(rec)))
		}},
		{"garbage", func(rec string) error {
			if err := linkTree(tmplRec, rec); err != nil {
				return err
			}
			junk := make([]byte, 64<<10)
			rand.Read(junk)
			return os.WriteFile(layout.Catalog(layout.DefaultStateDir(rec)), junk, 0o644)
		}},
	}
	res := map[string][]startup{}
	for rep := range b.opts.Repeats {
		for _, v := range variants {
			dir := filepath.Join(base, fmt.Sprintf("%s-%d", v.name, rep))
			os.RemoveAll(dir)
			rec := filepath.Join(dir, "rec")
			if err := v.prepare(rec); err != nil {
				return err
			}
			s, err := b.measureStartup(ctx, dir, rec, src)
			os.RemoveAll(dir)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			b.logf("%s, run %d: API %v, recording %v, ready %v, peak RSS %.1f MB, pruned %d in %v", v.name, rep+1,
				s.api.Round(time.Millisecond), s.recording.Round(time.Millisecond), s.ready.Round(time.Millisecond), s.rss, s.pruned, s.pruneTook.Round(time.Millisecond))
			res[v.name] = append(res[v.name], s)
		}
	}
	med := func(v string, f func(startup) float64) float64 {
		var xs []float64
		for _, s := range res[v] {
			xs = append(xs, f(s))
		}
		return median(xs)
	}
	secs := func(f func(startup) time.Duration) func(startup) float64 {
		return func(s startup) float64 { return f(s).Seconds() }
	}
	what := fmt.Sprintf("%d-row catalog (%.0f MB, %d files on disk)", bigRows, size, bigCameras*int(onDisk/time.Minute))
	for _, m := range []struct {
		name string
		f    func(startup) float64
	}{
		{"start-up to the API answering", secs(func(s startup) time.Duration { return s.api })},
		{"start-up to recording", secs(func(s startup) time.Duration { return s.recording })},
		{"start-up to ready (catalog reconciled; uploads, retention running)", secs(func(s startup) time.Duration { return s.ready })},
	} {
		v, base := med("1M", m.f), med("empty", m.f)
		b.add(Row{Name: m.name + ", " + what + " vs none", Value: fmt.Sprintf("%.2f s", v), Baseline: fmt.Sprintf("none: %.2f s", base),
			Ratio: fmt.Sprintf("%.2f", v/base), Target: "≤ 2 s", Met: met(v <= 2)})
	}
	rss, rssBase := med("1M", func(s startup) float64 { return s.rss }), med("empty", func(s startup) float64 { return s.rss })
	b.add(Row{Name: fmt.Sprintf("peak RSS over the first %v (start-up, reconcile, first prune), %s vs none", holdFor, what),
		Value: fmt.Sprintf("%.1f MB", rss), Baseline: fmt.Sprintf("none: %.1f MB", rssBase), Ratio: fmt.Sprintf("%.2f", rss/rssBase),
		Target: "≤ 60 MB", Met: met(rss <= 60)})
	pruned := med("1M", func(s startup) float64 { return float64(s.pruned) })
	b.add(Row{Name: "first prune after the upgrade (rows older than 30 days, in the background)",
		Value:    fmt.Sprintf("%.0f rows in %.1f s", pruned, med("1M", secs(func(s startup) time.Duration { return s.pruneTook }))),
		Baseline: "-", Ratio: "-", Target: "-", Met: "-"})
	b.add(Row{Name: fmt.Sprintf("full check of the %d-row catalog (quick_check; in the background, 2 min after start, then daily)", bigRows),
		Value: fmt.Sprintf("%.1f s", median(checks)), Baseline: "-", Ratio: "-", Target: "-", Met: "-"})
	g, gBase := med("garbage", secs(func(s startup) time.Duration { return s.recording })), med("empty", secs(func(s startup) time.Duration { return s.recording }))
	b.add(Row{Name: "start-up to recording with a garbage catalog.db, vs none", Value: fmt.Sprintf("%.2f s", g),
		Baseline: fmt.Sprintf("none: %.2f s", gBase), Ratio: fmt.Sprintf("%.2f", g/gBase), Target: "≤ 5 s", Met: met(g <= 5)})
	gr, grBase := med("garbage", secs(func(s startup) time.Duration { return s.ready })), med("empty", secs(func(s startup) time.Duration { return s.ready }))
	b.add(Row{Name: fmt.Sprintf("garbage catalog.db: moved aside, rebuilt from the disk (%d files), ready, vs none", bigCameras*int(onDisk/time.Minute)),
		Value: fmt.Sprintf("%.2f s", gr), Baseline: fmt.Sprintf("none: %.2f s", grBase), Ratio: fmt.Sprintf("%.2f", gr/grBase), Target: "-", Met: "-"})
	return nil
}

// generateCatalog writes the million-row catalog with one INSERT from a
// recursive CTE, and the last day's files (1 kB each) beside it.
func generateCatalog(base string, now time.Time) (dbPath, rec string, err error) {
	rec = filepath.Join(base, "template", "rec")
	dbPath = layout.Catalog(filepath.Join(base, "template"))
	os.RemoveAll(filepath.Join(base, "template"))
	cat, err := catalog.Open(context.Background(), dbPath, rec, nil)
	if err != nil {
		return "", "", err
	}
	cat.Close()
	db, err := sql.Open("sqlite", dbPath+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		return "", "", err
	}
	defer db.Close()
	perCamera := bigRows / bigCameras
	first := now.Add(-time.Duration(perCamera) * time.Minute)
	present := now.Add(-onDisk)
	_, err = db.Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1),
		s AS (SELECT printf('cam%02d', i % ?2) AS cam, ?3 + (i / ?2) * 60 AS t FROM n),
		p AS (SELECT cam, t, cam || '/' || strftime('%Y-%m-%d', t, 'unixepoch') || '/' || cam || '_bench_' ||
			strftime('%Y%m%dT%H%M%SZ', t, 'unixepoch') || '_' || strftime('%Y%m%dT%H%M%SZ', t + 60, 'unixepoch') || '.mp4' AS path FROM s)
		INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, sha256, md5, upload, s3_key, etag, uploaded_ns,
			local, deleted_ns, delete_cause, created_ns)
		SELECT cam, 'bench', t * 1000000000, (t + 60) * 1000000000, path, 1000, lower(hex(randomblob(32))), lower(hex(randomblob(16))),
			'uploaded', 'bench/' || path, '"' || lower(hex(randomblob(16))) || '"', (t + 70) * 1000000000,
			CASE WHEN t >= ?4 THEN 'present' ELSE 'deleted' END,
			CASE WHEN t >= ?4 THEN 0 ELSE (t + 3600) * 1000000000 END,
			CASE WHEN t >= ?4 THEN '' ELSE 'clear-after-upload' END,
			(t + 61) * 1000000000
		FROM p`, bigRows, bigCameras, first.Unix(), present.Unix())
	if err != nil {
		return "", "", fmt.Errorf("generate the catalog: %w", err)
	}
	// A closed gap a camera a day, and each camera's last footage.
	if _, err := db.Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
		INSERT INTO gaps (camera, start_ns, end_ns, cause, detail)
		SELECT printf('cam%02d', i % ?2), (?3 + (i / ?2) * 86400) * 1000000000, (?3 + (i / ?2) * 86400 + 30) * 1000000000, 'stall', 'bench'
		FROM n`, bigCameras*int(now.Sub(first)/(24*time.Hour)), bigCameras, first.Unix()); err != nil {
		return "", "", fmt.Errorf("generate the gaps: %w", err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return "", "", err
	}
	data := make([]byte, 1000)
	for c := range bigCameras {
		cam := fmt.Sprintf("cam%02d", c)
		for t := first.Add(time.Duration(perCamera-1) * time.Minute); !t.Before(present); t = t.Add(-time.Minute) {
			p := layout.SegmentPath(rec, cam, t, segment.Name(cam, "bench", t, t.Add(time.Minute), 0))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return "", "", err
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return "", "", err
			}
		}
	}
	return dbPath, rec, nil
}

// quickCheck times the catalog's full check (SQLite's quick_check).
func quickCheck(ctx context.Context, path, save string) (time.Duration, error) {
	cat, err := catalog.Open(ctx, path, save, nil)
	if err != nil {
		return 0, err
	}
	defer cat.Close()
	start := time.Now()
	if err := cat.QuickCheck(ctx); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// linkTree copies a folder tree with hard links (cctvd does not change
// the files) and creates the state folder.
func linkTree(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-al", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("cp -al: %v: %s", err, out)
	}
	return os.MkdirAll(layout.DefaultStateDir(dst), 0o755)
}

func copyFile(src, dst string) error {
	if out, err := exec.Command("cp", "--reflink=auto", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %v: %s", err, out)
	}
	return nil
}

// measureStartup starts cctvd on rec with one copy-mode camera (cam00,
// 600 s segments: none closes while it is watched) and times its start.
func (b *bench) measureStartup(ctx context.Context, dir, rec, src string) (startup, error) {
	port, err := fixture.FreePort()
	if err != nil {
		return startup{}, err
	}
	cfg := fmt.Sprintf(`{
  "cameras": [{"cameraName": "cam00", "streamUrl": %q, "frameRate": 10, "resolution": "640x360", "videoDuration": 600, "videoFeedId": "bench", "mode": "copy"}],
  "s3Config": {"s3Bucket": "bench", "s3Path": %q, "endpoint": %q},
  "awsCredentials": {"accessKeyId": %q, "secretAccessKey": %q},
  "storageConfig": {"savePath": %q, "clearAfterUpload": true, "clearWhenFilePathReachGB": 50},
  "api": {"listen": "127.0.0.1:%d"},
  "log": {"format": "json"}
}`, "file://"+src, "catalog-"+filepath.Base(dir), b.minio.Endpoint, b.minio.AccessKey, b.minio.SecretKey, rec, port)
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return startup{}, err
	}
	logf, err := os.Create(filepath.Join(dir, "cctvd.log"))
	if err != nil {
		return startup{}, err
	}
	defer logf.Close()
	cmd := exec.Command(b.opts.Cctvd, "run", "--config", cfgPath)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = logf
	pruned := make(chan startup, 1)
	var s startup
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return s, err
	}
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			logf.Write(append(sc.Bytes(), '\n'))
			var m struct {
				Message  string
				Segments int64
				Took     float64
			}
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Message == "pruned catalog rows of footage no longer on disk" {
				pruned <- startup{pruned: m.Segments, pruneTook: time.Duration(m.Took * float64(time.Second))}
			}
		}
		exited <- cmd.Wait()
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
		}
	}()

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := start.Add(60 * time.Second)
	for s.api == 0 || s.recording == 0 || s.ready == 0 {
		if time.Now().After(deadline) {
			return s, fmt.Errorf("not ready after 60 s (see %s)", logf.Name())
		}
		select {
		case err := <-exited:
			return s, fmt.Errorf("cctvd exited: %v (see %s)", err, logf.Name())
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(10 * time.Millisecond): // polling the API from outside, as a monitor would
		}
		at := time.Since(start)
		if s.api == 0 && httpOK(base+"/healthz") {
			s.api = at
		}
		if s.recording == 0 && s.api != 0 && recording(base) {
			s.recording = at
		}
		if s.ready == 0 && s.api != 0 && httpOK(base+"/readyz") {
			s.ready = at
		}
	}
	select {
	case p := <-pruned:
		s.pruned, s.pruneTook = p.pruned, p.pruneTook
	case <-time.After(time.Until(start.Add(holdFor))):
	case err := <-exited:
		return s, fmt.Errorf("cctvd exited: %v (see %s)", err, logf.Name())
	}
	if d := time.Until(start.Add(holdFor)); d > 0 {
		time.Sleep(d) // the rest of the watch: the peak over a fixed span
	}
	s.rss = procPeakRSS(cmd.Process.Pid)
	if s.rss == 0 {
		return s, errors.New("cannot read cctvd's peak RSS")
	}
	return s, nil
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func recording(base string) bool {
	resp, err := http.Get(base + "/api/v1/cameras")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var list struct {
		Cameras []struct{ State string } `json:"cameras"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	return len(list.Cameras) == 1 && list.Cameras[0].State == "recording"
}
