//go:build integration

package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cctvd/cctvd/internal/countproxy"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// TestKilledMidMultipartResumes: cctvd is SIGKILLed half way through the
// multipart upload of a 150 MB segment (8 MiB parts, two at once, capped
// at 40 Mbit/s so it is slow); after the restart it reconciles with S3,
// sends only the parts S3 lacks, and the object is verified. The bytes
// are counted at a proxy between cctvd and MinIO: what went again is at
// most the parts that were in flight at the kill.
func TestKilledMidMultipartResumes(t *testing.T) {
	s := newSetup(t, 300) // no camera segment closes during the test
	proxy, err := countproxy.Start(strings.TrimPrefix(s.minio.Endpoint, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	s.endpoint = "http://" + proxy.Addr()
	const size, part, parts = 150 << 20, 8 << 20, 2
	s.s3 = fmt.Sprintf(`, "maxUploadMbps": 40, "partSizeMB": %d, "partConcurrency": %d`, part>>20, parts)
	start := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	name := segment.Name("door", "f1", start, start.Add(10*time.Minute), 0)
	path := filepath.Join(s.savePath, layout.DayRel("door", start), name)
	writeVideo(t, path, size)
	key := "rec/2025/door/2026-01-06/" + name
	cfgPath := s.writeConfig(t)

	d := startDaemon(t, "run", "--config", cfgPath)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := proxy.WaitFor(ctx, func(c countproxy.Counts) bool { return c.Up >= size/2 }); err != nil {
		t.Fatalf("half the file never went up; output:\n%s", d.output())
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.wait(30 * time.Second)
	before := proxy.Counts().Up
	if n := s.minio.MultipartUploads("test-bucket", key); n != 1 {
		t.Fatalf("%d multipart uploads after the kill, want the one under way", n)
	}

	d = startDaemon(t, "run", "--config", cfgPath)
	line, _ := d.await(0, 2*time.Minute, func(m map[string]any) bool {
		return m["message"] == "multipart upload reconciled with S3" && m["segment"] == name
	})
	kept, toSend := int(line["partsKept"].(float64)), int(line["partsToSend"].(float64))
	if total := (size + part - 1) / part; kept+toSend != total || kept < total/3 {
		t.Errorf("reconciled: %d parts kept, %d to send, of %d", kept, toSend, total)
	}
	d.await(0, 3*time.Minute, func(m map[string]any) bool { return m["message"] == "uploaded and verified" && m["segment"] == name })
	after := proxy.Counts().Up - before
	again := before + after - size
	t.Logf("sent %d bytes before the kill, %d after: %d more than the file (parts of %d, %d at once)", before, after, again, part, parts)
	if again > part*parts+1<<20 { // the parts in flight at the kill, and the requests' headers
		t.Errorf("%d bytes sent again after the restart: more than the %d parts in flight at the kill", again, parts)
	}
	if !strings.Contains(d.output(), `"message":"resuming a multipart upload"`) {
		t.Error("the restart did not resume the recorded upload")
	}
	head, err := s.minio.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("test-bucket"), Key: aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(head.ContentLength) != size || head.Metadata["sha256"] != fileSHA(t, path) || aws.ToString(head.ChecksumCRC64NVME) == "" ||
		!strings.HasSuffix(strings.Trim(aws.ToString(head.ETag), `"`), fmt.Sprintf("-%d", kept+toSend)) {
		t.Errorf("object: %d bytes, sha256 %q, crc %q, ETag %s", aws.ToInt64(head.ContentLength), head.Metadata["sha256"],
			aws.ToString(head.ChecksumCRC64NVME), aws.ToString(head.ETag))
	}
	if _, err := base64.StdEncoding.DecodeString(aws.ToString(head.ChecksumCRC64NVME)); err != nil {
		t.Errorf("checksum %q", aws.ToString(head.ChecksumCRC64NVME))
	}
	if n := s.minio.MultipartUploads("test-bucket", key); n != 0 {
		t.Errorf("%d multipart uploads left", n)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.wait(time.Minute)
}

// TestUploadDeficitIsSaid: the camera records more than the cap lets up,
// into a tiny size limit. The status says so in plain words (the rates,
// when footage waiting will be deleted), the alert upload-deficit is
// raised, and every segment retention deletes before upload while a later
// one went up is said: counted in the plan (skipped, or deleted waiting)
// and logged.
func TestUploadDeficitIsSaid(t *testing.T) {
	s := newSetup(t, 2)
	s.s3 = `, "maxUploadMbps": 0.01` // 10 kbit/s: the test camera records about 30
	s.limitGB = 0.00012              // 120 kB
	d := startDaemon(t, "run", "--config", s.writeConfig(t))
	c := newClient(t, d, "")
	var st struct {
		Uploader struct {
			AchievedMbps float64 `json:"achievedMbps"`
			RecordedMbps float64 `json:"recordedMbps"`
			Plan         struct {
				State          string  `json:"state"`
				Message        string  `json:"message"`
				LossInSeconds  float64 `json:"lossInSeconds"`
				Skipped        int     `json:"skipped"`
				DeletedWaiting int     `json:"deletedWaiting"`
			} `json:"plan"`
		} `json:"uploader"`
		Storage struct {
			DeletedNotUploaded int `json:"deletedNotUploaded"`
		} `json:"storage"`
		UploadLimit struct {
			MaxUploadMbps float64 `json:"maxUploadMbps"`
		} `json:"uploadLimit"`
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		c.json("GET", "/api/v1/status", 200, &st)
		p := st.Uploader.Plan
		if p.State == "deficit" && st.Storage.DeletedNotUploaded > 0 && p.Skipped+p.DeletedWaiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no deficit said: %+v; output:\n%s", st, d.output())
		}
		d.await(d.mark(), time.Minute, func(map[string]any) bool { return true }) // the next thing the daemon does
	}
	p := st.Uploader.Plan
	if st.Uploader.RecordedMbps <= st.UploadLimit.MaxUploadMbps || !strings.Contains(p.Message, "bit/s up against") ||
		!strings.Contains(p.Message, "recorded") || !strings.Contains(p.Message, "deleted before upload") {
		t.Errorf("plan: %+v (recorded %v Mbit/s, cap %v)", p, st.Uploader.RecordedMbps, st.UploadLimit.MaxUploadMbps)
	}
	out := d.output()
	if !strings.Contains(out, `"message":"upload deficit"`) {
		t.Error("the deficit's start is not logged")
	}
	if !strings.Contains(out, "upload deficit: leaving the waiting segments") && !strings.Contains(out, "while a later one goes up in its place") {
		t.Error("the uploader does not say it leaves segments to retention")
	}
	if n := strings.Count(out, "deleted a recording S3 does not have"); n < st.Storage.DeletedNotUploaded {
		t.Errorf("%d deletions before upload logged, %d counted", n, st.Storage.DeletedNotUploaded)
	}
	var alerts struct {
		Open []struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"open"`
	}
	c.json("GET", "/api/v1/alerts", 200, &alerts)
	raised := false
	for _, a := range alerts.Open {
		raised = raised || (a.Type == "upload-deficit" && strings.Contains(a.Message, "up against"))
	}
	if !raised {
		t.Errorf("upload-deficit not raised: %+v", alerts.Open)
	}
	fams := scrape(t, c)
	if v := metricValue(fams, "cctvd_upload_plan", map[string]string{"state": "deficit"}); v != 1 {
		t.Errorf("cctvd_upload_plan{state=deficit} = %v", v)
	}
	if v := metricValue(fams, "cctvd_upload_cap_bits_per_second", nil); v != 10e3 {
		t.Errorf("cctvd_upload_cap_bits_per_second = %v", v)
	}
	if v := metricValue(fams, "cctvd_recorded_bits_per_second", map[string]string{"camera": "door"}); v <= 10e3 {
		t.Errorf("cctvd_recorded_bits_per_second{camera=door} = %v", v)
	}
	// What a person sees: the storage panel says the cap, the rates and the
	// plan in plain words.
	pg := openPage(t, c.base+"/")
	pg.wait("the plan on the page", `((document.querySelector('#upload-plan') || {}).textContent || '').includes('will be deleted before upload')`, time.Minute)
	if panel := pg.text("#storage-body"); !strings.Contains(panel, "Upload cap10 kbit/s (from the config)") || !strings.Contains(panel, "recorded") ||
		!strings.Contains(panel, "Footage waiting") {
		pg.fail("the storage panel: %q", panel)
	}
	pg.noErrors()
	// Every segment deleted before upload while a later one reached S3 was
	// said by the uploader.
	var list struct {
		Recordings []struct {
			Start       time.Time `json:"start"`
			Upload      string    `json:"upload"`
			Local       string    `json:"local"`
			DeleteCause string    `json:"deleteCause"`
		} `json:"recordings"`
	}
	c.json("GET", "/api/v1/recordings?camera=door&limit=1000", 200, &list)
	c.json("GET", "/api/v1/status", 200, &st)
	var latestUp time.Time
	for _, r := range list.Recordings {
		if r.Upload == "uploaded" && r.Start.After(latestUp) {
			latestUp = r.Start
		}
	}
	passed := 0
	for _, r := range list.Recordings {
		if r.Upload != "uploaded" && r.Local == "deleted" && strings.HasPrefix(r.DeleteCause, "retention") && r.Start.Before(latestUp) {
			passed++
		}
	}
	if said := st.Uploader.Plan.Skipped + st.Uploader.Plan.DeletedWaiting; passed > said {
		t.Errorf("%d segments deleted before upload while a later one went up; the uploader said %d (%+v)", passed, said, st.Uploader.Plan)
	}
	t.Logf("plan: %s (skipped %d, deleted waiting %d, %d passed over)", p.Message, st.Uploader.Plan.Skipped, st.Uploader.Plan.DeletedWaiting, passed)
}
