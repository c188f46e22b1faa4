package onvifsim

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/netnstest"
)

// ServeDiscoveryIn answers WS-Discovery probes from inside the network
// namespace ns: it joins the multicast group 239.255.255.250:3702 on ns's
// interface and replies from ns's address, until the test ends. A failure
// to listen or to serve fails the test.
func (d *Device) ServeDiscoveryIn(t testing.TB, ns netnstest.NS) {
	t.Helper()
	var group, reply net.PacketConn
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ns.Iface)
		if err != nil {
			return err
		}
		if group, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 3702}); err != nil {
			return err
		}
		reply, err = net.ListenPacket("udp4", ns.IP+":0")
		return err
	})
	if err != nil {
		t.Fatalf("WS-Discovery responder in %s: %v", ns.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.ServeDiscovery(ctx, group, reply) }()
	t.Cleanup(func() {
		cancel()
		if err := await.Recv(t, served, 10*time.Second, "end of ServeDiscovery"); err != nil {
			t.Errorf("ServeDiscovery: %v", err)
		}
		reply.Close()
	})
}
