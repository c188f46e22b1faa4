//go:build integration

package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/await"
	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// daemonUID is the test's stand-in for the cctvd user: nobody.
const daemonUID = 65534

// silentS3 accepts connections and never answers: an export reading a
// source from it waits, catalog open, until it is killed. Each accepted
// connection is sent on the channel.
func silentS3(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			default:
				c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	})
	return "http://" + ln.Addr().String(), conns
}

// rootOwned lists the files under dir that root owns.
func rootOwned(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Sys().(*syscall.Stat_t).Uid == 0 {
			out = append(out, fmt.Sprintf("%s (%v)", p, fi.Mode()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listDir(dir string) string {
	var b strings.Builder
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fi, _ := e.Info()
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "  %s %v uid %d, %d bytes\n", e.Name(), fi.Mode(), st.Uid, fi.Size())
	}
	return b.String()
}

// copyExecutable copies the test binary where the daemon's user can run it.
func copyExecutable(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(dir, "cctvd.test")
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRootExportLeavesTheCatalogToItsOwner: `cctvd export` run by root on
// the box, the daemon stopped and its catalog owned by the daemon's user,
// whether it ends or is killed while it reads, leaves nothing in the state
// folder that root owns, and the daemon's user can open the catalog and
// write to it afterwards.
func TestRootExportLeavesTheCatalogToItsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.NeedsRoot(t, "run cctvd export as root on a catalog another user owns")
	}
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil { // the daemon's user walks in
			t.Fatal(err)
		}
	}
	savePath, stateDir := filepath.Join(base, "rec"), filepath.Join(base, "state")
	for _, d := range []string{savePath, stateDir} {
		if err := os.Mkdir(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	catPath := layout.Catalog(stateDir)

	// The daemon's catalog: a segment S3 holds and the box no longer does.
	ctx := context.Background()
	cat, err := catalog.Open(ctx, catPath, savePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 6, 14, 3, 0, 0, time.UTC)
	seg := segment.Segment{Camera: "door", FeedID: "f1", Start: start, End: start.Add(10 * time.Second),
		Path: filepath.Join(savePath, "door", "2026-01-06", "door_f1_20260106T140300Z_20260106T140310Z.mp4"), Size: 1000}
	rec, err := cat.Add(ctx, seg, "rec/door/2026-01-06/door_f1_20260106T140300Z_20260106T140310Z.mp4")
	if err == nil {
		err = cat.MarkUploaded(ctx, rec.ID, `"etag"`, "size-metadata")
	}
	if err == nil {
		err = cat.MarkDeleted(ctx, []int64{rec.ID}, catalog.CauseClearAfterUpload)
	}
	if cerr := cat.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == base {
			return err
		}
		return os.Lchown(p, daemonUID, daemonUID)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the state folder before:\n%s", listDir(stateDir))

	endpoint, conns := silentS3(t)
	cfgPath := filepath.Join(base, "config.json")
	cfg := fmt.Sprintf(`{
  "cameras": [{"cameraName": "door", "ipAddress": "127.0.0.1", "userName": "admin", "password": "pw",
    "frameRate": 5, "resolution": "640x360", "videoDuration": 10, "videoFeedId": "f1"}],
  "s3Config": {"s3Bucket": "test-bucket", "s3Path": "rec", "endpoint": %q},
  "awsCredentials": {"accessKeyId": "test-access", "secretAccessKey": "test-secret-key", "region": "us-east-1"},
  "storageConfig": {"savePath": %q, "stateDir": %q, "clearAfterUpload": true, "clearWhenFilePathReachGB": 1}
}`, endpoint, savePath, stateDir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	exe := copyExecutable(t, base)
	export := func(from, to time.Time, out string) *exec.Cmd {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), "CCTVD_TEST_MAIN=1", "CCTVD_TEST_ARGS=export --config "+cfgPath+" --camera door --from "+
			from.Format(time.RFC3339)+" --to "+to.Format(time.RFC3339)+" -o "+filepath.Join(base, out))
		return cmd
	}
	checkState := func(when string) {
		t.Helper()
		if owned := rootOwned(t, stateDir); len(owned) > 0 {
			t.Errorf("%s, root owns %v in the state folder:\n%s", when, owned, listDir(stateDir))
		}
		helper := exec.Command(exe)
		helper.Env = append(os.Environ(), catalogHelperEnv+"="+catPath, "CCTVD_TEST_SAVEPATH="+savePath)
		helper.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: daemonUID, Gid: daemonUID}}
		if out, err := helper.CombinedOutput(); err != nil {
			t.Errorf("%s, the daemon's user cannot use the catalog: %v\n%s\n%s", when, err, out, listDir(stateDir))
		}
	}

	// An export that ends: a range without footage.
	out, err := export(start.Add(-time.Hour), start.Add(-time.Hour+time.Minute), "none.mp4").CombinedOutput()
	if !strings.Contains(string(out), "no footage") {
		t.Fatalf("the export of a range without footage: %v\n%s", err, out)
	}
	checkState("after an export that ended")

	// An export killed while it reads its source from S3, catalog open.
	cmd := export(start, start.Add(10*time.Second), "clip.mp4")
	var output strings.Builder
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case c := <-conns:
		defer c.Close() // held unanswered until the export is killed
	case err := <-exited:
		t.Fatalf("the export ended before it read S3: %v\n%s", err, output.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("the export did not read S3 within 2 minutes")
	}
	t.Logf("the state folder while the export reads:\n%s", listDir(stateDir))
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	await.Recv(t, exited, time.Minute, "the killed export's end")
	checkState("after an export killed while it read")
}
