package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/uploader"
)

// Status is the daemon's state as a whole.
type Status struct {
	Uploader uploader.Status  `json:"uploader"`
	Backlog  Backlog          `json:"backlog"`
	Storage  retention.Status `json:"storage"`
	Cameras  map[string]int   `json:"cameras"` // count by state
}

// Backlog is what waits for upload.
type Backlog struct {
	Segments int64 `json:"segments"`
	Bytes    int64 `json:"bytes"`
	// OldestAgeSeconds is the age of the oldest segment waiting, 0 if none.
	OldestAgeSeconds float64   `json:"oldestAgeSeconds"`
	Oldest           time.Time `json:"oldest,omitzero"`
}

func (s *Server) status(c echo.Context) error {
	var st Status
	if s.deps.Uploader != nil {
		st.Uploader = s.deps.Uploader()
		st.Uploader.LastError = s.deps.Redactor.String(st.Uploader.LastError)
	}
	if s.deps.Retention != nil {
		st.Storage = s.deps.Retention()
		st.Storage.LastError = s.deps.Redactor.String(st.Storage.LastError)
	}
	b, err := s.deps.Catalog.Backlog(c.Request().Context())
	if err != nil {
		return err
	}
	st.Backlog = Backlog{Segments: b.Count, Bytes: b.Bytes, Oldest: b.Oldest}
	if !b.Oldest.IsZero() {
		st.Backlog.OldestAgeSeconds = s.deps.Now().Sub(b.Oldest).Seconds()
	}
	st.Cameras = map[string]int{}
	for _, cs := range s.deps.Supervisor.Statuses() {
		st.Cameras[string(cs.State)]++
	}
	return c.JSON(http.StatusOK, st)
}
