package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Alerts says when to tell a person, and where: webhooks and an MQTT
// broker (docs/alerts.md).
type Alerts struct {
	// CameraDownAfter: a camera that should record and has not for this
	// long raises camera-down (1s to 24h). Default "60s".
	CameraDownAfter Duration `json:"cameraDownAfter,omitempty"`
	// BacklogAfter: the oldest segment waiting for upload began longer ago
	// than this: upload-backlog (1s to 744h). Default "30m".
	BacklogAfter Duration `json:"backlogAfter,omitempty"`
	// Cooldown: a condition of a camera that cleared is not raised again
	// for this long, and facts of one camera and type within it are
	// gathered into one event (0 to 24h). Default "5m".
	Cooldown Duration `json:"cooldown"`
	// Activity raises an activity event at the start of each activity
	// interval of a camera whose activity index is on (facts: those of one
	// camera within the cooldown are gathered into one). Default false.
	Activity bool `json:"activity,omitempty"`
	// Webhooks receive every event (or those named) as a JSON POST.
	// Default none.
	Webhooks []Webhook `json:"webhooks,omitempty"`
	// MQTT publishes the events, the cameras' statuses and Home
	// Assistant's discovery. Default none.
	MQTT *MQTT `json:"mqtt,omitempty"`
}

// Webhook is one receiver of the events.
type Webhook struct {
	// URL is http:// or https://. It may hold credentials (userinfo, a
	// token in its path or query, as Slack's and Discord's do): it is a
	// secret, shown as scheme://host/*** only.
	URL string `json:"url"`
	// Events are the types it takes. Default: every type.
	Events []string `json:"events,omitempty"`
	// Secret, if set, signs each body: X-Cctvd-Signature-256 is "sha256="
	// and the hex HMAC-SHA256 of the body under it. Default none.
	Secret string `json:"secret,omitempty"`
}

// MQTT is the broker the events and statuses go to.
type MQTT struct {
	// Broker is mqtt://host:port, mqtts://host:port (TLS), or host:port
	// (port 1883, 8883 with TLS). Required.
	Broker string `json:"broker"`
	// Username and Password log in. Default none.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// TopicPrefix begins every topic. Default "cctvd".
	TopicPrefix string `json:"topicPrefix,omitempty"`
	// DiscoveryPrefix is Home Assistant's discovery prefix. Default
	// "homeassistant".
	DiscoveryPrefix string `json:"discoveryPrefix,omitempty"`
	// TLS speaks TLS to the broker (as mqtts:// does). Default false.
	TLS bool `json:"tls,omitempty"`
	// CAFile is the absolute path of the PEM of the CA that signed the
	// broker's certificate. Default: the system's roots.
	CAFile string `json:"caFile,omitempty"`
}

// Defaults of the alerts block.
const (
	DefaultCameraDownAfter = time.Minute
	DefaultBacklogAfter    = 30 * time.Minute
	DefaultAlertCooldown   = 5 * time.Minute
	DefaultTopicPrefix     = "cctvd"
	DefaultDiscoveryPrefix = "homeassistant"
)

// AlertTypes are the event types a webhook's events may name (package
// alerts has the same list; a test keeps them equal).
var AlertTypes = []string{"activity", "camera-down", "camera-up", "clock-step", "daemon-start", "daemon-stop", "deleted-before-upload",
	"disk-missing", "disk-near-limit", "quarantine-growing", "upload-backlog", "upload-deficit", "upload-failing"}

func defaultAlerts() Alerts {
	return Alerts{CameraDownAfter: Duration(DefaultCameraDownAfter), BacklogAfter: Duration(DefaultBacklogAfter), Cooldown: Duration(DefaultAlertCooldown)}
}

func (a *Alerts) normalize() {
	if m := a.MQTT; m != nil {
		if m.TopicPrefix == "" {
			m.TopicPrefix = DefaultTopicPrefix
		}
		if m.DiscoveryPrefix == "" {
			m.DiscoveryPrefix = DefaultDiscoveryPrefix
		}
	}
}

func (a Alerts) validate(v *validator) {
	between := func(field string, d Duration, min, max time.Duration) {
		if d.Std() < min || d.Std() > max {
			v.add("alerts."+field, "must be %s to %s (got %s)", min, max, d.Std())
		}
	}
	between("cameraDownAfter", a.CameraDownAfter, time.Second, 24*time.Hour)
	between("backlogAfter", a.BacklogAfter, time.Second, 744*time.Hour)
	between("cooldown", a.Cooldown, 0, 24*time.Hour)
	for i, w := range a.Webhooks {
		p := fmt.Sprintf("alerts.webhooks[%d]", i)
		// The URL is never quoted: it may be the credential itself.
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(p+".url", "is not an http:// or https:// URL")
		}
		for j, e := range w.Events {
			if !slices.Contains(AlertTypes, e) {
				v.add(fmt.Sprintf("%s.events[%d]", p, j), "%q is not one of %s", e, strings.Join(AlertTypes, ", "))
			}
		}
	}
	if m := a.MQTT; m != nil {
		switch {
		case m.Broker == "":
			v.add("alerts.mqtt.broker", "is required")
		case strings.Contains(m.Broker, "@"):
			v.add("alerts.mqtt.broker", "holds credentials: put them in alerts.mqtt.username and password")
		default:
			if msg := brokerProblem(m.Broker); msg != "" {
				v.add("alerts.mqtt.broker", "%q %s", m.Broker, msg)
			}
		}
		if m.Password != "" && m.Username == "" {
			v.add("alerts.mqtt.username", "is required with a password")
		}
		for _, f := range []struct{ name, topic string }{{"topicPrefix", m.TopicPrefix}, {"discoveryPrefix", m.DiscoveryPrefix}} {
			if !validTopicPrefix(f.topic) {
				v.add("alerts.mqtt."+f.name, "%q is not a topic prefix such as cctvd or site1/cctvd (no +, #, empty levels or leading '/')", f.topic)
			}
		}
		if m.CAFile != "" && !filepath.IsAbs(m.CAFile) {
			v.add("alerts.mqtt.caFile", "%q must be an absolute path", m.CAFile)
		}
	}
}

// brokerProblem says what is wrong with a broker setting, "" when nothing.
func brokerProblem(broker string) string {
	s := broker
	if !strings.Contains(s, "://") {
		s = "tcp://" + s
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Hostname() == "":
		return "is not host:port or a URL such as mqtt://host:1883"
	case !slices.Contains([]string{"mqtt", "mqtts", "tcp", "ssl", "tls"}, u.Scheme):
		return "has a scheme other than mqtt, mqtts, tcp, ssl or tls"
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "":
		return "has a path or query: it is scheme://host:port"
	case !validHost(u.Hostname()):
		return "is not host:port or a URL such as mqtt://host:1883"
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return "has no valid port"
		}
	}
	return ""
}

func validTopicPrefix(t string) bool {
	if t == "" || strings.ContainsAny(t, "+#\x00") || strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/") || strings.Contains(t, "//") {
		return false
	}
	return len(t) <= 200
}

// secrets are the alerts' secrets: each webhook's secret and URL (whole,
// its userinfo password, its path and query), the broker's password.
func (a Alerts) secrets() []string {
	var s []string
	for _, w := range a.Webhooks {
		if w.Secret != "" {
			s = append(s, w.Secret)
		}
		if w.URL == "" {
			continue
		}
		s = append(s, w.URL)
		if u, err := url.Parse(w.URL); err == nil {
			if p, ok := u.User.Password(); ok && p != "" {
				s = append(s, p)
			}
			s = append(s, queryCredentials(u.RawQuery)...)
			if rest := strings.TrimPrefix(u.EscapedPath(), "/"); len(rest) >= MinMaskLen {
				s = append(s, rest)
			}
			if len(u.RawQuery) >= MinMaskLen {
				s = append(s, u.RawQuery)
			}
		}
	}
	if a.MQTT != nil && a.MQTT.Password != "" {
		s = append(s, a.MQTT.Password)
	}
	return s
}

// masked returns a copy with the secrets replaced: a webhook URL shows its
// scheme and host only.
func (a Alerts) masked() Alerts {
	m := a
	m.Webhooks = make([]Webhook, len(a.Webhooks))
	for i, w := range a.Webhooks {
		if u, err := url.Parse(w.URL); err == nil && u.Host != "" {
			w.URL = u.Scheme + "://" + u.Host + "/" + Mask
		} else if w.URL != "" {
			w.URL = Mask
		}
		if w.Secret != "" {
			w.Secret = Mask
		}
		m.Webhooks[i] = w
	}
	if a.Webhooks == nil {
		m.Webhooks = nil
	}
	if a.MQTT != nil {
		mq := *a.MQTT
		if mq.Password != "" {
			mq.Password = Mask
		}
		m.MQTT = &mq
	}
	return m
}

// shortSecrets names the alerts' secrets too short to be masked in free
// text.
func (a Alerts) shortSecrets(short func(path, s string)) {
	for i, w := range a.Webhooks {
		short(fmt.Sprintf("alerts.webhooks[%d].secret", i), w.Secret)
	}
	if a.MQTT != nil {
		short("alerts.mqtt.password", a.MQTT.Password)
	}
}
