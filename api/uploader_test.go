package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/clock"
	"github.com/cctvd/cctvd/uploader"
)

// TestUploadLimit: GET shows the cap in force and says a PUT is not
// persisted; PUT changes it at run time (the limiter takes it at once),
// null returns to the config; bad bodies get a 4xx JSON error that does
// not echo them.
func TestUploadLimit(t *testing.T) {
	lim := uploader.NewLimiter()
	pacer := uploader.NewPacer(lim, uploader.ScheduleFrom(config.S3Config{MaxUploadMbps: 8}), 8, clock.System(), zerolog.Nop())
	s := mustNew(t, Config{Listen: "127.0.0.1:0"}, Deps{Log: zerolog.Nop(), UploadLimit: pacer})
	do := func(method, body string) (int, LimitResult, string) {
		req := httptest.NewRequest(method, "/api/v1/uploader/limit", strings.NewReader(body))
		req.Host = "127.0.0.1:8080"
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		var res LimitResult
		json.Unmarshal(rec.Body.Bytes(), &res)
		return rec.Code, res, rec.Body.String()
	}
	code, res, _ := do("GET", "")
	if code != 200 || res.MaxUploadMbps != 8 || res.Source != uploader.SourceConfig || res.Persisted || !strings.Contains(res.Note, "not written to the config") {
		t.Errorf("GET: %d %+v", code, res)
	}
	code, res, _ = do("PUT", `{"maxUploadMbps": 2.5}`)
	if code != 200 || res.MaxUploadMbps != 2.5 || res.Source != uploader.SourceAPI || lim.Mbps() != 2.5 {
		t.Errorf("PUT 2.5: %d %+v, limiter %v", code, res, lim.Mbps())
	}
	code, res, _ = do("PUT", `{"maxUploadMbps": 0}`)
	if code != 200 || res.MaxUploadMbps != 0 || res.Paused || lim.Mbps() != uploader.Unlimited {
		t.Errorf("PUT 0 (no cap): %d %+v, limiter %v", code, res, lim.Mbps())
	}
	code, res, _ = do("PUT", `{"maxUploadMbps": null}`)
	if code != 200 || res.MaxUploadMbps != 8 || res.Source != uploader.SourceConfig || lim.Mbps() != 8 {
		t.Errorf("PUT null: %d %+v", code, res)
	}
	for _, body := range []string{``, `secret-Mbps`, `{"maxUploadMbps": "fast-secret"}`, `{"maxUploadMbps": -1}`, `{"maxUploadMbps": 1e9}`,
		`{"maxUploadMbps": 3, "secretField": 1}`, `{}`, `[3]`, `{"maxUploadMbps": 3} {"x": 1}`, `{"maxuploadmbps": 3}`} {
		code, _, raw := do("PUT", body)
		if code < 400 || code >= 500 || !strings.HasPrefix(raw, `{"error":`) || strings.Contains(raw, "secret") || strings.Contains(raw, "1e9") {
			t.Errorf("PUT %q: %d %s", body, code, raw)
		}
	}
	if lim.Mbps() != 8 {
		t.Errorf("a refused PUT changed the cap: %v", lim.Mbps())
	}
}
