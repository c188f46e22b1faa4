package onvifsim

import (
	"io"
	"net/http"
)

// Answer is a shape of error answer the stand-in gives to GetServices
// (Config.GetServices), as devices in the field answer an operation they
// do not have: ONVIF before 2.0 has no GetServices, and firmware answers
// it each its own way. Every shape is a real device's, none is well-formed
// ONVIF but the first.
type Answer string

// The answer shapes.
const (
	// SOAP12Fault is ter:ActionNotSupported in a SOAP 1.2 fault, HTTP 500:
	// what ONVIF core prescribes (as NoGetServices).
	SOAP12Fault Answer = "soap1.2-fault"
	// SOAP11Fault is a SOAP 1.1 envelope with a Client fault
	// (faultcode, faultstring), HTTP 500, text/xml: gSOAP-based firmware
	// of older cameras.
	SOAP11Fault Answer = "soap1.1-fault"
	// HTML is an HTML error page, HTTP 500: a web server in front of the
	// SOAP handler.
	HTML Answer = "html"
	// Empty is HTTP 500 without a body.
	Empty Answer = "empty"
	// NotXML is HTTP 200 with a body that is not XML.
	NotXML Answer = "not-xml"
	// NotFound is HTTP 404 for the device service's path, for this
	// operation only.
	NotFound Answer = "not-found"
)

// Answers lists the shapes, for tests that try each.
var Answers = []Answer{SOAP12Fault, SOAP11Fault, HTML, Empty, NotXML, NotFound}

// raw is an answer written as it is, not as a SOAP 1.2 envelope.
type raw struct {
	status      int
	contentType string
	body        string
}

func (r *raw) Error() string { return "raw answer" }

func (r *raw) write(w http.ResponseWriter) {
	if r.contentType != "" {
		w.Header().Set("Content-Type", r.contentType)
	}
	w.WriteHeader(r.status)
	_, _ = io.WriteString(w, r.body)
}

// answerShape is the error the stand-in answers op with, or nil.
func (d *Device) answerShape(op string) error {
	a := d.cfg.GetServices
	if op != "GetServices" {
		return nil
	}
	if d.cfg.NoGetServices && a == "" {
		a = SOAP12Fault
	}
	switch a {
	case "":
		return nil
	case SOAP12Fault:
		return &fault{http.StatusInternalServerError, "Receiver", []string{"ActionNotSupported"},
			"the requested action {" + nsTDS + "}GetServices is not supported by this service"}
	case SOAP11Fault:
		return &raw{http.StatusInternalServerError, "text/xml; charset=utf-8", soap11Fault("SOAP-ENV:Client", "Method 'tds:GetServices' not implemented: method name or namespace not recognized")}
	case HTML:
		return &raw{http.StatusInternalServerError, "text/html", "<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1></body></html>\n"}
	case Empty:
		return &raw{status: http.StatusInternalServerError}
	case NotXML:
		return &raw{http.StatusOK, "text/plain", "Error: unsupported request\n"}
	case NotFound:
		return &raw{http.StatusNotFound, "text/plain", "404 page not found\n"}
	}
	return &fault{http.StatusInternalServerError, "Receiver", nil, "onvifsim: unknown answer shape " + string(a)}
}

// soap11Fault is a SOAP 1.1 envelope holding a fault: faultcode and
// faultstring unqualified, as SOAP 1.1 section 4.4 writes them.
func soap11Fault(code, reason string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<SOAP-ENV:Envelope xmlns:SOAP-ENV="` + nsSOAP11 + `" xmlns:ter="` + nsTER + `"><SOAP-ENV:Body><SOAP-ENV:Fault>` +
		`<faultcode>` + esc(code) + `</faultcode><faultstring>` + esc(reason) + `</faultstring>` +
		`</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`
}

// writeFault11 writes a fault as a SOAP 1.1 device does (Config.SOAP11Faults):
// the first subcode, if any, as the faultcode (ter:NotAuthorized), else
// the code in SOAP 1.1's terms (Client for Sender, Server for Receiver).
func writeFault11(w http.ResponseWriter, f *fault) {
	code := map[string]string{"Sender": "SOAP-ENV:Client", "Receiver": "SOAP-ENV:Server"}[f.code]
	if code == "" {
		code = "SOAP-ENV:" + f.code
	}
	if len(f.subcodes) > 0 {
		code = "ter:" + f.subcodes[0]
	}
	(&raw{f.status, "text/xml; charset=utf-8", soap11Fault(code, f.reason)}).write(w)
}

// mediaXAddr is the media service's address the device gives: its own
// (host as the request named it), or Config.MediaXAddr.
func (d *Device) mediaXAddr(host string) string {
	if d.cfg.MediaXAddr != "" {
		return d.cfg.MediaXAddr
	}
	return "http://" + host + MediaPath
}
