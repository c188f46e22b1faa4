//go:build integration

package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/alerts"
	"github.com/cctvd/cctvd/internal/testenv"
)

// subscriber is a real MQTT client that keeps the last message of every
// topic it hears.
type subscriber struct {
	t       *testing.T
	client  paho.Client
	mu      sync.Mutex
	last    map[string]string
	retain  map[string]bool
	events  [][]byte
	changed chan struct{}
}

var subscribers atomic.Int64

func subscribe(t *testing.T, b *testenv.Mosquitto, topics ...string) *subscriber {
	t.Helper()
	s := &subscriber{t: t, last: map[string]string{}, retain: map[string]bool{}, changed: make(chan struct{}, 1)}
	opts := paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID(fmt.Sprintf("test-sub-%d", subscribers.Add(1))).
		SetUsername(b.User).SetPassword(b.Password).SetCleanSession(true).SetAutoReconnect(false)
	s.client = paho.NewClient(opts)
	if tok := s.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { s.client.Disconnect(100) })
	for _, topic := range topics {
		tok := s.client.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
			s.mu.Lock()
			s.last[m.Topic()] = string(m.Payload())
			s.retain[m.Topic()] = m.Retained()
			if strings.HasSuffix(m.Topic(), "/events") {
				s.events = append(s.events, m.Payload())
			}
			s.mu.Unlock()
			select {
			case s.changed <- struct{}{}:
			default:
			}
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
	}
	return s
}

// snapshot is a copy of the last message of every topic.
func (s *subscriber) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.last {
		out[k] = v
	}
	return out
}

// await waits until cond holds for what was heard.
func (s *subscriber) await(what string, timeout time.Duration, cond func(last map[string]string) bool) {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ok := cond(s.last)
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.changed:
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			s.t.Fatalf("%s: not within %v; heard %v", what, timeout, s.last)
		}
	}
}

func statusesAre(prefix string, want map[string]string) func(map[string]string) bool {
	return func(last map[string]string) bool {
		if last[prefix+"/available"] != "online" {
			return false
		}
		for cam, st := range want {
			if last[prefix+"/"+cam+"/status"] != st {
				return false
			}
		}
		return true
	}
}

func TestBrokerStatusesDiscoveryAndRestart(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	p, err := New(Config{Broker: broker.Addr(), Username: broker.User, Password: broker.Password, TopicPrefix: "site1/cctvd",
		Host: "nvr-1", Version: "1.2.3", MaxReconnectInterval: time.Second, StateEvery: 100 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	p.SetState(snapshot)

	sub := subscribe(t, broker, "site1/cctvd/#", "homeassistant/#")
	want := map[string]string{"door": "recording", "yard.1": "down", "gate": "stopped", "attic": "waiting-disk"}
	sub.await("the retained statuses", 30*time.Second, statusesAre("site1/cctvd", want))
	sub.await("the state and 9 discovery configs", 30*time.Second, func(last map[string]string) bool {
		n := 0
		for topic := range last {
			if strings.HasPrefix(topic, "homeassistant/") {
				n++
			}
		}
		return n == 9 && last["site1/cctvd/state"] != ""
	})
	// A client that subscribes later gets all of it from the broker's
	// retained messages.
	late := subscribe(t, broker, "site1/cctvd/#", "homeassistant/#")
	late.await("the retained messages", 30*time.Second, func(last map[string]string) bool { return len(last) == len(sub.snapshot()) })
	late.mu.Lock()
	for topic, payload := range late.last {
		if !late.retain[topic] || payload != sub.snapshot()[topic] {
			t.Errorf("%s is not retained as published: %q", topic, payload)
		}
	}
	late.mu.Unlock()
	sub.mu.Lock()
	if _, ok := sub.last["site1/cctvd/new/status"]; ok {
		t.Error("a camera with no status yet got one")
	}
	var state State
	if err := json.Unmarshal([]byte(sub.last["site1/cctvd/state"]), &state); err != nil || state.BacklogSegments != 3 ||
		state.DiskUsedPercent != 42 || state.DiskUsedGB != 42 || state.BacklogOldestSeconds != 75 {
		t.Errorf("state %s: %v", sub.last["site1/cctvd/state"], err)
	}
	configs := map[string]string{}
	for topic, payload := range sub.last {
		if strings.HasPrefix(topic, "homeassistant/") {
			configs[topic] = payload
		}
	}
	sub.mu.Unlock()
	checkDiscovery(t, configs, sub.snapshot()["site1/cctvd/state"], "site1/cctvd")

	// An event goes to <prefix>/events as it is.
	body := []byte(`{"schema":"cctvd-alert/1","id":"r-1","type":"test"}`)
	if err := p.Deliver(context.Background(), alerts.Event{ID: "r-1"}, body); err != nil {
		t.Fatal(err)
	}
	sub.await("the event", 10*time.Second, func(last map[string]string) bool { return last["site1/cctvd/events"] == string(body) })

	// The broker goes away: deliveries fail (and are tried again by the
	// alerts); it comes back without its retained messages.
	broker.Stop()
	if err := p.Deliver(context.Background(), alerts.Event{ID: "r-2"}, body); err == nil {
		t.Error("a delivery without a broker succeeded")
	}
	broker.Start()
	back := time.Now()
	select {
	case <-p.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("no reconnection within 30s")
	}
	sub2 := subscribe(t, broker, "site1/cctvd/#", "homeassistant/#")
	sub2.await("the statuses after the broker's restart", 30*time.Second, statusesAre("site1/cctvd", want))
	sub2.await("the discovery after the broker's restart", 30*time.Second, func(last map[string]string) bool {
		return last["homeassistant/binary_sensor/site1_cctvd/door_problem/config"] != ""
	})
	t.Logf("statuses right again %v after the broker came back", time.Since(back).Round(10*time.Millisecond))

	// A camera removed from the config: its entity and status are deleted.
	s := snapshot
	s.Cameras = s.Cameras[:1]
	p.SetState(s)
	sub2.await("gate's config and status deleted", 30*time.Second, func(last map[string]string) bool {
		c, ok1 := last["homeassistant/binary_sensor/site1_cctvd/gate_problem/config"]
		st, ok2 := last["site1/cctvd/gate/status"]
		return ok1 && ok2 && c == "" && st == ""
	})

	// A clean stop says offline.
	cancel()
	<-done
	sub2.await("available = offline after the stop", 10*time.Second, func(last map[string]string) bool {
		return last["site1/cctvd/available"] == "offline"
	})
}
