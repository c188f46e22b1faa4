package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cctvd/cctvd/alerts"
)

func TestSign(t *testing.T) {
	tests := []struct {
		secret, body, want string
	}{
		// RFC 4231, test case 2.
		{"Jefe", "what do ya want for nothing?", "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		// RFC 4231, test case 1 (the key is 20 bytes of 0x0b).
		{strings.Repeat("\x0b", 20), "Hi There", "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{"s3cret-webhook-key", "", ""}, // an empty body signs too
	}
	for _, tt := range tests {
		got := Sign(tt.secret, []byte(tt.body))
		if tt.want != "" && got != tt.want {
			t.Errorf("Sign(%q, %q) = %s, want %s", tt.secret, tt.body, got, tt.want)
		}
		if !Verify(tt.secret, []byte(tt.body), got) {
			t.Errorf("Verify refuses its own signature")
		}
		if Verify(tt.secret+"x", []byte(tt.body), got) || Verify(tt.secret, []byte(tt.body+" "), got) || Verify(tt.secret, []byte(tt.body), strings.ToUpper(got)) {
			t.Errorf("Verify accepts a wrong secret, body or header")
		}
	}
}

func TestDeliver(t *testing.T) {
	var status atomic.Int32
	var gotSig, gotID, gotType, gotCT string
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotSig, gotID, gotType, gotCT = r.Header.Get(SignatureHeader), r.Header.Get(IDHeader), r.Header.Get(EventHeader), r.Header.Get("Content-Type")
		gotBody, _ = io.ReadAll(r.Body)
		switch c := int(status.Load()); c {
		case 302:
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
		default:
			w.WriteHeader(c)
		}
	}))
	defer srv.Close()
	const secret = "s3cret-webhook-key"
	url := strings.Replace(srv.URL, "http://", "http://hook:pa55word-in-url@", 1) + "/hooks/T0KEN-in-the-path?token=q-t0ken"
	tg, err := New(Config{URL: url, Secret: secret, Version: "1.2.3", Events: []alerts.Type{alerts.CameraDown}})
	if err != nil {
		t.Fatal(err)
	}
	ev := alerts.Event{ID: "run-7", Type: alerts.CameraDown}
	body := []byte(`{"id":"run-7"}`)
	tests := []struct {
		status   int
		ok       bool
		rejected bool
	}{{200, true, false}, {204, true, false}, {500, false, false}, {503, false, false}, {429, false, false}, {408, false, false},
		{404, false, true}, {400, false, true}, {302, false, false}}
	for _, tt := range tests {
		status.Store(int32(tt.status))
		err := tg.Deliver(context.Background(), ev, body)
		if (err == nil) != tt.ok || errors.Is(err, alerts.ErrRejected) != tt.rejected {
			t.Errorf("%d: %v (ok %v, rejected %v)", tt.status, err, tt.ok, tt.rejected)
		}
		if err != nil {
			for _, secret := range []string{"pa55word-in-url", "T0KEN-in-the-path", "q-t0ken", secret} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%d: the error shows a secret: %v", tt.status, err)
				}
			}
		}
		if !Verify(secret, gotBody, gotSig) || gotID != "run-7" || gotType != "camera-down" || gotCT != "application/json" || string(gotBody) != string(body) {
			t.Errorf("%d: request sig=%q id=%q type=%q ct=%q body=%s", tt.status, gotSig, gotID, gotType, gotCT, gotBody)
		}
	}
	if !tg.Wants(alerts.CameraDown) || tg.Wants(alerts.CameraUp) {
		t.Error("Wants ignores events")
	}
	if tg.Address() != srv.URL || !strings.HasPrefix(tg.Name(), "webhook-") || len(tg.Name()) != 16 || strings.Contains(tg.Name(), "hook:") {
		t.Errorf("name %q address %q", tg.Name(), tg.Address())
	}
	if all, _ := New(Config{URL: srv.URL}); !all.Wants(alerts.ClockStep) {
		t.Error("a webhook without events takes none")
	}
	if _, err := New(Config{URL: "ftp://x/"}); err == nil {
		t.Error("ftp URL accepted")
	}
}

func TestAReceiverThatHangsTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	tg, _ := New(Config{URL: srv.URL + "/x", Timeout: 200 * time.Millisecond})
	err := tg.Deliver(context.Background(), alerts.Event{ID: "1", Type: alerts.Test}, []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), "no answer in time") || errors.Is(err, alerts.ErrRejected) {
		t.Errorf("hang: %v", err)
	}
}
