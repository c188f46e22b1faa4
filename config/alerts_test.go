package config

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// withAlerts is the design note's config with an alerts block.
func withAlerts(t *testing.T, alerts string) []byte {
	t.Helper()
	data := string(mustRead(t, filepath.Join("testdata", "design-note.json")))
	i := strings.LastIndex(data, "}")
	return []byte(data[:i] + `, "alerts": ` + alerts + "}")
}

func TestAlertsDefaults(t *testing.T) {
	cfg, err := Parse(mustRead(t, filepath.Join("testdata", "design-note.json")), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Alerts
	if a.CameraDownAfter.Std() != time.Minute || a.BacklogAfter.Std() != 30*time.Minute || a.Cooldown.Std() != 5*time.Minute || a.MQTT != nil || len(a.Webhooks) != 0 {
		t.Errorf("defaults: %+v", a)
	}
	cfg, err = Parse(withAlerts(t, `{"cooldown": "0s", "mqtt": {"broker": "127.0.0.1:1883"}}`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Alerts.MQTT; cfg.Alerts.Cooldown != 0 || m.TopicPrefix != "cctvd" || m.DiscoveryPrefix != "homeassistant" || cfg.Alerts.CameraDownAfter.Std() != time.Minute {
		t.Errorf("cooldown 0 and the MQTT defaults: %+v %+v", cfg.Alerts, m)
	}
}

func TestAlertsErrors(t *testing.T) {
	tests := []struct {
		alerts string
		want   []string
	}{
		{`{"cameraDownAfter": "0s", "backlogAfter": "745h", "cooldown": "-1s"}`, []string{
			`alerts.cameraDownAfter: must be 1s to 24h0m0s (got 0s)`,
			`alerts.backlogAfter: must be 1s to 744h0m0s (got 745h0m0s)`,
			`alerts.cooldown: must be 0s to 24h0m0s (got -1s)`}},
		{`{"webhooks": [{"url": "ftp://hooks.example.com/T0KEN-secret"}, {"url": "https://h.example.com/x", "events": ["camera-down", "camera-dwon"]}]}`, []string{
			`alerts.webhooks[0].url: is not an http:// or https:// URL`,
			`alerts.webhooks[1].events[1]: "camera-dwon" is not one of activity, camera-down, camera-up, clock-step, daemon-start, daemon-stop, deleted-before-upload, disk-missing, disk-near-limit, quarantine-growing, upload-backlog, upload-deficit, upload-failing`}},
		{`{"webhooks": [{"urll": "https://h.example.com/"}]}`, []string{`alerts.webhooks[0].urll: unknown field (did you mean "url"?)`}},
		{`{"mqtt": {}}`, []string{`alerts.mqtt.broker: is required`}},
		{`{"mqtt": {"broker": "mqtt://user:pa55w0rd-xyz@broker.local"}}`, []string{`alerts.mqtt.broker: holds credentials: put them in alerts.mqtt.username and password`}},
		{`{"mqtt": {"broker": "http://broker.local:1883"}}`, []string{`alerts.mqtt.broker: "http://broker.local:1883" has a scheme other than mqtt, mqtts, tcp, ssl or tls`}},
		{`{"mqtt": {"broker": "mqtt://broker.local:1883/x"}}`, []string{`alerts.mqtt.broker: "mqtt://broker.local:1883/x" has a path or query: it is scheme://host:port`}},
		{`{"mqtt": {"broker": "broker.local:99999"}}`, []string{`alerts.mqtt.broker: "broker.local:99999" has no valid port`}},
		{`{"mqtt": {"broker": "broker.local", "password": "pw-of-the-broker", "topicPrefix": "a/+/b", "discoveryPrefix": "/ha", "caFile": "ca.pem"}}`, []string{
			`alerts.mqtt.username: is required with a password`,
			`alerts.mqtt.topicPrefix: "a/+/b" is not a topic prefix such as cctvd or site1/cctvd (no +, #, empty levels or leading '/')`,
			`alerts.mqtt.discoveryPrefix: "/ha" is not a topic prefix such as cctvd or site1/cctvd (no +, #, empty levels or leading '/')`,
			`alerts.mqtt.caFile: "ca.pem" must be an absolute path`}},
		{`{"mqtt": {"broker": "mqtts://broker.local", "username": "u", "password": "p", "tls": true, "caFile": "/etc/ssl/ca.pem", "topicPrefix": "site1/cctvd"}}`, nil},
	}
	for _, tt := range tests {
		_, err := Parse(withAlerts(t, tt.alerts), noEnv)
		var got []string
		if err != nil {
			got = strings.Split(err.Error(), "\n")
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.alerts, got, tt.want)
		}
		for _, secret := range []string{"T0KEN-secret", "pa55w0rd-xyz", "pw-of-the-broker"} {
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error shows a secret: %v", tt.alerts, err)
			}
		}
	}
}

func TestAlertsSecretsMasked(t *testing.T) {
	cfg, err := Parse(withAlerts(t, `{"webhooks": [
		{"url": "https://hook:pa55-in-userinfo@hooks.example.com/services/T0KEN-in-path-123?access_token=qry-t0ken-456", "secret": "hmac-secret-789"},
		{"url": "http://127.0.0.1:9000/plain"}],
		"mqtt": {"broker": "broker.local", "username": "cctvd", "password": "broker-pw-000"}}`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	secrets := cfg.Secrets()
	for _, s := range []string{"pa55-in-userinfo", "services/T0KEN-in-path-123", "qry-t0ken-456", "hmac-secret-789", "broker-pw-000"} {
		if !slices.Contains(secrets, s) {
			t.Errorf("Secrets() lacks %q: %q", s, secrets)
		}
	}
	out, err := cfg.MaskedJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"pa55-in-userinfo", "T0KEN-in-path", "qry-t0ken", "hmac-secret", "broker-pw", "/plain"} {
		if strings.Contains(string(out), s) {
			t.Errorf("check-config shows %q:\n%s", s, out)
		}
	}
	var m struct {
		Alerts Alerts `json:"alerts"`
	}
	json.Unmarshal(out, &m)
	if w := m.Alerts.Webhooks; len(w) != 2 || w[0].URL != "https://hooks.example.com/***" || w[0].Secret != "***" || w[1].URL != "http://127.0.0.1:9000/***" {
		t.Errorf("masked webhooks: %+v", w)
	}
	if mq := m.Alerts.MQTT; mq.Password != "***" || mq.Username != "cctvd" || mq.Broker != "broker.local" {
		t.Errorf("masked mqtt: %+v", mq)
	}
	if cfg.Alerts.MQTT.Password != "broker-pw-000" || !strings.Contains(cfg.Alerts.Webhooks[0].URL, "T0KEN") {
		t.Error("Masked changed the config itself")
	}
	short, _ := Parse(withAlerts(t, `{"webhooks": [{"url": "http://h.example.com/", "secret": "abc"}], "mqtt": {"broker": "b", "username": "u", "password": "pw"}}`), noEnv)
	if f := short.ShortSecretFields(); !slices.Contains(f, "alerts.webhooks[0].secret") || !slices.Contains(f, "alerts.mqtt.password") {
		t.Errorf("short secrets: %v", f)
	}
}
