package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/activity"
	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/keeper"
	"github.com/cctvd/cctvd/live"
	"github.com/cctvd/cctvd/rebuild"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/uploader"
	"github.com/cctvd/cctvd/volume"
)

// Status is the daemon's state as a whole.
type Status struct {
	Uploader uploader.Status  `json:"uploader"`
	Backlog  Backlog          `json:"backlog"` // zero while the catalog is not available
	Storage  retention.Status `json:"storage"`
	Cameras  map[string]int   `json:"cameras"` // count by state
	// Volume says whether savePath is cctvd's recordings disk: recording
	// waits while it is not.
	Volume *volume.Status `json:"volume,omitempty"`
	// Catalog says whether the catalog is usable: uploads and retention
	// wait while it is not.
	Catalog *CatalogStatus `json:"catalog,omitempty"`
	// Live is live view's use: viewers now, cameras being read, viewers
	// since start, and the times one fell behind and was moved to a newer
	// keyframe.
	Live *live.Stats `json:"live,omitempty"`
	// UploadLimit is the upload cap in force (GET /api/v1/uploader/limit).
	UploadLimit *uploader.LimitStatus `json:"uploadLimit,omitempty"`
	// Activity says what the activity analysis did since start (frames
	// analysed, dropped when it was behind, segments it finished late).
	Activity *activity.Status `json:"activity,omitempty"`
}

// CatalogStatus is the catalog's state and the progress of its rebuild
// from S3, if one runs.
type CatalogStatus struct {
	keeper.Status
	RebuildFromS3 *rebuild.Status `json:"rebuildFromS3,omitempty"`
	// GapLogWaiting and GapLogDropped: gap-log reports waiting for the
	// catalog, and those dropped because too many waited.
	GapLogWaiting int   `json:"gapLogWaiting"`
	GapLogDropped int64 `json:"gapLogDropped"`
}

// Backlog is what waits for upload.
type Backlog struct {
	Segments int64 `json:"segments"`
	Bytes    int64 `json:"bytes"`
	// OldestAgeSeconds is the age of the oldest segment waiting, 0 if none.
	OldestAgeSeconds float64   `json:"oldestAgeSeconds"`
	Oldest           time.Time `json:"oldest,omitzero"`
	// DecodeWaiting counts the segments among them that wait for their
	// decode check (or are being checked) before they may go up: files
	// cctvd did not see close (rebuilt from the disk, salvaged).
	DecodeWaiting int64 `json:"decodeWaiting"`
	// FootageSeconds is the footage they hold.
	FootageSeconds float64 `json:"footageSeconds"`
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
	if err != nil && !errors.Is(err, catalog.ErrUnavailable) {
		return err
	}
	st.Backlog = Backlog{Segments: b.Count, Bytes: b.Bytes, Oldest: b.Oldest, DecodeWaiting: b.Decoding, FootageSeconds: b.Seconds}
	if !b.Oldest.IsZero() {
		st.Backlog.OldestAgeSeconds = s.deps.Now().Sub(b.Oldest).Seconds()
	}
	if s.deps.Volume != nil {
		v := s.deps.Volume()
		st.Volume = &v
	}
	if s.deps.UploadLimit != nil {
		l := s.deps.UploadLimit.Status()
		st.UploadLimit = &l
	}
	if s.deps.Live != nil {
		ls := s.deps.Live.Stats()
		st.Live = &ls
	}
	if s.deps.CatalogState != nil {
		cs := s.deps.CatalogState()
		cs.LastError = s.deps.Redactor.String(cs.LastError)
		if cs.RebuildFromS3 != nil {
			reb := *cs.RebuildFromS3
			reb.LastError = s.deps.Redactor.String(reb.LastError)
			cs.RebuildFromS3 = &reb
		}
		st.Catalog = &cs
	}
	if s.deps.ActivityStatus != nil {
		a := s.deps.ActivityStatus()
		st.Activity = &a
	}
	st.Cameras = map[string]int{}
	for _, cs := range s.deps.Supervisor.Statuses() {
		st.Cameras[string(cs.State)]++
	}
	return c.JSON(http.StatusOK, st)
}
