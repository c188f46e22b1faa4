// Package discovery finds a camera's stream from its address, user name
// and password alone, for cameras configured without a path: ONVIF first
// (package onvif: the media profiles, the one that suits the configured
// resolution and frame rate, its RTSP URI), then vendors' well-known RTSP
// paths tried with DESCRIBE, slowly, since cameras lock out addresses that
// fail to log in. A refused password stops the search at once, and every
// login (the ONVIF calls', each DESCRIBE's) is taken from a failed-login
// budget (package internal/loginbudget) shared with whoever else logs in
// to the camera: past it, the search stops with a *loginbudget.SpentError.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/loginbudget"
	"github.com/cctvd/cctvd/onvif"
)

// Errors callers branch on (errors.Is); the error text says more.
var (
	// ErrAuth: the camera refused the user name or password.
	ErrAuth = errors.New("the camera refused the user name or password")
	// ErrNotFound: the camera answers, but no stream was found.
	ErrNotFound = errors.New("no stream found")
	// ErrUnreachable: nothing answers at the address.
	ErrUnreachable = errors.New("camera unreachable")
)

// Methods of discovery, as config's cameras[].discovery names them.
const (
	MethodAuto  = "auto"  // ONVIF, then known paths
	MethodONVIF = "onvif" // ONVIF only
	MethodPaths = "paths" // known paths only
)

// KnownPath is a vendor's well-known RTSP path.
type KnownPath struct {
	Path, Vendor string
}

// KnownPaths are tried in this order: main streams of the common brands
// first, generic paths of OEM firmware last, and "/" (cctvd 0.1's default)
// at the very end.
var KnownPaths = []KnownPath{
	{"/Streaming/Channels/101", "Hikvision (main stream)"},
	{"/Streaming/Channels/102", "Hikvision (sub stream)"},
	{"/cam/realmonitor?channel=1&subtype=0", "Dahua, Amcrest, Lorex"},
	{"/axis-media/media.amp", "Axis"},
	{"/h264Preview_01_main", "Reolink"},
	{"/Preview_01_main", "Reolink (newer firmware)"},
	{"/unicast/c1/s0/live", "Uniview"},
	{"/media/video1", "Uniview (older firmware)"},
	{"/profile2/media.smp", "Hanwha (Samsung Wisenet)"},
	{"/stream1", "TP-Link Tapo, generic"},
	{"/videoMain", "Foscam"},
	{"/live", "generic"},
	{"/h264", "generic"},
	{"/ch0_0.h264", "generic OEM"},
	{"/live/ch00_0", "generic OEM"},
	{"/11", "generic OEM"},
	{"/onvif1", "generic OEM"},
	{"/0", "generic"},
	{"/1", "generic"},
	{"/", "the stream at the root"},
}

// KnownSubPaths are the vendors' sub-stream paths, tried in this order
// for a camera's sub feed (subStream "auto").
var KnownSubPaths = []KnownPath{
	{"/Streaming/Channels/102", "Hikvision (sub stream)"},
	{"/cam/realmonitor?channel=1&subtype=1", "Dahua, Amcrest, Lorex (sub stream)"},
	{"/h264Preview_01_sub", "Reolink (sub stream)"},
	{"/Preview_01_sub", "Reolink (newer firmware, sub stream)"},
	{"/unicast/c1/s1/live", "Uniview (sub stream)"},
	{"/media/video2", "Uniview (older firmware, sub stream)"},
	{"/axis-media/media.amp?resolution=640x360", "Axis (scaled)"},
	{"/stream2", "TP-Link Tapo, generic (sub stream)"},
	{"/videoSub", "Foscam (sub stream)"},
	{"/ch0_1.h264", "generic OEM (sub stream)"},
	{"/live/ch00_1", "generic OEM (sub stream)"},
	{"/12", "generic OEM (sub stream)"},
	{"/onvif2", "generic OEM (sub stream)"},
}

// Default pace of path probing per camera address: a burst of 3, then one
// attempt every 15 s — at most 7 in the first minute and 4 a minute after.
const (
	DefaultPathInterval = 15 * time.Second
	DefaultPathBurst    = 3
)

// Attempt is one step of a search, for reports: ONVIF (Path empty) or the
// DESCRIBE of a known path.
type Attempt struct {
	Path   string
	Vendor string
	Result Description
	// Err is nil when the step found the stream.
	Err error
}

// Target is a camera to find a stream for.
type Target struct {
	Host           string
	RTSPPort       int // default 554
	ONVIFPort      int // default 80
	User, Password string
	// Width, Height and FPS are what is configured to be recorded: they
	// choose the ONVIF profile.
	Width, Height int
	FPS           float64
	// Method is auto (default), onvif or paths.
	Method string
	// Sub looks for the camera's sub stream instead: ONVIF's
	// lowest-resolution profile (of two or more), else the known
	// sub-stream paths.
	Sub bool
	// Configure lets ONVIF discovery ask the camera for the configured
	// size and frame rate (SetVideoEncoderConfiguration on the chosen
	// profile) when no profile sends them, so that they are copied rather
	// than transcoded. It changes the camera: opt-in.
	Configure bool
	// Logins is the camera's failed-login budget at Host. Default
	// config's (3 in 30 minutes).
	Logins loginbudget.Limit
}

// Found is a stream found for a camera.
type Found struct {
	// URI is the stream's URL, without credentials.
	URI string
	// Source says where it comes from, for people: `onvif profile
	// "mainStream"` or `known path /Streaming/Channels/101`.
	Source string
	// Choice is the ONVIF profile choice (zero for a known path).
	Choice *Choice
	// Codec is the video codec the camera's SDP names, if it does.
	Codec string
	// Configured says what the camera was asked for (Target.Configure),
	// ConfigureError why it could not be; both empty when not asked.
	Configured, ConfigureError string
}

// Config tunes a Finder.
type Config struct {
	// Paths are the known paths tried; default KnownPaths. SubPaths
	// those tried for a sub stream; default KnownSubPaths.
	Paths, SubPaths []KnownPath
	// PathInterval and PathBurst pace path probing per camera address
	// (every DESCRIBE counts, across Find calls). Defaults 15 s and 3.
	PathInterval time.Duration
	PathBurst    int
	// Timeout bounds each ONVIF call and each RTSP exchange. Default 5 s.
	Timeout time.Duration
	// Logins is the failed-login budget every login is taken from; share
	// it with whatever else logs in to the cameras. Default one of the
	// Finder's own.
	Logins *loginbudget.Budget
}

// Finder finds streams. One Finder serves every camera, so that the pace
// of probing holds per address whatever calls it. Safe for concurrent
// use.
type Finder struct {
	cfg Config

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// New returns a Finder.
func New(cfg Config) *Finder {
	if cfg.Paths == nil {
		cfg.Paths = KnownPaths
	}
	if cfg.SubPaths == nil {
		cfg.SubPaths = KnownSubPaths
	}
	if cfg.PathInterval == 0 {
		cfg.PathInterval = DefaultPathInterval
	}
	if cfg.PathBurst == 0 {
		cfg.PathBurst = DefaultPathBurst
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logins == nil {
		start := time.Now()
		cfg.Logins = loginbudget.New(func() time.Duration { return time.Since(start) })
	}
	return &Finder{cfg: cfg, limiters: map[string]*rate.Limiter{}}
}

// take takes one login at the target's address from the budget: nil for
// a target without credentials (nothing it sends can be refused as a
// wrong password), a *loginbudget.SpentError when it may not go.
func (f *Finder) take(t Target) (*loginbudget.Login, error) {
	if t.User == "" && t.Password == "" {
		return nil, nil
	}
	return f.cfg.Logins.Take(loginbudget.Host(t.Host), loginbudget.Key(t.User, t.Password), t.Logins)
}

// describeLogin is describe with its login taken from the budget, and the
// camera's verdict on it recorded: refused (401 or 403 after credentials
// were sent), accepted (any other answer to them), or nothing learnt.
func (f *Finder) describeLogin(ctx context.Context, u *url.URL, t Target) (Description, error) {
	login, err := f.take(t)
	if err != nil {
		return Description{}, err
	}
	d, err := describe(ctx, u, t.User, t.Password, f.cfg.Timeout)
	switch {
	case d.Authenticated && (d.Status == 401 || d.Status == 403):
		login.Refused()
	case d.Authenticated && err == nil:
		login.Accepted()
	default:
		login.Release()
	}
	return d, err
}

func (f *Finder) limiter(host string) *rate.Limiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.limiters[host]
	if l == nil {
		l = rate.NewLimiter(rate.Every(f.cfg.PathInterval), f.cfg.PathBurst)
		f.limiters[host] = l
	}
	return l
}

func (t *Target) defaults() {
	if t.RTSPPort == 0 {
		t.RTSPPort = config.DefaultRTSPPort
	}
	if t.ONVIFPort == 0 {
		t.ONVIFPort = config.DefaultONVIFPort
	}
	if t.Method == "" {
		t.Method = MethodAuto
	}
	if t.Logins.Max <= 0 {
		t.Logins.Max = config.DefaultMaxFailedLogins
	}
	if t.Logins.Window <= 0 {
		t.Logins.Window = config.DefaultFailedLoginWindow
	}
}

// Find finds the camera's stream: ONVIF, then the known paths (as Method
// says). The error wraps ErrAuth, ErrNotFound or ErrUnreachable. report,
// if set, hears an ONVIF failure that falls back to the paths, and each
// known-path attempt.
func (f *Finder) Find(ctx context.Context, t Target, report func(Attempt)) (Found, error) {
	t.defaults()
	var onvifErr error
	if t.Method != MethodPaths {
		found, _, err := f.ONVIF(ctx, t)
		if err == nil {
			return found, nil
		}
		if t.Method == MethodONVIF || ctx.Err() != nil {
			return Found{}, err
		}
		onvifErr = err
		if report != nil {
			report(Attempt{Vendor: "ONVIF", Err: err})
		}
	}
	found, err := f.Paths(ctx, t, report)
	if err == nil || onvifErr == nil {
		return found, err
	}
	// Both failed: the more telling error leads (a refused password, then
	// a camera that answers, then one that does not).
	switch {
	case errors.Is(err, ErrAuth):
	case errors.Is(onvifErr, ErrAuth):
		return Found{}, fmt.Errorf("%w; known paths: %v", onvifErr, err)
	case errors.Is(err, ErrUnreachable) && !errors.Is(onvifErr, ErrUnreachable):
		return Found{}, fmt.Errorf("%w; known paths: %v", onvifErr, err)
	}
	return Found{}, fmt.Errorf("%w; %v", err, onvifErr)
}

// ONVIFReport is what the camera's ONVIF services said, for probe-camera.
type ONVIFReport struct {
	DeviceURL   string
	ClockOffset time.Duration
	Info        onvif.DeviceInfo
	Profiles    []onvif.Profile
	// URIs maps profile tokens to their stream URIs (for every profile
	// with video), rehosted to the camera's configured address.
	URIs map[string]string
	// URIErrors maps tokens to why GetStreamUri failed.
	URIErrors map[string]string
	// Configured and ConfigureError: see Found.
	Configured, ConfigureError string
}

// ONVIF finds the stream through ONVIF: clock offset, media service,
// profiles, the chosen profile's URI, checked with DESCRIBE.
func (f *Finder) ONVIF(ctx context.Context, t Target) (Found, ONVIFReport, error) {
	t.defaults()
	c := onvif.New(onvif.Config{Host: t.Host, Port: t.ONVIFPort, User: t.User, Password: t.Password, Timeout: f.cfg.Timeout})
	rep := ONVIFReport{DeviceURL: c.DeviceURL(), URIs: map[string]string{}, URIErrors: map[string]string{}}
	off, err := c.SyncClock(ctx)
	if err != nil {
		return Found{}, rep, classifyONVIF(err)
	}
	rep.ClockOffset = off
	// One login for the calls that follow, with the same credentials: the
	// first the camera answers accepts them; a refusal before that is a
	// failed login (one after it is a right the user lacks).
	login, err := f.take(t)
	if err != nil {
		return Found{}, rep, fmt.Errorf("onvif: %w", err)
	}
	defer login.Release()
	if info, err := c.DeviceInformation(ctx); err == nil {
		rep.Info = info
		login.Accepted()
	} else if errors.Is(err, onvif.ErrAuth) {
		login.Refused()
		return Found{}, rep, classifyONVIF(err)
	} // some cameras restrict it; the profiles matter
	profiles, err := c.Profiles(ctx)
	if err != nil {
		if errors.Is(err, onvif.ErrAuth) {
			login.Refused()
		}
		return Found{}, rep, classifyONVIF(err)
	}
	login.Accepted()
	rep.Profiles = profiles
	choose := Choose
	if t.Sub {
		choose = func(ps []onvif.Profile, _, _ int, _ float64) (Choice, bool) { return ChooseSub(ps) }
	}
	choice, ok := choose(profiles, t.Width, t.Height, t.FPS)
	if !ok {
		what := "has a video encoder"
		if t.Sub {
			what = "is a second video stream (a sub stream needs two)"
		}
		return Found{}, rep, fmt.Errorf("onvif: none of %d profiles %s: %w", len(profiles), what, ErrNotFound)
	}
	if t.Configure && !choice.Copy && t.Width > 0 {
		// Ask the camera to send what is configured on the profile chosen
		// (the least work to transcode from), then choose again.
		err := c.SetEncoder(ctx, choice.Profile, t.Width, t.Height, t.FPS)
		var again []onvif.Profile
		if err == nil {
			if again, err = c.Profiles(ctx); err != nil {
				err = fmt.Errorf("asked the camera, then could not read its profiles: %w", err)
			}
		}
		if err != nil {
			rep.ConfigureError = err.Error()
		} else {
			rep.Configured = fmt.Sprintf("asked the camera for H264 %dx%d at %s fps on profile %q", t.Width, t.Height, num(t.FPS), choice.Profile.Name)
			profiles, rep.Profiles = again, again
			choice, _ = Choose(profiles, t.Width, t.Height, t.FPS)
		}
	}
	for _, p := range profiles {
		if p.Encoding == "" {
			continue
		}
		uri, err := c.StreamURI(ctx, p.Token)
		if err != nil {
			if errors.Is(err, onvif.ErrAuth) {
				return Found{}, rep, classifyONVIF(err)
			}
			rep.URIErrors[p.Token] = err.Error()
			continue
		}
		if uri, err = rehostURI(uri, t.Host); err != nil {
			rep.URIErrors[p.Token] = err.Error()
			continue
		}
		rep.URIs[p.Token] = uri
	}
	uri, ok := rep.URIs[choice.Profile.Token]
	if !ok {
		return Found{}, rep, fmt.Errorf("onvif: no stream URI for profile %q: %s: %w", choice.Profile.Name, rep.URIErrors[choice.Profile.Token], ErrNotFound)
	}
	u, _ := url.Parse(uri)
	if u.Scheme == "rtsp" {
		if err := f.limiter(t.Host).Wait(ctx); err != nil {
			return Found{}, rep, err
		}
		d, err := f.describeLogin(ctx, u, t)
		if errors.Is(err, loginbudget.ErrSpent) {
			return Found{}, rep, fmt.Errorf("onvif profile %q: %w", choice.Profile.Name, err)
		}
		if err := describeError(d, err, u.RequestURI()); err != nil {
			return Found{}, rep, fmt.Errorf("onvif profile %q: %w", choice.Profile.Name, err)
		}
	}
	return Found{URI: uri, Source: fmt.Sprintf("onvif profile %q", choice.Profile.Name), Choice: &choice, Codec: choice.Profile.Encoding,
		Configured: rep.Configured, ConfigureError: rep.ConfigureError}, rep, nil
}

// rehostURI puts the camera's configured address in a URI the camera
// gave (a camera behind NAT reports its inner address), keeping its port,
// path and query, and drops any credentials in it.
func rehostURI(uri, host string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("onvif: stream URI %q is not a URL", uri)
	}
	switch u.Scheme {
	case "rtsp", "rtsps":
	default:
		return "", fmt.Errorf("onvif: stream URI scheme %q is not rtsp", u.Scheme)
	}
	u.Host = onvif.Rehost(u.Host, host)
	u.User = nil
	return u.String(), nil
}

func classifyONVIF(err error) error {
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.Is(err, onvif.ErrAuth):
		return fmt.Errorf("%w (%v)", ErrAuth, err)
	case errors.Is(err, onvif.ErrNoONVIF), errors.Is(err, onvif.ErrNoMedia):
		return fmt.Errorf("%v: %w", err, ErrNotFound)
	case errors.As(err, &op), errors.As(err, &dns), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no ONVIF device service: %v: %w", err, ErrUnreachable)
	}
	return fmt.Errorf("%v: %w", err, ErrNotFound)
}

// describeError turns a DESCRIBE outcome into nil (video found) or an
// error wrapping ErrAuth, ErrUnreachable or ErrNotFound.
func describeError(d Description, err error, path string) error {
	var op *net.OpError
	switch {
	case err != nil && (errors.As(err, &op) || errors.Is(err, context.DeadlineExceeded)):
		return fmt.Errorf("rtsp %s: %v: %w", path, err, ErrUnreachable)
	case err != nil:
		return fmt.Errorf("rtsp %s: %v: %w", path, err, ErrNotFound)
	case d.Status == 401 && !d.Authenticated:
		return fmt.Errorf("rtsp %s: the camera asks for a user name and password, and none is configured: %w", path, ErrAuth)
	case d.Status == 401 || (d.Status == 403 && d.Authenticated):
		return fmt.Errorf("rtsp %s: RTSP %d after a %s answer: %w", path, d.Status, "digest or basic", ErrAuth)
	case d.Status == 200 && !d.Video:
		return fmt.Errorf("rtsp %s: no video in the stream: %w", path, ErrNotFound)
	case d.Status != 200:
		return fmt.Errorf("rtsp %s: RTSP %d: %w", path, d.Status, ErrNotFound)
	}
	return nil
}

// Paths tries the known paths with DESCRIBE, at the Finder's pace, and
// returns the first that answers 200 with video. A refused password or an
// unreachable camera stops it at once.
func (f *Finder) Paths(ctx context.Context, t Target, report func(Attempt)) (Found, error) {
	t.defaults()
	lim := f.limiter(t.Host)
	host := net.JoinHostPort(t.Host, strconv.Itoa(t.RTSPPort))
	paths := f.cfg.Paths
	if t.Sub {
		paths = f.cfg.SubPaths
	}
	for _, kp := range paths {
		if err := lim.Wait(ctx); err != nil {
			return Found{}, err
		}
		path, query, _ := cutQuery(kp.Path)
		u := &url.URL{Scheme: "rtsp", Host: host, Path: path, RawQuery: query}
		d, err := f.describeLogin(ctx, u, t)
		if errors.Is(err, loginbudget.ErrSpent) {
			err = fmt.Errorf("rtsp %s: %w", kp.Path, err)
			if report != nil {
				report(Attempt{Path: kp.Path, Vendor: kp.Vendor, Err: err})
			}
			return Found{}, err
		}
		derr := describeError(d, err, kp.Path)
		if report != nil {
			report(Attempt{Path: kp.Path, Vendor: kp.Vendor, Result: d, Err: derr})
		}
		switch {
		case derr == nil:
			return Found{URI: u.String(), Source: "known path " + kp.Path, Codec: d.Codec}, nil
		case errors.Is(derr, ErrAuth), errors.Is(derr, ErrUnreachable):
			return Found{}, derr
		case ctx.Err() != nil:
			return Found{}, ctx.Err()
		}
	}
	return Found{}, fmt.Errorf("none of the %d known paths answered with video on port %d: %w", len(paths), t.RTSPPort, ErrNotFound)
}

func cutQuery(p string) (path, query string, ok bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			return p[:i], p[i+1:], true
		}
	}
	return p, "", false
}
