//go:build integration

package onvif

import (
	"context"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/netnstest"
	"github.com/cctvd/cctvd/internal/onvifsim"
)

// A multicast probe out of one end of a veth pair, in a network namespace
// the test creates, answered by a stand-in in the other: the real
// WS-Discovery path (239.255.255.250:3702) without touching the machine's
// network.
func TestProbeMulticastInNamespaces(t *testing.T) {
	p := netnstest.NewPair(t)
	d := onvifsim.New(onvifsim.Config{XAddrs: "http://" + p.B.IP + "/onvif/device_service"})
	d.ServeDiscoveryIn(t, p.B)

	var found []Discovered
	err := p.A.Do(func() error {
		var err error
		found, err = Probe(context.Background(), ProbeConfig{Interface: p.A.Iface, Timeout: time.Second})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].From != p.B.IP || found[0].Name != "StandIn" ||
		len(found[0].XAddrs) != 1 || found[0].XAddrs[0] != "http://"+p.B.IP+"/onvif/device_service" {
		t.Fatalf("found %+v, want the stand-in at %s", found, p.B.IP)
	}
	if r := d.Rejections(); len(r) != 0 {
		t.Errorf("the device found the probe malformed: %q", r)
	}
}
