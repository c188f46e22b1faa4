package catalog

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func userVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOpenReadOnly: the command line's open reads what the daemon's
// connection committed (in the WAL, not yet checkpointed), never writes,
// never migrates, and creates nothing.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	c, save := open(t) // the daemon's, left open
	seg := writeSegment(t, save, "cam1", t0, 100)
	if _, err := c.Add(ctx, seg, key("a")); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(ctx, c.Path(), save)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	recs, err := ro.InRange(ctx, "cam1", t0, t0.Add(time.Minute))
	if err != nil || len(recs) != 1 || recs[0].Path != seg.Path {
		t.Fatalf("read-only InRange = %+v, %v; want the daemon's row", recs, err)
	}
	seg2 := writeSegment(t, save, "cam1", t0.Add(10*time.Second), 100)
	if _, err := ro.Add(ctx, seg2, key("b")); err == nil {
		t.Error("a read-only catalog took a write")
	}

	// A catalog of an older cctvd is refused, not migrated.
	old := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA journal_mode = WAL; CREATE TABLE segments (id INTEGER PRIMARY KEY); PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if ro, err := OpenReadOnly(ctx, old, save); !errors.Is(err, ErrOlderSchema) {
		if ro != nil {
			ro.Close()
		}
		t.Errorf("an older catalog opened read-only: %v; want ErrOlderSchema", err)
	}
	if v := userVersion(t, old); v != 1 {
		t.Errorf("the older catalog is at schema %d now, want 1 (untouched)", v)
	}

	// No catalog: an error, and none created.
	missing := filepath.Join(t.TempDir(), "none", "catalog.db")
	if ro, err := OpenReadOnly(ctx, missing, save); err == nil {
		ro.Close()
		t.Error("a missing catalog opened")
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("opening a missing catalog read-only created %s: %v", filepath.Dir(missing), err)
	}
}
