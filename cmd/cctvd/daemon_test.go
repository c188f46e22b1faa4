//go:build integration

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/internal/testenv"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/staging"
)

func TestSIGTERMFinalisesTheOpenSegment(t *testing.T) {
	s := newSetup(t, 60)
	savePath := s.savePath
	d := startDaemon(t, "run", "--config", s.writeConfig(t))
	_, i := d.await(0, 30*time.Second, msgIs("recording"))
	awaitStagingGrowth(t, savePath, "door", 8000)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	line, _ := d.await(i, 30*time.Second, msgIs("segment closed"))
	if err := d.wait(30 * time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	name, _ := line["segment"].(string)
	info, err := segment.Parse(name)
	if err != nil || line["salvaged"] != false {
		t.Fatalf("closed %q salvaged=%v: %v", name, line["salvaged"], err)
	}
	path := filepath.Join(savePath, layout.DayRel("door", info.Start), name)
	p := testenv.ProbeFile(t, path)
	if p.Frames == 0 || (p.Duration-info.End.Sub(info.Start)).Abs() > 1500*time.Millisecond {
		t.Errorf("%s: %+v", name, p)
	}
	if entries, _ := os.ReadDir(layout.StagingDir(savePath, "door")); len(entries) != 0 {
		t.Errorf("staging not empty after SIGTERM: %v", entries)
	}
	assertNoSecret(t, d.output(), s.minio.SecretKey)
}

// TestKillNineThenRestart kills the daemon mid-segment, twice: once alone
// (its ffmpeg gets SIGTERM from the kernel), once together with a frozen
// ffmpeg (a power cut). Each time the next start names and reports the
// segment, playable.
func TestKillNineThenRestart(t *testing.T) {
	s := newSetup(t, 60)
	savePath := s.savePath
	cfg := s.writeConfig(t)
	for _, powerCut := range []bool{false, true} {
		d := startDaemon(t, "run", "--config", cfg)
		d.await(0, 30*time.Second, msgIs("recording"))
		open := awaitStagingGrowth(t, savePath, "door", 8000)
		run, _, _ := strings.Cut(filepath.Base(open), "_")
		meta, err := staging.ReadMeta(filepath.Join(filepath.Dir(open), run+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if powerCut {
			syscall.Kill(meta.PID, syscall.SIGSTOP) // frozen: it cannot finalise
		}
		d.cmd.Process.Kill()
		d.wait(10 * time.Second)
		if powerCut {
			syscall.Kill(meta.PID, syscall.SIGKILL)
		}

		d2 := startDaemon(t, "run", "--config", cfg)
		line, _ := d2.await(0, 30*time.Second, func(m map[string]any) bool {
			return m["message"] == "segment closed" && m["run"] == run
		})
		name := line["segment"].(string)
		info, err := segment.Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		// After a power cut ffmpeg never listed the segment, so it is
		// salvaged. Killed alone, ffmpeg may finalise it first (SIGTERM by
		// Pdeathsig) or die on its broken output pipe: either way it ends
		// up named.
		if powerCut && line["salvaged"] != true {
			t.Errorf("power cut: salvaged = %v", line["salvaged"])
		}
		t.Logf("power cut %v: %s salvaged=%v", powerCut, line["segment"], line["salvaged"])
		p := testenv.ProbeFile(t, filepath.Join(savePath, layout.DayRel("door", info.Start), name))
		if p.Frames == 0 {
			t.Errorf("%s holds no frames", name)
		}
		d2.await(0, 30*time.Second, msgIs("recording")) // and recording goes on
		d2.cmd.Process.Signal(syscall.SIGTERM)
		if err := d2.wait(30 * time.Second); err != nil {
			t.Errorf("exit: %v", err)
		}
		assertNoSecret(t, d.output()+d2.output(), s.minio.SecretKey)
	}
}

// TestEverySegmentReachesS3 records, stops, starts again and checks from
// the bucket, not from cctvd's word, that every local segment is there
// under its documented key, byte-identical, with its metadata.
func TestEverySegmentReachesS3(t *testing.T) {
	s := newSetup(t, 3)
	s.logLevel = "debug"
	cfg := s.writeConfig(t)
	d := startDaemon(t, "run", "--config", cfg)
	uploaded := func(m map[string]any) bool { return m["message"] == "uploaded and verified" }
	i := 0
	for range 3 {
		_, i = d.await(i, 60*time.Second, uploaded)
		i++
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The segment finalised at shutdown goes up after the next start.
	d2 := startDaemon(t, "run", "--config", cfg)
	d2.await(0, 60*time.Second, uploaded)
	d2.cmd.Process.Signal(syscall.SIGTERM)
	if err := d2.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	local := map[string]string{} // key -> sha256
	filepath.WalkDir(filepath.Join(s.savePath, "door"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(s.savePath, p)
			local["rec/2025/"+filepath.ToSlash(rel)] = fileSHA(t, p)
		}
		return nil
	})
	if len(local) < 4 {
		t.Fatalf("only %d local segments", len(local))
	}
	objects := s.minio.List("test-bucket", "rec/2025/")
	remote := map[string]bool{}
	for _, o := range objects {
		remote[o.Key] = true
		sum, ok := local[o.Key]
		if !ok {
			t.Errorf("object %s has no local file", o.Key)
			continue
		}
		out, err := s.minio.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("test-bucket"), Key: aws.String(o.Key)})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, out.Body)
		out.Body.Close()
		info, _ := segment.Parse(filepath.Base(o.Key))
		if got := hex.EncodeToString(h.Sum(nil)); got != sum || out.Metadata["sha256"] != sum || out.Metadata["camera"] != "door" ||
			out.Metadata["feed-id"] != "f1" || !metaMatchesName(out.Metadata, info) {
			t.Errorf("%s: sha256 %s (local %s), metadata %v", o.Key, got, sum, out.Metadata)
		}
	}
	for key := range local {
		if !remote[key] {
			t.Errorf("%s is not in the bucket", key)
		}
	}
	assertNoSecret(t, d.output()+d2.output(), s.minio.SecretKey)
}

// TestKilledMidUploadLeavesNoOrphans kills the daemon while a multipart
// upload is under way; the next start aborts what was left on the server
// and uploads the file again.
func TestKilledMidUploadLeavesNoOrphans(t *testing.T) {
	s := newSetup(t, 60)
	s.s3 = `, "partSizeMB": 5, "partConcurrency": 1`
	s.logLevel = "debug"
	start := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	name := segment.Name("door", "f1", start, start.Add(10*time.Minute), 0)
	big := filepath.Join(s.savePath, layout.DayRel("door", start), name)
	writeVideo(t, big, 200<<20)
	key := "rec/2025/door/2026-01-06/" + name
	cfg := s.writeConfig(t)

	d := startDaemon(t, "run", "--config", cfg)
	deadline := time.Now().Add(60 * time.Second)
	for s.minio.MultipartUploads("test-bucket", key) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no multipart upload started; output:\n%s", d.output())
		}
		time.Sleep(5 * time.Millisecond) // MinIO has no event to await
	}
	d.cmd.Process.Kill()
	d.wait(10 * time.Second)
	if n := s.minio.MultipartUploads("test-bucket", key); n != 1 {
		t.Fatalf("after the kill: %d multipart uploads (the upload finished before it?)", n)
	}

	d2 := startDaemon(t, "run", "--config", cfg)
	d2.await(0, 120*time.Second, func(m map[string]any) bool {
		return m["message"] == "uploaded and verified" && m["segment"] == name
	})
	d2.cmd.Process.Signal(syscall.SIGTERM)
	d2.wait(30 * time.Second)
	if n := s.minio.MultipartUploads("test-bucket", key); n != 0 {
		t.Errorf("%d orphan multipart uploads remain", n)
	}
	head, err := s.minio.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("test-bucket"), Key: aws.String(key)})
	if err != nil || aws.ToInt64(head.ContentLength) != 200<<20 || head.Metadata["sha256"] != fileSHA(t, big) {
		t.Errorf("object after restart: %+v %v", head, err)
	}
}

// TestTinyLimit records with a limit of 50 kB: savePath stays under the
// limit plus one segment, and the oldest segments are the ones deleted,
// uploaded ones first; with S3 down, segments S3 does not have go too,
// oldest first, each with a warning.
func TestTinyLimit(t *testing.T) {
	for _, s3Down := range []bool{false, true} {
		t.Run(map[bool]string{false: "S3 up", true: "S3 down"}[s3Down], func(t *testing.T) {
			s := newSetup(t, 2)
			s.storage = fmt.Sprintf(`, "stateDir": %q`, t.TempDir())
			s.logLevel = "debug"
			cfg := strings.Replace(readFile(t, s.writeConfig(t)), `"clearWhenFilePathReachGB": 1`, `"clearWhenFilePathReachGB": 0.00005`, 1)
			path := filepath.Join(t.TempDir(), "tiny.json")
			os.WriteFile(path, []byte(cfg), 0o600)
			if s3Down {
				s.minio.Stop()
			}
			const limit = 50_000
			d := startDaemon(t, "run", "--config", path)
			var closed []string
			var largest int64
			i := 0
			for len(closed) < 10 {
				line, j := d.await(i, 60*time.Second, msgIs("segment closed"))
				i = j + 1
				closed = append(closed, line["segment"].(string))
				largest = max(largest, int64(line["bytes"].(float64)))
				if total, _ := recordingBytes(t, s.savePath); total > limit+largest {
					t.Errorf("after %d segments savePath holds %d bytes: over the %d limit plus a segment (%d)", len(closed), total, limit, largest)
				}
			}
			d.cmd.Process.Signal(syscall.SIGTERM)
			d.wait(30 * time.Second)
			_, present := recordingBytes(t, s.savePath)
			if len(present) == 0 || len(present) == len(closed) {
				t.Fatalf("%d of %d segments left: retention did nothing useful", len(present), len(closed))
			}
			// Every deleted segment is older than every one left.
			sort.Strings(present)
			kept := map[string]bool{}
			for _, p := range present {
				kept[p] = true
			}
			for _, c := range closed {
				if !kept[c] && c > present[0] {
					t.Errorf("%s was deleted while the older %s was kept", c, present[0])
				}
			}
			warned := strings.Count(d.output(), "deleted a recording S3 does not have")
			if s3Down && warned == 0 {
				t.Error("with S3 down, no deletion of a not-uploaded segment was warned about")
			}
			if !s3Down && warned != 0 {
				t.Errorf("with S3 up, %d not-uploaded segments were deleted", warned)
			}
		})
	}
}
