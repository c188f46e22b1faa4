//go:build integration

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/cctvd/cctvd/alerts"
	"github.com/cctvd/cctvd/alerts/webhook"
	"github.com/cctvd/cctvd/api"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
)

const (
	hookSecret = "hmac-s3cret-of-the-webhook"
	hookPath   = "/hooks/T0KEN-in-the-webhook-path"
)

// receiver is a real webhook receiver on 127.0.0.1. It answers 500 while
// failing, holds every request open while hanging, and 204 otherwise; it
// keeps every request.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	failing  bool
	hanging  bool
	requests []hookRequest
	open     int       // requests being held
	openedAt time.Time // when the first held request came
	changed  chan struct{}
	release  chan struct{}
}

type hookRequest struct {
	at       time.Time
	ev       alerts.Event
	body     []byte
	signed   bool // the signature verified
	answered int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, changed: make(chan struct{}, 1), release: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		hr := hookRequest{at: time.Now(), body: body, signed: webhook.Verify(hookSecret, body, req.Header.Get(webhook.SignatureHeader)) &&
			req.URL.Path == hookPath && req.Header.Get(webhook.IDHeader) != ""}
		if err := json.Unmarshal(body, &hr.ev); err != nil || hr.ev.ID != req.Header.Get(webhook.IDHeader) {
			hr.signed = false
		}
		r.mu.Lock()
		failing, hanging := r.failing, r.hanging
		if hanging {
			r.open++
			if r.openedAt.IsZero() {
				r.openedAt = time.Now()
			}
		}
		r.mu.Unlock()
		switch {
		case hanging:
			select { // never answers: the client gives up
			case <-req.Context().Done():
			case <-r.release:
			}
			r.mu.Lock()
			r.open--
			r.mu.Unlock()
			return
		case failing:
			hr.answered = 500
		default:
			hr.answered = 204
		}
		r.mu.Lock()
		r.requests = append(r.requests, hr)
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
		w.WriteHeader(hr.answered)
	}))
	t.Cleanup(func() { close(r.release); r.srv.Close() })
	return r
}

func (r *receiver) url() string { return r.srv.URL + hookPath }

func (r *receiver) set(failing, hanging bool) {
	r.mu.Lock()
	r.failing, r.hanging = failing, hanging
	r.mu.Unlock()
}

// taken returns the events answered 2xx, in order.
func (r *receiver) taken() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hookRequest
	for _, hr := range r.requests {
		if hr.answered < 300 {
			out = append(out, hr)
		}
	}
	return out
}

func (r *receiver) all() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookRequest(nil), r.requests...)
}

// await waits for an event that matches to be taken.
func (r *receiver) await(what string, timeout time.Duration, match func(alerts.Event) bool) alerts.Event {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		for _, hr := range r.taken() {
			if match(hr.ev) {
				return hr.ev
			}
		}
		select {
		case <-r.changed:
		case <-deadline:
			r.t.Fatalf("the webhook did not get %s within %v; it got %v", what, timeout, r.types())
		}
	}
}

func (r *receiver) types() []string {
	var out []string
	for _, hr := range r.all() {
		out = append(out, fmt.Sprintf("%s(%s)=%d", hr.ev.Type, hr.ev.ID, hr.answered))
	}
	return out
}

func isType(ty alerts.Type, camera string) func(alerts.Event) bool {
	return func(e alerts.Event) bool { return e.Type == ty && e.Camera == camera }
}

// mqttWatch is a real MQTT client on the test's broker keeping the last
// message of every topic and every event.
type mqttWatch struct {
	t       *testing.T
	mu      sync.Mutex
	last    map[string]string
	events  []alerts.Event
	raw     strings.Builder
	changed chan struct{}
}

func watchMQTT(t *testing.T, b *testenv.Mosquitto, topic string) *mqttWatch {
	t.Helper()
	w := &mqttWatch{t: t, last: map[string]string{}, changed: make(chan struct{}, 1)}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("e2e-watch").
		SetUsername(b.User).SetPassword(b.Password).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		w.mu.Lock()
		w.last[m.Topic()] = string(m.Payload())
		w.raw.Write(m.Payload())
		if strings.HasSuffix(m.Topic(), "/events") {
			var ev alerts.Event
			json.Unmarshal(m.Payload(), &ev)
			w.events = append(w.events, ev)
		}
		w.mu.Unlock()
		select {
		case w.changed <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT subscribe: %v", tok.Error())
	}
	return w
}

func (w *mqttWatch) await(what string, timeout time.Duration, cond func(last map[string]string, events []alerts.Event) bool) {
	w.t.Helper()
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		ok := cond(w.last, w.events)
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-w.changed:
		case <-deadline:
			w.t.Fatalf("MQTT: %s not within %v; heard %v", what, timeout, w.last)
		}
	}
}

func countType(events []alerts.Event, ty alerts.Type) (n int, ids map[string]int) {
	ids = map[string]int{}
	for _, e := range events {
		if e.Type == ty {
			n++
			ids[e.ID]++
		}
	}
	return n, ids
}

// alertsBlock is the config's alerts member for the setup.
func alertsBlock(downAfter string, hooks []string, broker *testenv.Mosquitto) string {
	var ws []string
	for _, u := range hooks {
		ws = append(ws, fmt.Sprintf(`{"url": %q, "secret": %q}`, u, hookSecret))
	}
	mq := ""
	if broker != nil {
		mq = fmt.Sprintf(`, "mqtt": {"broker": %q, "username": %q, "password": %q, "topicPrefix": "e2e"}`, broker.Addr(), broker.User, broker.Password)
	}
	return fmt.Sprintf(`"alerts": {"cameraDownAfter": %q, "cooldown": "0s", "webhooks": [%s]%s},`, downAfter, strings.Join(ws, ", "), mq)
}

// TestAlertsCameraDownAndUp: the test camera stops; after the debounce
// exactly one camera-down reaches the webhook and MQTT (the retained
// status says down); the camera comes back: one camera-up, with the gap's
// duration and cause as the gap log has them.
func TestAlertsCameraDownAndUp(t *testing.T) {
	s := newSetup(t, 2)
	broker := testenv.StartMosquitto(t)
	hook := newReceiver(t)
	s.extra = alertsBlock("3s", []string{hook.url()}, broker)
	cfgPath := s.writeConfig(t)
	mq := watchMQTT(t, broker, "e2e/#")
	d := startDaemon(t, "run", "--config", cfgPath)
	c := newClient(t, d, "")
	d.await(0, 60*time.Second, msgIs("recording"))
	mq.await("door recording, the box online", 60*time.Second, func(last map[string]string, _ []alerts.Event) bool {
		return last["e2e/door/status"] == "recording" && last["e2e/available"] == "online"
	})
	hook.await("daemon-start", 60*time.Second, isType(alerts.DaemonStart, ""))

	// (A camera slow to start can be down and up already: with a 3 s
	// debounce, start-up may take longer. Only what follows the stop
	// counts.)
	stopped := time.Now()
	s.cam.Stop()
	since := func(evs []alerts.Event) []alerts.Event {
		var out []alerts.Event
		for _, e := range evs {
			if !e.Time.Before(stopped) {
				out = append(out, e)
			}
		}
		return out
	}
	down := hook.await("camera-down", 90*time.Second, func(e alerts.Event) bool { return isType(alerts.CameraDown, "door")(e) && !e.Time.Before(stopped) })
	if gap := down.Time.Sub(stopped); gap < 3*time.Second {
		t.Errorf("camera-down %v after the camera stopped: before the 3s debounce", gap)
	}
	mq.await("door down", 30*time.Second, func(last map[string]string, evs []alerts.Event) bool {
		n, _ := countType(since(evs), alerts.CameraDown)
		return last["e2e/door/status"] == "down" && n == 1
	})
	var view alerts.View
	c.json("GET", "/api/v1/alerts", 200, &view)
	if len(view.Open) != 1 || view.Open[0].Type != alerts.CameraDown || view.Open[0].ID != down.ID {
		t.Errorf("open conditions while door is down: %+v", view.Open)
	}

	iRestart := d.mark()
	if err := s.cam.Camera.Start(); err != nil {
		t.Fatal(err)
	}
	up := hook.await("camera-up", 120*time.Second, func(e alerts.Event) bool { return e.Clears == down.ID })
	mq.await("door recording again, camera-up on MQTT", 30*time.Second, func(last map[string]string, evs []alerts.Event) bool {
		n, _ := countType(since(evs), alerts.CameraUp)
		return last["e2e/door/status"] == "recording" && n == 1
	})
	if up.Clears != down.ID || up.State != alerts.Cleared || up.Details == nil || up.Details.GapStart == nil {
		t.Fatalf("camera-up: %+v", up)
	}
	// Exactly one of each, in order, on both; every body signed.
	for _, name := range []string{"webhook", "mqtt"} {
		var evs []alerts.Event
		if name == "webhook" {
			for _, hr := range hook.all() {
				evs = append(evs, hr.ev)
				if !hr.signed {
					t.Errorf("webhook: %s's signature or id does not verify", hr.ev.ID)
				}
			}
		} else {
			mq.mu.Lock()
			evs = append(evs, mq.events...)
			mq.mu.Unlock()
		}
		evs = since(evs)
		nd, _ := countType(evs, alerts.CameraDown)
		nu, _ := countType(evs, alerts.CameraUp)
		iDown := slices.IndexFunc(evs, isType(alerts.CameraDown, "door"))
		iUp := slices.IndexFunc(evs, isType(alerts.CameraUp, "door"))
		if nd != 1 || nu != 1 || iDown > iUp {
			t.Errorf("%s: %d camera-down and %d camera-up (at %d, %d), want one of each in order", name, nd, nu, iDown, iUp)
		}
	}

	// The gap log has the same hole: its cause, its length.
	d.await(iRestart, 60*time.Second, func(m map[string]any) bool { return m["message"] == "gap in the footage" && m["camera"] == "door" })
	var gaps struct {
		Gaps []struct {
			Start time.Time `json:"start"`
			End   time.Time `json:"end"`
			Cause string    `json:"cause"`
		} `json:"gaps"`
	}
	c.json("GET", "/api/v1/cameras/door/gaps", 200, &gaps)
	found := false
	for _, g := range gaps.Gaps {
		if g.Start.Equal(*up.Details.GapStart) {
			found = true
			dur := g.End.Sub(g.Start).Seconds()
			if g.Cause != up.Details.Cause || up.Details.Cause == "unknown" || (dur-up.Details.DownSeconds) > 2 || (up.Details.DownSeconds-dur) > 2 {
				t.Errorf("camera-up says %.1fs (%s); the gap log %.1fs (%s)", up.Details.DownSeconds, up.Details.Cause, dur, g.Cause)
			}
			t.Logf("camera-up: %s; the gap log: %.1fs, %s", up.Message, dur, g.Cause)
		}
	}
	if !found {
		t.Errorf("no gap starting at camera-up's gapStart %v in %+v", up.Details.GapStart, gaps.Gaps)
	}

	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	hook.await("daemon-stop", 10*time.Second, isType(alerts.DaemonStop, ""))
	mq.await("offline after the stop", 10*time.Second, func(last map[string]string, _ []alerts.Event) bool { return last["e2e/available"] == "offline" })

	var bodies strings.Builder
	for _, hr := range hook.all() {
		bodies.Write(hr.body)
	}
	mq.mu.Lock()
	bodies.WriteString(mq.raw.String())
	mq.mu.Unlock()
	c.mu.Lock()
	bodies.WriteString(c.bodies.String())
	c.mu.Unlock()
	assertNoSecret(t, d.output()+bodies.String(), s.minio.SecretKey, hookSecret, strings.TrimPrefix(hookPath, "/hooks/"), broker.Password)
}

// TestAlertsDeliveryIsDurable: a receiver answering 500 for a while gets
// the event once it recovers, exactly once by id, signed; a receiver that
// never answers does not delay a segment's upload; an event still in the
// outbox when cctvd stops is delivered after its restart.
func TestAlertsDeliveryIsDurable(t *testing.T) {
	const window = 20 * time.Second // the two minutes, shorter: the same mechanism
	s := newSetup(t, 2)
	flaky, hung := newReceiver(t), newReceiver(t)
	flaky.set(true, false)
	hung.set(false, true)
	s.extra = alertsBlock("60s", []string{flaky.url(), hung.url()}, nil)
	cfgPath := s.writeConfig(t)
	d := startDaemon(t, "run", "--config", cfgPath)
	c := newClient(t, d, "")
	recovered := time.Now().Add(window)
	time.AfterFunc(window, func() { flaky.set(false, false) })

	start := flaky.await("daemon-start after the 500s", window+120*time.Second, isType(alerts.DaemonStart, ""))
	if time.Now().Before(recovered) {
		t.Fatal("delivered while the receiver still answered 500")
	}
	tries := 0
	for _, hr := range flaky.all() {
		if hr.ev.ID == start.ID {
			tries++
			if !hr.signed {
				t.Errorf("attempt at %v: the signature does not verify", hr.at)
			}
		} else if hr.ev.Type == alerts.DaemonStart {
			t.Errorf("a retry carried another id: %s, not %s", hr.ev.ID, start.ID)
		}
	}
	if tries < 3 {
		t.Errorf("daemon-start tried %d times through a %v outage", tries, window)
	}
	t.Logf("daemon-start delivered %v after the receiver recovered, attempt %d", time.Since(recovered).Round(time.Millisecond), tries)

	// The hung receiver holds its requests; uploads go on meanwhile.
	hung.mu.Lock()
	hungSince := hung.openedAt
	hung.mu.Unlock()
	if hungSince.IsZero() {
		t.Fatal("the hung receiver never got a request")
	}
	from := d.mark()
	var lat []time.Duration
	for len(lat) < 5 {
		up, i := d.await(from, 60*time.Second, msgIs("uploaded and verified"))
		from = i + 1
		closed := d.all(func(m map[string]any) bool { return m["message"] == "segment closed" && m["segment"] == up["segment"] })
		if len(closed) != 1 {
			continue
		}
		tc, _ := time.Parse(time.RFC3339Nano, closed[0]["time"].(string))
		tu, _ := time.Parse(time.RFC3339Nano, up["time"].(string))
		if tc.Before(hungSince) {
			continue
		}
		lat = append(lat, tu.Sub(tc))
	}
	hung.mu.Lock()
	stillOpen := hung.open
	hung.mu.Unlock()
	if stillOpen == 0 {
		t.Log("(the hung receiver's request timed out meanwhile; cctvd tries it again)")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("close-to-S3 with a webhook that never answers: median %v, max %v over %d segments", lat[len(lat)/2], lat[len(lat)-1], len(lat))
	var view alerts.View
	c.json("GET", "/api/v1/alerts", 200, &view)
	var hungName string
	for _, tg := range view.Targets {
		if tg.State == "failing" {
			hungName = tg.Name
		}
	}
	if hungName == "" || len(view.Targets) != 2 {
		t.Errorf("targets: %+v", view.Targets)
	}

	// An event still in the outbox at the stop goes out after the restart.
	flaky.set(true, false)
	var test api.TestResult
	c.json("POST", "/api/v1/alerts/test", 202, &test)
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	var file struct {
		CleanStop bool `json:"cleanStop"`
		Events    []struct {
			Body       json.RawMessage `json:"body"`
			Deliveries []struct {
				Target string `json:"target"`
				State  string `json:"state"`
			} `json:"deliveries"`
		} `json:"events"`
	}
	data, err := os.ReadFile(layout.Alerts(filepath.Join(s.savePath, ".cctvd")))
	if err != nil || json.Unmarshal(data, &file) != nil || !file.CleanStop {
		t.Fatalf("the outbox after the stop: %v %s", err, data)
	}
	if !strings.Contains(string(data), test.ID) {
		t.Fatalf("the outbox lacks the test event %s", test.ID)
	}
	flaky.set(false, false)
	d2 := startDaemon(t, "run", "--config", cfgPath)
	got := flaky.await("the test event after the restart", 120*time.Second, func(e alerts.Event) bool { return e.ID == test.ID })
	stop := flaky.await("the first run's daemon-stop", 60*time.Second, func(e alerts.Event) bool {
		return e.Type == alerts.DaemonStop && strings.HasPrefix(e.ID, strings.Split(start.ID, "-")[0])
	})
	start2 := flaky.await("the second run's daemon-start", 60*time.Second, func(e alerts.Event) bool {
		return e.Type == alerts.DaemonStart && e.ID != start.ID
	})
	if got.Type != alerts.Test || start2.Details == nil || start2.Details.PreviousStop != "clean" || stop.ID == "" {
		t.Errorf("after the restart: %+v %+v", got, start2.Details)
	}
	// Exactly once by id: no event was taken twice.
	taken := map[string]int{}
	for _, hr := range flaky.taken() {
		taken[hr.ev.ID]++
		if !hr.signed {
			t.Errorf("%s: the signature does not verify", hr.ev.ID)
		}
	}
	for id, n := range taken {
		if n != 1 && id != stop.ID { // daemon-stop may go out at the stop and again after the restart: at least once
			t.Errorf("event %s taken %d times", id, n)
		}
	}
	if taken[start.ID] != 1 || taken[test.ID] != 1 {
		t.Errorf("daemon-start taken %d times, the test event %d", taken[start.ID], taken[test.ID])
	}
	d2.cmd.Process.Signal(syscall.SIGTERM)
	d2.wait(60 * time.Second)
	c.mu.Lock()
	bodies := c.bodies.String()
	c.mu.Unlock()
	assertNoSecret(t, d.output()+d2.output()+bodies, s.minio.SecretKey, hookSecret, strings.TrimPrefix(hookPath, "/hooks/"))
}
