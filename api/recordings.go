package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cctvd/cctvd/catalog"
)

// Page size bounds for /recordings.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Recording is a catalog row as the API shows it.
type Recording struct {
	ID     int64  `json:"id"`
	Camera string `json:"camera"`
	FeedID string `json:"feedId"`
	// Sub: the segment is of its camera's sub feed (absent otherwise).
	Sub             bool                `json:"sub,omitempty"`
	Name            string              `json:"name"`
	Start           time.Time           `json:"start"`
	End             time.Time           `json:"end"`
	DurationSeconds float64             `json:"durationSeconds"`
	Bytes           int64               `json:"bytes"`
	SHA256          string              `json:"sha256,omitempty"`
	Salvaged        bool                `json:"salvaged"`
	Upload          catalog.UploadState `json:"upload"`
	S3Key           string              `json:"s3Key"`
	// ConflictKey: S3 held different content under this key, which was
	// kept; the segment went up under s3Key beside it.
	ConflictKey string `json:"conflictKey,omitempty"`
	// Verified says how S3's copy was checked against the file.
	Verified    string             `json:"verified,omitempty"`
	ETag        string             `json:"etag,omitempty"`
	Attempts    int                `json:"attempts"`
	LastError   string             `json:"lastError,omitempty"`
	UploadedAt  time.Time          `json:"uploadedAt,omitzero"`
	Local       catalog.LocalState `json:"local"`
	DeletedAt   time.Time          `json:"deletedAt,omitzero"`
	DeleteCause string             `json:"deleteCause,omitempty"`
	// File is the URL of the local file while it exists.
	File string `json:"file,omitempty"`
}

func recording(r catalog.Record) Recording {
	out := Recording{ID: r.ID, Camera: r.Camera, FeedID: r.FeedID, Sub: r.Sub, Name: r.Name(), Start: r.Start, End: r.End,
		DurationSeconds: r.End.Sub(r.Start).Seconds(), Bytes: r.Bytes, SHA256: r.SHA256, Salvaged: r.Salvaged,
		Upload: r.Upload, S3Key: r.Key, ConflictKey: r.ConflictKey, Verified: r.Verified, ETag: r.ETag, Attempts: r.Attempts, LastError: r.LastError, UploadedAt: r.UploadedAt,
		Local: r.Local, DeletedAt: r.DeletedAt, DeleteCause: r.DeleteCause}
	if r.Local == catalog.Present {
		out.File = fmt.Sprintf("/api/v1/recordings/%d/file", r.ID)
	}
	return out
}

// listRecordings: ?camera=&from=&to=&uploaded=&limit=&cursor=, newest first.
func (s *Server) listRecordings(c echo.Context) error {
	f := catalog.Filter{Camera: c.QueryParam("camera"), Limit: DefaultLimit}
	if f.Camera != "" {
		if _, err := s.deps.Supervisor.CameraConfig(f.Camera); err != nil {
			// A camera removed from the config may still have recordings.
			if _, _, lerr := s.deps.Catalog.List(c.Request().Context(), catalog.Filter{Camera: f.Camera, Limit: 1}); lerr != nil {
				return lerr
			}
		}
	}
	var err error
	if f.From, f.To, err = timeRange(c); err != nil {
		return err
	}
	for _, p := range []struct {
		name string
		dst  **bool
	}{{"uploaded", &f.Uploaded}, {"present", &f.Present}} {
		if v := c.QueryParam(p.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return apiError(http.StatusBadRequest, p.name+" must be true or false")
			}
			*p.dst = &b
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return apiError(http.StatusBadRequest, fmt.Sprintf("limit must be a whole number from 1 to %d", MaxLimit))
		}
		f.Limit = n
	}
	if v := c.QueryParam("cursor"); v != "" {
		cur, err := decodeCursor(v)
		if err != nil {
			return apiError(http.StatusBadRequest, "cursor is not one this API gave out")
		}
		f.After = cur
	}
	recs, next, err := s.deps.Catalog.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := make([]Recording, len(recs))
	for i, r := range recs {
		out[i] = recording(r)
	}
	resp := map[string]any{"recordings": out}
	if next != nil {
		resp["next"] = encodeCursor(next)
	}
	return c.JSON(http.StatusOK, resp)
}

// Times outside [minTime, maxTime] are clamped: the catalog counts
// nanoseconds in an int64, which ends in 2262.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// timeRange reads ?from= and ?to= (RFC 3339, each optional; zero when
// absent) and clamps them: from before 1970 or to after 2200 is no bound
// at all, from after 2200 or to before 1970 selects nothing.
func timeRange(c echo.Context) (from, to time.Time, err error) {
	if from, err = parseTime(c, "from"); err != nil {
		return from, to, err
	}
	if to, err = parseTime(c, "to"); err != nil {
		return from, to, err
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return from, to, apiError(http.StatusBadRequest, "from must be before to")
	}
	switch {
	case from.IsZero():
	case from.Before(minTime):
		from = time.Time{}
	case from.After(maxTime):
		from = maxTime
	}
	switch {
	case to.IsZero():
	case to.After(maxTime):
		to = time.Time{}
	case to.Before(minTime):
		to = minTime
	}
	return from, to, nil
}

func parseTime(c echo.Context, name string) (time.Time, error) {
	v := c.QueryParam(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, apiError(http.StatusBadRequest, name+" must be an RFC 3339 time such as 2026-01-06T12:00:00Z")
	}
	return t, nil
}

func encodeCursor(c *catalog.Cursor) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%d", c.StartNS, c.ID))
}

func decodeCursor(s string) (*catalog.Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	a, bID, ok := strings.Cut(string(b), ".")
	if !ok {
		return nil, errors.New("bad cursor")
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(bID, 10, 64)
	if err1 != nil || err2 != nil {
		return nil, errors.New("bad cursor")
	}
	return &catalog.Cursor{StartNS: start, ID: id}, nil
}

func (s *Server) record(c echo.Context) (catalog.Record, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return catalog.Record{}, apiError(http.StatusBadRequest, "recording id must be a positive whole number")
	}
	r, err := s.deps.Catalog.Get(c.Request().Context(), id)
	if errors.Is(err, catalog.ErrNotFound) {
		return r, apiError(http.StatusNotFound, "no such recording")
	}
	return r, err
}

func (s *Server) getRecording(c echo.Context) error {
	r, err := s.record(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, recording(r))
}

// recordingFile serves the local file with Range support, so a browser or
// VLC can seek; 404 once it is gone (retention, clearAfterUpload).
func (s *Server) recordingFile(c echo.Context) error {
	r, err := s.record(c)
	if err != nil {
		return err
	}
	if r.Local != catalog.Present {
		return apiError(http.StatusNotFound, fmt.Sprintf("the recording is no longer on this box (%s); it is in S3 as %s", r.DeleteCause, r.Key))
	}
	f, err := os.Open(r.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return apiError(http.StatusNotFound, "the recording is no longer on this box")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	w := s.streaming(c) // a big file to a slow client: bounded per write, not in all
	w.Header().Set(echo.HeaderContentType, "video/mp4")
	w.Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("inline; filename=%q", r.Name()))
	http.ServeContent(w, c.Request(), r.Name(), fi.ModTime(), f)
	return nil
}
