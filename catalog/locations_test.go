package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cctvd/cctvd/layout"
)

// mainMigrations is how many migrations the catalog had before rows kept
// their bucket (cctvd's main after v0.1.0): boxes upgraded from it have
// catalogs at that schema version.
const mainMigrations = 8

// oldCatalog writes a catalog at schema version `version`, with rows
// inserted by SQL as that version wrote them, and returns its path.
func oldCatalog(t *testing.T, save string, version int, rows ...string) string {
	t.Helper()
	path := filepath.Join(save, ".cctvd", layout.CatalogName)
	os.MkdirAll(filepath.Dir(path), 0o755)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, m := range migrations[:version] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, version)); err != nil {
		t.Fatal(err)
	}
	for _, q := range rows {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func locations(t *testing.T, c *Catalog) []string {
	t.Helper()
	ls, err := c.Locations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Bucket+":"+l.Prefix)
	}
	slices.Sort(out)
	return out
}

// TestUpgradeFillsBuckets: catalogs of cctvd v0.1.0 and of main before
// rows kept their bucket are migrated with every row; the rows they
// uploaded get the bucket configured when the daemon first opens them
// (not a CLI that opens it without one, not a later start with another
// bucket), and every prefix they went under is remembered.
func TestUpgradeFillsBuckets(t *testing.T) {
	uploadedRows := []string{
		`INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, sha256, upload, s3_key, etag, uploaded_ns, local, created_ns)
			VALUES ('cam1', 'xx', 1, 2, 'cam1/2026-01-06/a.mp4', 10, 'sha-a', 'uploaded', 'rec/2025/cam1/2026-01-06/a.mp4', '"e"', 3, 'deleted', 1)`,
		`INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, upload, s3_key, created_ns)
			VALUES ('cam1', 'xx', 2, 3, 'cam1/2026-01-06/b.mp4', 20, 'pending', 'rec/2025/cam1/2026-01-06/b.mp4', 2)`,
		`INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, upload, s3_key, uploaded_ns, created_ns)
			VALUES ('cam2', 'xx', 1, 2, 'cam2/2026-01-06/c.mp4', 30, 'uploaded', 'older/cam2/2026-01-06/c.mp4', 5, 1)`,
	}
	conflictRow := `INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, upload, s3_key, conflict_key, uploaded_ns, created_ns)
		VALUES ('cam2', 'xx', 3, 4, 'cam2/2026-01-06/d.mp4', 40, 'uploaded', 'elsewhere/cam2/2026-01-06/d.conflict-0123456789ab.mp4',
			'elsewhere/cam2/2026-01-06/d.mp4', 6, 1)`
	for _, tt := range []struct {
		name    string
		version int
		rows    []string
		want    []string // locations
	}{
		{"v0.1.0", v010Migrations, uploadedRows, []string{"box:older", "box:rec/2025"}},
		{"main", mainMigrations, append(slices.Clone(uploadedRows), conflictRow), []string{"box:elsewhere", "box:older", "box:rec/2025"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			save := t.TempDir()
			path := oldCatalog(t, save, tt.version, tt.rows...)
			ctx := context.Background()

			// The CLI opens it first, without a bucket: nothing to fill with.
			c, err := Open(ctx, path, save, nil)
			if err != nil {
				t.Fatalf("open a %s catalog: %v", tt.name, err)
			}
			rows, _ := c.many(ctx, `ORDER BY id`)
			if len(rows) != len(tt.rows) || rows[0].Bucket != "" || len(locations(t, c)) != 0 {
				t.Fatalf("opened without a bucket: %d rows, bucket %q, locations %v", len(rows), rows[0].Bucket, locations(t, c))
			}
			c.Close()

			// The upgraded daemon opens it with its bucket.
			c, err = OpenWith(ctx, Options{Path: path, SavePath: save, Bucket: "box", Prefix: "rec/2025"})
			if err != nil {
				t.Fatal(err)
			}
			rows, _ = c.many(ctx, `ORDER BY id`)
			for _, r := range rows {
				want := "box"
				if r.Upload != Uploaded {
					want = "" // it gets the bucket it goes to
				}
				if r.Bucket != want {
					t.Errorf("%s (%s): bucket %q, want %q", r.Name(), r.Upload, r.Bucket, want)
				}
			}
			if got := locations(t, c); !slices.Equal(got, tt.want) {
				t.Errorf("locations %v, want %v", got, tt.want)
			}
			c.Close()

			// A later start with another bucket changes none of it.
			c, err = OpenWith(ctx, Options{Path: path, SavePath: save, Bucket: "moved", Prefix: "new"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if r, _ := c.Get(ctx, rows[0].ID); r.Bucket != "box" {
				t.Errorf("after a start with another bucket: %q", r.Bucket)
			}
			if got := locations(t, c); !slices.Equal(got, tt.want) {
				t.Errorf("locations after a start with another bucket: %v, want %v", got, tt.want)
			}
		})
	}
}

// TestUploadsRememberTheirLocation: an upload records its bucket in the
// row and its (bucket, prefix) in the locations, the prefix read from the
// key it belongs under (a conflict key's original), and none is lost when
// the rows are pruned.
func TestUploadsRememberTheirLocation(t *testing.T) {
	c, save := open(t)
	ctx := context.Background()
	add := func(i int, key func(rel string) string) Record {
		seg := writeSegment(t, save, "cam1", t0.Add(time10s(i)), 10)
		rel, _ := c.rel(seg.Path)
		r, err := c.Add(ctx, seg, key(rel))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := add(0, func(rel string) string { return "rec/2025/" + rel })
	b := add(1, func(string) string { return "x" })
	d := add(2, func(rel string) string { return rel }) // no s3Path
	c.SetConflict(ctx, a.ID, "rec/2025/whatever.conflict-0123456789ab.mp4")
	for _, up := range []struct {
		id     int64
		bucket string
	}{{a.ID, "one"}, {b.ID, "two"}, {d.ID, "two"}} {
		if err := c.MarkUploadedTo(ctx, up.id, up.bucket, `"e"`, "test"); err != nil {
			t.Fatal(err)
		}
		if r, _ := c.Get(ctx, up.id); r.Bucket != up.bucket || r.Upload != Uploaded {
			t.Errorf("%s: bucket %q, %s", r.Name(), r.Bucket, r.Upload)
		}
	}
	// b's key does not end with its path: where it went says nothing of a prefix.
	want := []string{"one:rec/2025", "two:"}
	if got := locations(t, c); !slices.Equal(got, want) {
		t.Errorf("locations %v, want %v", got, want)
	}
	for _, id := range []int64{a.ID, b.ID, d.ID} {
		c.MarkLocalDeleted(ctx, id, CauseClearAfterUpload)
	}
	if res, err := c.Prune(ctx, t0.Add(time10s(10))); err != nil || res.Segments != 3 {
		t.Fatalf("prune = %+v, %v", res, err)
	}
	if got := locations(t, c); !slices.Equal(got, want) {
		t.Errorf("locations after pruning every row %v, want %v", got, want)
	}
}
