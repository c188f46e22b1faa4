package onvif

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/onvifsim"
)

const (
	simUser     = "admin"
	simPassword = "p@ss:w/rd#%1"
)

var simProfiles = []onvifsim.Profile{
	{Token: "Profile_1", Name: "mainStream", Encoding: "H264", Width: 1920, Height: 1080, FPS: 25, URI: "rtsp://127.0.0.1:8554/Streaming/Channels/101"},
	{Token: "Profile_2", Name: "subStream", Encoding: "H264", Width: 640, Height: 360, FPS: 5, URI: "rtsp://127.0.0.1:8554/Streaming/Channels/102"},
	{Token: "Profile_3", Name: "jpeg", Encoding: "JPEG", Width: 640, Height: 360, FPS: 1, URI: "rtsp://127.0.0.1:8554/jpeg"},
}

// skewedClock is a device clock off by a settable amount.
type skewedClock struct{ off atomic.Int64 }

func (s *skewedClock) now() time.Time      { return time.Now().Add(time.Duration(s.off.Load())) }
func (s *skewedClock) set(d time.Duration) { s.off.Store(int64(d)) }

func startSim(t *testing.T, cfg onvifsim.Config) *onvifsim.Device {
	t.Helper()
	if cfg.User == "" {
		cfg.User, cfg.Password = simUser, simPassword
	}
	if cfg.Profiles == nil {
		cfg.Profiles = simProfiles
	}
	d, err := onvifsim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func newClient(d *onvifsim.Device, password string) *Client {
	return New(Config{Host: "127.0.0.1", Port: d.Port(), User: simUser, Password: password, Timeout: 5 * time.Second})
}

// A camera whose clock is two hours ahead: the client reads the offset
// from GetSystemDateAndTime and dates its digests in the camera's time, so
// the strict device accepts every call.
func TestClientWithAWrongCameraClock(t *testing.T) {
	var clock skewedClock
	clock.set(2*time.Hour + 17*time.Second)
	d := startSim(t, onvifsim.Config{Clock: clock.now})
	c := newClient(d, simPassword)
	ctx := context.Background()

	off, err := c.SyncClock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2*time.Hour + 17*time.Second; (off - want).Abs() > 1500*time.Millisecond {
		t.Errorf("clock offset %v, want %v within a second and a half", off, want)
	}
	info, err := c.DeviceInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Manufacturer != "cctvd stand-in" || info.Model != "onvifsim" {
		t.Errorf("device information %+v", info)
	}
	profiles, err := c.Profiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Profile{
		{Token: "Profile_1", Name: "mainStream", Encoding: "H264", Width: 1920, Height: 1080, FPS: 25},
		{Token: "Profile_2", Name: "subStream", Encoding: "H264", Width: 640, Height: 360, FPS: 5},
		{Token: "Profile_3", Name: "jpeg", Encoding: "JPEG", Width: 640, Height: 360, FPS: 1},
	}
	if len(profiles) != len(want) {
		t.Fatalf("profiles %+v", profiles)
	}
	for i := range want {
		got := profiles[i]
		if got.Encoder == nil || got.Encoder.Token != "vec-"+want[i].Token {
			t.Errorf("profile %d: encoder %+v, want its configuration, token vec-%s", i, got.Encoder, want[i].Token)
		}
		got.Encoder = nil // the configuration as given, for SetEncoder
		if got != want[i] {
			t.Errorf("profile %d: %+v, want %+v", i, got, want[i])
		}
	}
	uri, err := c.StreamURI(ctx, "Profile_2")
	if err != nil {
		t.Fatal(err)
	}
	if uri != simProfiles[1].URI {
		t.Errorf("stream URI %q, want %q", uri, simProfiles[1].URI)
	}
	if _, err := c.StreamURI(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "NoProfile") {
		t.Errorf("unknown profile: err %v, want a NoProfile fault", err)
	}
	if r := d.Rejections(); len(r) != 0 {
		t.Errorf("the device refused calls: %q", r)
	}
	for _, op := range []string{"GetSystemDateAndTime", "GetServices", "GetProfiles", "GetStreamUri", "GetDeviceInformation"} {
		if d.Calls(op) == 0 {
			t.Errorf("%s was never answered", op)
		}
	}
}

// The same camera without the clock offset: every digest is two hours
// off in the camera's eyes and refused as stale. This is what SyncClock
// prevents.
func TestStaleDigestIsRefused(t *testing.T) {
	var clock skewedClock
	clock.set(2 * time.Hour)
	d := startSim(t, onvifsim.Config{Clock: clock.now})
	c := newClient(d, simPassword)
	_, err := c.Profiles(context.Background())
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err %v, want ErrAuth", err)
	}
	if r := d.Rejections(); len(r) != 1 || !strings.Contains(r[0], "away from the device's clock") {
		t.Errorf("rejections %q", r)
	}

	// Synced, then the camera's clock jumps six minutes: refused again
	// (five minutes is the limit), and accepted after a new sync.
	clock.set(0)
	if _, err := c.SyncClock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Profiles(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.set(6 * time.Minute)
	if _, err := c.StreamURI(context.Background(), "Profile_1"); !errors.Is(err, ErrAuth) {
		t.Fatalf("after a 6 min jump: err %v, want ErrAuth", err)
	}
	if _, err := c.SyncClock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StreamURI(context.Background(), "Profile_1"); err != nil {
		t.Errorf("after a new sync: %v", err)
	}
}

func TestWrongPassword(t *testing.T) {
	d := startSim(t, onvifsim.Config{})
	c := newClient(d, "wrong")
	if _, err := c.SyncClock(context.Background()); err != nil {
		t.Fatal(err) // no authentication needed
	}
	_, err := c.Profiles(context.Background())
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err %v, want ErrAuth", err)
	}
	if strings.Contains(err.Error(), simPassword) || strings.Contains(err.Error(), "wrong") && strings.Contains(err.Error(), "password=") {
		t.Errorf("error shows a password: %v", err)
	}
	if r := d.Rejections(); len(r) != 1 || r[0] != "wrong password digest" {
		t.Errorf("rejections %q, want one wrong digest (the first refusal stops the client)", r)
	}
}

// Without a user the client sends no security header: refused on every
// call but GetSystemDateAndTime.
func TestMissingSecurityHeader(t *testing.T) {
	d := startSim(t, onvifsim.Config{})
	c := New(Config{Host: "127.0.0.1", Port: d.Port()})
	if _, err := c.SyncClock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeviceInformation(context.Background()); !errors.Is(err, ErrAuth) {
		t.Fatalf("err %v, want ErrAuth", err)
	}
	if r := d.Rejections(); len(r) != 1 || !strings.Contains(r[0], "no WS-Security header") {
		t.Errorf("rejections %q", r)
	}
}

// recorder is an http.RoundTripper that keeps the request bodies.
type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, b)
	r.mu.Unlock()
	req.Body = io.NopCloser(bytes.NewReader(b))
	return http.DefaultTransport.RoundTrip(req)
}

// A captured request sent again is a replay: its nonce was used.
func TestReplayedNonceIsRefused(t *testing.T) {
	d := startSim(t, onvifsim.Config{})
	rec := &recorder{}
	c := New(Config{Host: "127.0.0.1", Port: d.Port(), User: simUser, Password: simPassword, HTTP: &http.Client{Transport: rec}})
	if _, err := c.DeviceInformation(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(rec.bodies[0], []byte(PasswordDigestType)) {
		t.Fatalf("the request carries no password digest:\n%s", rec.bodies[0])
	}
	if bytes.Contains(rec.bodies[0], []byte(simPassword)) {
		t.Fatalf("the request carries the password itself:\n%s", rec.bodies[0])
	}
	resp, err := http.Post(c.DeviceURL(), "application/soap+xml; charset=utf-8", bytes.NewReader(rec.bodies[0]))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ReadMessage(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := msg.Fault()
	if err != nil || !msg.IsFault() || !f.Has("NotAuthorized") || resp.StatusCode != 400 {
		t.Fatalf("replay answered %d %v %v, want 400 NotAuthorized", resp.StatusCode, f, err)
	}
	if r := d.Rejections(); len(r) != 1 || !strings.Contains(r[0], "nonce already used") {
		t.Errorf("rejections %q", r)
	}
	// Each call of the client has a fresh nonce: a second call works.
	if _, err := c.DeviceInformation(context.Background()); err != nil {
		t.Errorf("second call: %v", err)
	}
}

// An operation the device does not have is a fault the client reports as
// such (not as an authentication problem).
func TestUnknownAction(t *testing.T) {
	d := startSim(t, onvifsim.Config{})
	c := newClient(d, simPassword)
	req := struct {
		XMLName xml.Name `xml:"http://www.onvif.org/ver10/device/wsdl GetFrobnicator"`
	}{}
	var resp struct{}
	err := c.call(context.Background(), c.DeviceURL(), NSDevice+"/GetFrobnicator", true, req, &resp)
	var f *Fault
	if !errors.As(err, &f) || !f.Has("ActionNotSupported") || f.Code != "Receiver" {
		t.Fatalf("err %v, want a Receiver/ActionNotSupported fault", err)
	}
	if errors.Is(err, ErrAuth) {
		t.Error("ActionNotSupported taken for an authentication error")
	}
	// A media operation sent to the device service is unknown there too.
	req2 := struct {
		XMLName xml.Name `xml:"http://www.onvif.org/ver10/media/wsdl GetProfiles"`
	}{}
	if err := c.call(context.Background(), c.DeviceURL(), NSMedia+"/GetProfiles", true, req2, &resp); !errors.As(err, &f) || !f.Has("ActionNotSupported") {
		t.Errorf("GetProfiles on the device service: err %v", err)
	}
}

// A device from before GetServices: the media service is found through
// GetCapabilities.
func TestMediaServiceFromCapabilities(t *testing.T) {
	d := startSim(t, onvifsim.Config{NoGetServices: true})
	c := newClient(d, simPassword)
	media, err := c.MediaService(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(media, onvifsim.MediaPath) || d.Calls("GetCapabilities") != 1 || d.Calls("GetServices") != 0 {
		t.Errorf("media %s, GetCapabilities answered %d, GetServices %d", media, d.Calls("GetCapabilities"), d.Calls("GetServices"))
	}
	if _, err := c.Profiles(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestNotAnONVIFDevice(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == DevicePath {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body>camera login</body></html>")
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	c := New(Config{Host: "127.0.0.1", Port: port, User: "u", Password: "p"})
	if _, err := c.SyncClock(context.Background()); !errors.Is(err, ErrNoONVIF) {
		t.Errorf("HTML answer: err %v, want ErrNoONVIF", err)
	}

	// Nothing listens: an error from the network, neither of the above.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c = New(Config{Host: "127.0.0.1", Port: closed})
	_, err := c.SyncClock(context.Background())
	var op *net.OpError
	if !errors.As(err, &op) || errors.Is(err, ErrNoONVIF) || errors.Is(err, ErrAuth) {
		t.Errorf("closed port: err %v, want a *net.OpError", err)
	}
}

// The stand-in itself refuses a plain-text password, so the client's
// digest is what passes.
func TestStandInRefusesPlainText(t *testing.T) {
	d := startSim(t, onvifsim.Config{})
	body := `<s:Envelope xmlns:s="` + NSSOAP + `"><s:Header><wsse:Security xmlns:wsse="` + NSWSSE + `" xmlns:wsu="` + NSWSU + `">` +
		`<wsse:UsernameToken><wsse:Username>` + simUser + `</wsse:Username>` +
		`<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">` + simPassword + `</wsse:Password>` +
		`<wsse:Nonce>AAAAAAAAAAAAAAAAAAAAAA==</wsse:Nonce><wsu:Created>` + time.Now().UTC().Format(CreatedLayout) + `</wsu:Created>` +
		`</wsse:UsernameToken></wsse:Security></s:Header><s:Body><GetDeviceInformation xmlns="` + NSDevice + `"/></s:Body></s:Envelope>`
	resp, err := http.Post("http://127.0.0.1:"+itoa(d.Port())+DevicePath, "application/soap+xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	if r := d.Rejections(); len(r) != 1 || !strings.Contains(r[0], "plain-text") {
		t.Errorf("rejections %q", r)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A device that also wants HTTP Digest authentication: the client answers
// the challenge once, with a fresh WS-Security header.
func TestHTTPDigestToo(t *testing.T) {
	d := startSim(t, onvifsim.Config{HTTPDigest: true})
	c := newClient(d, simPassword)
	if _, err := c.SyncClock(context.Background()); err != nil {
		t.Fatal(err) // no authentication of either kind
	}
	if _, err := c.Profiles(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StreamURI(context.Background(), "Profile_1"); err != nil {
		t.Fatal(err)
	}
	if r := d.Rejections(); len(r) != 0 {
		t.Errorf("rejections %q", r)
	}

	bad := newClient(d, "wrong")
	_, err := bad.Profiles(context.Background())
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong password: err %v, want ErrAuth", err)
	}
	if r := d.Rejections(); len(r) != 1 || r[0] != "http digest: wrong response" {
		t.Errorf("rejections %q, want one wrong HTTP digest (answered once, not retried)", r)
	}
}
