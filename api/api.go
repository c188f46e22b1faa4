// Package api is cctvd's REST API on echo v4: cameras with their live
// state and stills, start and stop, log tails (and Server-Sent Events to
// follow them), recordings from the catalog with their files, the daemon's
// status, health, readiness and Prometheus metrics; and the page on the
// box (package web) at "/".
//
// Every /api/ route needs "Authorization: Bearer <token>" when a token is
// configured; /healthz and /readyz stay open, and /metrics too unless
// MetricsAuth. Every error is JSON, {"error": "..."}, with secrets masked,
// and never repeats what the request sent; a 500 says only "internal
// error" and an id that the log line with the detail carries. No request
// names a path on disk: recordings are addressed by catalog id.
//
// The doors: the token rule holds for the address actually bound (a
// listener that is not loopback-only never serves without a token, at
// start or after a reload); the Host header must name this box (loopback,
// an IP address, the listen host or AllowedHosts), against DNS rebinding;
// a state-changing request without a token must be one a web page
// elsewhere cannot send (Content-Type: application/json); connections,
// log followers, headers, bodies and every phase of a request are bounded;
// TLS is optional, its certificate read again on reload.
// docs/openapi.yaml describes every route.
package api

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"golang.org/x/net/netutil"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/logring"
	"github.com/cctvd/cctvd/internal/redact"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/supervisor"
	"github.com/cctvd/cctvd/uploader"
	"github.com/cctvd/cctvd/volume"
)

// Supervisor is what the API needs of the camera supervisor.
type Supervisor interface {
	Statuses() []supervisor.Status
	Status(name string) (supervisor.Status, error)
	CameraConfig(name string) (config.Camera, error)
	Start(name string) error
	Retry(name string) error
	Stop(ctx context.Context, name string) error
	WaitFor(ctx context.Context, name string, cond func(supervisor.Status) bool) error
}

// Catalog is what the API needs of the catalog.
type Catalog interface {
	List(ctx context.Context, f catalog.Filter) ([]catalog.Record, *catalog.Cursor, error)
	Get(ctx context.Context, id int64) (catalog.Record, error)
	Latest(ctx context.Context, camera string) (catalog.Record, error)
	Backlog(ctx context.Context) (catalog.Backlog, error)
}

// Settings are the API settings a reload may change.
type Settings struct {
	// Token, if set, is required on /api/ routes (and /metrics with
	// MetricsAuth).
	Token string
	// AllowedHosts are more host names the Host header may name.
	AllowedHosts []string
	// TLSCert and TLSKey are PEM files; both or neither.
	TLSCert, TLSKey string
	// MetricsAuth requires the token on /metrics.
	MetricsAuth bool
}

// Config is the API's configuration.
type Config struct {
	// Listen is the address, host:port. It changes only at a restart.
	Listen string
	Settings
	// StopTimeout bounds how long a stop request waits for ffmpeg.
	StopTimeout time.Duration
	// MaxExportRange bounds a spans or export request's range. Default
	// config.DefaultMaxExportRange.
	MaxExportRange time.Duration
	Limits
}

// Limits bound what clients can hold; zero means the default.
type Limits struct {
	// MaxConnections is the most connections served at once; more wait
	// in the kernel's accept queue. Default 128.
	MaxConnections int
	// MaxFollowers is the most log followers (?follow=true) at once;
	// beyond it, 429. Default 8.
	MaxFollowers int
	// ReadHeaderTimeout, ReadTimeout: to read a request's headers, and
	// all of it. Defaults 10s, 30s.
	ReadHeaderTimeout, ReadTimeout time.Duration
	// WriteTimeout: to write a response; a stream (log follower, file)
	// gets it again for every write, so a slow reader is cut after this
	// long without progress. Default 60s.
	WriteTimeout time.Duration
	// IdleTimeout: a kept-alive connection closes after this long without
	// a request. Default 30s.
	IdleTimeout time.Duration
	// MaxHeaderBytes and MaxBodyBytes bound a request. Defaults 16 KiB,
	// 64 KiB.
	MaxHeaderBytes, MaxBodyBytes int
}

// DefaultLimits are the limits used where Limits leaves a zero.
var DefaultLimits = Limits{
	MaxConnections: 128, MaxFollowers: 8,
	ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 30 * time.Second,
	MaxHeaderBytes: 16 << 10, MaxBodyBytes: 64 << 10,
}

func (l Limits) orDefaults() Limits {
	d := DefaultLimits
	pick := func(v, def int) int {
		if v > 0 {
			return v
		}
		return def
	}
	pickD := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	return Limits{
		MaxConnections: pick(l.MaxConnections, d.MaxConnections), MaxFollowers: pick(l.MaxFollowers, d.MaxFollowers),
		ReadHeaderTimeout: pickD(l.ReadHeaderTimeout, d.ReadHeaderTimeout), ReadTimeout: pickD(l.ReadTimeout, d.ReadTimeout),
		WriteTimeout: pickD(l.WriteTimeout, d.WriteTimeout), IdleTimeout: pickD(l.IdleTimeout, d.IdleTimeout),
		MaxHeaderBytes: pick(l.MaxHeaderBytes, d.MaxHeaderBytes), MaxBodyBytes: pick(l.MaxBodyBytes, d.MaxBodyBytes),
	}
}

// Deps are the API's collaborators.
type Deps struct {
	Log        zerolog.Logger
	Supervisor Supervisor
	Catalog    Catalog
	Logs       *logring.Hub
	Uploader   func() uploader.Status
	Retention  func() retention.Status
	Registry   *prometheus.Registry
	Redactor   *redact.Redactor
	// Ready reports why the daemon is not ready, nil when it is; a
	// *NotReadyError's Reason is shown, anything else only logged.
	Ready func() error
	// Gaps, if set, lists a camera's gaps overlapping [from, to).
	Gaps func(ctx context.Context, camera string, from, to time.Time) ([]catalog.Gap, error)
	// Reload, if set, re-reads the config and applies it.
	Reload func(ctx context.Context) (ReloadResult, error)
	// Export, if set, serves spans and exports.
	Export Exporter
	// Snapshots, if set, serves the cameras' stills.
	Snapshots Snapshots
	// Live, if set, serves the cameras' live view (a WebSocket).
	Live LiveView
	// Alerts lists the alerts and sends a test event (503 when nil).
	Alerts Alerts
	// UploadLimit, if set, shows and changes the upload cap.
	UploadLimit UploadLimit
	// Volume and CatalogState, if set, say whether savePath is the
	// expected disk and whether the catalog is usable, for /api/v1/status.
	Volume       func() volume.Status
	CatalogState func() CatalogStatus
	// Activity, if set, lists a camera's activity intervals overlapping
	// [from, to), the first limit of them (all with 0); ActivityStatus
	// says what the analysis did.
	Activity       func(ctx context.Context, camera string, from, to time.Time, limit int) ([]catalog.ActivityInterval, error)
	ActivityStatus func() activity.Status
	Now            func() time.Time
	// UploadWake, if set, wakes the uploader after an upload request.
	UploadWake func()
}

// NotReadyError says why the daemon is not ready: Reason, a fixed text, is
// shown to clients; Err, which may name paths, is only logged.
type NotReadyError struct {
	Reason string
	Err    error
}

func (e *NotReadyError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *NotReadyError) Unwrap() error { return e.Err }

// Server is the API server, one more component with Run.
type Server struct {
	cfg    Config
	deps   Deps
	log    zerolog.Logger
	e      *echo.Echo
	state  atomic.Pointer[state]
	bound  atomic.Pointer[net.TCPAddr] // the address listened on, once Run has bound it
	listen string                      // the listen host, lower case
	cop    *http.CrossOriginProtection

	followers atomic.Int64
	live      liveState
	notReady  atomic.Pointer[string] // the last readiness problem logged
	listening chan struct{}          // closed once Run has bound its address
}

// state is the settings in force: a reload swaps it whole.
type state struct {
	token       string
	hosts       map[string]bool
	metricsAuth bool
	tls         bool
	cert        *tls.Certificate
}

func newState(set Settings) (*state, error) {
	st := &state{token: set.Token, hosts: map[string]bool{}, metricsAuth: set.MetricsAuth, tls: set.TLSCert != ""}
	for _, h := range set.AllowedHosts {
		st.hosts[normalHost(h)] = true
	}
	if st.tls {
		cert, err := tls.LoadX509KeyPair(set.TLSCert, set.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("api.tlsCert, api.tlsKey: %w", err)
		}
		st.cert = &cert
	}
	return st, nil
}

// New builds the server and its routes; it reads the TLS pair if set.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 20 * time.Second
	}
	cfg.Limits = cfg.Limits.orDefaults()
	s := &Server{cfg: cfg, deps: deps, log: deps.Log.With().Str("component", "api").Logger(), cop: http.NewCrossOriginProtection(),
		listening: make(chan struct{})}
	if host, _, err := net.SplitHostPort(cfg.Listen); err == nil {
		s.listen = normalHost(host)
	}
	st, err := newState(cfg.Settings)
	if err != nil {
		return nil, err
	}
	s.state.Store(st)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.recover, s.accessLog, s.hostCheck, s.bodyLimit)

	s.pageRoutes(e)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if deps.Registry != nil {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(deps.Registry, promhttp.HandlerOpts{})), s.metricsAuth)
	}

	v1 := e.Group("/api/v1", s.auth)
	v1.GET("/cameras", s.listCameras)
	v1.GET("/cameras/:name", s.getCamera)
	v1.POST("/cameras/:name/start", s.startCamera, s.sameOrigin)
	v1.POST("/cameras/:name/stop", s.stopCamera, s.sameOrigin)
	v1.POST("/cameras/:name/retry", s.retryCamera, s.sameOrigin)
	v1.GET("/cameras/:name/logs", s.cameraLogs)
	if deps.Gaps != nil {
		v1.GET("/cameras/:name/gaps", s.cameraGaps)
	}
	v1.GET("/logs", s.daemonLogs)
	v1.GET("/recordings", s.listRecordings)
	v1.GET("/recordings/:id", s.getRecording)
	v1.GET("/recordings/:id/file", s.recordingFile)
	v1.GET("/status", s.status)
	if deps.Reload != nil {
		v1.POST("/reload", s.reload, s.sameOrigin)
	}
	if deps.Snapshots != nil {
		v1.GET("/cameras/:name/snapshot.jpg", s.cameraSnapshot)
	}
	s.exportRoutes(v1)
	s.liveRoutes(e, v1)
	s.alertRoutes(v1)
	s.uploaderRoutes(v1)
	s.feedRoutes(v1)
	s.activityRoutes(v1)
	s.e = e
	return s, nil
}

// Handler is the API as an http.Handler, for tests.
func (s *Server) Handler() http.Handler { return s.e }

// Routes lists every registered route as "METHOD /path/{param}".
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.e.Routes() {
		if strings.HasPrefix(r.Name, "github.com/labstack/echo") { // echo's own not-found routes
			continue
		}
		parts := strings.Split(r.Path, "/")
		for i, p := range parts {
			if strings.HasPrefix(p, ":") {
				parts[i] = "{" + p[1:] + "}"
			}
		}
		out = append(out, r.Method+" "+strings.Join(parts, "/"))
	}
	return out
}

// ErrTokenRequired: the API would serve a listener that is not
// loopback-only without a token.
var ErrTokenRequired = errors.New("api.token: is required")

// Run listens, serves until ctx ends, then shuts down gracefully: open
// requests get a few seconds, log followers are ended. It refuses to serve
// without a token on an address that is not loopback-only, whatever the
// config said (localhost may resolve elsewhere).
func (s *Server) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", s.cfg.Listen, err)
	}
	addr, _ := l.Addr().(*net.TCPAddr)
	s.bound.Store(addr)
	close(s.listening)
	st := s.state.Load()
	if st.token == "" && !s.loopbackOnly() {
		l.Close()
		return fmt.Errorf("%w: the API is bound to %s, which is not a loopback address", ErrTokenRequired, l.Addr())
	}
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	lim := s.cfg.Limits
	srv := &http.Server{
		Handler:           s.e,
		BaseContext:       func(net.Listener) context.Context { return serveCtx },
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		// net/http's own complaints (a failed TLS handshake, an accept
		// error) go to the daemon's log at debug level, not to stderr.
		ErrorLog: stdlog.New(debugWriter{s.log}, "", 0),
	}
	var ln net.Listener = netutil.LimitListener(l, lim.MaxConnections)
	if st.tls {
		ln = tls.NewListener(ln, &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.state.Load().cert, nil // the pair read at start or at the last reload
			},
		})
	}
	s.log.Info().Str("address", l.Addr().String()).Bool("token", st.token != "").Bool("tls", st.tls).Msg("API listening")
	if !s.loopbackOnly() && !st.tls {
		s.log.Warn().Str("address", l.Addr().String()).
			Msg("the API is reachable from the network without TLS: the token and the footage cross it in clear; set api.tlsCert and api.tlsKey")
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	stopServing() // ends log followers, which would hold Shutdown up
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn().Err(err).Msg("API shutdown cut requests short")
		srv.Close()
	}
	s.liveStop() // live views are hijacked connections: Shutdown does not wait for them
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

// debugWriter logs each write as a debug line.
type debugWriter struct{ log zerolog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.Debug().Str("source", "net/http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Listening is closed once Run has bound the API's address.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// Addr is the address the API is bound to, "" before Run has bound it.
func (s *Server) Addr() string {
	if a := s.bound.Load(); a != nil {
		return a.String()
	}
	return ""
}

// loopbackOnly reports whether the API's address accepts only local
// connections: the bound address once bound, else the configured one.
func (s *Server) loopbackOnly() bool {
	if a := s.bound.Load(); a != nil {
		return a.IP.IsLoopback()
	}
	host, _, err := net.SplitHostPort(s.cfg.Listen)
	return err == nil && config.IsLoopback(host)
}

// Prepare checks settings from a reloaded config against the server as it
// runs, and reads the TLS pair again; it returns the function that puts
// them in force, or why they cannot be: a listener that is not
// loopback-only (api.listen changes only at a restart) without a token,
// or TLS turned on or off (a restart too). Nothing changes until commit.
func (s *Server) Prepare(set Settings) (commit func(), err error) {
	if set.Token == "" && !s.loopbackOnly() {
		addr := s.cfg.Listen // as configured, with the port bound
		if host, _, err := net.SplitHostPort(s.cfg.Listen); err == nil && s.bound.Load() != nil {
			addr = net.JoinHostPort(host, strconv.Itoa(s.bound.Load().Port))
		}
		return nil, fmt.Errorf("%w while the API listens on %s, which is not a loopback address "+
			"(a new api.listen takes effect only at a restart): keep the token, or restart cctvd", ErrTokenRequired, addr)
	}
	if cur := s.state.Load(); cur.tls != (set.TLSCert != "") {
		return nil, errors.New("api.tlsCert, api.tlsKey: turning TLS on or off takes a restart of cctvd")
	}
	st, err := newState(set)
	if err != nil {
		return nil, err
	}
	return func() { s.state.Store(st) }, nil
}

// apiError is an error with its HTTP status. Its message is fixed text:
// never what the request sent.
func apiError(code int, msg string) *echo.HTTPError {
	return echo.NewHTTPError(code, msg)
}

// internalError is a 500 whose detail is logged under id.
type internalError struct{ id string }

func (e *internalError) Error() string { return "internal error " + e.id }

func newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// errorHandler answers every error as JSON {"error": "..."}, secrets
// masked; a 500 as {"error": "internal error", "id": "..."}, its detail
// logged with the id.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg, id := http.StatusInternalServerError, "internal error", ""
	var he *echo.HTTPError
	var ie *internalError
	switch {
	case errors.As(err, &ie):
		id = ie.id
	case errors.As(err, &he) && he.Code < 500:
		code = he.Code
		msg = fmt.Sprint(he.Message)
	case errors.Is(err, supervisor.ErrUnknownCamera):
		code, msg = http.StatusNotFound, "no such camera"
	case errors.Is(err, supervisor.ErrStopped):
		code, msg = http.StatusConflict, supervisor.ErrStopped.Error()
	case errors.Is(err, catalog.ErrNotFound):
		code, msg = http.StatusNotFound, "no such recording"
	case errors.Is(err, catalog.ErrUnavailable):
		// Recording goes on; the catalog is being opened or rebuilt.
		c.Response().Header().Set("Retry-After", "10")
		code, msg = http.StatusServiceUnavailable, catalog.ErrUnavailable.Error()
	default:
		id = newID()
		s.log.Error().Err(err).Str("id", id).Str("route", route(c)).Msg("API request failed")
	}
	if code == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="cctvd"`)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	body := map[string]string{"error": s.deps.Redactor.String(msg)}
	if id != "" {
		body["id"] = id
	}
	_ = c.JSON(code, body)
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when ready, else 503 with a reason that names no
// path; the detail is logged once each time it changes.
func (s *Server) readyz(c echo.Context) error {
	var err error
	if s.deps.Ready != nil {
		err = s.deps.Ready()
	}
	if err == nil {
		s.notReady.Store(nil)
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	}
	reason := "not ready"
	var nr *NotReadyError
	if errors.As(err, &nr) {
		reason = nr.Reason
	}
	detail := err.Error()
	if last := s.notReady.Load(); last == nil || *last != detail {
		s.notReady.Store(&detail)
		s.log.Warn().Err(err).Msg("not ready")
	}
	return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": reason})
}

// ReloadResult says what a reload changed.
type ReloadResult struct {
	Status  string   `json:"status"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Changed []string `json:"changed"`
}

// ErrConfigRejected wraps the errors of a config a reload refused.
var ErrConfigRejected = errors.New("config rejected, nothing changed")

func (s *Server) reload(c echo.Context) error {
	res, err := s.deps.Reload(c.Request().Context())
	if errors.Is(err, ErrConfigRejected) {
		return apiError(http.StatusUnprocessableEntity, err.Error()) // the config file's errors, not the request's
	}
	if err != nil {
		return err
	}
	res.Status = "reloaded"
	return c.JSON(http.StatusOK, res)
}
