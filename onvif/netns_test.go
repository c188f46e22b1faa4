//go:build integration

package onvif

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/await"

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
	var group, reply net.PacketConn
	err := p.B.Do(func() error {
		ifi, err := net.InterfaceByName(p.B.Iface)
		if err != nil {
			return err
		}
		if group, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 3702}); err != nil {
			return err
		}
		reply, err = net.ListenPacket("udp4", p.B.IP+":0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reply.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.ServeDiscovery(ctx, group, reply) }()
	defer func() {
		cancel()
		if err := await.Recv(t, served, 10*time.Second, "end of ServeDiscovery"); err != nil {
			t.Errorf("ServeDiscovery: %v", err)
		}
	}()

	var found []Discovered
	err = p.A.Do(func() error {
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
