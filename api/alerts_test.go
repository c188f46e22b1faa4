package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/alerts"
	"github.com/cctvd/cctvd/internal/redact"
)

// fakeAlerts is a stand-in for the alerts service (a fake, named as such).
type fakeAlerts struct {
	view    alerts.View
	limit   int
	targets []string
}

func (f *fakeAlerts) View(limit int) alerts.View { f.limit = limit; return f.view }
func (f *fakeAlerts) Test() (alerts.Event, []string, error) {
	if len(f.targets) == 0 {
		return alerts.Event{}, nil, alerts.ErrNoTargets
	}
	return alerts.Event{ID: "run-9"}, f.targets, nil
}

func TestAlertRoutes(t *testing.T) {
	const secret = "hooks-t0ken-in-a-message"
	fa := &fakeAlerts{targets: []string{"webhook-1a2b3c4d", "mqtt"}}
	fa.view.Open = []alerts.OpenCondition{{ID: "r-1", Type: alerts.CameraDown, Camera: "door", Message: "down: " + secret}}
	fa.view.Events = []alerts.Entry{{Event: alerts.Event{ID: "r-1", Message: "x " + secret},
		Deliveries: []alerts.Delivery{{Target: "webhook-1a2b3c4d", State: alerts.Pending, LastError: "POST " + secret}}}}
	fa.view.Targets = []alerts.TargetStatus{{Name: "webhook-1a2b3c4d", LastError: secret}}
	s := mustNew(t, Config{Listen: "127.0.0.1:0"}, Deps{Log: zerolog.Nop(), Redactor: redact.New(secret), Alerts: fa})
	none := mustNew(t, Config{Listen: "127.0.0.1:0"}, Deps{Log: zerolog.Nop(), Redactor: redact.New()})
	noTargets := mustNew(t, Config{Listen: "127.0.0.1:0"}, Deps{Log: zerolog.Nop(), Redactor: redact.New(), Alerts: &fakeAlerts{}})
	tests := []struct {
		srv          *Server
		method, path string
		status       int
		body         string
	}{
		{s, "GET", "/api/v1/alerts", 200, `"open":[{"id":"r-1","type":"camera-down"`},
		{s, "GET", "/api/v1/alerts?limit=7", 200, `"targets":[{"name":"webhook-1a2b3c4d"`},
		{s, "GET", "/api/v1/alerts?limit=0", 400, `{"error":"limit must be a whole number from 1 to 500"}`},
		{s, "GET", "/api/v1/alerts?limit=9" + secret, 400, `{"error":"limit must be a whole number from 1 to 500"}`},
		{s, "POST", "/api/v1/alerts/test", 202, `{"id":"run-9","targets":["webhook-1a2b3c4d","mqtt"]}`},
		{noTargets, "POST", "/api/v1/alerts/test", 409, `{"error":"no alert target is configured (alerts.webhooks, alerts.mqtt)"}`},
		{none, "GET", "/api/v1/alerts", 503, `{"error":"the alerts are not running"}`},
		{none, "POST", "/api/v1/alerts/test", 503, `{"error":"the alerts are not running"}`},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req.Host = "127.0.0.1:8080"
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		tt.srv.Handler().ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != tt.status || !strings.Contains(body, tt.body) {
			t.Errorf("%s %s: %d %s, want %d with %s", tt.method, tt.path, rec.Code, body, tt.status, tt.body)
		}
		if strings.Contains(body, secret) {
			t.Errorf("%s %s: the answer holds a secret: %s", tt.method, tt.path, body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Errorf("%s %s: not JSON", tt.method, tt.path)
		}
	}
	if fa.limit != 7 {
		t.Errorf("limit passed as %d", fa.limit)
	}
	// A POST from a web page elsewhere is refused.
	req := httptest.NewRequest("POST", "/api/v1/alerts/test", nil)
	req.Host = "127.0.0.1:8080"
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Errorf("cross-site POST: %d", rec.Code)
	}
}
