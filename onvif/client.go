package onvif

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cctvd/cctvd/internal/digestauth"
)

// DevicePath is the device service's path on every ONVIF device.
const DevicePath = "/onvif/device_service"

// Errors callers branch on.
var (
	// ErrAuth: the camera refused the credentials (ter:NotAuthorized, or
	// HTTP 401/403).
	ErrAuth = errors.New("the camera refused the user name or password")
	// ErrNoONVIF: something answers at the address, but not an ONVIF
	// device service (HTTP 404, or not SOAP).
	ErrNoONVIF = errors.New("no ONVIF device service")
	// ErrNoMedia: the device has no media service, or no video profile.
	ErrNoMedia = errors.New("no ONVIF media service")
)

// Config says which device to talk to.
type Config struct {
	// Host is the camera's address (IP or name), Port its HTTP port
	// (default 80).
	Host string
	Port int
	// User and Password authenticate calls (WS-Security UsernameToken with
	// password digest). Empty User: calls go without a security header.
	User, Password string
	// HTTP is the client; default one with Timeout.
	HTTP *http.Client
	// Timeout bounds each call. Default 5 s.
	Timeout time.Duration
	// Now is the local clock; default time.Now.
	Now func() time.Time
}

// Client calls one device's services. Its methods are safe for
// concurrent use.
type Client struct {
	cfg    Config
	device string

	mu        sync.Mutex
	offset    time.Duration // camera clock minus ours
	mediaAddr string        // found once
	mediaNote string        // where it came from, for errors
}

// New returns a client for the device at cfg.Host.
func New(cfg Config) *Client {
	if cfg.Port == 0 {
		cfg.Port = 80
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.HTTP == nil {
		// Cameras are on the local network: never through a proxy from
		// the environment; a few calls, no idle connections kept.
		// Redirects are not followed: a device must not steer the client
		// (and its WS-Security token) to another host or path.
		cfg.HTTP = &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{
			DialContext:       (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
			DisableKeepAlives: true,
		}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	u := url.URL{Scheme: "http", Host: hostPort(cfg.Host, cfg.Port), Path: DevicePath}
	return &Client{cfg: cfg, device: u.String()}
}

// DeviceURL is the device service's URL.
func (c *Client) DeviceURL() string { return c.device }

func hostPort(host string, port int) string {
	if port == 80 {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// ClockOffset is the camera's clock minus this machine's, as measured by
// SyncClock (0 before).
func (c *Client) ClockOffset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// SyncClock asks the camera its time (GetSystemDateAndTime, which needs
// no authentication) and keeps the difference to this machine's clock:
// the digest's Created is then dated in the camera's time, so a camera
// whose clock is wrong still accepts it. It returns the offset.
func (c *Client) SyncClock(ctx context.Context) (time.Duration, error) {
	type utc struct {
		Time struct {
			Hour   int `xml:"Hour"`
			Minute int `xml:"Minute"`
			Second int `xml:"Second"`
		} `xml:"Time"`
		Date struct {
			Year  int `xml:"Year"`
			Month int `xml:"Month"`
			Day   int `xml:"Day"`
		} `xml:"Date"`
	}
	var resp struct {
		XMLName xml.Name `xml:"http://www.onvif.org/ver10/device/wsdl GetSystemDateAndTimeResponse"`
		SDT     struct {
			UTC *utc `xml:"UTCDateTime"`
		} `xml:"SystemDateAndTime"`
	}
	req := struct {
		XMLName xml.Name `xml:"http://www.onvif.org/ver10/device/wsdl GetSystemDateAndTime"`
	}{}
	before := c.cfg.Now()
	if err := c.call(ctx, c.device, NSDevice+"/GetSystemDateAndTime", false, req, &resp); err != nil {
		return 0, err
	}
	after := c.cfg.Now()
	if resp.SDT.UTC == nil {
		// No UTC time: keep ours; a camera that far off says so in the
		// NotAuthorized fault that follows.
		return 0, nil
	}
	u := resp.SDT.UTC
	cam := time.Date(u.Date.Year, time.Month(u.Date.Month), u.Date.Day, u.Time.Hour, u.Time.Minute, u.Time.Second, 0, time.UTC)
	mid := before.Add(after.Sub(before) / 2)
	// The camera's time is to the second: it was cam.Second() somewhere in
	// [cam, cam+1s); take the middle.
	off := cam.Add(500 * time.Millisecond).Sub(mid).Round(time.Millisecond)
	c.mu.Lock()
	c.offset = off
	c.mu.Unlock()
	return off, nil
}

// Service is one entry of GetServices.
type Service struct {
	Namespace, XAddr string
}

// Services lists the device's services (GetServices).
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	req := struct {
		XMLName           xml.Name `xml:"http://www.onvif.org/ver10/device/wsdl GetServices"`
		IncludeCapability bool     `xml:"http://www.onvif.org/ver10/device/wsdl IncludeCapability"`
	}{}
	var resp struct {
		XMLName  xml.Name `xml:"http://www.onvif.org/ver10/device/wsdl GetServicesResponse"`
		Services []struct {
			Namespace string `xml:"Namespace"`
			XAddr     string `xml:"XAddr"`
		} `xml:"Service"`
	}
	if err := c.call(ctx, c.device, NSDevice+"/GetServices", true, req, &resp); err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(resp.Services))
	for _, s := range resp.Services {
		out = append(out, Service{Namespace: strings.TrimSpace(s.Namespace), XAddr: strings.TrimSpace(s.XAddr)})
	}
	return out, nil
}

// mediaFromCapabilities asks GetCapabilities for the media service, for
// devices that predate GetServices.
func (c *Client) mediaFromCapabilities(ctx context.Context) (string, error) {
	req := struct {
		XMLName  xml.Name `xml:"http://www.onvif.org/ver10/device/wsdl GetCapabilities"`
		Category string   `xml:"http://www.onvif.org/ver10/device/wsdl Category"`
	}{Category: "Media"}
	var resp struct {
		XMLName xml.Name `xml:"http://www.onvif.org/ver10/device/wsdl GetCapabilitiesResponse"`
		Caps    struct {
			Media *struct {
				XAddr string `xml:"XAddr"`
			} `xml:"Media"`
		} `xml:"Capabilities"`
	}
	if err := c.call(ctx, c.device, NSDevice+"/GetCapabilities", true, req, &resp); err != nil {
		return "", err
	}
	if resp.Caps.Media == nil || strings.TrimSpace(resp.Caps.Media.XAddr) == "" {
		return "", ErrNoMedia
	}
	return strings.TrimSpace(resp.Caps.Media.XAddr), nil
}

// MediaService finds the media service's address: GetServices, or
// GetCapabilities on devices that do not answer GetServices as ONVIF 2.0
// says (any error answer falls back: a SOAP 1.2 or 1.1 fault, an HTML
// page, an empty body, a 404; a refused password and no answer at all do
// not). The address's host is replaced by the one this client talks to (a
// camera behind NAT reports its inner address); its path is kept, and its
// port, or, when it gives none, the device service's (see mediaURL).
func (c *Client) MediaService(ctx context.Context) (string, error) {
	c.mu.Lock()
	known := c.mediaAddr
	c.mu.Unlock()
	if known != "" {
		return known, nil
	}
	var addr string
	from := "GetServices"
	svcs, err := c.Services(ctx)
	var na noAnswer
	switch {
	case err == nil:
		for _, s := range svcs {
			if s.Namespace == NSMedia {
				addr = s.XAddr
			}
		}
		if addr == "" {
			return "", fmt.Errorf("%w: GetServices lists no %s", ErrNoMedia, NSMedia)
		}
	case errors.Is(err, ErrAuth), errors.As(err, &na), ctx.Err() != nil:
		// A refused password (asking again is one more failed login), or
		// nothing answered: no fallback.
		return "", err
	default:
		// ActionNotSupported, or a device that answers it otherwise: an
		// older device, or one that never had GetServices.
		from = "GetCapabilities"
		var capErr error
		if addr, capErr = c.mediaFromCapabilities(ctx); capErr != nil {
			if errors.Is(capErr, ErrAuth) {
				return "", capErr
			}
			return "", fmt.Errorf("%w (GetServices before it: %v)", capErr, err)
		}
	}
	u, note, err := mediaURL(addr, from, c.cfg.Host, c.cfg.Port)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.mediaAddr, c.mediaNote = u, note
	c.mu.Unlock()
	return u, nil
}

// mediaURL is where a media service address the device gave (from
// GetServices or GetCapabilities; the first of several) leads when the
// device is reached at host:port, and a note for people saying where it
// came from and why it leads there. The host is always host (a camera
// behind NAT names its inner address). A port given is kept. With none,
// http's default would be 80; the device service's port is taken instead,
// since the two services share the device's web server: behind a port
// forward (the camera's 80 reached at another port) 80 reaches nothing,
// or another device.
func mediaURL(addr, from, host string, port int) (string, string, error) {
	fields := strings.Fields(addr)
	if len(fields) == 0 {
		return "", "", fmt.Errorf("%w: no media service address from %s", ErrNoMedia, from)
	}
	u, err := url.Parse(fields[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("%w: media service address %q from %s is not an http URL", ErrNoMedia, fields[0], from)
	}
	note := fmt.Sprintf("media service %s from %s", u.Redacted(), from)
	u.User = nil
	switch {
	case u.Port() != "":
		u.Host = Rehost(u.Host, host)
	case u.Scheme == "https":
		u.Host = hostPort(host, 80) // the host alone: https's default, 443
		note += "; no port given, so 443"
	case port == 80:
		u.Host = hostPort(host, 80) // the host alone
		note += "; no port given, so 80"
	default:
		u.Host = hostPort(host, port)
		note += fmt.Sprintf("; no port given, so the device service's port %d (as behind a port forward)", port)
	}
	return u.String(), note, nil
}

// mediaError adds to an error of a call to the media service where its
// address came from (media service http://192.168.1.64/onvif/Media from
// GetCapabilities; no port given...).
func (c *Client) mediaError(err error) error {
	c.mu.Lock()
	note := c.mediaNote
	c.mu.Unlock()
	if note == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, note)
}

// Rehost replaces the host of hostport (host[:port]) by host, keeping the
// port.
func Rehost(hostport, host string) string {
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, port)
}

// DeviceInfo is GetDeviceInformation's answer.
type DeviceInfo struct {
	Manufacturer, Model, FirmwareVersion, SerialNumber, HardwareID string
}

// DeviceInformation asks the device what it is.
func (c *Client) DeviceInformation(ctx context.Context) (DeviceInfo, error) {
	req := struct {
		XMLName xml.Name `xml:"http://www.onvif.org/ver10/device/wsdl GetDeviceInformation"`
	}{}
	var resp struct {
		XMLName         xml.Name `xml:"http://www.onvif.org/ver10/device/wsdl GetDeviceInformationResponse"`
		Manufacturer    string   `xml:"Manufacturer"`
		Model           string   `xml:"Model"`
		FirmwareVersion string   `xml:"FirmwareVersion"`
		SerialNumber    string   `xml:"SerialNumber"`
		HardwareID      string   `xml:"HardwareId"`
	}
	if err := c.call(ctx, c.device, NSDevice+"/GetDeviceInformation", true, req, &resp); err != nil {
		return DeviceInfo{}, err
	}
	return DeviceInfo{resp.Manufacturer, resp.Model, resp.FirmwareVersion, resp.SerialNumber, resp.HardwareID}, nil
}

// Profile is a media profile, as far as choosing a stream needs.
type Profile struct {
	Token, Name string
	// Encoding is the video encoder's: "H264", "H265", "JPEG", "MPEG4"; ""
	// when the profile has no video encoder.
	Encoding      string
	Width, Height int
	// FPS is the encoder's frame rate limit (0 when not given).
	FPS float64
	// Encoder is the profile's video encoder configuration as the camera
	// gave it (nil without one): what SetEncoder sends back, changed.
	Encoder *EncoderConfig
}

// Profiles lists the media profiles (GetProfiles).
func (c *Client) Profiles(ctx context.Context) ([]Profile, error) {
	media, err := c.MediaService(ctx)
	if err != nil {
		return nil, err
	}
	req := struct {
		XMLName xml.Name `xml:"http://www.onvif.org/ver10/media/wsdl GetProfiles"`
	}{}
	var resp struct {
		XMLName  xml.Name `xml:"http://www.onvif.org/ver10/media/wsdl GetProfilesResponse"`
		Profiles []struct {
			Token string         `xml:"token,attr"`
			Name  string         `xml:"Name"`
			VEC   *EncoderConfig `xml:"VideoEncoderConfiguration"`
		} `xml:"Profiles"`
	}
	if err := c.call(ctx, media, NSMedia+"/GetProfiles", true, req, &resp); err != nil {
		return nil, c.mediaError(err)
	}
	out := make([]Profile, 0, len(resp.Profiles))
	for _, p := range resp.Profiles {
		pr := Profile{Token: p.Token, Name: strings.TrimSpace(p.Name)}
		if v := p.VEC; v != nil {
			pr.Encoding = strings.ToUpper(strings.TrimSpace(v.Encoding))
			pr.Width, pr.Height = v.Resolution.Width, v.Resolution.Height
			if v.RateControl != nil {
				pr.FPS = float64(v.RateControl.FrameRateLimit)
			}
			pr.Encoder = v
		}
		out = append(out, pr)
	}
	return out, nil
}

// StreamURI asks for a profile's RTSP URI, for RTP unicast over RTSP
// (GetStreamUri). The URI is as the camera gives it (without credentials,
// usually).
func (c *Client) StreamURI(ctx context.Context, profileToken string) (string, error) {
	media, err := c.MediaService(ctx)
	if err != nil {
		return "", err
	}
	type transport struct {
		Protocol string `xml:"http://www.onvif.org/ver10/schema Protocol"`
	}
	req := struct {
		XMLName     xml.Name `xml:"http://www.onvif.org/ver10/media/wsdl GetStreamUri"`
		StreamSetup struct {
			Stream    string    `xml:"http://www.onvif.org/ver10/schema Stream"`
			Transport transport `xml:"http://www.onvif.org/ver10/schema Transport"`
		} `xml:"http://www.onvif.org/ver10/media/wsdl StreamSetup"`
		ProfileToken string `xml:"http://www.onvif.org/ver10/media/wsdl ProfileToken"`
	}{ProfileToken: profileToken}
	req.StreamSetup.Stream = "RTP-Unicast"
	req.StreamSetup.Transport.Protocol = "RTSP"
	var resp struct {
		XMLName  xml.Name `xml:"http://www.onvif.org/ver10/media/wsdl GetStreamUriResponse"`
		MediaURI struct {
			URI string `xml:"Uri"`
		} `xml:"MediaUri"`
	}
	if err := c.call(ctx, media, NSMedia+"/GetStreamUri", true, req, &resp); err != nil {
		return "", c.mediaError(err)
	}
	uri := strings.TrimSpace(resp.MediaURI.URI)
	if uri == "" {
		return "", fmt.Errorf("GetStreamUri %s: empty URI", profileToken)
	}
	return uri, nil
}

// call sends one SOAP request to endpoint and decodes the answer into
// resp. Errors name the action, never the password.
func (c *Client) call(ctx context.Context, endpoint, action string, auth bool, req, resp any) error {
	name := action[strings.LastIndexByte(action, '/')+1:]
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	hresp, err := c.post(ctx, endpoint, action, auth, req, "")
	if err != nil {
		return fmt.Errorf("onvif %s: %w", name, noAnswer{err})
	}
	if hresp.StatusCode == http.StatusUnauthorized && auth && c.cfg.User != "" {
		// Some devices also want HTTP authentication (ONVIF core allows
		// HTTP Digest besides WS-Security): answer the challenge once.
		// Digest only: WS-Security already proves the password without
		// sending it; Basic would hand it to whoever answers in clear.
		if ch, ok := digestauth.Pick(digestauth.Parse(hresp.Header.Values("WWW-Authenticate"))); ok && ch.Scheme == "digest" {
			drain(hresp)
			u, _ := url.Parse(endpoint)
			authz, err := ch.Authorization(http.MethodPost, u.RequestURI(), c.cfg.User, c.cfg.Password, 1)
			if err != nil {
				return fmt.Errorf("onvif %s: HTTP 401: %w", name, err)
			}
			if hresp, err = c.post(ctx, endpoint, action, auth, req, authz); err != nil {
				return fmt.Errorf("onvif %s: %w", name, noAnswer{err})
			}
		}
	}
	defer drain(hresp)
	switch hresp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("onvif %s: HTTP %d: %w", name, hresp.StatusCode, ErrAuth)
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return fmt.Errorf("onvif %s %s: HTTP %d: %w", name, endpoint, hresp.StatusCode, ErrNoONVIF)
	}
	msg, err := ReadMessage(hresp.Body)
	if err != nil {
		return fmt.Errorf("onvif %s: HTTP %d: %w: %w", name, hresp.StatusCode, ErrNoONVIF, err)
	}
	if msg.IsFault() {
		f, err := msg.Fault()
		if err != nil {
			return fmt.Errorf("onvif %s: %w", name, err)
		}
		if f.Has("NotAuthorized") || f.Has("FailedAuthentication") || f.Has("InvalidSecurityToken") {
			return fmt.Errorf("onvif %s: %w (%v)", name, ErrAuth, f)
		}
		return fmt.Errorf("onvif %s: %w", name, f)
	}
	if hresp.StatusCode != http.StatusOK {
		return fmt.Errorf("onvif %s: HTTP %d without a SOAP fault: %w", name, hresp.StatusCode, ErrNoONVIF)
	}
	if err := msg.DecodeBody(resp); err != nil {
		return fmt.Errorf("onvif %s: cannot read the answer: %w", name, err)
	}
	return nil
}

// noAnswer wraps the error of a request that got no answer (the device
// unreachable, the connection cut, the time up), as against an answer
// that says no. Its text is the error's.
type noAnswer struct{ err error }

func (e noAnswer) Error() string { return e.err.Error() }
func (e noAnswer) Unwrap() error { return e.err }

// post sends one SOAP request, with a fresh security header (and the HTTP
// Authorization header authz, if not empty).
func (c *Client) post(ctx context.Context, endpoint, action string, auth bool, req any, authz string) (*http.Response, error) {
	var header []byte
	if auth && c.cfg.User != "" {
		c.mu.Lock()
		now := c.cfg.Now().Add(c.offset)
		c.mu.Unlock()
		var err error
		if header, err = securityHeader(c.cfg.User, c.cfg.Password, now); err != nil {
			return nil, err
		}
	}
	body, err := Envelope(header, req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", `application/soap+xml; charset=utf-8; action="`+action+`"`)
	if authz != "" {
		hreq.Header.Set("Authorization", authz)
	}
	hresp, err := c.cfg.HTTP.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", endpoint, unwrapURLError(err))
	}
	return hresp, nil
}

// drain reads what is left of a response and closes it.
func drain(r *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, MaxMessage))
	r.Body.Close()
}

// unwrapURLError drops net/http's *url.Error wrapper, which repeats the
// method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
