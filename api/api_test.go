package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/export"
	"github.com/cctvd/cctvd/internal/clock"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/live"
	"github.com/cctvd/cctvd/snapshot"
	"github.com/cctvd/cctvd/uploader"
)

// mustNew is New for a config that must be valid.
func mustNew(t *testing.T, cfg Config, deps Deps) *Server {
	t.Helper()
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// allRoutes builds a server with every optional route enabled.
func allRoutes(t *testing.T) *Server {
	return mustNew(t, Config{Listen: "127.0.0.1:0"}, Deps{
		Log:      zerolog.Nop(),
		Registry: prometheus.NewRegistry(),
		Reload:   func(context.Context) (ReloadResult, error) { return ReloadResult{}, nil },
		Gaps:     func(context.Context, string, time.Time, time.Time) ([]catalog.Gap, error) { return nil, nil },
		Activity: func(context.Context, string, time.Time, time.Time, int) ([]catalog.ActivityInterval, error) {
			return nil, nil
		},
		Export:    export.NewService(export.ServiceConfig{}, export.ServiceDeps{}),
		Snapshots: snapshot.New(snapshot.Config{}, snapshot.Deps{}),
		Live:      live.New(live.Config{SavePath: t.TempDir()}, live.Deps{}),
		UploadLimit: uploader.NewPacer(uploader.NewLimiter(), uploader.Schedule{Default: uploader.Unlimited}, 0,
			clock.System(), zerolog.Nop()),
	})
}

func TestEveryRouteIsDocumented(t *testing.T) {
	documented := documentedRoutes(t)
	if len(documented) < 10 {
		t.Fatalf("parsed only %d routes from docs/openapi.yaml: %v", len(documented), documented)
	}
	registered := allRoutes(t).Routes()
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is registered but missing from docs/openapi.yaml", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(registered, r) {
			t.Errorf("docs/openapi.yaml describes %s, which is not registered", r)
		}
	}
}

func TestErrorsAreJSON(t *testing.T) {
	s := mustNew(t, Config{Listen: "127.0.0.1:0", Settings: Settings{Token: "tok"}}, Deps{
		Log:      zerolog.Nop(),
		Redactor: redact.New("hunter2-long"),
		Ready:    func() error { return errors.New("savePath is not writable: open /rec/hunter2-long: permission denied") },
	})
	tests := []struct {
		method, path, auth string
		status             int
		body               string
	}{
		{"GET", "/no/such/route", "", 404, `{"error":"Not Found"}`},
		{"DELETE", "/healthz", "", 405, `{"error":"Method Not Allowed"}`},
		{"GET", "/api/v1/cameras", "", 401, `{"error":"missing or wrong bearer token"}`},
		{"GET", "/api/v1/cameras", "Bearer tok2", 401, `{"error":"missing or wrong bearer token"}`},
		{"GET", "/api/v1/cameras", "Basic dG9rOg==", 401, `{"error":"missing or wrong bearer token"}`},
		{"GET", "/readyz", "", 503, `{"error":"not ready","status":"not ready"}`}, // the detail is only logged
		{"GET", "/healthz", "", 200, `{"status":"ok"}`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" "+tt.auth, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			req.Host = "127.0.0.1:8080"
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.status || strings.TrimSpace(rec.Body.String()) != tt.body {
				t.Errorf("%d %s, want %d %s", rec.Code, rec.Body.String(), tt.status, tt.body)
			}
			if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
			}
			if tt.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			var v map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Errorf("not JSON: %v", err)
			}
		})
	}
}

func TestListenErrorIsReturned(t *testing.T) {
	l := httptest.NewServer(http.NotFoundHandler()) // holds a port
	defer l.Close()
	s := mustNew(t, Config{Listen: strings.TrimPrefix(l.URL, "http://")}, Deps{Log: zerolog.Nop()})
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Run on a taken port = %v", err)
	}
}
