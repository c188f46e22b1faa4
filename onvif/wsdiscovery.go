package onvif

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/ipv4"
)

// WS-Discovery (April 2005, as ONVIF uses it) names.
const (
	NSAddressing = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	NSDiscovery  = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
	NSNetwork    = "http://www.onvif.org/ver10/network/wsdl"
	// DiscoveryAddr is the WS-Discovery multicast group and port.
	DiscoveryAddr = "239.255.255.250:3702"
	// discoveryTo is the To of a multicast Probe.
	discoveryTo = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
)

// Discovered is a device that answered a probe.
type Discovered struct {
	// Endpoint is its endpoint reference (urn:uuid:...), stable across
	// address changes.
	Endpoint string `json:"endpoint"`
	// XAddrs are its device service URLs.
	XAddrs []string `json:"xaddrs"`
	Types  []string `json:"types"`
	Scopes []string `json:"scopes"`
	// Name, Hardware and Location come from its onvif:// scopes.
	Name     string `json:"name,omitempty"`
	Hardware string `json:"hardware,omitempty"`
	Location string `json:"location,omitempty"`
	// From is the address the answer came from.
	From string `json:"from"`
}

// ProbeConfig says where a probe goes.
type ProbeConfig struct {
	// Interface sends a multicast probe out of this network interface (its
	// first IPv4 address is the source). Default: the system's choice.
	Interface string
	// Addr is where the probe goes: the multicast group by default; a
	// unicast host:port probes one device.
	Addr string
	// Timeout is how long answers are collected. Default 3 s.
	Timeout time.Duration
}

// Probe sends a WS-Discovery Probe for NetworkVideoTransmitters (twice,
// as SOAP-over-UDP repeats multicast messages) and returns the devices that
// answer within the timeout, in order of arrival.
func Probe(ctx context.Context, cfg ProbeConfig) ([]Discovered, error) {
	if cfg.Addr == "" {
		cfg.Addr = DiscoveryAddr
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	dst, err := net.ResolveUDPAddr("udp4", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ws-discovery: %w", err)
	}
	local := &net.UDPAddr{}
	var ifi *net.Interface
	if cfg.Interface != "" {
		if ifi, err = net.InterfaceByName(cfg.Interface); err != nil {
			return nil, fmt.Errorf("ws-discovery: interface %s: %w", cfg.Interface, err)
		}
		ip, err := interfaceIPv4(ifi)
		if err != nil {
			return nil, err
		}
		local.IP = ip
	}
	conn, err := net.ListenUDP("udp4", local)
	if err != nil {
		return nil, fmt.Errorf("ws-discovery: %w", err)
	}
	defer conn.Close()
	if ifi != nil && dst.IP.IsMulticast() {
		if err := ipv4.NewPacketConn(conn).SetMulticastInterface(ifi); err != nil {
			return nil, fmt.Errorf("ws-discovery: multicast on %s: %w", ifi.Name, err)
		}
	}
	msgID := "urn:uuid:" + NewUUID()
	probe := probeMessage(msgID)
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	if _, err := conn.WriteToUDP(probe, dst); err != nil {
		return nil, fmt.Errorf("ws-discovery: send probe to %s: %w", dst, err)
	}
	deadline := time.Now().Add(cfg.Timeout)
	resend := time.Now().Add(100 * time.Millisecond)
	var out []Discovered
	seen := map[string]bool{}
	buf := make([]byte, 64<<10)
	for {
		wait := deadline
		if !resend.IsZero() && resend.Before(wait) {
			wait = resend
		}
		if err := conn.SetReadDeadline(wait); err != nil {
			return out, err
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return out, fmt.Errorf("ws-discovery: %w", err)
			}
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			if !resend.IsZero() && time.Now().Before(deadline) {
				resend = time.Time{}
				if _, err := conn.WriteToUDP(probe, dst); err != nil {
					return out, fmt.Errorf("ws-discovery: send probe to %s: %w", dst, err)
				}
				continue
			}
			return out, nil
		}
		for _, d := range parseProbeMatches(buf[:n], msgID) {
			key := d.Endpoint
			if key == "" {
				key = strings.Join(d.XAddrs, " ")
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			d.From = from.IP.String()
			out = append(out, d)
		}
	}
}

func interfaceIPv4(ifi *net.Interface) (net.IP, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("ws-discovery: interface %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.To4(), nil
		}
	}
	return nil, fmt.Errorf("ws-discovery: interface %s has no IPv4 address", ifi.Name)
}

func probeMessage(msgID string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	b.WriteString(`<s:Envelope xmlns:s="` + NSSOAP + `" xmlns:a="` + NSAddressing + `" xmlns:d="` + NSDiscovery + `" xmlns:dn="` + NSNetwork + `">`)
	b.WriteString(`<s:Header><a:Action s:mustUnderstand="1">` + NSDiscovery + `/Probe</a:Action>`)
	b.WriteString(`<a:MessageID>` + msgID + `</a:MessageID>`)
	b.WriteString(`<a:ReplyTo><a:Address>` + NSAddressing + `/role/anonymous</a:Address></a:ReplyTo>`)
	b.WriteString(`<a:To s:mustUnderstand="1">` + discoveryTo + `</a:To></s:Header>`)
	b.WriteString(`<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>`)
	return b.Bytes()
}

// parseProbeMatches reads a ProbeMatches message that relates to msgID;
// anything else gives nothing.
func parseProbeMatches(b []byte, msgID string) []Discovered {
	m, err := ReadMessage(bytes.NewReader(b))
	if err != nil || m.Body.Name != (xml.Name{Space: NSDiscovery, Local: "ProbeMatches"}) {
		return nil
	}
	related := false
	for _, h := range m.Header {
		if h.Name == (xml.Name{Space: NSAddressing, Local: "RelatesTo"}) {
			var v string
			if h.Decode(&v) == nil && strings.TrimSpace(v) == msgID {
				related = true
			}
		}
	}
	if !related {
		return nil
	}
	var pm struct {
		Matches []struct {
			Address string `xml:"EndpointReference>Address"`
			Types   string `xml:"Types"`
			Scopes  string `xml:"Scopes"`
			XAddrs  string `xml:"XAddrs"`
		} `xml:"ProbeMatch"`
	}
	if m.DecodeBody(&pm) != nil {
		return nil
	}
	var out []Discovered
	for _, x := range pm.Matches {
		d := Discovered{Endpoint: strings.TrimSpace(x.Address), XAddrs: strings.Fields(x.XAddrs),
			Types: strings.Fields(x.Types), Scopes: strings.Fields(x.Scopes)}
		for _, s := range d.Scopes {
			rest, ok := strings.CutPrefix(s, "onvif://www.onvif.org/")
			if !ok {
				continue
			}
			kind, val, _ := strings.Cut(rest, "/")
			if v, err := url.PathUnescape(val); err == nil {
				val = v
			}
			switch strings.ToLower(kind) {
			case "name":
				d.Name = val
			case "hardware":
				d.Hardware = val
			case "location":
				if d.Location == "" {
					d.Location = val
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
