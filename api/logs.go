package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/internal/logring"
)

// Tail bounds.
const (
	DefaultTail = 100
	MaxTail     = 1000
)

// LogLine is one kept log line: the daemon's JSON log entry (ffmpeg's lines
// are entries with "source":"ffmpeg"), secrets already masked.
type LogLine struct {
	Seq   uint64          `json:"seq"`
	Entry json.RawMessage `json:"entry,omitempty"`
	// Text holds a line that is not valid JSON (cut for length).
	Text string `json:"text,omitempty"`
}

func logLine(l logring.Line) LogLine {
	if json.Valid([]byte(l.Text)) {
		return LogLine{Seq: l.Seq, Entry: json.RawMessage(l.Text)}
	}
	return LogLine{Seq: l.Seq, Text: l.Text}
}

func (s *Server) cameraLogs(c echo.Context) error {
	name := c.Param("name")
	if _, err := s.deps.Supervisor.Status(name); err != nil {
		return err
	}
	return s.serveLogs(c, s.deps.Logs.Camera(name))
}

func (s *Server) daemonLogs(c echo.Context) error {
	return s.serveLogs(c, s.deps.Logs.Daemon())
}

// serveLogs answers ?tail=N with the last N lines, and with ?follow=true
// streams them and every new line as Server-Sent Events until the client
// leaves or the daemon stops.
func (s *Server) serveLogs(c echo.Context, ring *logring.Ring) error {
	tail := DefaultTail
	if v := c.QueryParam("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxTail {
			return apiError(http.StatusBadRequest, fmt.Sprintf("tail must be a whole number from 0 to %d", MaxTail))
		}
		tail = n
	}
	follow, err := parseBool(c.QueryParam("follow"))
	if err != nil {
		return apiError(http.StatusBadRequest, "follow must be true or false")
	}
	lines := ring.Tail(tail)
	if !follow {
		out := make([]LogLine, len(lines))
		for i, l := range lines {
			out[i] = logLine(l)
		}
		return c.JSON(http.StatusOK, map[string]any{"lines": out})
	}
	if n := s.followers.Add(1); n > int64(s.cfg.MaxFollowers) {
		s.followers.Add(-1)
		c.Response().Header().Set("Retry-After", "10")
		return apiError(http.StatusTooManyRequests, fmt.Sprintf("too many log followers: at most %d at once", s.cfg.MaxFollowers))
	}
	defer s.followers.Add(-1)

	w := s.streaming(c)
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var last uint64
	if len(lines) > 0 {
		last = lines[0].Seq - 1
	} else if t := ring.Tail(1); len(t) > 0 {
		last = t[0].Seq
	}
	ctx := c.Request().Context()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		lines, changed := ring.Since(last)
		for _, l := range lines {
			if _, err := fmt.Fprintf(w, "id: %d\nevent: log\ndata: %s\n\n", l.Seq, l.Text); err != nil {
				return nil // the client left
			}
			last = l.Seq
		}
		w.Flush()
		select {
		case <-changed:
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func parseBool(v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	return strconv.ParseBool(v)
}
