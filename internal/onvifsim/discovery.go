package onvifsim

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// WS-Discovery (April 2005) names.
const (
	nsWSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsWSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
	nsDN  = "http://www.onvif.org/ver10/network/wsdl"
)

// the device's types: an ONVIF NetworkVideoTransmitter and a device.
var deviceTypes = []xml.Name{{Space: nsDN, Local: "NetworkVideoTransmitter"}, {Space: nsTDS, Local: "Device"}}

// ServeDiscovery answers WS-Discovery Probes read from conn, until ctx ends
// (then it closes conn). A probe that matches (its Types all among the
// device's, its Scopes all prefixes of the device's) gets a ProbeMatches,
// unicast to its sender through reply (conn when nil). Anything else,
// including a malformed probe, gets no answer, as the specification says.
func (d *Device) ServeDiscovery(ctx context.Context, conn, reply net.PacketConn) error {
	if reply == nil {
		reply = conn
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		msgID, ok := d.matchProbe(buf[:n])
		if !ok {
			continue
		}
		if _, err := reply.WriteTo(d.ProbeMatchesFor(msgID), from); err != nil && ctx.Err() == nil {
			return fmt.Errorf("reply to %s: %w", from, err)
		}
		d.mu.Lock()
		d.calls["Probe"]++
		d.mu.Unlock()
	}
}

// matchProbe reads a Probe; it returns its MessageID when the device
// matches it.
func (d *Device) matchProbe(b []byte) (string, bool) {
	p, err := parseProbe(b)
	if err != nil {
		d.mu.Lock()
		d.rejections = append(d.rejections, "probe: "+err.Error())
		d.mu.Unlock()
		return "", false
	}
	for _, t := range p.types {
		found := false
		for _, mine := range deviceTypes {
			found = found || t == mine
		}
		if !found {
			return "", false
		}
	}
	for _, s := range p.scopes {
		found := false
		for _, mine := range d.cfg.Scopes {
			found = found || mine == s || strings.HasPrefix(mine, strings.TrimSuffix(s, "/")+"/")
		}
		if !found {
			return "", false
		}
	}
	return p.messageID, true
}

type probe struct {
	messageID string
	types     []xml.Name
	scopes    []string
}

// parseProbe reads a SOAP 1.2 Probe strictly: Action, MessageID and To in
// the header, and Types as qualified names resolved against the namespace
// declarations in scope.
func parseProbe(b []byte) (probe, error) {
	var p probe
	dec := xml.NewDecoder(bytes.NewReader(b))
	var stack []map[string]string // prefix → namespace, per open element
	var path []xml.Name
	var action, to string
	inProbe := false
	resolve := func(qname string) xml.Name {
		prefix, local, ok := strings.Cut(qname, ":")
		if !ok {
			prefix, local = "", qname
		}
		for i := len(stack) - 1; i >= 0; i-- {
			if ns, ok := stack[i][prefix]; ok {
				return xml.Name{Space: ns, Local: local}
			}
		}
		return xml.Name{Local: local}
	}
	for {
		tok, err := dec.RawToken() // raw: keep prefixes, resolved by hand above
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return p, fmt.Errorf("not well-formed: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			decl := map[string]string{}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					decl[a.Name.Local] = a.Value
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					decl[""] = a.Value
				}
			}
			stack = append(stack, decl)
			name := resolve(t.Name.Space + ":" + t.Name.Local)
			if t.Name.Space == "" {
				name = resolve(t.Name.Local)
			}
			path = append(path, name)
			if len(path) == 1 && name != (xml.Name{Space: nsSOAP12, Local: "Envelope"}) {
				return p, fmt.Errorf("root is {%s}%s, not a SOAP 1.2 Envelope", name.Space, name.Local)
			}
			if len(path) == 3 && name == (xml.Name{Space: nsWSD, Local: "Probe"}) && path[1].Local == "Body" {
				inProbe = true
			}
		case xml.EndElement:
			if len(path) == 3 && inProbe {
				inProbe = false
			}
			stack, path = stack[:len(stack)-1], path[:len(path)-1]
		case xml.CharData:
			if len(path) == 0 {
				continue
			}
			text := strings.TrimSpace(string(t))
			cur := path[len(path)-1]
			switch {
			case len(path) == 3 && path[1].Local == "Header" && cur == (xml.Name{Space: nsWSA, Local: "Action"}):
				action = text
			case len(path) == 3 && path[1].Local == "Header" && cur == (xml.Name{Space: nsWSA, Local: "MessageID"}):
				p.messageID = text
			case len(path) == 3 && path[1].Local == "Header" && cur == (xml.Name{Space: nsWSA, Local: "To"}):
				to = text
			case inProbe && len(path) == 4 && cur == (xml.Name{Space: nsWSD, Local: "Types"}):
				for _, q := range strings.Fields(text) {
					p.types = append(p.types, resolve(q))
				}
			case inProbe && len(path) == 4 && cur == (xml.Name{Space: nsWSD, Local: "Scopes"}):
				p.scopes = append(p.scopes, strings.Fields(text)...)
			}
		}
	}
	switch {
	case action != nsWSD+"/Probe":
		return p, fmt.Errorf("action %q is not Probe", action)
	case p.messageID == "":
		return p, errors.New("no MessageID")
	case to != "urn:schemas-xmlsoap-org:ws:2005:04:discovery":
		return p, fmt.Errorf("To %q is not the discovery URN", to)
	}
	return p, nil
}

// ProbeMatchesFor is the device's ProbeMatches answering the probe with
// MessageID relatesTo.
func (d *Device) ProbeMatchesFor(relatesTo string) []byte {
	xaddrs := d.cfg.XAddrs
	if xaddrs == "" && d.ln != nil {
		xaddrs = d.DeviceURL()
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	b.WriteString(`<SOAP-ENV:Envelope xmlns:SOAP-ENV="` + nsSOAP12 + `" xmlns:wsa="` + nsWSA + `" xmlns:wsdd="` + nsWSD +
		`" xmlns:dn="` + nsDN + `" xmlns:tds="` + nsTDS + `">`)
	b.WriteString(`<SOAP-ENV:Header><wsa:MessageID>urn:uuid:` + newUUID() + `</wsa:MessageID>`)
	b.WriteString(`<wsa:RelatesTo>` + esc(relatesTo) + `</wsa:RelatesTo>`)
	b.WriteString(`<wsa:To SOAP-ENV:mustUnderstand="true">` + nsWSA + `/role/anonymous</wsa:To>`)
	b.WriteString(`<wsa:Action SOAP-ENV:mustUnderstand="true">` + nsWSD + `/ProbeMatches</wsa:Action></SOAP-ENV:Header>`)
	b.WriteString(`<SOAP-ENV:Body><wsdd:ProbeMatches><wsdd:ProbeMatch>`)
	b.WriteString(`<wsa:EndpointReference><wsa:Address>urn:uuid:` + d.uuid + `</wsa:Address></wsa:EndpointReference>`)
	b.WriteString(`<wsdd:Types>dn:NetworkVideoTransmitter tds:Device</wsdd:Types>`)
	b.WriteString(`<wsdd:Scopes>` + esc(strings.Join(d.cfg.Scopes, " ")) + `</wsdd:Scopes>`)
	b.WriteString(`<wsdd:XAddrs>` + esc(xaddrs) + `</wsdd:XAddrs><wsdd:MetadataVersion>1</wsdd:MetadataVersion>`)
	b.WriteString(`</wsdd:ProbeMatch></wsdd:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>`)
	return b.Bytes()
}
