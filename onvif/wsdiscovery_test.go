package onvif

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/onvifsim"
)

// A unicast probe to a stand-in on loopback.
func TestProbeOnLoopback(t *testing.T) {
	d := startSim(t, onvifsim.Config{})
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.ServeDiscovery(ctx, conn, nil) }()
	defer func() {
		cancel()
		if err := await.Recv(t, served, 10*time.Second, "end of ServeDiscovery"); err != nil {
			t.Errorf("ServeDiscovery: %v", err)
		}
	}()

	found, err := Probe(context.Background(), ProbeConfig{Addr: conn.LocalAddr().String(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 {
		t.Fatalf("found %+v, want one device (the second, repeated probe's answer is the same device)", found)
	}
	got := found[0]
	if got.Name != "StandIn" || got.Hardware != "onvifsim" || got.From != "127.0.0.1" {
		t.Errorf("device %+v", got)
	}
	if len(got.XAddrs) != 1 || got.XAddrs[0] != d.DeviceURL() {
		t.Errorf("xaddrs %v, want [%s]", got.XAddrs, d.DeviceURL())
	}
	if !strings.HasPrefix(got.Endpoint, "urn:uuid:") {
		t.Errorf("endpoint %q", got.Endpoint)
	}
	if n := d.Calls("Probe"); n != 2 {
		t.Errorf("the device answered %d probes, want 2 (a probe is sent twice)", n)
	}
	if r := d.Rejections(); len(r) != 0 {
		t.Errorf("the device found the probe malformed: %q", r)
	}
}

// An answer that does not relate to our probe is ignored.
func TestProbeIgnoresUnrelatedAnswers(t *testing.T) {
	d := onvifsim.New(onvifsim.Config{XAddrs: "http://10.0.0.9/onvif/device_service"})
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A fake that answers every datagram with a match for another probe.
	go func() {
		buf := make([]byte, 65536)
		for {
			_, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			conn.WriteTo(d.ProbeMatchesFor("urn:uuid:someone-else"), from)
		}
	}()
	found, err := Probe(context.Background(), ProbeConfig{Addr: conn.LocalAddr().String(), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 0 {
		t.Errorf("found %+v in answers to another probe", found)
	}
}
