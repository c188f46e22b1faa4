// Package webhook delivers alerts as HTTP POSTs of their JSON
// (docs/alerts.md), signed with HMAC-SHA256 of the body when a secret is
// set. A receiver answers 2xx to take an event; any other answer, or none
// within the timeout, is a failure the alerts try again, except a 4xx
// (other than 408 and 429), which refuses the event for good.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cctvd/cctvd/alerts"
)

// The headers of every delivery.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
	// body under the webhook's secret, when it has one.
	SignatureHeader = "X-Cctvd-Signature-256"
	// EventHeader carries the event's type; IDHeader its id (the same on
	// every attempt).
	EventHeader = "X-Cctvd-Event"
	IDHeader    = "X-Cctvd-Event-Id"
)

// Config is one webhook.
type Config struct {
	// URL receives the POSTs. It may hold credentials (userinfo, a token
	// in its path or query): it is never shown, logged or answered.
	URL string
	// Events are the types it takes; none: every type.
	Events []alerts.Type
	// Secret, if set, signs each body (SignatureHeader).
	Secret string
	// Version goes into the User-Agent.
	Version string
	// Timeout bounds one attempt. Default 10s.
	Timeout time.Duration
}

// Target is a webhook as an alerts.Target.
type Target struct {
	cfg    Config
	name   string
	addr   string
	client *http.Client
}

// New returns a webhook target.
func New(cfg Config) (*Target, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("webhook: the URL is not an http:// or https:// URL")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	sum := sha256.Sum256([]byte(cfg.URL))
	return &Target{
		cfg:  cfg,
		name: "webhook-" + hex.EncodeToString(sum[:4]),
		addr: u.Scheme + "://" + u.Host,
		client: &http.Client{
			Timeout: cfg.Timeout,
			// A redirect is not followed: it could carry the event (and
			// the URL's credentials) elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// Name is "webhook-" and the first 8 hex digits of the URL's SHA-256:
// stable across restarts, and it shows nothing of the URL.
func (t *Target) Name() string { return t.name }

// Kind is "webhook".
func (t *Target) Kind() string { return "webhook" }

// Address is the URL's scheme and host, without its path, query or
// credentials.
func (t *Target) Address() string { return t.addr }

// Wants says whether the webhook takes events of type ty.
func (t *Target) Wants(ty alerts.Type) bool {
	return len(t.cfg.Events) == 0 || slices.Contains(t.cfg.Events, ty)
}

// Deliver POSTs the event's JSON.
func (t *Target) Deliver(ctx context.Context, ev alerts.Event, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("webhook: cannot make the request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cctvd/"+t.cfg.Version)
	req.Header.Set(EventHeader, string(ev.Type))
	req.Header.Set(IDHeader, ev.ID)
	if t.cfg.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(t.cfg.Secret, body))
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %s", t.addr, reason(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests:
		return fmt.Errorf("webhook %s answered %s: %w", t.addr, resp.Status, alerts.ErrRejected)
	case c >= 300 && c < 400:
		return fmt.Errorf("webhook %s answered %s (a redirect is not followed)", t.addr, resp.Status)
	default:
		return fmt.Errorf("webhook %s answered %s", t.addr, resp.Status)
	}
}

// reason is why a request failed, without the URL (it may hold
// credentials: net/http's errors quote it).
func reason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "no answer in time"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	msg := err.Error()
	// An error of the dialler names the address, not the URL; keep the
	// last part, which says what happened.
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// Sign returns the value of SignatureHeader for body: "sha256=" and the
// hex HMAC-SHA256 of the body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a SignatureHeader value against body, in constant time,
// as a receiver does.
func Verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}
