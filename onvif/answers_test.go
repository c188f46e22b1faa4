package onvif

import (
	"context"
	"encoding/xml"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/cctvd/cctvd/internal/onvifsim"
)

// GetServices answered with an error of any shape a device in the field
// gives (a SOAP 1.2 fault, a SOAP 1.1 fault, an HTML page, an empty body,
// text, a 404): the client asks GetCapabilities instead, and the profiles
// come.
func TestGetServicesErrorAnswersFallBack(t *testing.T) {
	for _, a := range onvifsim.Answers {
		t.Run(string(a), func(t *testing.T) {
			d := startSim(t, onvifsim.Config{GetServices: a})
			c := newClient(d, simPassword)
			profiles, err := c.Profiles(context.Background())
			if err != nil || len(profiles) != len(simProfiles) {
				t.Fatalf("profiles %+v, err %v", profiles, err)
			}
			if d.Calls("GetCapabilities") != 1 || d.Calls("GetServices") != 0 {
				t.Errorf("GetCapabilities answered %d times, GetServices %d", d.Calls("GetCapabilities"), d.Calls("GetServices"))
			}
			if r := d.Rejections(); len(r) != 0 {
				t.Errorf("the device refused calls: %q", r)
			}
		})
	}
}

// A refused password is not an answer to fall back from: GetCapabilities
// would only be one more failed login. In SOAP 1.1 (ter:NotAuthorized as
// the faultcode) as in SOAP 1.2.
func TestRefusedGetServicesDoesNotFallBack(t *testing.T) {
	for _, soap11 := range []bool{false, true} {
		t.Run("soap1.1="+strconv.FormatBool(soap11), func(t *testing.T) {
			d := startSim(t, onvifsim.Config{SOAP11Faults: soap11})
			c := newClient(d, "wrong")
			_, err := c.MediaService(context.Background())
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("err %v, want ErrAuth", err)
			}
			if r := d.Rejections(); len(r) != 1 {
				t.Errorf("the device refused %d logins (%q), want 1", len(r), r)
			}
		})
	}
}

// A SOAP 1.1 fault is read as a fault: its faultcode and faultstring.
func TestSOAP11Fault(t *testing.T) {
	d := startSim(t, onvifsim.Config{SOAP11Faults: true})
	c := newClient(d, simPassword)
	req := struct {
		XMLName xml.Name `xml:"http://www.onvif.org/ver10/device/wsdl GetFrobnicator"`
	}{}
	var resp struct{}
	err := c.call(context.Background(), c.DeviceURL(), NSDevice+"/GetFrobnicator", true, req, &resp)
	var f *Fault
	if !errors.As(err, &f) || !f.Has("ActionNotSupported") || !f.SOAP11 || !strings.Contains(f.Reason, "GetFrobnicator") {
		t.Fatalf("err %v (%+v), want a SOAP 1.1 ActionNotSupported fault", err, f)
	}
	if !strings.HasPrefix(f.Error(), "SOAP 1.1 fault ActionNotSupported: ") {
		t.Errorf("fault reads %q", f.Error())
	}
}

// A camera behind a port forward gives its own address for the media
// service, without a port: it is reached where the device service was
// (the configured host and ONVIF port), and the address says so.
func TestMediaAddressBehindAPortForward(t *testing.T) {
	for _, noGetServices := range []bool{false, true} {
		d := startSim(t, onvifsim.Config{MediaXAddr: "http://192.0.2.10/onvif/media_service", NoGetServices: noGetServices})
		c := newClient(d, simPassword)
		media, err := c.MediaService(context.Background())
		if want := "http://127.0.0.1:" + itoa(d.Port()) + onvifsim.MediaPath; err != nil || media != want {
			t.Fatalf("media %q, err %v; want %q", media, err, want)
		}
		if _, err := c.Profiles(context.Background()); err != nil {
			t.Errorf("profiles: %v", err)
		}
	}

	// A port given that answers nothing: the error names the address
	// tried, the one the camera gave and where it gave it.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	d := startSim(t, onvifsim.Config{MediaXAddr: "http://192.0.2.10:" + closed + "/onvif/media_service", NoGetServices: true})
	c := newClient(d, simPassword)
	_, err := c.Profiles(context.Background())
	for _, want := range []string{"http://127.0.0.1:" + closed + "/onvif/media_service",
		"media service http://192.0.2.10:" + closed + "/onvif/media_service from GetCapabilities", "connection refused"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v, want it to say %q", err, want)
		}
	}
}

// Where a media service address leads, and what is said of it.
func TestMediaURL(t *testing.T) {
	for _, tt := range []struct {
		addr, from string
		host       string
		port       int
		url, note  string
	}{
		{"http://192.168.1.64/onvif/Media", "GetCapabilities", "cam.example", 80,
			"http://cam.example/onvif/Media", "media service http://192.168.1.64/onvif/Media from GetCapabilities; no port given, so 80"},
		{"http://192.168.1.64/onvif/Media", "GetServices", "203.0.113.5", 8081,
			"http://203.0.113.5:8081/onvif/Media", "media service http://192.168.1.64/onvif/Media from GetServices; no port given, so the device service's port 8081 (as behind a port forward)"},
		{"http://192.168.1.64:8000/onvif/Media", "GetServices", "203.0.113.5", 8081,
			"http://203.0.113.5:8000/onvif/Media", "media service http://192.168.1.64:8000/onvif/Media from GetServices"},
		{"http://[fe80::1]/onvif/media http://192.168.1.64/onvif/media", "GetServices", "fd00::5", 80,
			"http://[fd00::5]/onvif/media", "media service http://[fe80::1]/onvif/media from GetServices; no port given, so 80"},
		{"https://192.168.1.64/onvif/Media", "GetServices", "cam.example", 8443,
			"https://cam.example/onvif/Media", "media service https://192.168.1.64/onvif/Media from GetServices; no port given, so 443"},
	} {
		u, note, err := mediaURL(tt.addr, tt.from, tt.host, tt.port)
		if err != nil || u != tt.url || note != tt.note {
			t.Errorf("mediaURL(%q, %s, %s, %d) = %q, %q, %v\nwant %q, %q", tt.addr, tt.from, tt.host, tt.port, u, note, err, tt.url, tt.note)
		}
	}
	for _, bad := range []string{"ftp://cam/onvif", "", "  ", "not a url"} {
		if _, _, err := mediaURL(bad, "GetServices", "cam", 80); !errors.Is(err, ErrNoMedia) || !strings.Contains(err.Error(), "from GetServices") {
			t.Errorf("mediaURL(%q): err %v, want ErrNoMedia saying where it came from", bad, err)
		}
	}
}
