package uploader

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/durable"
	"github.com/cctvd/cctvd/layout"
)

// edge is how much of each end of a file the cheap check reads.
const edge = 64 << 10

// soundness is the cheap check every file passes before it goes up: it
// says why a file must not (empty, shorter than the catalog recorded when
// it closed, not an MP4, zeros where the video should be: data a power cut
// kept from the disk), or "" when it may.
func soundness(f *os.File, size, recorded int64) (string, error) {
	switch {
	case size == 0:
		return "the file is empty", nil
	case size < recorded:
		return fmt.Sprintf("the file has %d bytes, fewer than the %d it had when it closed", size, recorded), nil
	}
	head := make([]byte, min(size, edge))
	if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if len(head) < 8 || string(head[4:8]) != "ftyp" {
		return "the file is not an MP4 (no ftyp box at its start)", nil
	}
	tail := make([]byte, min(size, edge))
	if _, err := f.ReadAt(tail, size-int64(len(tail))); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if allZero(tail) {
		return "the file ends in zeros where its video should be (data that never reached the disk)", nil
	}
	return walkBoxes(head, size), nil
}

// walkBoxes walks the MP4's top-level boxes in head (the file's first
// bytes; size is the file's) and says what is wrong: zeros where a box
// should start (data a power cut kept from the disk), or the whole file
// walked without a box that holds frames (mdat, or a fragment's moof): what
// ffmpeg leaves when it opens a segment and writes nothing to it. A walk
// that leaves head, or meets a box it cannot read, says nothing ("").
func walkBoxes(head []byte, size int64) string {
	var off int64
	for off+8 <= int64(len(head)) {
		if allZero(head[off : off+8]) {
			return "the file holds zeros where its video should be (data that never reached the disk)"
		}
		n := int64(binary.BigEndian.Uint32(head[off:]))
		switch typ := string(head[off+4 : off+8]); {
		case typ == "mdat" || typ == "moof":
			return ""
		case n == 1 && off+16 <= int64(len(head)): // a 64-bit size follows
			n = int64(binary.BigEndian.Uint64(head[off+8:]))
		case n == 0: // to the end of the file
			return ""
		}
		if n < 8 {
			return ""
		}
		off += n
	}
	if off == size {
		return whyNoFrame
	}
	return ""
}

// whyNoFrame: a segment ffmpeg opened and wrote no frame to (it stalled,
// or exited): no footage in it was lost, the gap log has the cause.
const whyNoFrame = "the file holds an MP4 header and no video frame"

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return len(b) > 0
}

// quarantine moves a damaged file to savePath/.quarantine/<camera>/ (never
// deletes it), records it in the catalog and reports it. The row says
// where the file goes before the file is there: a file in the quarantine
// always has its row at its path, so retention, which deletes quarantined
// files only over the quarantine's bound and records each deletion in its
// row first, never meets one it cannot record. (A crash between the record
// and the rename leaves the row pointing into the quarantine and the file
// in place: catalog.Reconcile puts the row back, and the file is checked
// again.) When S3 keeps an object cctvd uploaded earlier under the
// segment's key (a rebuilt row whose file a power cut emptied), that
// object is the segment's copy: it is recorded as uploaded, and nothing of
// the footage is lost.
func (a *attempter) quarantine(ctx context.Context, r catalog.Record, why string) error {
	keep := context.WithoutCancel(ctx)
	cat := a.u.deps.Catalog
	// S3 is asked first, with the file still in place: the record and the
	// move that follow are back to back.
	offsite := false
	if r.VerifyRemote || r.MustDecode { // it may have gone up before
		hctx, cancel := context.WithTimeout(keep, 10*time.Second) // even at shutdown: the answer decides a gap
		obj, found, herr := a.head(hctx, r.Key)
		cancel()
		switch {
		case herr != nil:
			a.u.log.Warn().Err(herr).Str("segment", r.Name()).Msg("cannot ask S3 whether it keeps an earlier upload of a damaged file; counting its footage as lost")
		case found && obj.size > 0 && obj.sha256Meta != "" && obj.camera == r.Camera:
			offsite = true
			if err := cat.MarkUploadedTo(keep, r.ID, a.cfg.Bucket, obj.etag, VerifiedEarlier); err != nil {
				a.u.log.Error().Err(err).Msg("cannot record the earlier upload")
			}
		}
	}
	dst, err := a.quarantinePath(r)
	if err != nil {
		return fmt.Errorf("quarantine %s: %w", r.Name(), err)
	}
	if err := cat.MarkQuarantined(keep, r.ID, dst, why); err != nil {
		return fmt.Errorf("quarantine %s: record it: %w", r.Name(), err) // nothing moved: tried again
	}
	if err := os.Rename(r.Path, dst); err != nil {
		a.unrecord(keep, r, err)
		return fmt.Errorf("quarantine %s: %w", r.Name(), err)
	}
	for _, d := range []string{filepath.Dir(dst), filepath.Dir(r.Path)} {
		if err := durable.SyncDir(d); err != nil { // moved; a power cut may undo it, and reconcile the row
			a.u.log.Warn().Err(err).Str("segment", r.Name()).Msg("cannot sync a folder after a move into the quarantine")
		}
	}
	ev := a.u.log.Error() // footage lost
	switch {
	case why == whyNoFrame:
		ev = a.u.log.Info() // none was recorded
	case offsite:
		ev = a.u.log.Warn() // S3 has it
	}
	ev.Str("segment", r.Name()).Str("file", dst).Str("why", why).Bool("inS3", offsite).
		Msg("damaged file moved to quarantine, not uploaded")
	r.Path = dst
	a.u.quarantined(r, why, offsite)
	return errQuarantined
}

// unquarantiner is catalog.Catalog's Unquarantine: the undoing of a
// quarantine recorded whose file could not be moved.
type unquarantiner interface {
	Unquarantine(ctx context.Context, id int64, path string) error
}

// unrecord puts r's row back where its file still is, after the move into
// the quarantine failed; without it (a catalog without Unquarantine, or
// its write failing) the row points into the quarantine until the next
// reconcile puts it back.
func (a *attempter) unrecord(ctx context.Context, r catalog.Record, moveErr error) {
	if uq, ok := a.u.deps.Catalog.(unquarantiner); ok {
		err := uq.Unquarantine(ctx, r.ID, r.Path)
		if err == nil {
			a.u.log.Error().Err(moveErr).Str("segment", r.Name()).Msg("cannot move a damaged file into the quarantine; it stays in place and is tried again")
			return
		}
		moveErr = errors.Join(moveErr, err)
	}
	a.u.log.Error().Err(moveErr).Str("segment", r.Name()).
		Msg("cannot move a damaged file into the quarantine, nor record that it stays in place; the next reconcile puts its row back")
}

// quarantinePath is where r's file goes in savePath/.quarantine/<camera>/
// (made if need be): its name, or with ".N" before the extension when
// another file there has it.
func (a *attempter) quarantinePath(r catalog.Record) (string, error) {
	if a.cfg.SavePath == "" {
		return "", errors.New("no savePath to quarantine into")
	}
	dir := layout.QuarantineDir(a.cfg.SavePath, r.Camera)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := r.Name()
	ext := filepath.Ext(name)
	dst := filepath.Join(dir, name)
	for n := 1; ; n++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			return dst, nil
		}
		dst = filepath.Join(dir, strings.TrimSuffix(name, ext)+"."+strconv.Itoa(n)+ext)
	}
}
