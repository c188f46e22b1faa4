//go:build integration

package alerts_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/clockstep"
	"github.com/cctvd/cctvd/metrics"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/supervisor"
	"github.com/cctvd/cctvd/uploader"
	"github.com/cctvd/cctvd/volume"
)

// TestPrometheusRules: docs/prometheus-alerts.yaml passes promtool check
// rules, fires where promtool test rules says it must (and nowhere else),
// and reads only metrics package metrics exports.
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed (Debian's prometheus): run `make deps`")
	}
	if out, err := exec.Command(promtool, "check", "rules", "../docs/prometheus-alerts.yaml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	cmd := exec.Command(promtool, "test", "rules", "prometheus-alerts.test.yaml")
	cmd.Dir = "testdata"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}

	// Every cctvd_ metric the rules read is one cctvd exports.
	m := metrics.New(metrics.Sources{
		Cameras:   func() []supervisor.Status { return []supervisor.Status{{Camera: "door", State: supervisor.Recording}} },
		Uploader:  func() uploader.Status { return uploader.Status{} },
		Retention: func() retention.Status { return retention.Status{} },
		Backlog:   func(context.Context) (catalog.Backlog, error) { return catalog.Backlog{}, nil },
		Volume:    func() volume.Status { return volume.Status{State: volume.OK} },
		Now:       time.Now,
	})
	m.Quarantined(catalog.Record{Camera: "door"}, "", false)
	m.ClockStep(clockstep.Step{Size: time.Hour})
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}
	rules, err := os.ReadFile("../docs/prometheus-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\b(cctvd_[a-z_]+|process_start_time_seconds)\b`).FindAllString(string(rules), -1)
	if len(names) < 10 {
		t.Fatalf("found only %v in the rules", names)
	}
	for _, n := range names {
		if !exported[n] {
			t.Errorf("the rules read %s, which cctvd does not export", n)
		}
	}
}
