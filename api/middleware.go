package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// route is the request's route pattern, never its raw path: logs do not
// carry what a client sent.
func route(c echo.Context) string {
	if p := c.Path(); p != "" {
		return c.Request().Method + " " + p
	}
	return c.Request().Method + " (no route)"
}

// auth requires the bearer token, when there is one, in constant time
// (hashes compared, so not even the token's length shows).
func (s *Server) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token := s.state.Load().token
		if token == "" {
			return next(c)
		}
		want := sha256.Sum256([]byte("Bearer " + token))
		got := sha256.Sum256([]byte(c.Request().Header.Get(echo.HeaderAuthorization)))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return apiError(http.StatusUnauthorized, "missing or wrong bearer token")
		}
		return next(c)
	}
}

// metricsAuth requires the token on /metrics with MetricsAuth.
func (s *Server) metricsAuth(next echo.HandlerFunc) echo.HandlerFunc {
	withAuth := s.auth(next)
	return func(c echo.Context) error {
		if s.state.Load().metricsAuth {
			return withAuth(c)
		}
		return next(c)
	}
}

// hostCheck refuses a Host header that does not name this box: a web page
// whose name was rebound to this address (DNS rebinding) sends its own.
// Allowed: loopback names, IP addresses (a browser sends the address it
// connected to; rebinding needs a name), the listen host, AllowedHosts.
func (s *Server) hostCheck(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !s.hostAllowed(c.Request().Host) {
			return apiError(http.StatusForbidden, "the Host header does not name this server: add the name to api.allowedHosts")
		}
		return next(c)
	}
}

func (s *Server) hostAllowed(hostport string) bool {
	if hostport == "" { // HTTP/1.0 without Host: not a browser
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = normalHost(host)
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || (host != "" && host == s.listen) {
		return true
	}
	return s.state.Load().hosts[host]
}

func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
}

// bodyLimit refuses a request body over MaxBodyBytes (no route reads
// more than a little JSON).
func (s *Server) bodyLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > int64(s.cfg.MaxBodyBytes) {
			return apiError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is over %d bytes", s.cfg.MaxBodyBytes))
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, int64(s.cfg.MaxBodyBytes))
		return next(c)
	}
}

// sameOrigin guards state-changing routes against requests a web page
// elsewhere makes a browser send (CSRF): refused when the browser says it
// is cross-origin, and, without a token, unless the request is one a page
// cannot send without the server's consent (Content-Type:
// application/json, or an X-Requested-With header).
func (s *Server) sameOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.cop.Check(c.Request()); err != nil {
			return apiError(http.StatusForbidden, "cross-origin request refused")
		}
		if s.state.Load().token == "" && !nonSimple(c.Request()) {
			return apiError(http.StatusForbidden,
				"a state-changing request needs the bearer token, or the header Content-Type: application/json (a web page elsewhere cannot send it)")
		}
		return next(c)
	}
}

// nonSimple reports whether a browser would have asked the server's leave
// (a CORS preflight, which this server never grants) before sending r.
func nonSimple(r *http.Request) bool {
	if r.Header.Get("X-Requested-With") != "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	return err == nil && mt == echo.MIMEApplicationJSON
}

func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				id := newID()
				s.log.Error().Str("id", id).Str("panic", fmt.Sprint(r)).Str("stack", string(debug.Stack())).
					Str("route", route(c)).Msg("API handler panicked")
				err = &internalError{id: id}
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
		s.log.Debug().Str("route", route(c)).Int("status", c.Response().Status).Dur("took", s.deps.Now().Sub(start)).Msg("request")
		return nil
	}
}

// streaming prepares a long response (a log follower, a file): the
// server's WriteTimeout would cut it whole, so each write gets it anew
// instead (http.ResponseController), and only a client that stops reading
// is cut.
func (s *Server) streaming(c echo.Context) *deadlineWriter {
	return &deadlineWriter{ResponseWriter: c.Response(), rc: http.NewResponseController(c.Response()), d: s.cfg.WriteTimeout}
}

// deadlineWriter gives every write WriteTimeout to complete.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

func (w *deadlineWriter) Flush() { _ = w.rc.Flush() }
