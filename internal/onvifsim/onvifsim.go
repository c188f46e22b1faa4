// Package onvifsim is a stand-in ONVIF device for tests: no real camera
// runs here, so the ONVIF side of camera onboarding is tested against this.
// It is written from the ONVIF device and media WSDLs (ver10), the ONVIF
// schema and the OASIS WS-Security UsernameToken profile, without sharing
// code with package onvif, and it is strict: it rejects (SOAP fault
// ter:NotAuthorized, HTTP 400) a missing security header on any call but
// GetSystemDateAndTime, a wrong user, a plain-text password, a bad digest,
// a Created older or newer than MaxAge against its own clock (which a test
// may set wrong), and a nonce it has already accepted; it answers an
// unknown operation with ter:ActionNotSupported and a SOAP 1.1 envelope
// with VersionMismatch. Its encoders can be set (encoder.go) to the modes
// a test gives them, each served at a URI of its own. Its GetStreamUri returns the URIs it is given (the
// real RTSP test camera's). It also answers WS-Discovery probes.
//
// It can play the answers of devices in the field that are not ONVIF as
// written (answers.go): GetServices answered with a SOAP 1.1 fault, an
// HTML page, an empty body, text or a 404 (Config.GetServices), every
// fault in SOAP 1.1 (Config.SOAP11Faults), and a media service address of
// the camera's own behind a port forward (Config.MediaXAddr).
package onvifsim

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Namespaces, as the specifications write them.
const (
	nsSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
	nsSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	nsWSSE   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	nsTDS    = "http://www.onvif.org/ver10/device/wsdl"
	nsTRT    = "http://www.onvif.org/ver10/media/wsdl"
	nsTT     = "http://www.onvif.org/ver10/schema"
	nsTER    = "http://www.onvif.org/ver10/error"

	digestType = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	textType   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
	b64Type    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

// Paths of the services.
const (
	DevicePath = "/onvif/device_service"
	MediaPath  = "/onvif/media_service"
)

// Profile is one media profile of the stand-in.
type Profile struct {
	Token, Name string
	// Encoding is the ONVIF VideoEncoding: H264, JPEG, MPEG4 (or H265, as
	// many cameras write it in media ver10).
	Encoding      string
	Width, Height int
	FPS           int
	// URI is what GetStreamUri returns for the profile.
	URI string
	// Modes are the settings SetVideoEncoderConfiguration may switch the
	// encoder to (see encoder.go); none: only the current one.
	Modes []Mode
}

// Config is the stand-in's setup.
type Config struct {
	User, Password string
	Profiles       []Profile
	// Clock is the device's clock. Default time.Now; a test sets it wrong
	// to check that clients date their digests in the device's time.
	Clock func() time.Time
	// MaxAge is how far a UsernameToken's Created may be from the device's
	// clock. Default 5 minutes (the UsernameToken profile's guideline).
	MaxAge time.Duration
	// NoGetServices makes the device answer GetServices with
	// ActionNotSupported, as devices older than ONVIF 2.0 do.
	NoGetServices bool
	// GetServices, if set, is the shape of error answer GetServices gets
	// (whatever the credentials): a SOAP 1.1 fault, HTML, an empty body...
	GetServices Answer
	// SOAP11Faults makes every fault a SOAP 1.1 one (faultcode
	// ter:NotAuthorized for a refused login, text/xml), as older firmware
	// answers.
	SOAP11Faults bool
	// MediaXAddr, if set, is the media service's address GetServices and
	// GetCapabilities give, such as the camera's own address without a
	// port ("http://192.0.2.10/onvif/media_service") when it sits behind a
	// port forward; the service is still served on the stand-in's port.
	MediaXAddr string
	// Manufacturer and Model answer GetDeviceInformation.
	Manufacturer, Model string
	// Scopes are announced in WS-Discovery ProbeMatches; default a name
	// and a hardware scope.
	Scopes []string
	// XAddrs, announced in ProbeMatches; default the device service URL.
	XAddrs string
	// HTTPDigest makes every call but GetSystemDateAndTime also need HTTP
	// Digest authentication (RFC 2617, MD5, qop=auth), which ONVIF core
	// allows besides WS-Security; a call without it gets 401 and a
	// challenge.
	HTTPDigest bool
}

// Device is a running stand-in.
type Device struct {
	cfg  Config
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	uuid string

	mu         sync.Mutex
	httpNonces map[string]bool      // HTTP Digest nonces issued
	nonces     map[string]time.Time // accepted nonce → when it may be forgotten
	calls      map[string]int       // operation → calls answered (not faults)
	rejections []string
}

// Start starts a stand-in listening on 127.0.0.1 (a free port).
func Start(cfg Config) (*Device, error) {
	return StartOn("127.0.0.1:0", cfg)
}

// StartOn starts a stand-in listening on addr.
func StartOn(addr string, cfg Config) (*Device, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	d := New(cfg)
	d.ln = ln
	d.srv = &http.Server{Handler: d, ReadHeaderTimeout: 5 * time.Second}
	d.done = make(chan struct{})
	go func() {
		defer close(d.done)
		_ = d.srv.Serve(ln) // ErrServerClosed after Close
	}()
	return d, nil
}

// New returns a stand-in that is not listening: serve it with ServeHTTP.
func New(cfg Config) *Device {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 5 * time.Minute
	}
	if cfg.Manufacturer == "" {
		cfg.Manufacturer = "cctvd stand-in"
	}
	if cfg.Model == "" {
		cfg.Model = "onvifsim"
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"onvif://www.onvif.org/type/video_encoder", "onvif://www.onvif.org/name/StandIn",
			"onvif://www.onvif.org/hardware/onvifsim", "onvif://www.onvif.org/Profile/Streaming"}
	}
	return &Device{cfg: cfg, uuid: newUUID(), nonces: map[string]time.Time{}, httpNonces: map[string]bool{}, calls: map[string]int{}}
}

// Port is the HTTP port.
func (d *Device) Port() int { return d.ln.Addr().(*net.TCPAddr).Port }

// DeviceURL is the device service's URL.
func (d *Device) DeviceURL() string { return "http://" + d.ln.Addr().String() + DevicePath }

// Close stops the HTTP server.
func (d *Device) Close() {
	if d.srv != nil {
		_ = d.srv.Close()
		<-d.done
	}
}

// Calls returns how many calls of an operation were answered (not
// refused).
func (d *Device) Calls(op string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[op]
}

// Rejections returns why authentication failed, oldest first.
func (d *Device) Rejections() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.rejections...)
}

type fault struct {
	status   int
	code     string // Sender, Receiver, VersionMismatch
	subcodes []string
	reason   string
}

func (f *fault) Error() string { return f.reason }

func notAuthorized(reason string) *fault {
	return &fault{http.StatusBadRequest, "Sender", []string{"NotAuthorized"}, "Sender not authorized: " + reason}
}

// operations each service knows; auth false: allowed without a security
// header (ONVIF core: GetSystemDateAndTime, so clients can date digests).
var operations = map[string]map[xml.Name]bool{
	DevicePath: {
		{Space: nsTDS, Local: "GetSystemDateAndTime"}: false,
		{Space: nsTDS, Local: "GetServices"}:          true,
		{Space: nsTDS, Local: "GetCapabilities"}:      true,
		{Space: nsTDS, Local: "GetDeviceInformation"}: true,
	},
	MediaPath: {
		{Space: nsTRT, Local: "GetProfiles"}:  true,
		{Space: nsTRT, Local: "GetStreamUri"}: true,
	},
}

// ServeHTTP answers SOAP requests to the device and media services.
func (d *Device) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ops, ok := operations[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/soap+xml" {
		http.Error(w, "SOAP 1.2 (application/soap+xml) only", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	resp, op, err := d.handle(r, body, ops, params["action"])
	if err != nil {
		var rw *raw
		if errors.As(err, &rw) {
			rw.write(w)
			return
		}
		var f *fault
		if errors.As(err, &f) && f.status == http.StatusUnauthorized {
			nonce := newUUID()
			d.mu.Lock()
			d.httpNonces[nonce] = true
			if f.reason != "" {
				d.rejections = append(d.rejections, f.reason)
			}
			d.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Digest realm="onvifsim", qop="auth", nonce="`+nonce+`", algorithm=MD5`)
			http.Error(w, "HTTP Digest authentication required", http.StatusUnauthorized)
			return
		}
		if !errors.As(err, &f) {
			f = &fault{http.StatusInternalServerError, "Receiver", nil, err.Error()}
		}
		if len(f.subcodes) > 0 && f.subcodes[0] == "NotAuthorized" {
			d.mu.Lock()
			d.rejections = append(d.rejections, strings.TrimPrefix(f.reason, "Sender not authorized: "))
			d.mu.Unlock()
		}
		if d.cfg.SOAP11Faults {
			writeFault11(w, f)
			return
		}
		writeFault(w, f)
		return
	}
	d.mu.Lock()
	d.calls[op]++
	d.mu.Unlock()
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	_, _ = io.WriteString(w, envelope(resp))
}

// request is a parsed SOAP 1.2 request; the Body's fields are the
// operations that carry parameters.
type request struct {
	XMLName xml.Name `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
	Header  struct {
		Security []struct {
			Tokens []struct {
				Username string `xml:"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd Username"`
				Password *struct {
					Type  string `xml:"Type,attr"`
					Value string `xml:",chardata"`
				} `xml:"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd Password"`
				Nonce *struct {
					EncodingType string `xml:"EncodingType,attr"`
					Value        string `xml:",chardata"`
				} `xml:"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd Nonce"`
				Created string `xml:"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd Created"`
			} `xml:"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd UsernameToken"`
		} `xml:"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd Security"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	Body struct {
		GetCapabilities *struct {
			Category []string `xml:"http://www.onvif.org/ver10/device/wsdl Category"`
		} `xml:"http://www.onvif.org/ver10/device/wsdl GetCapabilities"`
		GetServices *struct {
			IncludeCapability string `xml:"http://www.onvif.org/ver10/device/wsdl IncludeCapability"`
		} `xml:"http://www.onvif.org/ver10/device/wsdl GetServices"`
		GetStreamUri *struct {
			StreamSetup *struct {
				Stream    string `xml:"http://www.onvif.org/ver10/schema Stream"`
				Transport *struct {
					Protocol string `xml:"http://www.onvif.org/ver10/schema Protocol"`
				} `xml:"http://www.onvif.org/ver10/schema Transport"`
			} `xml:"http://www.onvif.org/ver10/media/wsdl StreamSetup"`
			ProfileToken string `xml:"http://www.onvif.org/ver10/media/wsdl ProfileToken"`
		} `xml:"http://www.onvif.org/ver10/media/wsdl GetStreamUri"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

// bodyChildren lists the Body's child elements (names resolved), or says
// which SOAP version the envelope is.
func bodyChildren(body []byte) (root xml.Name, children []xml.Name, err error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	depth, inBody := 0, false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return root, children, nil
		}
		if err != nil {
			return root, nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				root = t.Name
			case depth == 2:
				inBody = t.Name == xml.Name{Space: root.Space, Local: "Body"}
			case depth == 3 && inBody:
				children = append(children, t.Name)
			}
		case xml.EndElement:
			depth--
		}
	}
}

func (d *Device) handle(r *http.Request, body []byte, ops map[xml.Name]bool, action string) (string, string, error) {
	root, children, err := bodyChildren(body)
	switch {
	case err != nil:
		return "", "", &fault{http.StatusBadRequest, "Sender", []string{"WellFormed"}, "not well-formed XML"}
	case root == xml.Name{Space: nsSOAP11, Local: "Envelope"}:
		return "", "", &fault{http.StatusInternalServerError, "VersionMismatch", nil, "SOAP 1.2 only"}
	case root != xml.Name{Space: nsSOAP12, Local: "Envelope"}:
		return "", "", &fault{http.StatusBadRequest, "Sender", []string{"WellFormed"}, "not a SOAP envelope"}
	case len(children) != 1:
		return "", "", &fault{http.StatusBadRequest, "Sender", []string{"InvalidArgs"}, fmt.Sprintf("the Body holds %d elements, not one", len(children))}
	}
	op := children[0]
	needsAuth, known := ops[op]
	if !known {
		return "", "", &fault{http.StatusInternalServerError, "Receiver", []string{"ActionNotSupported"},
			fmt.Sprintf("the requested action {%s}%s is not supported by this service", op.Space, op.Local)}
	}
	if err := d.answerShape(op.Local); err != nil {
		return "", "", err
	}
	if action != "" && action != op.Space+"/"+op.Local {
		return "", "", &fault{http.StatusBadRequest, "Sender", []string{"InvalidArgs"}, "the action parameter does not match the Body"}
	}
	var req request
	if err := xml.Unmarshal(body, &req); err != nil {
		return "", "", &fault{http.StatusBadRequest, "Sender", []string{"InvalidArgs"}, "cannot read the request"}
	}
	if needsAuth && d.cfg.HTTPDigest {
		if err := d.httpDigest(r); err != nil {
			return "", "", err
		}
	}
	if needsAuth {
		if err := d.authenticate(&req); err != nil {
			return "", "", err
		}
	}
	if resp, ok, err := d.answerEncoder(op.Local, body); ok {
		return resp, op.Local, err
	}
	resp, err := d.answer(r.Host, op.Local, &req)
	return resp, op.Local, err
}

// authenticate checks the UsernameToken as the UsernameToken profile and
// ONVIF core say: digest over nonce, Created and password; Created fresh
// against the device's clock; each nonce accepted once.
func (d *Device) authenticate(req *request) error {
	if len(req.Header.Security) != 1 || len(req.Header.Security[0].Tokens) != 1 {
		return notAuthorized("no WS-Security header with one UsernameToken")
	}
	tok := req.Header.Security[0].Tokens[0]
	if tok.Username != d.cfg.User {
		return notAuthorized("unknown user")
	}
	if tok.Password == nil || tok.Nonce == nil || tok.Created == "" {
		return notAuthorized("the UsernameToken lacks Password, Nonce or Created")
	}
	switch tok.Password.Type {
	case digestType:
	case textType:
		return notAuthorized("plain-text passwords are not accepted")
	default:
		return notAuthorized("unknown password type")
	}
	if tok.Nonce.EncodingType != "" && tok.Nonce.EncodingType != b64Type {
		return notAuthorized("the nonce is not Base64Binary")
	}
	nonce, err := base64.StdEncoding.DecodeString(strings.TrimSpace(tok.Nonce.Value))
	if err != nil || len(nonce) < 8 {
		return notAuthorized("the nonce is not base64 of at least 8 bytes")
	}
	created, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(tok.Created))
	if err != nil {
		return notAuthorized("Created is not an xs:dateTime")
	}
	now := d.cfg.Clock()
	if age := now.Sub(created); age > d.cfg.MaxAge || age < -d.cfg.MaxAge {
		return notAuthorized(fmt.Sprintf("Created is %s away from the device's clock", age.Round(time.Second)))
	}
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(strings.TrimSpace(tok.Created)))
	h.Write([]byte(d.cfg.Password))
	want := base64.StdEncoding.EncodeToString(h.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.TrimSpace(tok.Password.Value))) != 1 {
		return notAuthorized("wrong password digest")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for n, until := range d.nonces {
		if now.After(until) {
			delete(d.nonces, n)
		}
	}
	key := string(nonce)
	if _, seen := d.nonces[key]; seen {
		return notAuthorized("nonce already used (replay)")
	}
	d.nonces[key] = created.Add(2 * d.cfg.MaxAge)
	return nil
}

// httpDigest checks an RFC 2617 Digest Authorization (MD5, qop=auth)
// against a nonce the device issued. A missing header is a challenge (no
// rejection recorded); a wrong one is a rejection.
func (d *Device) httpDigest(r *http.Request) error {
	h := r.Header.Get("Authorization")
	if h == "" {
		return &fault{status: http.StatusUnauthorized}
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return &fault{status: http.StatusUnauthorized, reason: "http digest: scheme " + scheme}
	}
	p := map[string]string{}
	for _, part := range splitParams(rest) {
		k, v, _ := strings.Cut(part, "=")
		p[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	d.mu.Lock()
	issued := d.httpNonces[p["nonce"]]
	d.mu.Unlock()
	md5hex := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	ha1 := md5hex(d.cfg.User + ":onvifsim:" + d.cfg.Password)
	ha2 := md5hex(r.Method + ":" + p["uri"])
	want := md5hex(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	switch {
	case !issued:
		return &fault{status: http.StatusUnauthorized, reason: "http digest: unknown nonce"}
	case p["username"] != d.cfg.User || p["realm"] != "onvifsim":
		return &fault{status: http.StatusUnauthorized, reason: "http digest: unknown user or realm"}
	case p["uri"] != r.URL.RequestURI():
		return &fault{status: http.StatusUnauthorized, reason: "http digest: uri does not match the request"}
	case p["qop"] != "auth" || p["nc"] == "" || p["cnonce"] == "":
		return &fault{status: http.StatusUnauthorized, reason: "http digest: qop=auth with nc and cnonce required"}
	case subtle.ConstantTimeCompare([]byte(want), []byte(p["response"])) != 1:
		return &fault{status: http.StatusUnauthorized, reason: "http digest: wrong response"}
	}
	return nil
}

// splitParams splits a header's comma-separated parameters, minding
// quotes.
func splitParams(s string) []string {
	var out []string
	var b strings.Builder
	quoted := false
	for _, c := range s {
		switch {
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			out = append(out, b.String())
			b.Reset()
			continue
		}
		b.WriteRune(c)
	}
	return append(out, b.String())
}

func (d *Device) answer(host, op string, req *request) (string, error) {
	switch op {
	case "GetSystemDateAndTime":
		t := d.cfg.Clock().UTC()
		return fmt.Sprintf(`<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>`+
			`<tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>`+
			`<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>`+
			`<tt:UTCDateTime><tt:Time><tt:Hour>%d</tt:Hour><tt:Minute>%d</tt:Minute><tt:Second>%d</tt:Second></tt:Time>`+
			`<tt:Date><tt:Year>%d</tt:Year><tt:Month>%d</tt:Month><tt:Day>%d</tt:Day></tt:Date></tt:UTCDateTime>`+
			`</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`,
			t.Hour(), t.Minute(), t.Second(), t.Year(), int(t.Month()), t.Day()), nil
	case "GetServices":
		if req.Body.GetServices.IncludeCapability != "true" && req.Body.GetServices.IncludeCapability != "false" {
			return "", &fault{http.StatusBadRequest, "Sender", []string{"InvalidArgVal"}, "IncludeCapability must be true or false"}
		}
		return `<tds:GetServicesResponse>` +
			service(nsTDS, "http://"+host+DevicePath) + service(nsTRT, d.mediaXAddr(host)) +
			`</tds:GetServicesResponse>`, nil
	case "GetCapabilities":
		cats := req.Body.GetCapabilities.Category
		want := func(c string) bool {
			if len(cats) == 0 {
				return true
			}
			for _, x := range cats {
				if x == c || x == "All" {
					return true
				}
			}
			return false
		}
		for _, c := range cats {
			switch c {
			case "All", "Analytics", "Device", "Events", "Imaging", "Media", "PTZ":
			default:
				return "", &fault{http.StatusBadRequest, "Sender", []string{"InvalidArgVal", "NoSuchService"}, "unknown capability category " + c}
			}
		}
		var b strings.Builder
		b.WriteString(`<tds:GetCapabilitiesResponse><tds:Capabilities>`)
		if want("Device") {
			b.WriteString(`<tt:Device><tt:XAddr>` + esc("http://"+host+DevicePath) + `</tt:XAddr></tt:Device>`)
		}
		if want("Media") {
			b.WriteString(`<tt:Media><tt:XAddr>` + esc(d.mediaXAddr(host)) + `</tt:XAddr>` +
				`<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>` +
				`<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>`)
		}
		b.WriteString(`</tds:Capabilities></tds:GetCapabilitiesResponse>`)
		return b.String(), nil
	case "GetDeviceInformation":
		return `<tds:GetDeviceInformationResponse><tds:Manufacturer>` + esc(d.cfg.Manufacturer) +
			`</tds:Manufacturer><tds:Model>` + esc(d.cfg.Model) + `</tds:Model><tds:FirmwareVersion>1.0</tds:FirmwareVersion>` +
			`<tds:SerialNumber>SIM-0001</tds:SerialNumber><tds:HardwareId>onvifsim</tds:HardwareId></tds:GetDeviceInformationResponse>`, nil
	case "GetProfiles":
		var b strings.Builder
		b.WriteString(`<trt:GetProfilesResponse>`)
		profiles := d.profiles()
		for _, p := range profiles {
			fmt.Fprintf(&b, `<trt:Profiles token="%s" fixed="true"><tt:Name>%s</tt:Name>`, esc(p.Token), esc(p.Name))
			fmt.Fprintf(&b, `<tt:VideoSourceConfiguration token="vsc"><tt:Name>vsc</tt:Name><tt:UseCount>%d</tt:UseCount>`+
				`<tt:SourceToken>vs</tt:SourceToken><tt:Bounds x="0" y="0" width="%d" height="%d"/></tt:VideoSourceConfiguration>`,
				len(profiles), p.Width, p.Height)
			if p.Encoding != "" {
				fmt.Fprintf(&b, `<tt:VideoEncoderConfiguration token="vec-%s"><tt:Name>vec-%s</tt:Name><tt:UseCount>1</tt:UseCount>`+
					`<tt:Encoding>%s</tt:Encoding><tt:Resolution><tt:Width>%d</tt:Width><tt:Height>%d</tt:Height></tt:Resolution>`+
					`<tt:Quality>5</tt:Quality><tt:RateControl><tt:FrameRateLimit>%d</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval>`+
					`<tt:BitrateLimit>4096</tt:BitrateLimit></tt:RateControl>`+
					`<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address>`+
					`<tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast>`+
					`<tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration>`,
					esc(p.Token), esc(p.Token), esc(p.Encoding), p.Width, p.Height, p.FPS)
			}
			b.WriteString(`</trt:Profiles>`)
		}
		b.WriteString(`</trt:GetProfilesResponse>`)
		return b.String(), nil
	case "GetStreamUri":
		r := req.Body.GetStreamUri
		if r.StreamSetup == nil || r.StreamSetup.Transport == nil {
			return "", &fault{http.StatusBadRequest, "Sender", []string{"InvalidArgVal", "InvalidStreamSetup"}, "StreamSetup with Stream and Transport is required"}
		}
		if r.StreamSetup.Stream != "RTP-Unicast" || r.StreamSetup.Transport.Protocol != "RTSP" {
			return "", &fault{http.StatusBadRequest, "Sender", []string{"InvalidArgVal", "InvalidStreamSetup"},
				fmt.Sprintf("this device streams RTP-Unicast over RTSP, not %q over %q", r.StreamSetup.Stream, r.StreamSetup.Transport.Protocol)}
		}
		for _, p := range d.profiles() {
			if p.Token == r.ProfileToken {
				return `<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>` + esc(p.URI) + `</tt:Uri>` +
					`<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>` +
					`<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>`, nil
			}
		}
		return "", &fault{http.StatusBadRequest, "Sender", []string{"InvalidArgVal", "NoProfile"}, "no profile with this token"}
	}
	return "", &fault{http.StatusInternalServerError, "Receiver", []string{"ActionNotSupported"}, "not supported"}
}

func service(ns, xaddr string) string {
	return `<tds:Service><tds:Namespace>` + ns + `</tds:Namespace><tds:XAddr>` + esc(xaddr) +
		`</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>`
}

func envelope(body string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<SOAP-ENV:Envelope xmlns:SOAP-ENV="` + nsSOAP12 + `" xmlns:tds="` + nsTDS + `" xmlns:trt="` + nsTRT +
		`" xmlns:tt="` + nsTT + `" xmlns:ter="` + nsTER + `"><SOAP-ENV:Body>` + body + `</SOAP-ENV:Body></SOAP-ENV:Envelope>`
}

func writeFault(w http.ResponseWriter, f *fault) {
	var b strings.Builder
	b.WriteString(`<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:` + f.code + `</SOAP-ENV:Value>`)
	for _, s := range f.subcodes {
		b.WriteString(`<SOAP-ENV:Subcode><SOAP-ENV:Value>ter:` + s + `</SOAP-ENV:Value>`)
	}
	for range f.subcodes {
		b.WriteString(`</SOAP-ENV:Subcode>`)
	}
	b.WriteString(`</SOAP-ENV:Code><SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en">` + esc(f.reason) +
		`</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault>`)
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, envelope(b.String()))
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
