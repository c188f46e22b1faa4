// Package api is cctvd's REST API on echo v4: cameras with their live
// state, start and stop, log tails (and Server-Sent Events to follow them),
// recordings from the catalog with their files, the daemon's status,
// health, readiness and Prometheus metrics.
//
// Every /api/ route needs "Authorization: Bearer <token>" when a token is
// configured; /healthz, /readyz and /metrics stay open. Every error is JSON,
// {"error": "..."}, with secrets masked. No request names a path on disk:
// recordings are addressed by catalog id. docs/openapi.yaml describes every
// route.
package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

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

// Config is the API's configuration.
type Config struct {
	// Listen is the address, host:port.
	Listen string
	// Token, if set, is required on /api/ routes.
	Token string
	// StopTimeout bounds how long a stop request waits for ffmpeg.
	StopTimeout time.Duration
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
	// Ready reports why the daemon is not ready, nil when it is.
	Ready func() error
	// Gaps, if set, lists a camera's gaps overlapping [from, to).
	Gaps func(ctx context.Context, camera string, from, to time.Time) ([]catalog.Gap, error)
	// Reload, if set, re-reads the config and applies it.
	Reload func(ctx context.Context) (ReloadResult, error)
	// Volume and CatalogState, if set, say whether savePath is the
	// expected disk and whether the catalog is usable, for /api/v1/status.
	Volume       func() volume.Status
	CatalogState func() CatalogStatus
	Now          func() time.Time
}

// Server is the API server, one more component with Run.
type Server struct {
	cfg   Config
	deps  Deps
	log   zerolog.Logger
	e     *echo.Echo
	token atomic.Pointer[string] // a reload may change it
}

// New builds the server and its routes.
func New(cfg Config, deps Deps) *Server {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 20 * time.Second
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Log.With().Str("component", "api").Logger()}
	s.SetToken(cfg.Token)
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.recover, s.accessLog)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if deps.Registry != nil {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(deps.Registry, promhttp.HandlerOpts{})))
	}

	v1 := e.Group("/api/v1", s.auth)
	v1.GET("/cameras", s.listCameras)
	v1.GET("/cameras/:name", s.getCamera)
	v1.POST("/cameras/:name/start", s.startCamera)
	v1.POST("/cameras/:name/stop", s.stopCamera)
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
		v1.POST("/reload", s.reload)
	}
	s.e = e
	return s
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

// Run listens, serves until ctx ends, then shuts down gracefully: open
// requests get a few seconds, log followers are ended.
func (s *Server) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", s.cfg.Listen, err)
	}
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	s.e.Listener = l
	s.e.Server.BaseContext = func(net.Listener) context.Context { return serveCtx }
	s.e.Server.ReadHeaderTimeout = 10 * time.Second
	s.log.Info().Str("address", l.Addr().String()).Bool("token", *s.token.Load() != "").Msg("API listening")
	done := make(chan error, 1)
	go func() { done <- s.e.Start("") }()
	select {
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	stopServing() // ends log followers, which would hold Shutdown up
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.e.Shutdown(sctx); err != nil {
		s.log.Warn().Err(err).Msg("API shutdown cut requests short")
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

// apiError is an error with its HTTP status.
func apiError(code int, format string, args ...any) *echo.HTTPError {
	return echo.NewHTTPError(code, fmt.Sprintf(format, args...))
}

// errorHandler answers every error as JSON {"error": "..."}, secrets masked.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he):
		code = he.Code
		msg = fmt.Sprint(he.Message)
	case errors.Is(err, supervisor.ErrUnknownCamera):
		code, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, catalog.ErrNotFound):
		code, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, catalog.ErrUnavailable):
		// Recording goes on; the catalog is being opened or rebuilt.
		c.Response().Header().Set("Retry-After", "10")
		code, msg = http.StatusServiceUnavailable, catalog.ErrUnavailable.Error()
	default:
		s.log.Error().Err(err).Str("path", c.Request().URL.Path).Msg("API request failed")
		msg = err.Error()
	}
	if code == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="cctvd"`)
	}
	msg = s.deps.Redactor.String(msg)
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.JSON(code, map[string]string{"error": msg})
}

// SetToken changes the bearer token ("" for none), after a reload.
func (s *Server) SetToken(token string) { s.token.Store(&token) }

// auth requires the bearer token, compared in constant time.
func (s *Server) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token := *s.token.Load()
		if token == "" {
			return next(c)
		}
		want := []byte("Bearer " + token)
		got := []byte(c.Request().Header.Get(echo.HeaderAuthorization))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return apiError(http.StatusUnauthorized, "missing or wrong bearer token")
		}
		return next(c)
	}
}

func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error().Str("panic", fmt.Sprint(r)).Str("path", c.Request().URL.Path).Msg("API handler panicked")
				err = apiError(http.StatusInternalServerError, "internal error")
			}
		}()
		return next(c)
	}
}

func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := s.deps.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		s.log.Debug().Str("method", c.Request().Method).Str("path", c.Request().URL.Path).
			Int("status", c.Response().Status).Dur("took", s.deps.Now().Sub(start)).Msg("request")
		return nil
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	if s.deps.Ready != nil {
		if err := s.deps.Ready(); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": s.deps.Redactor.Error(err)})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
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
		return apiError(http.StatusUnprocessableEntity, "%v", err)
	}
	if err != nil {
		return err
	}
	res.Status = "reloaded"
	return c.JSON(http.StatusOK, res)
}
