// Package onvif talks to IP cameras through ONVIF, as far as cctvd needs to
// find a camera's stream: the device service (GetSystemDateAndTime, whose
// answer gives the camera's clock offset; GetServices or GetCapabilities to
// find the media service; GetDeviceInformation), the media service
// (GetProfiles, GetStreamUri for RTP over RTSP), WS-Security UsernameToken
// authentication with a password digest dated by the camera's clock (and
// HTTP Digest as well when a device asks for it), and WS-Discovery probes
// for NetworkVideoTransmitters.
//
// It is a small SOAP 1.2 client over net/http and encoding/xml (that reads
// SOAP 1.1 answers too, as older firmware gives its faults), written from
// the ONVIF device and media WSDLs (ver10) and the OASIS UsernameToken
// profile; the stand-in device in internal/onvifsim is written from the
// same documents, independently of this client, to test it.
package onvif

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// XML namespaces of the messages.
const (
	NSSOAP = "http://www.w3.org/2003/05/soap-envelope"
	// NSSOAP11 is SOAP 1.1's envelope, which some devices answer in.
	NSSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	NSWSSE   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	NSWSU    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	NSDevice = "http://www.onvif.org/ver10/device/wsdl"
	NSMedia  = "http://www.onvif.org/ver10/media/wsdl"
	NSSchema = "http://www.onvif.org/ver10/schema"
	NSError  = "http://www.onvif.org/ver10/error"
	// PasswordDigestType and Base64Binary are the UsernameToken profile's
	// Password Type and Nonce EncodingType.
	PasswordDigestType = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	Base64Binary       = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

// MaxMessage bounds the size of a SOAP message read from the network.
const MaxMessage = 4 << 20

// Envelope builds a SOAP 1.2 envelope around body (a struct that marshals
// to one element), with header (raw XML, may be empty) in its Header.
func Envelope(header []byte, body any) ([]byte, error) {
	b, err := xml.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("marshal SOAP body: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	buf.WriteString(`<s:Envelope xmlns:s="` + NSSOAP + `">`)
	if len(header) > 0 {
		buf.WriteString("<s:Header>")
		buf.Write(header)
		buf.WriteString("</s:Header>")
	}
	buf.WriteString("<s:Body>")
	buf.Write(b)
	buf.WriteString("</s:Body></s:Envelope>")
	return buf.Bytes(), nil
}

// Fault is a SOAP fault. Code and Subcodes are local names ("Sender",
// "NotAuthorized"): their prefixes are not resolved. A SOAP 1.1 fault
// (SOAP11) has its faultcode as Code ("Client", or "NotAuthorized" where a
// device puts ONVIF's code there) and its faultstring as Reason.
type Fault struct {
	Code     string
	Subcodes []string
	Reason   string
	SOAP11   bool
}

func (f *Fault) Error() string {
	s := "SOAP fault " + f.Code
	if f.SOAP11 {
		s = "SOAP 1.1 fault " + f.Code
	}
	for _, c := range f.Subcodes {
		s += "/" + c
	}
	if f.Reason != "" {
		s += ": " + f.Reason
	}
	return s
}

// Has says whether the fault carries this code or subcode (local name).
func (f *Fault) Has(code string) bool {
	if f.Code == code {
		return true
	}
	for _, c := range f.Subcodes {
		if c == code {
			return true
		}
	}
	return false
}

type faultXML struct {
	Code   codeXML `xml:"http://www.w3.org/2003/05/soap-envelope Code"`
	Reason struct {
		Text []string `xml:"http://www.w3.org/2003/05/soap-envelope Text"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Reason"`
}

type codeXML struct {
	Value   string   `xml:"http://www.w3.org/2003/05/soap-envelope Value"`
	Subcode *codeXML `xml:"http://www.w3.org/2003/05/soap-envelope Subcode"`
}

// fault11XML is a SOAP 1.1 fault: faultcode and faultstring, unqualified
// (SOAP 1.1 section 4.4; a device that qualifies them is read too).
type fault11XML struct {
	Code   string `xml:"faultcode"`
	String string `xml:"faultstring"`
}

func localName(qname string) string {
	qname = strings.TrimSpace(qname)
	if i := strings.LastIndexByte(qname, ':'); i >= 0 {
		return qname[i+1:]
	}
	return qname
}

func (x faultXML) fault() *Fault {
	f := &Fault{Code: localName(x.Code.Value)}
	for c := x.Code.Subcode; c != nil; c = c.Subcode {
		f.Subcodes = append(f.Subcodes, localName(c.Value))
	}
	if len(x.Reason.Text) > 0 {
		f.Reason = strings.TrimSpace(x.Reason.Text[0])
	}
	return f
}

// ErrNotSOAP is returned for a message that is not a SOAP envelope (1.2,
// or 1.1).
var ErrNotSOAP = errors.New("not a SOAP envelope")

// Message is a SOAP envelope being read: the decoder sits in its Body, on
// the body's first element (its namespace context kept, so prefixes
// declared on the Envelope resolve).
type Message struct {
	dec *xml.Decoder
	// NS is the envelope's namespace: NSSOAP (1.2), or NSSOAP11.
	NS string
	// Header holds the Header's child elements, each with the namespace
	// declarations in scope where it stood, so it can be decoded alone.
	Header []HeaderElement
	// Body is the Body's first element: the operation, its response, or a
	// Fault.
	Body xml.StartElement
}

// HeaderElement is one child of the SOAP Header.
type HeaderElement struct {
	Name xml.Name
	raw  []byte
}

// Decode decodes the header element into v.
func (h HeaderElement) Decode(v any) error { return xml.Unmarshal(h.raw, v) }

// ReadMessage reads a SOAP 1.2 (or 1.1) envelope up to its body's first
// element.
func ReadMessage(r io.Reader) (*Message, error) {
	dec := xml.NewDecoder(io.LimitReader(r, MaxMessage))
	m := &Message{dec: dec}
	depth := 0
	inHeader := false
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: no Body", ErrNotSOAP)
			}
			return nil, fmt.Errorf("%w: %v", ErrNotSOAP, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				if (t.Name.Space != NSSOAP && t.Name.Space != NSSOAP11) || t.Name.Local != "Envelope" {
					return nil, fmt.Errorf("%w: root element is {%s}%s", ErrNotSOAP, t.Name.Space, t.Name.Local)
				}
				m.NS = t.Name.Space
			case depth == 2 && t.Name.Space == m.NS && t.Name.Local == "Header":
				inHeader = true
			case depth == 3 && inHeader:
				raw, err := captureElement(dec, t)
				if err != nil {
					return nil, fmt.Errorf("%w: header: %v", ErrNotSOAP, err)
				}
				m.Header = append(m.Header, HeaderElement{Name: t.Name, raw: raw})
				depth--
			case depth == 3:
				m.Body = t
				return m, nil
			case depth == 2 && t.Name.Space == m.NS && t.Name.Local == "Body":
			case depth == 2:
				return nil, fmt.Errorf("%w: unexpected {%s}%s in the Envelope", ErrNotSOAP, t.Name.Space, t.Name.Local)
			}
		case xml.EndElement:
			depth--
			if depth == 1 {
				inHeader = false
			}
			if depth == 1 && t.Name.Local == "Body" {
				return nil, fmt.Errorf("%w: empty Body", ErrNotSOAP)
			}
		}
	}
}

// captureElement re-encodes the element that start opens, with resolved
// namespaces, so it can be decoded on its own.
func captureElement(dec *xml.Decoder, start xml.StartElement) ([]byte, error) {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if err := enc.EncodeToken(clean(start)); err != nil {
		return nil, err
	}
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			tok = clean(t)
		case xml.EndElement:
			depth--
		case xml.Comment, xml.ProcInst, xml.Directive:
			continue
		}
		if err := enc.EncodeToken(tok); err != nil {
			return nil, err
		}
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// clean drops namespace declarations (the encoder writes its own from the
// resolved names) but keeps attributes in the xml namespace and others.
func clean(t xml.StartElement) xml.StartElement {
	out := xml.StartElement{Name: t.Name}
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		out.Attr = append(out.Attr, a)
	}
	return out
}

// IsFault says whether the body is a SOAP Fault.
func (m *Message) IsFault() bool {
	return m.Body.Name.Space == m.NS && m.Body.Name.Local == "Fault"
}

// Fault decodes the body as a Fault.
func (m *Message) Fault() (*Fault, error) {
	if m.NS == NSSOAP11 {
		var x fault11XML
		if err := m.dec.DecodeElement(&x, &m.Body); err != nil {
			return nil, fmt.Errorf("%w: fault: %v", ErrNotSOAP, err)
		}
		return &Fault{Code: localName(x.Code), Reason: strings.TrimSpace(x.String), SOAP11: true}, nil
	}
	var x faultXML
	if err := m.dec.DecodeElement(&x, &m.Body); err != nil {
		return nil, fmt.Errorf("%w: fault: %v", ErrNotSOAP, err)
	}
	return x.fault(), nil
}

// DecodeBody decodes the body's first element into v.
func (m *Message) DecodeBody(v any) error {
	return m.dec.DecodeElement(v, &m.Body)
}
