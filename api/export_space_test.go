//go:build integration

package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/export"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

// statfree is what statfs says is free in dir, to an unprivileged user.
func statfree(t *testing.T, dir string) (free, total int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize
}

// TestExportRefusedWithoutTempSpace: footage cleared from the box after
// upload is exported from S3 through a real small filesystem (a 4 MiB
// tmpfs as the export temporary folder). A range whose download would push
// it under its free-space floor gets a 503 that says why, before anything
// is written there; a range that fits plays.
func TestExportRefusedWithoutTempSpace(t *testing.T) {
	ctx := context.Background()
	m := testenv.StartMinIO(t)
	m.CreateBucket("exports")
	save := t.TempDir()
	cat, err := catalog.Open(ctx, filepath.Join(save, ".cctvd", layout.CatalogName), save, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	t0 := time.Date(2026, 1, 6, 14, 0, 0, 0, time.UTC)
	var total int64
	for i := range 3 {
		start := t0.Add(time.Duration(i) * 4 * time.Second)
		end := start.Add(4 * time.Second)
		name := segment.Name("door", "f1", start, end, 0)
		p := filepath.Join(save, layout.DayRel("door", start), name)
		testenv.MakeSegment(t, p, "testsrc2=s=320x240:r=10:d=4")
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		key := "rec/" + layout.DayRel("door", start) + "/" + name
		_, err = m.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("exports"), Key: aws.String(key), Body: bytes.NewReader(data),
			Metadata: map[string]string{uploader.MetaStart: start.Format(uploader.MetaTimeLayout), uploader.MetaEnd: end.Format(uploader.MetaTimeLayout),
				uploader.MetaSHA256: hex.EncodeToString(sum[:])}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := cat.Add(ctx, segment.Segment{Camera: "door", FeedID: "f1", Start: start, End: end, Path: p, Size: int64(len(data))}, key)
		if err != nil {
			t.Fatal(err)
		}
		if err := cat.SetChecksums(ctx, r.ID, hex.EncodeToString(sum[:]), "x"); err != nil {
			t.Fatal(err)
		}
		if err := cat.MarkUploaded(ctx, r.ID, "", "test"); err != nil {
			t.Fatal(err)
		}
		os.Remove(p) // clearAfterUpload
		if err := cat.MarkLocalDeleted(ctx, r.ID, catalog.CauseClearAfterUpload); err != nil {
			t.Fatal(err)
		}
		total += int64(len(data))
	}

	tmp := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", tmp).CombinedOutput(); err != nil {
		testenv.NeedsRoot(t, "cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { syscall.Unmount(tmp, syscall.MNT_DETACH) })
	free, size := statfree(t, tmp)
	floor := retention.DefaultFloor(uint64(size))
	if err := os.WriteFile(filepath.Join(tmp, "filler"), make([]byte, free-floor-total/2), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := statfree(t, tmp)

	svc := export.NewService(export.ServiceConfig{Bucket: "exports", Prefix: "rec", Temp: &export.TempSpace{Dir: tmp}},
		export.ServiceDeps{Catalog: cat, S3: m.Client(), Log: zerolog.Nop()})
	t.Cleanup(svc.Close)
	s, err := New(Config{Listen: "127.0.0.1:0", MaxExportRange: time.Hour}, Deps{Log: zerolog.New(zerolog.NewTestWriter(t)), Catalog: cat, Export: svc, Redactor: redact.New()})
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{"export", "export/manifest"} {
		code, body := getPath(t, s, "/api/v1/cameras/door/"+route+"?from=2026-01-06T14:00:00Z&to=2026-01-06T14:00:12Z")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "not enough temporary space") ||
			!strings.Contains(body, "storageConfig.exportTempDir") || strings.Contains(body, tmp) {
			t.Errorf("%s of 12 s of footage S3 alone holds, with room for 6: %d %s; want 503 saying why (and no path)", route, code, body)
		}
	}
	if after, _ := statfree(t, tmp); after != before {
		t.Errorf("free space went from %d to %d bytes: something was written", before, after)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 1 {
		t.Errorf("the temporary folder holds %v", entries)
	}

	// 4 s fit.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/cameras/door/export?from=2026-01-06T14:00:08Z&to=2026-01-06T14:00:12Z", nil)
	req.Host = "127.0.0.1:8080"
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "video/mp4" {
		t.Fatalf("a range that fits: %d %.300s", rec.Code, rec.Body.String())
	}
	clip := filepath.Join(t.TempDir(), "clip.mp4")
	os.WriteFile(clip, rec.Body.Bytes(), 0o644)
	if p := testenv.ProbeClip(t, clip); (p.Duration - 4*time.Second).Abs() > 100*time.Millisecond {
		t.Errorf("the clip plays %v, want 4s", p.Duration)
	}
}
