// Package layout owns every path cctvd uses under savePath and in its state
// folder: the names and the functions that build them. Every other package
// asks it, so a new folder or a rename is one change here.
//
//	savePath/
//	  <camera>/<YYYY-MM-DD>/<segment>.mp4   closed segments (package segment names them; the day is the start's, in UTC)
//	  .staging/<camera>/                    what ffmpeg writes, run by run (package staging)
//	  .quarantine/<camera>/                 files that cannot be salvaged or must not be uploaded: kept; deleted only by retention, over the quarantine's bound when space must be freed (package retention)
//	  .cctvd-volume                         savePath's identity marker (package volume)
//	stateDir/ (default savePath/.cctvd)
//	  catalog.db, -wal, -shm                the catalog (package catalog)
//	  catalog.db.<why>-<time>               a catalog moved aside (corrupt, or of a newer cctvd): kept, never deleted
//	  catalog.reserve                       space the catalog gives back on a full disk
//	  lock                                  one cctvd per savePath
//	  cameras.json                          the cameras operators stopped (package internal/desired)
//	  alerts.json                           the alerts' outbox: events and their deliveries (package alerts)
//
// Folders inside savePath whose name starts with "." are cctvd's own; every
// other folder is a camera's.
package layout

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// The names.
const (
	// StagingName is the staging folder's name in savePath.
	StagingName = ".staging"
	// QuarantineName is the quarantine folder's name in savePath.
	QuarantineName = ".quarantine"
	// MarkerName is savePath's identity marker.
	MarkerName = ".cctvd-volume"
	// StateName is the state folder's name in savePath, its default place.
	StateName = ".cctvd"
	// CatalogName is the catalog's file in the state folder.
	CatalogName = "catalog.db"
	// ReserveName is the catalog's reserve file, beside it.
	ReserveName = "catalog.reserve"
	// LockName is the lock file in the state folder.
	LockName = "lock"
	// DesiredName is the file of the cameras operators stopped, in the
	// state folder.
	DesiredName = "cameras.json"
	// AlertsName is the alerts' outbox, in the state folder.
	AlertsName = "alerts.json"
	// DayFormat names the day folders: <camera>/<YYYY-MM-DD>.
	DayFormat = "2006-01-02"
)

// Staging is savePath's staging folder.
func Staging(savePath string) string { return filepath.Join(savePath, StagingName) }

// StagingDir is one camera's staging folder.
func StagingDir(savePath, camera string) string { return filepath.Join(Staging(savePath), camera) }

// SubSuffix marks the staging folder of a camera's sub feed:
// .staging/<camera>~sub. '~' is in no camera name, so the folder is no
// other camera's.
const SubSuffix = "~sub"

// FeedStagingDir is the staging folder of one feed of a camera: the
// camera's own (StagingDir) for its main feed (feed "" or "main"), and
// <camera>~sub for its sub feed ("sub").
func FeedStagingDir(savePath, camera, feed string) string {
	return filepath.Join(Staging(savePath), FeedStagingName(camera, feed))
}

// FeedStagingName is the base name of a feed's staging folder.
func FeedStagingName(camera, feed string) string {
	if feed == "sub" {
		return camera + SubSuffix
	}
	return camera
}

// StagingFeed reads a staging folder's base name: the camera, and "sub"
// for a sub feed's folder ("" for a main feed's).
func StagingFeed(name string) (camera, feed string) {
	if c, ok := strings.CutSuffix(name, SubSuffix); ok {
		return c, "sub"
	}
	return name, ""
}

// Quarantine is savePath's quarantine folder.
func Quarantine(savePath string) string { return filepath.Join(savePath, QuarantineName) }

// QuarantineRel is one camera's quarantine folder relative to savePath,
// slash-separated.
func QuarantineRel(camera string) string { return QuarantineName + "/" + camera }

// QuarantineDir is one camera's quarantine folder.
func QuarantineDir(savePath, camera string) string {
	return filepath.Join(savePath, filepath.FromSlash(QuarantineRel(camera)))
}

// Marker is savePath's identity marker.
func Marker(savePath string) string { return filepath.Join(savePath, MarkerName) }

// DefaultStateDir is the state folder when the config names none.
func DefaultStateDir(savePath string) string { return filepath.Join(savePath, StateName) }

// Catalog is the catalog's file in the state folder.
func Catalog(stateDir string) string { return filepath.Join(stateDir, CatalogName) }

// Reserve is the reserve file beside the catalog at catalogPath.
func Reserve(catalogPath string) string { return filepath.Join(filepath.Dir(catalogPath), ReserveName) }

// Lock is the lock file in the state folder.
func Lock(stateDir string) string { return filepath.Join(stateDir, LockName) }

// Desired is the file of the cameras operators stopped, in the state folder.
func Desired(stateDir string) string { return filepath.Join(stateDir, DesiredName) }

// Alerts is the alerts' outbox in the state folder.
func Alerts(stateDir string) string { return filepath.Join(stateDir, AlertsName) }

// Aside is where the catalog at catalogPath goes when it is moved aside
// for why ("corrupt", "newer") at t: catalog.db.corrupt-20260106T120000.000Z.
func Aside(catalogPath, why string, t time.Time) string {
	return fmt.Sprintf("%s.%s-%s", catalogPath, why, t.UTC().Format("20060102T150405.000Z"))
}

// Day is the day folder's name of a segment starting at start: its UTC day,
// the start rounded to the second as in the segment's name.
func Day(start time.Time) string { return start.UTC().Round(time.Second).Format(DayFormat) }

// DayRel is the folder of a segment relative to savePath, slash-separated:
// <camera>/<YYYY-MM-DD>. It is also the segment's key below s3Path.
func DayRel(camera string, start time.Time) string { return camera + "/" + Day(start) }

// DayDir is the folder of a segment under savePath.
func DayDir(savePath, camera string, start time.Time) string {
	return filepath.Join(savePath, camera, Day(start))
}

// SegmentRel is a segment's path relative to savePath, slash-separated:
// what the catalog records, and the key below s3Path.
func SegmentRel(camera string, start time.Time, name string) string {
	return DayRel(camera, start) + "/" + name
}

// SegmentPath is a segment's path under savePath.
func SegmentPath(savePath, camera string, start time.Time, name string) string {
	return filepath.Join(DayDir(savePath, camera, start), name)
}

// IsCameraDir says whether a folder in savePath named name can hold a
// camera's segments: a camera name (what config allows and segment names
// carry). cctvd's own folders (staging, quarantine, the default state
// folder) start with a dot; anything else (lost+found at the top of a
// disk, a folder an operator made) is no camera's either.
func IsCameraDir(name string) bool { return cameraDirRe.MatchString(name) }

// IsOwnDir says whether a folder in savePath is cctvd's own.
func IsOwnDir(name string) bool { return strings.HasPrefix(name, ".") }

var cameraDirRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)

// IsFeedStagingName says whether name is a feed's staging name: a camera's
// name, or one with SubSuffix.
func IsFeedStagingName(name string) bool {
	camera, _ := StagingFeed(name)
	return IsCameraDir(camera)
}

// StagingDirOf is the staging folder of a feed's staging name
// (FeedStagingName).
func StagingDirOf(savePath, name string) string { return filepath.Join(Staging(savePath), name) }
