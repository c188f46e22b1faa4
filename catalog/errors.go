package catalog

import (
	"errors"
	"syscall"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	// ErrUnavailable is returned while no catalog is open: it is being
	// opened, checked or rebuilt, or cannot be opened at all. Recording
	// goes on; what needs the catalog waits.
	ErrUnavailable = errors.New("the catalog is not available yet")
	// ErrCorrupt marks a database SQLite reports as malformed, or that is
	// not a database at all.
	ErrCorrupt = errors.New("the catalog is corrupt")
	// ErrNewerSchema marks a catalog written by a newer cctvd.
	ErrNewerSchema = errors.New("the catalog was written by a newer cctvd")
)

// sqliteCode returns the primary SQLite result code in err's chain, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

// IsCorrupt says whether err means the database file is damaged
// (SQLITE_CORRUPT) or is not a database (SQLITE_NOTADB).
func IsCorrupt(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrCorrupt) {
		return true
	}
	code := sqliteCode(err)
	return code == sqlite3.SQLITE_CORRUPT || code == sqlite3.SQLITE_NOTADB
}

// IsFull says whether err means the filesystem holding the catalog is
// full: SQLITE_FULL, or ENOSPC from a file operation.
func IsFull(err error) bool {
	if err == nil {
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		// SQLite maps ENOSPC to SQLITE_FULL on writes; growing the
		// shared-memory file reports an I/O error of its own.
		return se.Code()&0xff == sqlite3.SQLITE_FULL || se.Code() == sqlite3.SQLITE_IOERR_SHMSIZE
	}
	return errors.Is(err, syscall.ENOSPC)
}
