package api

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/live"
)

// LiveView is what the API needs of live view.
type LiveView interface {
	// Join adds a viewer of the camera; *live.LimitError beyond a limit.
	Join(camera string) (*live.Viewer, error)
	// Admits says whether a viewer of camera would be let in now:
	// *live.LimitError when not.
	Admits(camera string) error
	// Stats says how live view is used.
	Stats() live.Stats
}

// LiveWriteTimeout: a live viewer whose connection takes no frame for this
// long is disconnected (its queue meanwhile drops to the next keyframe).
const LiveWriteTimeout = 10 * time.Second

// liveSendBuffer bounds the kernel's send buffer of a live connection, so
// a viewer that stops reading holds at most this much there too.
const liveSendBuffer = 512 << 10

// liveState is the API's live view: the tickets, and the WebSocket
// handlers running (a hijacked connection is not waited for by the HTTP
// server's Shutdown: Run waits for them).
type liveState struct {
	tickets  *tickets
	mu       sync.Mutex
	stopping bool
	wg       sync.WaitGroup
}

func (s *Server) liveRoutes(e *echo.Echo, v1 *echo.Group) {
	if s.deps.Live == nil {
		return
	}
	s.live.tickets = newTickets(TicketTTL, maxTickets, s.deps.Now)
	v1.POST("/cameras/:name/live/ticket", s.liveTicket, s.sameOrigin)
	// Outside the group: the ticket stands for the token on this route.
	e.GET("/api/v1/cameras/:name/live", s.liveView, s.liveAuth)
}

// liveAuth lets a live upgrade in with a ticket (?ticket=, from POST
// .../live/ticket) or with the bearer token, as every other route.
func (s *Server) liveAuth(next echo.HandlerFunc) echo.HandlerFunc {
	withToken := s.auth(next)
	return func(c echo.Context) error {
		t := c.QueryParam("ticket")
		if t == "" {
			return withToken(c)
		}
		if !s.live.tickets.redeem(t, c.Param("name"), s.state.Load()) {
			return apiError(http.StatusUnauthorized, "the live ticket is unknown, used or expired: ask for a new one (POST .../live/ticket)")
		}
		return next(c)
	}
}

// liveTicket issues a ticket for one upgrade of the camera's live view,
// once the camera is known and a viewer would be let in.
func (s *Server) liveTicket(c echo.Context) error {
	name := c.Param("name")
	if _, err := s.deps.Supervisor.Status(name); err != nil {
		return err
	}
	src, err := s.feedSource(c, name)
	if err != nil {
		return err
	}
	if err := s.liveAdmits(c, src); err != nil {
		return err
	}
	t, exp, err := s.live.tickets.issue(name, s.state.Load())
	if errors.Is(err, errTooManyTickets) {
		c.Response().Header().Set("Retry-After", "5")
		return apiError(http.StatusTooManyRequests, err.Error())
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, map[string]any{"ticket": t, "expiresAt": exp.UTC()})
}

// liveAdmits answers a viewer beyond the limits with 429, the limit
// named, or 503 when live view is not running.
func (s *Server) liveAdmits(c echo.Context, name string) error {
	return liveRefusal(c, s.deps.Live.Admits(name))
}

func liveRefusal(c echo.Context, err error) error {
	var le *live.LimitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le):
		c.Response().Header().Set("Retry-After", "10")
		return apiError(http.StatusTooManyRequests, le.Error()+" (api.liveMaxViewers, api.liveMaxViewersPerCamera)")
	case errors.Is(err, live.ErrNotRunning):
		c.Response().Header().Set("Retry-After", "5")
		return apiError(http.StatusServiceUnavailable, "live view is not running: is cctvd starting or stopping?")
	}
	return err
}

// liveView is the camera's live view as a WebSocket (live's wire.go has
// the messages): the init segment, then the fragments ffmpeg writes, from
// the newest keyframe. Everything that can be refused is refused before
// the upgrade, as JSON with its status: a request that is no WebSocket
// (426), a cross-origin page (403), an unknown camera (404), a limit (429).
func (s *Server) liveView(c echo.Context) error {
	r := c.Request()
	name := c.Param("name")
	if !isWebSocket(r) {
		c.Response().Header().Set("Upgrade", "websocket")
		return apiError(http.StatusUpgradeRequired, "this route is a WebSocket: connect with Upgrade: websocket")
	}
	if crossOrigin(r) {
		return apiError(http.StatusForbidden, "cross-origin request refused")
	}
	if _, err := s.deps.Supervisor.Status(name); err != nil {
		return err
	}
	src, err := s.feedSource(c, name)
	if err != nil {
		return err
	}
	if !s.liveStart() {
		return liveRefusal(c, live.ErrNotRunning)
	}
	defer s.live.wg.Done()
	v, err := s.deps.Live.Join(src)
	if err != nil {
		return liveRefusal(c, err)
	}
	defer v.Close()
	conn, err := websocket.Accept(hijackFresh{c.Response()}, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		s.log.Debug().Err(err).Msg("live: the WebSocket upgrade failed")
		return nil // Accept answered
	}
	defer conn.CloseNow()
	// The viewer sends nothing but control frames; CloseRead reads them
	// (pings, the close) and ends ctx when the viewer leaves.
	ctx := conn.CloseRead(r.Context())
	for {
		f, err := v.Next(ctx)
		if err != nil {
			if errors.Is(err, live.ErrClosed) || ctx.Err() != nil && r.Context().Err() != nil {
				_ = conn.Close(websocket.StatusGoingAway, "live view is stopping")
			}
			return nil
		}
		typ := websocket.MessageBinary
		if f.Text {
			typ = websocket.MessageText
		}
		wctx, cancel := context.WithTimeout(ctx, LiveWriteTimeout)
		err = conn.Write(wctx, typ, f.Data)
		cancel()
		if err != nil {
			s.log.Debug().Err(err).Str("camera", name).Msg("live: a viewer left or stopped reading")
			return nil
		}
	}
}

// liveStart counts a live handler in, unless the API is stopping.
func (s *Server) liveStart() bool {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	if s.live.stopping {
		return false
	}
	s.live.wg.Add(1)
	return true
}

// liveStop waits for the live handlers, whose contexts the server's end
// has cancelled.
func (s *Server) liveStop() {
	s.live.mu.Lock()
	s.live.stopping = true
	s.live.mu.Unlock()
	s.live.wg.Wait()
}

func isWebSocket(r *http.Request) bool {
	return headerHas(r.Header, "Connection", "upgrade") && headerHas(r.Header, "Upgrade", "websocket")
}

func headerHas(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// crossOrigin says whether a browser says the request comes from a page
// of another origin. A WebSocket is not bound by CORS: without this, any
// page a user opens could watch the cameras of a box without a token.
// Requests without Origin (not a browser) pass.
func crossOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return true
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}

// hijackFresh hands the WebSocket library a connection without the HTTP
// server's read and write deadlines (set for a request, they would cut a
// live view after ReadTimeout), and with a bounded send buffer.
type hijackFresh struct{ http.ResponseWriter }

func (h hijackFresh) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	raw := conn
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok { // TLS
		raw = nc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(liveSendBuffer)
	}
	return conn, brw, nil
}

func (h hijackFresh) Unwrap() http.ResponseWriter { return h.ResponseWriter }
