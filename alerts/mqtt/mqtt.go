// Package mqtt publishes the alerts and the box's state to an MQTT broker,
// for Home Assistant, Node-RED and the like, through Eclipse Paho:
//
//	<prefix>/available        retained "online"; the broker publishes the last will "offline" when cctvd vanishes
//	<prefix>/<camera>/status  retained recording, down, stopped or waiting-disk
//	<prefix>/state            retained JSON: the upload backlog and the recordings disk's use
//	<prefix>/events           every event's JSON (QoS 1), as a webhook receives it
//
// and Home Assistant's MQTT discovery configs (retained) under the
// discovery prefix: a binary sensor per camera (a problem while it is down
// or waits for its disk) and sensors for the backlog and the disk's use,
// all of one device, so that the box shows up in Home Assistant without
// YAML (docs/alerts.md lists every field). After every (re)connection the
// retained topics are published again, so a broker that restarted without
// its store is right again within seconds.
package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/alerts"
)

// Defaults.
const (
	DefaultTopicPrefix     = "cctvd"
	DefaultDiscoveryPrefix = "homeassistant"
)

// Config is the broker and the topics.
type Config struct {
	// Broker is mqtt://host:port, mqtts://host:port (TLS), tcp://, ssl://,
	// or host:port. Ports default to 1883, and 8883 with TLS.
	Broker string
	// Username and Password log in; the password is a secret.
	Username, Password string
	// TopicPrefix and DiscoveryPrefix; defaults "cctvd", "homeassistant".
	TopicPrefix, DiscoveryPrefix string
	// TLS speaks TLS whatever the broker's scheme; CAFile, if set, is the
	// PEM of the CA that signed the broker's certificate (else the
	// system's roots).
	TLS    bool
	CAFile string
	// Host and Version name the box in Home Assistant's device block.
	Host, Version string
	// MaxReconnectInterval bounds the pause between reconnection attempts.
	// Default 5s.
	MaxReconnectInterval time.Duration
	// PublishTimeout bounds one publish. Default 10s.
	PublishTimeout time.Duration
	// StateEvery is the most often <prefix>/state is published while it
	// changes. Default 15s.
	StateEvery time.Duration
}

// Publisher is the broker as an alerts target (Runner, Waker, StateSink).
type Publisher struct {
	cfg    Config
	log    zerolog.Logger
	broker string
	node   string
	client paho.Client

	ready     chan struct{} // a connection is up: for the deliveries
	connected chan struct{} // a connection is up: for Run
	wake      chan struct{} // the state changed

	mu    sync.Mutex
	state alerts.Snapshot
	have  bool

	// Run's goroutine only.
	retained   map[string]string // topic -> payload published since the connection came up
	discovered map[string]bool   // cameras whose discovery is published
	lastState  time.Time
}

// New returns a publisher; Run connects it.
func New(cfg Config, log zerolog.Logger) (*Publisher, error) {
	if cfg.TopicPrefix == "" {
		cfg.TopicPrefix = DefaultTopicPrefix
	}
	if cfg.DiscoveryPrefix == "" {
		cfg.DiscoveryPrefix = DefaultDiscoveryPrefix
	}
	if cfg.MaxReconnectInterval <= 0 {
		cfg.MaxReconnectInterval = 5 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.StateEvery <= 0 {
		cfg.StateEvery = 15 * time.Second
	}
	broker, useTLS, err := BrokerURL(cfg.Broker, cfg.TLS)
	if err != nil {
		return nil, err
	}
	p := &Publisher{cfg: cfg, log: log.With().Str("component", "alerts").Str("target", "mqtt").Logger(), broker: broker,
		node: ObjectID(cfg.TopicPrefix), ready: make(chan struct{}, 1), connected: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID("cctvd-"+p.node).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(5*time.Second).SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		SetKeepAlive(30*time.Second).SetPingTimeout(10*time.Second).SetConnectTimeout(10*time.Second).
		SetWriteTimeout(cfg.PublishTimeout).SetOrderMatters(false).SetStore(newCopyStore()).
		SetWill(p.topic("available"), "offline", 1, true).
		SetOnConnectHandler(func(paho.Client) {
			for _, ch := range []chan struct{}{p.ready, p.connected} {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			p.log.Warn().Str("broker", p.Address()).Str("error", reason(err)).Msg("MQTT broker connection lost: reconnecting")
		})
	if cfg.Username != "" {
		opts.SetUsername(cfg.Username).SetPassword(cfg.Password)
	}
	if useTLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("alerts.mqtt.caFile: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, errors.New("alerts.mqtt.caFile: no PEM certificate in it")
			}
			tc.RootCAs = pool
		}
		opts.SetTLSConfig(tc)
	}
	p.client = paho.NewClient(opts)
	return p, nil
}

// BrokerURL is a broker setting as Paho takes it (tcp:// or ssl://, with
// the port), and whether it speaks TLS.
func BrokerURL(broker string, forceTLS bool) (string, bool, error) {
	if !strings.Contains(broker, "://") {
		broker = "tcp://" + broker
	}
	u, err := url.Parse(broker)
	if err != nil || u.Hostname() == "" {
		return "", false, errors.New("the broker is not host:port or a URL such as mqtt://host:1883")
	}
	if u.User != nil {
		return "", false, errors.New("the broker's URL must not hold credentials: set username and password")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false, errors.New("the broker's URL has a path or query: it is scheme://host:port")
	}
	useTLS := forceTLS
	switch u.Scheme {
	case "mqtt", "tcp":
	case "mqtts", "ssl", "tls":
		useTLS = true
	default:
		return "", false, fmt.Errorf("the broker's scheme %q is not mqtt, mqtts, tcp, ssl or tls", u.Scheme)
	}
	port := u.Port()
	if port == "" {
		port = "1883"
		if useTLS {
			port = "8883"
		}
	}
	scheme := "tcp"
	if useTLS {
		scheme = "ssl"
	}
	return scheme + "://" + net.JoinHostPort(u.Hostname(), port), useTLS, nil
}

var notObjectID = regexp.MustCompile(`[^a-zA-Z0-9_-]`)

// ObjectID is s as Home Assistant's discovery topics take a node or
// object id: letters, digits, '_' and '-'.
func ObjectID(s string) string { return notObjectID.ReplaceAllString(s, "_") }

// Name is "mqtt".
func (p *Publisher) Name() string { return "mqtt" }

// Kind is "mqtt".
func (p *Publisher) Kind() string { return "mqtt" }

// Address is the broker's host and port.
func (p *Publisher) Address() string { return strings.SplitN(p.broker, "://", 2)[1] }

// Wants takes every type.
func (p *Publisher) Wants(alerts.Type) bool { return true }

// Ready receives a value each time a connection to the broker comes up.
func (p *Publisher) Ready() <-chan struct{} { return p.ready }

// topic is <prefix>/<rest>.
func (p *Publisher) topic(rest string) string { return p.cfg.TopicPrefix + "/" + rest }

// Deliver publishes the event's JSON on <prefix>/events, QoS 1.
func (p *Publisher) Deliver(ctx context.Context, _ alerts.Event, body []byte) error {
	return p.publish(ctx, p.topic("events"), body, false)
}

// publish sends one message and waits for the broker's acknowledgement.
func (p *Publisher) publish(ctx context.Context, topic string, payload []byte, retain bool) error {
	if !p.client.IsConnectionOpen() {
		return fmt.Errorf("MQTT broker %s: not connected", p.Address())
	}
	tok := p.client.Publish(topic, 1, retain, payload)
	timer := time.NewTimer(p.cfg.PublishTimeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
	case <-timer.C:
		return fmt.Errorf("MQTT broker %s: no acknowledgement in time", p.Address())
	case <-ctx.Done():
		return fmt.Errorf("MQTT broker %s: %w", p.Address(), ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("MQTT broker %s: %s", p.Address(), reason(err))
	}
	return nil
}

// SetState takes the box's state; Run publishes what changed.
func (p *Publisher) SetState(s alerts.Snapshot) {
	p.mu.Lock()
	p.state, p.have = s, true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run connects, keeps the connection (Paho reconnects) and publishes the
// retained topics after every connection and at every change, until ctx
// ends; then it says "offline" and disconnects.
func (p *Publisher) Run(ctx context.Context) error {
	p.client.Connect() // with ConnectRetry, it keeps trying in the background
	p.log.Info().Str("broker", p.Address()).Str("prefix", p.cfg.TopicPrefix).Msg("MQTT: connecting")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if p.client.IsConnectionOpen() {
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = p.publish(sctx, p.topic("available"), []byte("offline"), true)
				cancel()
			}
			p.client.Disconnect(500)
			return nil
		case <-p.connected:
			p.log.Info().Str("broker", p.Address()).Msg("MQTT broker connected: publishing availability, statuses and discovery")
			p.retained, p.discovered, p.lastState = map[string]string{}, map[string]bool{}, time.Time{}
			p.sync(ctx)
		case <-p.wake:
			p.sync(ctx)
		case <-tick.C:
			p.sync(ctx)
		}
	}
}

// sync publishes what the broker does not have yet, or has differently,
// since the connection came up.
func (p *Publisher) sync(ctx context.Context) {
	if p.retained == nil || !p.client.IsConnectionOpen() {
		return
	}
	p.mu.Lock()
	st, have := p.state, p.have
	p.mu.Unlock()
	put := func(topic string, payload []byte) {
		if old, ok := p.retained[topic]; ok && old == string(payload) {
			return
		}
		if err := p.publish(ctx, topic, payload, true); err != nil {
			p.log.Debug().Str("topic", topic).Str("error", err.Error()).Msg("MQTT publish failed; again at the next connection or change")
			return
		}
		p.retained[topic] = string(payload)
	}
	put(p.topic("available"), []byte("online"))
	for _, d := range p.sensorConfigs() {
		put(d.topic, d.payload)
	}
	if !have {
		return
	}
	names := map[string]bool{}
	for _, c := range st.Cameras {
		names[c.Name] = true
		d := p.cameraConfig(c.Name)
		put(d.topic, d.payload)
		p.discovered[c.Name] = true
		if c.Status != "" {
			put(p.topic(c.Name+"/status"), []byte(c.Status))
		}
	}
	// A camera removed from the config: its entity and status go (an empty
	// retained message deletes a retained one).
	for name := range p.discovered {
		if !names[name] {
			put(p.cameraConfig(name).topic, nil)
			put(p.topic(name+"/status"), nil)
			delete(p.discovered, name)
		}
	}
	if st.BacklogKnown && st.StorageKnown && time.Since(p.lastState) >= p.cfg.StateEvery {
		if b, err := json.Marshal(stateOf(st)); err == nil {
			put(p.topic("state"), b)
			p.lastState = time.Now()
		}
	}
}

// State is <prefix>/state's JSON.
type State struct {
	BacklogSegments      int64   `json:"backlogSegments"`
	BacklogBytes         int64   `json:"backlogBytes"`
	BacklogOldestSeconds float64 `json:"backlogOldestSeconds"`
	DiskUsedBytes        int64   `json:"diskUsedBytes"`
	DiskLimitBytes       int64   `json:"diskLimitBytes"`
	DiskFreeBytes        int64   `json:"diskFreeBytes"`
	DiskUsedPercent      float64 `json:"diskUsedPercent"`
	DiskUsedGB           float64 `json:"diskUsedGB"`
}

func stateOf(s alerts.Snapshot) State {
	st := State{BacklogSegments: s.BacklogSegments, BacklogBytes: s.BacklogBytes, BacklogOldestSeconds: math.Round(s.BacklogOldestSeconds),
		DiskUsedBytes: s.UsedBytes, DiskLimitBytes: s.LimitBytes, DiskFreeBytes: s.FreeBytes,
		DiskUsedGB: math.Round(float64(s.UsedBytes)/1e7) / 100}
	if s.LimitBytes > 0 {
		st.DiskUsedPercent = math.Round(1000*float64(s.UsedBytes)/float64(s.LimitBytes)) / 10
	}
	return st
}

// reason is why a connection or publish failed, without the broker's
// credentials (Paho's errors hold none; masked anyway by the daemon).
func reason(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}
