//go:build integration

package main

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
)

// releases are the releases boxes in the field run, by their commits: a
// clone of main holds the commits even where the tags were not fetched.
// v0.2.0 is the second wave (durability, export, the page, onboarding);
// v0.1.0 the first, which boxes that never upgraded still run.
var releases = []struct {
	tag, commit string
	// first: savePath has no volume marker and the catalog holds the
	// cameras an operator stopped (cctvd 0.1's layout).
	first bool
}{
	{"v0.2.0", "4cf29ca45918908a4eb3e3ee15aed63badcf9b4e", false},
	{"v0.1.0", "cee099ddd8d0bf1ade4a923bc74ac49d4fe431d0", true},
}

// buildRelease builds cctvd at a release's commit, from `git archive`, and
// returns the binary. Where the tag is present it must name that commit.
func buildRelease(t *testing.T, tag, commit string) string {
	t.Helper()
	root := testenv.RepoRoot(t)
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--verify", "--quiet", tag+"^{commit}").Output(); err == nil {
		if got := strings.TrimSpace(string(out)); got != commit {
			t.Fatalf("tag %s is %s, the test expects %s", tag, got, commit)
		}
	}
	src := t.TempDir()
	archive := exec.Command("sh", "-c", fmt.Sprintf("git archive %s | tar -x -C %s", commit, src))
	archive.Dir = root
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s (%s; a shallow clone lacks it: git fetch --unshallow): %v %s", commit, tag, err, out)
	}
	bin := filepath.Join(t.TempDir(), "cctvd-"+tag)
	build := exec.Command("go", "build", "-o", bin, "./cmd/cctvd")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v %s", tag, err, out)
	}
	return bin
}

// catalogRows reads every row's path and upload state straight from a
// catalog file, and its schema version.
func catalogRows(t *testing.T, path string) (map[string]string, int) {
	t.Helper()
	// file: + mode=ro: modernc drops the query of a plain file name.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT path, upload FROM segments`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var p, u string
		rows.Scan(&p, &u)
		out[p] = u
	}
	var version int
	db.QueryRow(`PRAGMA user_version`).Scan(&version)
	return out, version
}

// TestUpgradeFromPreviousRelease runs each previous release (built from
// its commit) against the test camera and MinIO, with a second camera an
// operator stopped, then this cctvd on the same savePath, stateDir and
// bucket: every row is kept, the schema migrates, every uploaded row learns
// its bucket, nothing S3 has is uploaded again, the stopped camera stays
// stopped, new segments go up.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	for _, rel := range releases {
		t.Run(rel.tag, func(t *testing.T) { testUpgradeFrom(t, rel.tag, rel.commit, rel.first) })
	}
}

func testUpgradeFrom(t *testing.T, tag, commit string, first bool) {
	s := newMultiSetup(t, "/door", "/gate")
	old := buildRelease(t, tag, commit)
	cfg := filepath.Join(t.TempDir(), "config.json")
	writeCameras(t, s, cfg, cameraJSON(s, "door", "/door", 5, ""), cameraJSON(s, "gate", "/gate", 5, ""))

	d := startBinary(t, exec.Command(old, "run", "--config", cfg), os.Environ())
	c := newClient(t, d, "")
	c.json("POST", "/api/v1/cameras/gate/stop", 200, nil)
	awaitUploads(d, 0, 3, 90*time.Second)
	stop(t, d)

	dbPath := filepath.Join(s.savePath, ".cctvd", layout.CatalogName)
	rowsBefore, versionBefore := catalogRows(t, dbPath)
	bucketBefore := bucketState(t, s, "rec/2025/")
	if len(rowsBefore) < 3 || len(bucketBefore) < 3 {
		t.Fatalf("the previous release left %d rows and %d objects", len(rowsBefore), len(bucketBefore))
	}

	d2 := startDaemon(t, "run", "--config", cfg)
	if first {
		d2.await(0, 30*time.Second, func(m map[string]any) bool {
			return m["component"] == "volume" && strings.Contains(fmt.Sprint(m["message"]), "an upgrade")
		})
		d2.await(0, 30*time.Second, msgIs("read the cameras an operator stopped from the catalog; they are kept in cameras.json from now on"))
	}
	// A segment of this version goes up.
	var fresh string
	for i := 0; fresh == ""; {
		line, j := d2.await(i, 90*time.Second, msgIs("uploaded and verified"))
		if name := line["segment"].(string); !hasRow(rowsBefore, name) {
			fresh = name
		}
		i = j + 1
	}
	c2 := newClient(t, d2, "")
	var cams struct{ Cameras []apiCamera }
	c2.json("GET", "/api/v1/cameras", 200, &cams)
	for _, cam := range cams.Cameras {
		if want := map[string]string{"door": "running", "gate": "stopped"}[cam.Name]; cam.Desired != want {
			t.Errorf("camera %s: desired %s, want %s", cam.Name, cam.Desired, want)
		}
	}
	stop(t, d2)

	rowsAfter, versionAfter := catalogRows(t, dbPath)
	for p := range rowsBefore {
		if _, ok := rowsAfter[p]; !ok {
			t.Errorf("row %s was lost in the upgrade", p)
		}
	}
	if versionAfter <= versionBefore {
		t.Errorf("schema version %d after the upgrade, %d before", versionAfter, versionBefore)
	}
	if n := uploadedWithoutBucket(t, dbPath); n != 0 {
		t.Errorf("%d uploaded rows do not know their bucket after the upgrade", n)
	}
	bucketAfter := bucketState(t, s, "rec/2025/")
	for key, b := range bucketBefore {
		if a := bucketAfter[key]; a != b {
			t.Errorf("%s was uploaded again: %+v, before %+v", key, a, b)
		}
	}
	var added []string
	for key := range bucketAfter {
		if _, ok := bucketBefore[key]; !ok {
			added = append(added, key)
		}
	}
	sort.Strings(added)
	if len(added) == 0 {
		t.Error("nothing new was uploaded after the upgrade")
	}
	for _, key := range added {
		if strings.Contains(key, "/gate/") {
			t.Errorf("the stopped camera recorded after the upgrade: %s", key)
		}
	}
	t.Logf("rows %d -> %d, schema %d -> %d, objects %d -> %d (new: %s)", len(rowsBefore), len(rowsAfter), versionBefore, versionAfter,
		len(bucketBefore), len(bucketAfter), fresh)
	assertNoSecret(t, d.output()+d2.output(), s.minio.SecretKey)
}

// uploadedWithoutBucket counts the uploaded rows whose bucket is not known.
func uploadedWithoutBucket(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM segments WHERE upload = 'uploaded' AND bucket = ''`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func hasRow(rows map[string]string, name string) bool {
	for p := range rows {
		if filepath.Base(p) == name {
			return true
		}
	}
	return false
}
