package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/export"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// exportServer serves the export routes over a real catalog holding two
// segments of camera "door", 14:00:00-14:00:10 and 14:01:00-14:01:10 on
// 2026-01-06, with a stall logged between them.
func exportServer(t *testing.T) *Server {
	t.Helper()
	ctx := context.Background()
	save := t.TempDir()
	cat, err := catalog.Open(ctx, filepath.Join(save, ".cctvd", layout.CatalogName), save, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	t0 := time.Date(2026, 1, 6, 14, 0, 0, 0, time.UTC)
	for _, start := range []time.Time{t0, t0.Add(time.Minute)} {
		end := start.Add(10 * time.Second)
		p := filepath.Join(save, layout.DayRel("door", start), segment.Name("door", "f1", start, end, 0))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), 0o644)
		if _, err := cat.Add(ctx, segment.Segment{Camera: "door", FeedID: "f1", Start: start, End: end, Path: p, Size: 1}, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cat.AddGap(ctx, catalog.Gap{Camera: "door", Start: t0.Add(10 * time.Second), End: t0.Add(time.Minute), Cause: "stall"}); err != nil {
		t.Fatal(err)
	}
	svc := export.NewService(export.ServiceConfig{}, export.ServiceDeps{Catalog: cat, Log: zerolog.Nop()})
	t.Cleanup(svc.Close)
	s, err := New(Config{Listen: "127.0.0.1:0", MaxExportRange: time.Hour}, Deps{Log: zerolog.Nop(), Catalog: cat, Export: svc, Redactor: redact.New()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func getPath(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1:8080" // the Host allow-list refuses httptest's example.com
	s.Handler().ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

func TestExportBadRequests(t *testing.T) {
	s := exportServer(t)
	const ok = "from=2026-01-06T14:00:00Z&to=2026-01-06T14:01:10Z"
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/cameras/door/export?to=2026-01-06T14:01:10Z", 400, `{"error":"from is required: an RFC 3339 time such as 2026-01-06T14:03:00Z"}`},
		{"/cameras/door/spans?from=2026-01-06T14:00:00Z", 400, `{"error":"to is required: an RFC 3339 time such as 2026-01-06T14:03:00Z"}`},
		{"/cameras/door/export?from=yesterday%3Cscript%3E&to=2026-01-06T14:01:10Z", 400,
			`{"error":"from is not an RFC 3339 time such as 2026-01-06T14:03:00Z or 2026-01-06T15:03:00.5+01:00"}`},
		{"/cameras/door/export/manifest?from=2026-01-06T14:00:00Z&to=14:01", 400,
			`{"error":"to is not an RFC 3339 time such as 2026-01-06T14:03:00Z or 2026-01-06T15:03:00.5+01:00"}`},
		{"/cameras/door/export?from=2026-01-06T14:01:10Z&to=2026-01-06T14:00:00Z", 400, `{"error":"from must be before to"}`},
		{"/cameras/door/spans?from=2026-01-06T14:00:00Z&to=2026-01-06T14:00:00Z", 400, `{"error":"from must be before to"}`},
		{"/cameras/door/export?from=2026-01-06T12:00:00Z&to=2026-01-06T15:00:00%2B01:00", 400, `{"error":"from and to are more than 1h0m0s apart (api.maxExportRange)"}`},
		{"/cameras/n0b0dy/export?" + ok, 404, `{"error":"no camera by that name, configured or recorded"}`},
		{"/cameras/n0b0dy/spans?" + ok, 404, `{"error":"no camera by that name, configured or recorded"}`},
		{"/cameras/door/export?from=2026-01-06T14:00:20Z&to=2026-01-06T14:00:40Z", 404,
			`{"error":"no footage between from and to","before":{"from":"2026-01-06T14:00:00Z","to":"2026-01-06T14:00:10Z"},"after":{"from":"2026-01-06T14:01:00Z","to":"2026-01-06T14:01:10Z"}}`},
		{"/cameras/door/export/manifest?from=2026-01-06T14:05:00%2B00:00&to=2026-01-06T14:06:00Z", 404,
			`{"error":"no footage between from and to","before":{"from":"2026-01-06T14:01:00Z","to":"2026-01-06T14:01:10Z"},"after":null}`},
	}
	for _, tt := range tests {
		code, body := getPath(t, s, "/api/v1"+tt.path)
		if code != tt.status || body != tt.body {
			t.Errorf("%s: %d %s\nwant %d %s", tt.path, code, body, tt.status, tt.body)
		}
		for _, echoed := range []string{"yesterday", "script", "n0b0dy", "14:01\"", "12:00:00"} {
			if strings.Contains(body, echoed) {
				t.Errorf("%s: the answer repeats the request's %q", tt.path, echoed)
			}
		}
	}
}

func TestSpansRoute(t *testing.T) {
	s := exportServer(t)
	code, body := getPath(t, s, "/api/v1/cameras/door/spans?from=2026-01-06T14:00:05Z&to=2026-01-06T15:01:10%2B01:00")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var tl export.Timeline
	if err := json.Unmarshal([]byte(body), &tl); err != nil {
		t.Fatal(err)
	}
	if len(tl.Spans) != 2 || tl.Spans[0].Start.Format(time.RFC3339) != "2026-01-06T14:00:05Z" || !tl.Spans[1].Local || tl.Spans[1].Uploaded ||
		len(tl.Gaps) != 1 || tl.Gaps[0].Cause != "stall" || tl.Gaps[0].Seconds != 50 || tl.FootageSeconds != 15 {
		t.Errorf("timeline %s", body)
	}
}
