//go:build integration

package uploader

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/layout"
)

// realMP4 records seconds of a test pattern with ffmpeg as the segment
// muxer writes it (fragmented MP4) and returns its bytes.
func realMP4(t *testing.T, seconds string) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "clip.mp4")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=5", "-t", seconds,
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "5", "-pix_fmt", "yuv420p",
		"-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg (run `make deps`): %v: %s", err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// object reads an object's bytes and metadata, failing the test if it is absent.
func (e *env) object(bucketName, key string) ([]byte, map[string]string) {
	e.t.Helper()
	out, err := e.minio.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String(key)})
	if err != nil {
		e.t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return b, out.Metadata
}

// plant puts an object under key as another writer (or cctvd v0.1.0)
// would: no checksum, the metadata given.
func (e *env) plant(key string, data []byte, meta map[string]string) {
	e.t.Helper()
	sum := md5.Sum(data)
	client, err := NewClient(context.Background(), e.clientC) // no checksum, as cctvd v0.1.0 wrote
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: bytes.NewReader(data), ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:])), Metadata: meta})
	if err != nil {
		e.t.Fatalf("plant %s: %v", key, err)
	}
}

func (e *env) absent(key string) {
	e.t.Helper()
	_, err := e.minio.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		e.t.Errorf("%s: want no object, HEAD says %v", key, err)
	}
}

func shaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// events records the uploader's conflict and quarantine reports.
type events struct {
	mu          sync.Mutex
	conflicts   []catalog.Record
	quarantined []quarantineEvent
}

type quarantineEvent struct {
	rec     catalog.Record
	why     string
	offsite bool
}

func (ev *events) hook(u *Uploader) {
	u.deps.OnConflict = func(r catalog.Record) {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		ev.conflicts = append(ev.conflicts, r)
	}
	u.deps.OnQuarantined = func(r catalog.Record, why string, offsite bool) {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		ev.quarantined = append(ev.quarantined, quarantineEvent{r, why, offsite})
	}
}

// quarantines returns the quarantines reported so far (the uploader
// reports one before its status counts it, so a wait on the count finds
// its report).
func (ev *events) quarantines() []quarantineEvent {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return slices.Clone(ev.quarantined)
}

// conflictCount is how many conflicts were reported so far.
func (ev *events) conflictCount() int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return len(ev.conflicts)
}

// runWithEvents starts an uploader whose reports go to ev; Run has not
// started before the hooks are set.
func (e *env) runWithEvents(cfg Config, ev *events) *running {
	e.t.Helper()
	run := e.runStopped(cfg, e.clientC)
	ev.hook(run.u)
	run.start(e.t)
	return run
}

func TestPlantedDifferentObjectIsNeverOverwritten(t *testing.T) {
	e := newEnv(t)
	small := e.addSegment("cam1", t0, 200<<10)
	big := e.addSegment("cam1", t0.Add(10*time.Second), 21<<20) // multipart: 2 parts of 16 MiB
	planted := map[int64][]byte{small.ID: mp4ish(1000), big.ID: mp4ish(3000)}
	for _, r := range []catalog.Record{small, big} {
		e.plant(r.Key, planted[r.ID], map[string]string{"sha256": shaHex(planted[r.ID])})
	}
	var ev events
	run := e.runWithEvents(Config{}, &ev)
	run.await(t, 2, time.Minute)

	for _, r := range []catalog.Record{small, big} {
		local, _ := os.ReadFile(r.Path)
		if got, _ := e.object(bucket, r.Key); !bytes.Equal(got, planted[r.ID]) {
			t.Errorf("%s: the planted object was overwritten (%d bytes now)", r.Key, len(got))
		}
		want := ConflictKey(r.Key, shaHex(local))
		if !strings.HasSuffix(want, ".conflict-"+shaHex(local)[:12]+".mp4") || !strings.HasPrefix(want, strings.TrimSuffix(r.Key, ".mp4")) {
			t.Errorf("conflict key %s for %s", want, r.Key)
		}
		got, meta := e.object(bucket, want)
		if !bytes.Equal(got, local) || meta[MetaSHA256] != shaHex(local) {
			t.Errorf("%s: not the local file", want)
		}
		row, _ := e.cat.Get(context.Background(), r.ID)
		if row.Upload != catalog.Uploaded || row.Key != want || row.ConflictKey != r.Key {
			t.Errorf("row %s: upload %s key %s conflict %s", r.Name(), row.Upload, row.Key, row.ConflictKey)
		}
		wantHow := VerifiedSHA256
		if r.ID == big.ID {
			wantHow = VerifiedCRC64NVME
		}
		if row.Verified != wantHow {
			t.Errorf("row %s verified by %q, want %q", r.Name(), row.Verified, wantHow)
		}
	}
	st := run.u.Status()
	if st.Conflicts != 2 || st.Failures != 0 || ev.conflictCount() != 2 {
		t.Errorf("status %+v, %d conflict reports\n%s", st, ev.conflictCount(), e.logs.String())
	}
	if n := strings.Count(e.logs.String(), "S3 holds different content under this segment's key"); n != 2 {
		t.Errorf("%d conflict warnings for 2 conflicts:\n%s", n, e.logs.String())
	}
	if n := e.minio.MultipartUploads(bucket, big.Key); n != 0 {
		t.Errorf("%d multipart uploads left on the original key", n)
	}
}

// TestIdenticalObjectIsNotSentAgain: S3 already holds the segment (an
// upload whose answer was lost; a catalog rebuilt from the disk; an object
// cctvd v0.1.0 uploaded without a checksum): it counts as uploaded, and
// what is in S3 is never replaced.
func TestIdenticalObjectIsNotSentAgain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// The answer to a conditional write was lost: the row is fresh
	// (no HEAD first), S3 refuses the write (412), the HEAD finds our bytes.
	lost := e.addSegment("cam1", t0, 100<<10)
	lostData, _ := os.ReadFile(lost.Path)
	e.plant(lost.Key, lostData, map[string]string{MetaSHA256: shaHex(lostData), MetaCamera: "cam1"})

	// cctvd v0.1.0 uploaded this one (Content-MD5, sha256 metadata, no
	// checksum) and the catalog was then rebuilt from the disk.
	rel, p := e.segmentPath("cam1", t0.Add(10*time.Second))
	oldData := mp4ish(300 << 10)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, oldData, 0o644)
	e.plant(Key("rec/2025", rel), oldData, map[string]string{MetaSHA256: shaHex(oldData), MetaCamera: "cam1"})
	if res, err := e.cat.Reconcile(ctx, func(rel string) string { return Key("rec/2025", rel) }); err != nil || res.Added != 1 {
		t.Fatalf("reconcile: %+v %v", res, err)
	}
	old, _ := e.cat.ByPath(ctx, p)
	before := map[string]*time.Time{}
	for _, k := range []string{lost.Key, old.Key} {
		h, err := e.minio.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		before[k] = h.LastModified
	}

	puts := e.puts.Load()
	var ev events
	run := e.runWithEvents(Config{}, &ev)
	run.await(t, 2, time.Minute)
	if n := e.puts.Load() - puts; n != 1 {
		t.Errorf("%d writes, want 1: the fresh row's conditional write, refused", n)
	}
	for _, k := range []string{lost.Key, old.Key} {
		h, _ := e.minio.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		if !h.LastModified.Equal(*before[k]) {
			t.Errorf("%s was written again", k)
		}
	}
	for _, r := range []catalog.Record{lost, old} {
		row, _ := e.cat.Get(ctx, r.ID)
		if row.Upload != catalog.Uploaded || row.Verified != VerifiedMetadata || row.ConflictKey != "" {
			t.Errorf("row %s: %s, verified %q, conflict %q", r.Name(), row.Upload, row.Verified, row.ConflictKey)
		}
	}
	if st := run.u.Status(); st.Conflicts != 0 || st.Failures != 0 || ev.conflictCount() != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestDamagedFilesAreQuarantinedNeverUploaded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	video := realMP4(t, "2")
	zeroTail := append(bytes.Clone(video), make([]byte, 70<<10)...)
	notMP4 := mp4ish(50 << 10)
	copy(notMP4, "garbage!")
	headerOnly := video[:bytes.Index(video, []byte("moof"))-4] // ftyp and moov: opened, no frame written

	// Closed in this run: the cheap check only.
	empty := e.addFile("cam1", t0, nil)
	short := e.addFile("cam1", t0.Add(10*time.Second), video)
	os.Truncate(short.Path, int64(len(video)/2)) // a power cut took the rest
	noFtyp := e.addFile("cam1", t0.Add(20*time.Second), notMP4)
	zeros := e.addFile("cam1", t0.Add(30*time.Second), zeroTail)
	good := e.addFile("cam1", t0.Add(40*time.Second), video)
	noFrames := e.addFile("cam1", t0.Add(50*time.Second), headerOnly)

	// Rebuilt from the disk (cctvd did not see them close): decoded too.
	// An earlier upload of the empty one is in S3, as after a power cut
	// that emptied files cctvd had uploaded.
	put := func(start time.Time, data []byte) (string, string) {
		rel, p := e.segmentPath("cam2", start)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, data, 0o644)
		return rel, p
	}
	_, undecodablePath := put(t0, mp4ish(80<<10))
	_, rebuiltGoodPath := put(t0.Add(10*time.Second), video)
	emptiedRel, emptiedPath := put(t0.Add(20*time.Second), nil)
	e.plant(Key("rec/2025", emptiedRel), video, map[string]string{MetaSHA256: shaHex(video), MetaCamera: "cam2"})
	if res, err := e.cat.Reconcile(ctx, func(rel string) string { return Key("rec/2025", rel) }); err != nil || res.Added != 3 {
		t.Fatalf("reconcile: %+v %v", res, err)
	}
	undecodable, _ := e.cat.ByPath(ctx, undecodablePath)
	rebuiltGood, _ := e.cat.ByPath(ctx, rebuiltGoodPath)
	emptied, _ := e.cat.ByPath(ctx, emptiedPath)

	var ev events
	run := e.runWithEvents(Config{}, &ev)
	run.await(t, 2, time.Minute) // good and rebuiltGood
	bad := []catalog.Record{empty, short, noFtyp, zeros, noFrames, undecodable, emptied}
	run.awaitStatus(t, time.Minute, func(s Status) bool { return s.Quarantined == uint64(len(bad)) })

	for _, r := range []catalog.Record{good, rebuiltGood} {
		if row, _ := e.cat.Get(ctx, r.ID); row.Upload != catalog.Uploaded || row.Local != catalog.Present {
			t.Errorf("sound file %s: %s/%s", r.Name(), row.Upload, row.Local)
		}
	}
	whys := map[int64]string{}
	offsite := map[int64]bool{}
	for _, q := range ev.quarantines() {
		whys[q.rec.ID], offsite[q.rec.ID] = q.why, q.offsite
	}
	wantWhy := map[int64]string{empty.ID: "empty", short.ID: "fewer than", noFtyp.ID: "not an MP4", zeros.ID: "zeros", noFrames.ID: "no video frame",
		undecodable.ID: "ffprobe decodes no video", emptied.ID: "empty"}
	for _, r := range bad {
		row, _ := e.cat.Get(ctx, r.ID)
		q := filepath.Join(e.save, layout.QuarantineName, r.Camera, r.Name())
		if row.Local != catalog.Quarantined || row.DeleteCause != catalog.CauseCorrupt || row.Path != q || !strings.Contains(row.LastError, wantWhy[r.ID]) {
			t.Errorf("row %s: local %s cause %s path %s error %q", r.Name(), row.Local, row.DeleteCause, row.Path, row.LastError)
		}
		if _, err := os.Stat(q); err != nil {
			t.Errorf("%s not in the quarantine: %v", r.Name(), err)
		}
		if _, err := os.Stat(r.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still in place", r.Name())
		}
		if !strings.Contains(whys[r.ID], wantWhy[r.ID]) {
			t.Errorf("%s reported as %q, want %q", r.Name(), whys[r.ID], wantWhy[r.ID])
		}
		if r.ID == emptied.ID {
			continue
		}
		e.absent(r.Key)
		if offsite[r.ID] || row.Upload == catalog.Uploaded {
			t.Errorf("%s: counted as held in S3", r.Name())
		}
	}
	// The emptied file: never uploaded over the earlier upload, which S3
	// keeps as the segment's copy, so no footage is lost.
	if got, _ := e.object(bucket, emptied.Key); !bytes.Equal(got, video) {
		t.Errorf("the earlier upload was replaced (%d bytes)", len(got))
	}
	if row, _ := e.cat.Get(ctx, emptied.ID); !offsite[emptied.ID] || row.Upload != catalog.Uploaded || row.Verified != VerifiedEarlier {
		t.Errorf("emptied row: offsite %v, %s, %q", offsite[emptied.ID], row.Upload, row.Verified)
	}
	if st := run.u.Status(); st.Failures != 0 || st.Uploaded != 2 {
		t.Errorf("status %+v", st)
	}
}

func TestSoundness(t *testing.T) {
	video := realMP4(t, "1")
	moof := bytes.Index(video, []byte("moof")) - 4
	box := func(typ string, size int) []byte {
		b := make([]byte, size)
		binary.BigEndian.PutUint32(b, uint32(size))
		copy(b[4:], typ)
		for i := 8; i < size; i++ {
			b[i] = byte(i)
		}
		return b
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	ftyp := box("ftyp", 32)
	big64 := join(ftyp, []byte{0, 0, 0, 1, 'f', 'r', 'e', 'e', 0, 0, 0, 0, 0, 0, 0, 24}, bytes.Repeat([]byte{7}, 8))
	tests := []struct {
		name     string
		data     []byte
		recorded int64
		want     string // a part of the reason, "" for a sound file
	}{
		{"a real segment", video, int64(len(video)), ""},
		{"a real segment, the catalog recorded less", video, 10, ""},
		{"empty", nil, 0, "empty"},
		{"shorter than it closed", video[:len(video)/2], int64(len(video)), "fewer than"},
		{"not an MP4", box("moov", 100), 0, "not an MP4"},
		{"zeros at the end", join(video, make([]byte, 70<<10)), 0, "zeros"},
		{"only zeros after the ftyp box", join(ftyp, make([]byte, 1000)), 0, "zeros"},
		{"header, no frame", video[:moof], 0, "no video frame"},
		{"boxes without frames, a 64-bit size among them", big64, 0, "no video frame"},
		{"mdat, not fragmented", join(ftyp, box("mdat", 500), box("moov", 100)), 0, ""},
		{"a box to the end of the file", join(ftyp, []byte{0, 0, 0, 0, 'm', 'd', 'a', 't', 9, 9}), 0, ""},
		{"a header bigger than 64 KiB, no frame", join(ftyp, box("moov", 70<<10)), 0, "no video frame"},
		{"boxes past the first 64 KiB: cannot tell", join(ftyp, box("moov", 70<<10), box("mdat", 100)), 0, ""},
		{"a box size that cannot be: cannot tell", join(ftyp, []byte{0, 0, 0, 3, 'f', 'r', 'e', 'e', 1}), 0, ""},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, fmt.Sprint(i))
			os.WriteFile(p, tt.data, 0o644)
			f, _ := os.Open(p)
			defer f.Close()
			why, err := soundness(f, int64(len(tt.data)), tt.recorded)
			if err != nil {
				t.Fatal(err)
			}
			if (tt.want == "") != (why == "") || !strings.Contains(why, tt.want) {
				t.Errorf("soundness = %q, want %q", why, tt.want)
			}
		})
	}
}
