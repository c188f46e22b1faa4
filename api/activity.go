package api

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/catalog"
)

// Interval is a stretch of activity as the API shows it.
type Interval struct {
	Camera string    `json:"camera"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Peak is the time of its strongest frame; Level that frame's changed
	// share of the picture (0-1).
	Peak  time.Time `json:"peak"`
	Level float64   `json:"level"`
}

// maxIntervals bounds one answer; beyond it, "truncated" says so (ask a
// shorter range).
const maxIntervals = 10000

func (s *Server) activityRoutes(v1 *echo.Group) {
	if s.deps.Activity == nil {
		return
	}
	v1.GET("/cameras/:name/activity", s.cameraActivity)
	v1.GET("/activity", s.allActivity)
}

func (s *Server) cameraActivity(c echo.Context) error {
	name := c.Param("name")
	if _, err := s.deps.Supervisor.Status(name); err != nil {
		return err
	}
	return s.activity(c, []string{name})
}

func (s *Server) allActivity(c echo.Context) error {
	var names []string
	for _, st := range s.deps.Supervisor.Statuses() {
		names = append(names, st.Camera)
	}
	return s.activity(c, names)
}

// activity answers the intervals of cameras overlapping [from, to), by
// start (RFC 3339); without from, since the beginning, without to, up to
// now.
func (s *Server) activity(c echo.Context, cameras []string) error {
	from, to, err := timeRange(c)
	if err != nil {
		return err
	}
	if from.IsZero() {
		from = minTime
	}
	if to.IsZero() {
		to = maxTime
	}
	out := []Interval{}
	for _, cam := range cameras {
		ivs, err := s.deps.Activity(c.Request().Context(), cam, from, to)
		if err != nil {
			return err
		}
		for _, iv := range ivs {
			out = append(out, interval(iv))
		}
	}
	slices.SortStableFunc(out, func(a, b Interval) int { return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Camera, b.Camera)) })
	truncated := len(out) > maxIntervals
	if truncated {
		out = out[:maxIntervals]
	}
	return c.JSON(http.StatusOK, map[string]any{"intervals": out, "truncated": truncated})
}

func interval(iv catalog.ActivityInterval) Interval {
	return Interval{Camera: iv.Camera, Start: iv.Start, End: iv.End, Peak: iv.Peak, Level: iv.Level}
}
