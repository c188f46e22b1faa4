package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/catalog"
)

// Gap is a gap as the API shows it.
type Gap struct {
	Camera string    `json:"camera"`
	Start  time.Time `json:"start"`
	// End is absent while the gap is open.
	End     time.Time `json:"end,omitzero"`
	Seconds float64   `json:"seconds"`
	Cause   string    `json:"cause"`
	Detail  string    `json:"detail,omitempty"`
}

func (s *Server) cameraGaps(c echo.Context) error {
	name := c.Param("name")
	if _, err := s.deps.Supervisor.Status(name); err != nil {
		return err
	}
	from, to, err := timeRange(c)
	if err != nil {
		return err
	}
	gaps, err := s.deps.Gaps(c.Request().Context(), name, from, to)
	if err != nil {
		return err
	}
	now := s.deps.Now()
	out := make([]Gap, len(gaps))
	var total float64
	for i, g := range gaps {
		out[i] = gap(g, now)
		total += out[i].Seconds
	}
	return c.JSON(http.StatusOK, map[string]any{"gaps": out, "totalSeconds": total})
}

func gap(g catalog.Gap, now time.Time) Gap {
	end := g.End
	if end.IsZero() {
		end = now
	}
	return Gap{Camera: g.Camera, Start: g.Start, End: g.End, Seconds: end.Sub(g.Start).Seconds(), Cause: g.Cause, Detail: g.Detail}
}
