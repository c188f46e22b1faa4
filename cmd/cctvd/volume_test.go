//go:build integration

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/volume"
)

// relPath is a segment's path relative to savePath, from its name.
func relPath(name string) (string, error) {
	info, err := segment.Parse(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(layout.DayRel(info.Camera, info.Start), name), nil
}

// ext4Disk is an ext4 filesystem in an image file, mounted through a loop
// device on mnt.
type ext4Disk struct {
	t        *testing.T
	img, mnt string
}

func newExt4Disk(t *testing.T, size string) *ext4Disk {
	t.Helper()
	dir := t.TempDir()
	d := &ext4Disk{t: t, img: filepath.Join(dir, "disk.img"), mnt: filepath.Join(dir, "recordings")}
	os.MkdirAll(d.mnt, 0o755)
	if out, err := exec.Command("truncate", "-s", size, d.img).CombinedOutput(); err != nil {
		t.Fatalf("truncate: %v %s", err, out)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", d.img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 (scripts/deps.sh installs e2fsprogs): %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", d.img, d.mnt).CombinedOutput(); err != nil {
		testenv.NeedsRoot(t, "cannot mount an ext4 image on a loop device (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { syscall.Unmount(d.mnt, syscall.MNT_DETACH) })
	return d
}

func (d *ext4Disk) mount() {
	d.t.Helper()
	if out, err := exec.Command("mount", "-o", "loop", d.img, d.mnt).CombinedOutput(); err != nil {
		d.t.Fatalf("mount: %v %s", err, out)
	}
}

func (d *ext4Disk) unmount(lazy bool) {
	d.t.Helper()
	flags := 0
	if lazy {
		flags = syscall.MNT_DETACH
	}
	if err := syscall.Unmount(d.mnt, flags); err != nil {
		d.t.Fatalf("unmount: %v", err)
	}
}

// onDisk says whether path is on the mounted image (not on the filesystem
// under the mount point).
func (d *ext4Disk) onDisk(path string) bool {
	var a, b syscall.Stat_t
	return syscall.Stat(path, &a) == nil && syscall.Stat(d.mnt, &b) == nil && a.Dev == b.Dev && d.mounted()
}

func (d *ext4Disk) mounted() bool {
	var mp, parent syscall.Stat_t
	syscall.Stat(d.mnt, &mp)
	syscall.Stat(filepath.Dir(d.mnt), &parent)
	return mp.Dev != parent.Dev
}

// emptyFolder fails the test if the mount point (the disk not mounted)
// holds anything: nothing may be recorded onto the filesystem under it.
func (d *ext4Disk) emptyFolder(when string) {
	d.t.Helper()
	if d.mounted() {
		d.t.Fatalf("%s: the disk is mounted", when)
	}
	entries, _ := os.ReadDir(d.mnt)
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		d.t.Errorf("%s: cctvd wrote onto the filesystem under the mount point: %v", when, names)
	}
}

// TestMissingDiskIsNotRecordedOn runs cctvd on an ext4 disk (a loop
// device), as under its systemd unit (STATE_DIRECTORY set, stateDir left
// inside savePath): with the disk unmounted at start it records nothing
// onto the root filesystem and says why (log, /readyz, status, metric);
// mounted back, it records onto the disk. While it records, a disk that
// goes (a lazy unmount) stops recording, and its return resumes it.
func TestMissingDiskIsNotRecordedOn(t *testing.T) {
	s := newSetup(t, 2)
	disk := newExt4Disk(t, "128M")
	s.savePath = disk.mnt
	cfg := s.writeConfig(t)
	anchorDir := t.TempDir()
	env := append(os.Environ(), "CCTVD_TEST_MAIN=1", "CCTVD_TEST_ARGS=run --config "+cfg, "STATE_DIRECTORY="+anchorDir)
	self, _ := os.Executable()
	start := func() *proc { return startBinary(t, exec.Command(self), env) }

	// First start: the disk gets its marker, remembered outside savePath.
	d := start()
	line, _ := d.await(0, 60*time.Second, msgIs("segment closed"))
	stop(t, d)
	if _, err := os.Stat(filepath.Join(disk.mnt, layout.MarkerName)); err != nil {
		t.Fatalf("no marker: %v", err)
	}
	if _, err := os.Stat(filepath.Join(anchorDir, volume.AnchorName)); err != nil {
		t.Fatalf("no anchor: %v", err)
	}
	first := line["segment"].(string)

	// The disk is not mounted at start.
	disk.unmount(false)
	d = start()
	d.await(0, 30*time.Second, func(m map[string]any) bool {
		return m["level"] == "error" && m["component"] == "volume" && strings.Contains(m["message"].(string), "no volume marker")
	})
	c := newClient(t, d, "")
	// /readyz says why in a fixed text (the detail, which names paths, is
	// in the log line awaited above).
	if status, body, _ := c.do("GET", "/readyz", nil); status != 503 || !strings.Contains(string(body), "savePath's disk is missing") {
		t.Errorf("/readyz with the disk missing: %d %s", status, body)
	}
	var st struct {
		Volume struct{ State, Expected string } `json:"volume"`
	}
	c.json("GET", "/api/v1/status", 200, &st)
	if st.Volume.State != "missing" || st.Volume.Expected == "" {
		t.Errorf("status: %+v", st.Volume)
	}
	if v := metricValue(scrape(t, c), "cctvd_savepath_volume_ok", nil); v != 0 {
		t.Errorf("cctvd_savepath_volume_ok = %v", v)
	}
	var cams struct{ Cameras []apiCamera }
	c.json("GET", "/api/v1/cameras", 200, &cams)
	if len(cams.Cameras) != 1 || cams.Cameras[0].State != "stopped" || cams.Cameras[0].Desired != "running" {
		t.Errorf("cameras: %+v", cams.Cameras)
	}
	disk.emptyFolder("started with the disk missing")

	// Mounted back: cctvd finds it and records onto it.
	mark := d.mark()
	disk.mount()
	d.await(mark, 30*time.Second, msgIs("savePath is cctvd's recordings volume"))
	line, _ = d.await(mark, 60*time.Second, msgIs("segment closed"))
	name := line["segment"].(string)
	info, err := relPath(name)
	if err != nil {
		t.Fatal(err)
	}
	if p := filepath.Join(disk.mnt, info); !disk.onDisk(p) {
		t.Errorf("%s is not on the disk", p)
	}
	if name == first {
		t.Errorf("the segment %s again", name)
	}

	// The disk goes while recording (a lazy unmount: savePath falls back
	// to the folder under it): recording stops, nothing lands there.
	mark = d.mark()
	disk.unmount(true)
	d.await(mark, 30*time.Second, msgIs("recording stopped: savePath's disk is gone; it resumes when the disk is back"))
	disk.emptyFolder("the disk went while recording")
	c.json("GET", "/api/v1/cameras", 200, &cams)
	if cams.Cameras[0].State != "stopped" {
		t.Errorf("cameras after the disk went: %+v", cams.Cameras)
	}

	// Back again: recording resumes on the disk.
	mark = d.mark()
	disk.mount()
	line, _ = d.await(mark, 60*time.Second, func(m map[string]any) bool {
		return m["message"] == "segment closed" && m["salvaged"] == false
	})
	info, _ = relPath(line["segment"].(string))
	if p := filepath.Join(disk.mnt, info); !disk.onDisk(p) {
		t.Errorf("%s is not on the disk", p)
	}
	// The hole is in the gap log, with its cause, closed by that segment.
	d.await(mark, 30*time.Second, func(m map[string]any) bool {
		return m["message"] == "gap in the footage" && m["cause"] == "storage-unavailable"
	})
	stop(t, d)
	assertNoSecret(t, d.output(), s.minio.SecretKey)
}
