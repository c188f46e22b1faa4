package volume

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/layout"
)

func TestDecide(t *testing.T) {
	exp := &Identity{ID: "aaa", Filesystem: "fsid:1"}
	here := fsInfo{id: "fsid:1"}
	other := fsInfo{id: "fsid:2"}
	ioErr := errors.New("input/output error")
	for _, c := range []struct {
		name       string
		expected   *Identity
		saveExists bool
		markerErr  error
		marker     Identity
		fs         fsInfo
		state      State
		create     bool
		msg        string // in the message
	}{
		{"first start, empty savePath", nil, true, fs.ErrNotExist, Identity{}, here, OK, true, ""},
		{"first start, no savePath yet", nil, false, fs.ErrNotExist, Identity{}, fsInfo{}, OK, true, ""},
		{"marker, nothing remembered (adopted)", nil, true, nil, Identity{ID: "bbb"}, here, OK, false, ""},
		{"savePath unreadable", nil, false, ioErr, Identity{}, fsInfo{}, Unreadable, false, "input/output error"},
		{"marker without id", nil, true, nil, Identity{}, here, Unreadable, false, "no id"},
		{"expected volume", exp, true, nil, Identity{ID: "aaa"}, here, OK, false, ""},
		{"expected volume on a new filesystem (copied)", exp, true, nil, Identity{ID: "aaa"}, other, OK, false, ""},
		{"disk not mounted: empty folder", exp, true, fs.ErrNotExist, Identity{}, other, Missing, false, "no volume marker"},
		{"marker deleted from the same filesystem", exp, true, fs.ErrNotExist, Identity{}, here, Missing, false, "no volume marker"},
		{"savePath gone", exp, false, fs.ErrNotExist, Identity{}, fsInfo{}, Missing, false, "does not exist"},
		{"another volume", exp, true, nil, Identity{ID: "ccc"}, other, Foreign, false, "another cctvd volume (ccc)"},
		{"marker unreadable", exp, true, ioErr, Identity{}, here, Unreadable, false, "input/output error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := decide(c.expected, c.saveExists, c.markerErr, c.marker, c.fs)
			if d.state != c.state || d.create != c.create || !strings.Contains(d.msg, c.msg) {
				t.Errorf("decide = %+v, want %s create=%v message with %q", d, c.state, c.create, c.msg)
			}
			if c.state == OK && d.msg != "" {
				t.Errorf("message on OK: %q", d.msg)
			}
		})
	}
}

func TestAnchorDir(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "STATE_DIRECTORY" {
				return v
			}
			return ""
		}
	}
	for _, c := range []struct {
		save, state, env, want string
	}{
		{"/var/cctv/rec", "/var/cctv/rec/.cctvd", "/var/lib/cctvd", "/var/lib/cctvd"},
		{"/var/cctv/rec", "/var/cctv/rec/.cctvd", "/var/lib/cctvd:/var/lib/other", "/var/lib/cctvd"},
		{"/var/cctv/rec", "/var/lib/cctvd-state", "", "/var/lib/cctvd-state"},
		{"/var/cctv/rec", "/var/cctv/rec/.cctvd", "", ""},
		{"/var/cctv/rec", "/var/cctv/rec", "", ""},
		{"/var/cctv/rec", "/var/cctv/recordings-state", "", "/var/cctv/recordings-state"},
		{"/var/cctv/rec", "/var/cctv/rec/.cctvd", "relative", ""},
	} {
		if got := AnchorDir(c.save, c.state, env(c.env)); got != c.want {
			t.Errorf("AnchorDir(%s, %s, %q) = %q, want %q", c.save, c.state, c.env, got, c.want)
		}
	}
}

func newGuard(t *testing.T, save, anchorDir string) (*Guard, *bytes.Buffer) {
	var logs bytes.Buffer
	return New(Config{SavePath: save, AnchorDir: anchorDir, Poll: time.Hour}, Deps{Log: zerolog.New(&logs)}), &logs
}

// TestGuardFirstStartUpgradeAndMissingDisk walks a savePath through a first
// start, a restart, the disk "unmounted" (the folder emptied and replaced)
// and back, with the anchor outside savePath.
func TestGuardFirstStartUpgradeAndMissingDisk(t *testing.T) {
	base := t.TempDir()
	save := filepath.Join(base, "rec")
	anchorDir := filepath.Join(base, "state")
	g, logs := newGuard(t, save, anchorDir)
	st := g.Check()
	if st.State != OK || st.ID == "" {
		t.Fatalf("first start: %+v", st)
	}
	var m Identity
	if err := readJSON(filepath.Join(save, layout.MarkerName), &m); err != nil || m.ID != st.ID || m.Filesystem == "" {
		t.Fatalf("marker %+v %v", m, err)
	}
	var a anchor
	if err := readJSON(filepath.Join(anchorDir, AnchorName), &a); err != nil || a.ID != st.ID || a.SavePath != save {
		t.Fatalf("anchor %+v %v", a, err)
	}
	if !strings.Contains(logs.String(), "first start") {
		t.Errorf("log: %s", logs.String())
	}

	// A new process finds the same volume.
	g2, _ := newGuard(t, save, anchorDir)
	if st2 := g2.Check(); st2.State != OK || st2.ID != st.ID {
		t.Fatalf("restart: %+v", st2)
	}

	// The disk goes: savePath is an empty folder. Nothing is created in it.
	os.Rename(save, save+".disk")
	os.Mkdir(save, 0o755)
	g3, logs3 := newGuard(t, save, anchorDir)
	st3 := g3.Check()
	if st3.State != Missing || st3.Expected != st.ID || !strings.Contains(st3.Message, "no volume marker") {
		t.Fatalf("missing disk: %+v", st3)
	}
	if entries, _ := os.ReadDir(save); len(entries) != 0 {
		t.Errorf("the guard wrote into the empty folder: %v", entries)
	}
	if !strings.Contains(logs3.String(), `"level":"error"`) {
		t.Errorf("a missing disk is not logged as an error: %s", logs3.String())
	}
	// Polls while it is missing log nothing more.
	n := strings.Count(logs3.String(), "\n")
	g3.Check()
	if strings.Count(logs3.String(), "\n") != n {
		t.Errorf("every poll logs: %s", logs3.String())
	}
	// The disk comes back.
	os.Remove(save)
	os.Rename(save+".disk", save)
	if st := g3.Check(); st.State != OK {
		t.Fatalf("disk back: %+v", st)
	}
	// Another cctvd volume in its place is not recorded on.
	os.WriteFile(filepath.Join(save, layout.MarkerName), []byte(`{"id":"someone-else"}`), 0o644)
	if st := g3.Check(); st.State != Foreign {
		t.Fatalf("foreign volume: %+v", st)
	}
}

// TestGuardUpgrade: a savePath with recordings and no marker (cctvd
// v0.1.0) is marked, and said to be an upgrade.
func TestGuardUpgrade(t *testing.T) {
	base := t.TempDir()
	save := filepath.Join(base, "rec")
	os.MkdirAll(filepath.Join(save, "door", "2026-01-06"), 0o755)
	os.MkdirAll(filepath.Join(save, ".cctvd"), 0o755)
	g, logs := newGuard(t, save, filepath.Join(base, "state"))
	if st := g.Check(); st.State != OK {
		t.Fatalf("%+v", st)
	}
	if !strings.Contains(logs.String(), "upgrade") {
		t.Errorf("log: %s", logs.String())
	}
}

// TestGuardWithoutAnchorPlace: the volume this process recorded on is
// remembered in memory, so a disk that goes while recording is noticed.
func TestGuardWithoutAnchorPlace(t *testing.T) {
	save := filepath.Join(t.TempDir(), "rec")
	g, _ := newGuard(t, save, "")
	if st := g.Check(); st.State != OK {
		t.Fatal(st)
	}
	os.Rename(save, save+".disk")
	os.Mkdir(save, 0o755)
	if st := g.Check(); st.State != Missing {
		t.Fatalf("disk gone while running: %+v", st)
	}
	if entries, _ := os.ReadDir(save); len(entries) != 0 {
		t.Errorf("the guard wrote into the empty folder: %v", entries)
	}
}
