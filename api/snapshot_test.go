//go:build integration

package api

import (
	"bytes"
	"context"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/snapshot"
)

// TestSnapshotRoute: a real segment made by ffmpeg gives a JPEG that
// decodes, of the segment's last second; asked again, the same bytes
// without running ffmpeg (and 304 with its ETag); once a newer segment is
// in the catalog, a new still, of it. A camera without a segment on the
// box, or unknown, is a JSON 404; the token is required.
func TestSnapshotRoute(t *testing.T) {
	testenv.RequireTools(t)
	ctx := context.Background()
	save := t.TempDir()
	cat, err := catalog.Open(ctx, filepath.Join(save, ".cctvd", layout.CatalogName), save, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	add := func(camera string, start time.Time, lavfi string) catalog.Record {
		t.Helper()
		end := start.Add(3 * time.Second)
		p := filepath.Join(save, layout.DayRel(camera, start), segment.Name(camera, "f1", start, end, 0))
		testenv.MakeSegment(t, p, lavfi)
		fi, _ := os.Stat(p)
		r, err := cat.Add(ctx, segment.Segment{Camera: camera, FeedID: "f1", Start: start, End: end, Path: p, Size: fi.Size()}, "k")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	t0 := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	first := add("door", t0, "color=c=blue:s=640x360:r=5:d=2[a];color=c=red:s=640x360:r=5:d=1.4[b];[a][b]concat[out0]")
	snaps := snapshot.New(snapshot.Config{}, snapshot.Deps{Catalog: cat, Log: zerolog.Nop()})
	const token = "snap-t0ken-abcdefgh"
	s := mustNew(t, Config{Listen: "127.0.0.1:0", Settings: Settings{Token: token}}, Deps{Log: zerolog.Nop(), Catalog: cat, Snapshots: snaps, Redactor: redact.New()})
	get := func(path string, header map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Host = "127.0.0.1:8080"
		req.Header.Set("Authorization", "Bearer "+token)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	// colour decodes the still and says which of red, green and blue
	// its middle is.
	colour := func(rec *httptest.ResponseRecorder) string {
		t.Helper()
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/jpeg" {
			t.Fatalf("snapshot: %d %s %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
		}
		img, err := jpeg.Decode(bytes.NewReader(rec.Body.Bytes()))
		if err != nil {
			t.Fatalf("the snapshot does not decode as a JPEG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 360 {
			t.Errorf("the snapshot is %dx%d, want 640x360", b.Dx(), b.Dy())
		}
		r, g, b, _ := img.At(320, 180).RGBA()
		switch {
		case r>>8 > 200 && g>>8 < 60 && b>>8 < 60:
			return "red"
		case b>>8 > 200 && r>>8 < 60 && g>>8 < 60:
			return "blue"
		case g>>8 > 200 && r>>8 < 60 && b>>8 < 60:
			return "green"
		}
		return "other"
	}

	one := get("/api/v1/cameras/door/snapshot.jpg", nil)
	if c := colour(one); c != "red" {
		t.Errorf("the still is %s, want the red of the segment's last second", c)
	}
	etag := one.Header().Get("ETag")
	if etag == "" || one.Header().Get("X-Segment") != filepath.Base(first.Path) ||
		one.Header().Get("Last-Modified") != first.End.Format(http.TimeFormat) || one.Header().Get("Cache-Control") != "private, no-cache" {
		t.Errorf("headers %v", one.Header())
	}
	if n := snaps.Stats().Runs; n != 1 {
		t.Fatalf("%d ffmpegs for one still", n)
	}
	// Cached: the same bytes, no ffmpeg.
	two := get("/api/v1/cameras/door/snapshot.jpg", nil)
	if !bytes.Equal(two.Body.Bytes(), one.Body.Bytes()) || two.Header().Get("ETag") != etag {
		t.Error("the second still differs from the first, with no newer segment")
	}
	if rec := get("/api/v1/cameras/door/snapshot.jpg", map[string]string{"If-None-Match": etag}); rec.Code != http.StatusNotModified {
		t.Errorf("with its ETag: %d, want 304", rec.Code)
	}
	if n := snaps.Stats().Runs; n != 1 {
		t.Errorf("%d ffmpegs after three requests without a newer segment, want 1", n)
	}
	// A newer segment: a new still, of it.
	add("door", t0.Add(time.Minute), "color=c=lime:s=640x360:r=5:d=2")
	three := get("/api/v1/cameras/door/snapshot.jpg", map[string]string{"If-None-Match": etag})
	if c := colour(three); c != "green" {
		t.Errorf("after a newer segment the still is %s, want green", c)
	}
	if three.Header().Get("ETag") == etag || snaps.Stats().Runs != 2 {
		t.Errorf("after a newer segment: ETag %s (was %s), %d ffmpegs, want 2", three.Header().Get("ETag"), etag, snaps.Stats().Runs)
	}

	// Errors: JSON, never the request's words; the token required.
	for path, want := range map[string]string{
		"/api/v1/cameras/n0b0dy/snapshot.jpg": `{"error":"no camera by that name, configured or recorded"}`,
	} {
		rec := get(path, nil)
		if rec.Code != 404 || strings.TrimSpace(rec.Body.String()) != want {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Body.String())
		}
	}
	// A camera whose only segment is gone from the box (retention).
	gone := add("yard", t0, "color=c=red:s=320x240:r=5:d=1")
	if err := cat.MarkLocalDeleted(ctx, gone.ID, "retention"); err != nil {
		t.Fatal(err)
	}
	if rec := get("/api/v1/cameras/yard/snapshot.jpg", nil); rec.Code != 404 ||
		strings.TrimSpace(rec.Body.String()) != `{"error":"the camera has no closed segment on this box"}` {
		t.Errorf("a camera without a segment on the box: %d %s", rec.Code, rec.Body.String())
	}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/cameras/door/snapshot.jpg", nil)
	req.Host = "127.0.0.1:8080"
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("without the token: %d", rec.Code)
	}
}
