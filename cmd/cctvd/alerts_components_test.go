package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/alerts"
	"github.com/cctvd/cctvd/config"
)

// TestAlertsFromTheConfig: the alerts block reaches the alerts and their
// targets; config's list of types is alerts' own.
func TestAlertsFromTheConfig(t *testing.T) {
	var types []string
	for _, ty := range alerts.Types() {
		types = append(types, string(ty))
	}
	if !slices.Equal(types, config.AlertTypes) {
		t.Errorf("config.AlertTypes %v, alerts.Types() %v", config.AlertTypes, types)
	}
	cfg, err := config.Load("../../config/testdata/design-note.json", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	a := alertsConfig(cfg, "nvr-1")
	if a.CameraDownAfter != time.Minute || a.BacklogAfter != 30*time.Minute || a.Cooldown != 5*time.Minute ||
		a.OutboxPath != "/var/cctv/recordings/.cctvd/alerts.json" || a.Host != "nvr-1" || a.Version != version {
		t.Errorf("alerts: %+v", a)
	}
	if ts, err := alertTargets(cfg, zerolog.Nop()); err != nil || len(ts) != 0 {
		t.Errorf("targets of the design note: %v %v", ts, err)
	}
	cfg.Alerts.Webhooks = []config.Webhook{{URL: "http://127.0.0.1:9/h", Events: []string{"camera-down"}}}
	cfg.Alerts.MQTT = &config.MQTT{Broker: "127.0.0.1:1883", TopicPrefix: "cctvd"}
	ts, err := alertTargets(cfg, zerolog.Nop())
	if err != nil || len(ts) != 2 || !strings.HasPrefix(ts[0].Name(), "webhook-") || ts[1].Name() != "mqtt" ||
		!ts[0].Wants(alerts.CameraDown) || ts[0].Wants(alerts.CameraUp) || ts[1].Address() != "127.0.0.1:1883" {
		t.Errorf("targets: %v %v", ts, err)
	}
}
