// Package mp4 reads the fragmented MP4 segments cctvd records (ffmpeg's
// segment muxer: an empty moov, then a moof and an mdat every half second)
// and joins runs of their samples into one progressive MP4: ftyp, a moov
// holding the whole sample table and an edit list, then one mdat. The moov
// comes first, so a player starts while the file downloads (what ffmpeg's
// +faststart does in a second pass).
//
// Nothing is decoded or re-encoded: sample bytes are copied as they are.
// The joined file is described by extents of its source files (a File), so
// it can be served with Range requests or hashed without being written
// anywhere first, and the same sources and cuts always give the same bytes.
//
// Only what cctvd records is read: one video track (H.264 or H.265), in
// fragments; other tracks are ignored. A file cut short (a salvaged
// recording) keeps the samples whose bytes are all there. The boxes' fields
// are decoded, and the joined file's boxes encoded, by Eyevinn's mp4ff.
//
// A file is not trusted (anyone who can write the bucket can write one):
// what it claims is bounded by what it holds before anything is
// allocated. A box is read into memory only as far as the file has
// bytes for it (and at most 64 MiB), a sample takes at least one byte of
// the file after its moof, the entries a trun claims must fit in the
// trun, a file holds at most MaxSamples samples, and mp4ff is handed only
// the few boxes that are needed (see node). Reading a file of n bytes
// allocates O(n), never what its boxes claim.
package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/Eyevinn/mp4ff/bits"
	ff "github.com/Eyevinn/mp4ff/mp4"
)

// ErrFormat is wrapped by every error about a file that is not a
// fragmented MP4 with a video track this package can read.
var ErrFormat = errors.New("not a fragmented MP4 video")

// maxHeaderBox bounds the moov and moof boxes read into memory.
const maxHeaderBox = 64 << 20

// MaxSamples is the most samples (frames) one file may hold: 4,194,304,
// 24 hours at 48 fps, or a 10-minute segment at 6990 fps. Its sample
// table takes 128 MiB. A file claiming more is refused (ErrFormat).
const MaxSamples = 1 << 22

// Track is what a segment's init (its moov) says of the video track.
type Track struct {
	// Timescale is the media timescale: units per second of DTS and PTS.
	Timescale uint32
	// Width and Height are the track's display size, in pixels.
	Width, Height uint32
	// Codec is the sample entry's type: avc1, hvc1, hev1, ...
	Codec string

	id    uint32
	stsd  []byte     // the whole stsd box, copied into joined files
	shift int64      // the init's edit list media time: PTS = DTS + CTO - shift
	trex  ff.TrexBox // the track's fragment defaults
}

// SameFormat says whether samples of t and o can play as one track: same
// timescale, same sample description (codec, size, parameter sets), same
// composition shift.
func (t Track) SameFormat(o Track) bool {
	return t.Timescale == o.Timescale && t.shift == o.shift && string(t.stsd) == string(o.stsd)
}

func (t Track) String() string { return fmt.Sprintf("%s %dx%d", t.Codec, t.Width, t.Height) }

// Sample is one video frame of a segment, in decode order.
type Sample struct { // 32 bytes: its fields ordered by size
	// Offset and Size locate its bytes in the file.
	Offset int64
	// DTS is its decode time and Duration its decode duration, in
	// timescale units; CTO is its composition offset.
	DTS      int64
	Size     uint32
	Duration uint32
	CTO      int32
	// Sync marks a keyframe: decoding can start there.
	Sync bool
}

// Segment is a parsed fragmented MP4 file.
type Segment struct {
	Track   Track
	Samples []Sample
	// Truncated is set when the file ends inside a fragment: the samples
	// whose bytes are all there are kept.
	Truncated bool

	size int64 // the file's length, -1 if not known
}

// PTS is sample i's presentation time, in timescale units.
func (s *Segment) PTS(i int) int64 {
	return s.Samples[i].DTS + int64(s.Samples[i].CTO) - s.Track.shift
}

// Read parses the fragmented MP4 that r reads from its first byte to its
// end, in one pass: only the moov and the moofs are kept in memory, the
// media data is read through (so a reader that also hashes or saves the
// bytes sees them all). size is the file's length (an S3 object's
// Content-Length), which bounds the samples it may claim; -1 when it is
// not known, and then only MaxSamples does. It returns the segment and
// the bytes read.
func Read(r io.Reader, size int64) (*Segment, int64, error) {
	return ReadWith(r, Options{Size: size})
}

// Options are how ReadWith reads.
type Options struct {
	// Size is the file's length, as for Read; -1 when not known.
	Size int64
	// Fragment, if set, is called as soon as each moof is read, before
	// the bytes after it: seg.Samples[first:] are its samples (a reader
	// teeing the file elsewhere can decide which of their bytes to keep).
	// An error from it ends the read.
	Fragment func(seg *Segment, first int) error
}

// ReadWith is Read with options.
func ReadWith(r io.Reader, o Options) (*Segment, int64, error) {
	size := o.Size
	seg := &Segment{size: size}
	haveInit := false
	var nextDTS int64
	var off int64 // bytes read so far
	var hdr [16]byte
	for {
		// The top-level box headers are read here, not with mp4ff's
		// DecodeHeader: r is a stream that must not be read ahead (a reader
		// teeing it decides what to keep from the samples of each moof
		// before the bytes after it pass), the bytes of a header cut short
		// count (Truncated), and a last box of size 0 ("to the end of the
		// file"), which mp4ff refuses, is read through.
		n, err := io.ReadFull(r, hdr[:8])
		off += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, io.ErrUnexpectedEOF) { // cut short inside a box header
			seg.Truncated = true
			break
		}
		if err != nil {
			return nil, off, fmt.Errorf("read at %d: %w", off, err)
		}
		start := off - 8
		size, hlen, typ := int64(binary.BigEndian.Uint32(hdr[:4])), int64(8), string(hdr[4:8])
		switch size {
		case 0: // to the end of the file
			size = math.MaxInt64
		case 1:
			n, err := io.ReadFull(r, hdr[8:16])
			off += int64(n)
			if err != nil {
				seg.Truncated = true
				break
			}
			size, hlen = int64(binary.BigEndian.Uint64(hdr[8:16])), 16
		}
		if seg.Truncated {
			break
		}
		if size < hlen {
			return nil, off, fmt.Errorf("%w: box %q at %d of size %d", ErrFormat, typ, start, size)
		}
		bodyLen := size - hlen
		if typ != "moov" && typ != "moof" {
			var n int64
			if sk, ok := r.(skipper); ok {
				n, err = sk.Skip(bodyLen)
			} else {
				n, err = io.CopyN(io.Discard, r, bodyLen)
			}
			off += n
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) { // an mdat cut short, or one to the end of the file
				seg.Truncated = seg.Truncated || size != math.MaxInt64
				break
			}
			return nil, off, fmt.Errorf("read at %d: %w", off, err)
		}
		if bodyLen > maxHeaderBox {
			return nil, off, fmt.Errorf("%w: %s box of %d bytes", ErrFormat, typ, size)
		}
		body, err := readBody(r, bodyLen, seg.size-off)
		off += int64(len(body))
		if errors.Is(err, io.ErrUnexpectedEOF) {
			seg.Truncated = true
			break
		}
		if err != nil {
			return nil, off, fmt.Errorf("read at %d: %w", off, err)
		}
		if typ == "moov" {
			if haveInit {
				return nil, off, fmt.Errorf("%w: a second moov", ErrFormat)
			}
			if err := seg.readInit(body); err != nil {
				return nil, off, err
			}
			haveInit = true
			continue
		}
		if !haveInit {
			return nil, off, fmt.Errorf("%w: a moof before the moov", ErrFormat)
		}
		first := len(seg.Samples)
		if nextDTS, err = seg.readFragment(body, start, nextDTS); err != nil {
			return nil, off, fmt.Errorf("fragment at %d: %w", start, err)
		}
		if o.Fragment != nil && len(seg.Samples) > first {
			if err := o.Fragment(seg, first); err != nil {
				return nil, off, err
			}
		}
	}
	if !haveInit {
		return nil, off, fmt.Errorf("%w: no moov", ErrFormat)
	}
	// Samples whose bytes run past the end of a file cut short.
	n := len(seg.Samples)
	for n > 0 && seg.Samples[n-1].Offset+int64(seg.Samples[n-1].Size) > off {
		n--
		seg.Truncated = true
	}
	seg.Samples = seg.Samples[:n]
	if len(seg.Samples) == 0 {
		return nil, off, fmt.Errorf("%w: no video samples", ErrFormat)
	}
	return seg, off, nil
}

// readBody reads a box body of n bytes, allocating only as much as r
// holds (left, when not negative, is what the file has after the header):
// a box claiming more than the file holds costs what the file holds; when
// the file's size is not known, a box claiming over 1 MiB gets its buffer
// as its bytes arrive (at most twice what arrived).
// io.ErrUnexpectedEOF: the file ends inside the box.
func readBody(r io.Reader, n, left int64) ([]byte, error) {
	if left >= 0 && n > left {
		n = left + 1 // read what is there, and see it end
	}
	first := n
	if n > 1<<20 {
		first = 64 << 10
	}
	buf := make([]byte, 0, first)
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(n-int64(len(buf)), int64(len(buf)))))
		}
		m, err := r.Read(buf[len(buf):min(int64(cap(buf)), n)])
		buf = buf[:len(buf)+m]
		if errors.Is(err, io.EOF) {
			return buf, io.ErrUnexpectedEOF
		}
		if err != nil {
			return buf, err
		}
	}
	if left >= 0 && int64(len(buf)) > left {
		return buf, io.ErrUnexpectedEOF // more bytes than the file was said to have
	}
	return buf, nil
}

// skipper passes over bytes without reading them.
type skipper interface {
	Skip(n int64) (int64, error)
}

// ReadAt parses the fragmented MP4 of size bytes that r reads, reading
// only the box headers, the moov and the moofs: the media data is passed
// over, not read.
func ReadAt(r io.ReaderAt, size int64) (*Segment, error) {
	seg, _, err := Read(&atReader{r: r, size: size}, size)
	return seg, err
}

// atReader reads an io.ReaderAt in order, and skips.
type atReader struct {
	r         io.ReaderAt
	off, size int64
}

func (a *atReader) Read(p []byte) (int, error) {
	if a.off >= a.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), a.size-a.off)]
	n, err := a.r.ReadAt(p, a.off)
	a.off += int64(n)
	if n > 0 && errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

func (a *atReader) Skip(n int64) (int64, error) {
	k := min(n, a.size-a.off)
	a.off += k
	if k < n {
		return k, io.EOF
	}
	return k, nil
}

// Box decoding. The fields of the boxes this package reads are decoded by
// Eyevinn's mp4ff; the containers (moov, trak, mdia, minf, stbl, edts,
// mvex, moof, traf) are walked here, box header by box header (mp4ff's
// header decoder), and only the leaf boxes that are needed are handed to
// mp4ff, each with its own decoder and all of its bytes (never an mdat:
// those are passed over above). Decoding a whole moov or moof with mp4ff
// would decode every box it holds, whatever its type, and some of mp4ff's
// decoders allocate far more than their box holds (v0.50.0: a 28-byte
// sgpd with an "alst" entry costs 4 GiB, see
// TestBoxesNotNeededAreNotDecoded), while the bound of this package is
// what the file holds. The one leaf needed whose claims can exceed its
// bytes, the trun (16 bytes may claim 1024 samples), has its sample count
// bounded by the file (room) before mp4ff decodes it. The sample
// description (stsd) is not decoded at all: it is copied as it is into
// joined files, so it cannot change on the way.

// node is one box: its header, and all of its bytes, header included.
type node struct {
	hdr ff.BoxHeader
	b   []byte
}

// body is the box without its header; nil for no box.
func (n node) body() []byte {
	if n.b == nil {
		return nil
	}
	return n.b[n.hdr.Hdrlen:]
}

// children calls fn for each box in b (a container's body), in order.
func children(b []byte, fn func(n node) error) error {
	sr := bits.NewFixedSliceReader(b)
	for pos := 0; pos < len(b); {
		h, err := ff.DecodeHeaderSR(sr)
		if err != nil {
			return fmt.Errorf("%w: box header at %d of %d bytes: %v", ErrFormat, pos, len(b), err)
		}
		if h.Size > uint64(len(b)-pos) {
			return fmt.Errorf("%w: box %q of size %d in %d bytes", ErrFormat, h.Name, h.Size, len(b)-pos)
		}
		end := pos + int(h.Size)
		if err := fn(node{hdr: h, b: b[pos:end:end]}); err != nil {
			return err
		}
		sr.SetPos(end)
		pos = end
	}
	return nil
}

// child returns the first box along path under b (a container's body);
// a zero node if there is none.
func child(b []byte, path ...string) node {
	var found node
	for _, want := range path {
		found = node{}
		_ = children(b, func(n node) error {
			if found.b == nil && n.hdr.Name == want {
				found = n
			}
			return nil
		})
		if found.b == nil {
			return node{}
		}
		b = found.body()
	}
	return found
}

// decode decodes n with mp4ff's decoder for its type; ErrFormat if it is
// missing, short or malformed.
func decode[T ff.Box](n node, dec ff.BoxDecoderSR) (T, error) {
	var zero T
	if n.b == nil {
		return zero, fmt.Errorf("%w: a box is missing", ErrFormat)
	}
	sr := bits.NewFixedSliceReader(n.b)
	sr.SetPos(n.hdr.Hdrlen)
	box, err := dec(n.hdr, 0, sr)
	if err == nil {
		err = sr.AccError()
	}
	if err != nil {
		return zero, fmt.Errorf("%w: %s box: %v", ErrFormat, n.hdr.Name, err)
	}
	t, ok := box.(T)
	if !ok {
		return zero, fmt.Errorf("%w: %s decoded as %T", ErrFormat, n.hdr.Name, box)
	}
	return t, nil
}

// readInit reads the moov: the first video track, its sample description,
// timescale, size, edit list and fragment defaults.
func (s *Segment) readInit(moov []byte) error {
	var trak node
	err := children(moov, func(n node) error {
		if n.hdr.Name != "trak" || trak.b != nil {
			return nil
		}
		if hdlr, err := decode[*ff.HdlrBox](child(n.body(), "mdia", "hdlr"), ff.DecodeHdlrSR); err == nil && hdlr.HandlerType == "vide" {
			trak = n
		}
		return nil
	})
	if err != nil {
		return err
	}
	if trak.b == nil {
		return fmt.Errorf("%w: no video track", ErrFormat)
	}
	t, body := &s.Track, trak.body()
	tkhd, err := decode[*ff.TkhdBox](child(body, "tkhd"), ff.DecodeTkhdSR)
	if err != nil {
		return err
	}
	mdhd, err := decode[*ff.MdhdBox](child(body, "mdia", "mdhd"), ff.DecodeMdhdSR)
	if err != nil {
		return err
	}
	if mdhd.Timescale == 0 {
		return fmt.Errorf("%w: timescale 0", ErrFormat)
	}
	t.id, t.Timescale = tkhd.TrackID, mdhd.Timescale
	t.Width, t.Height = uint32(tkhd.Width)>>16, uint32(tkhd.Height)>>16
	// The sample description, copied as it is into joined files (with a
	// 32-bit header); the codec is its first entry's type.
	stsd := child(body, "mdia", "minf", "stbl", "stsd").body()
	if len(stsd) < 16 {
		return fmt.Errorf("%w: no sample description", ErrFormat)
	}
	t.Codec = string(stsd[12:16])
	t.stsd = binary.BigEndian.AppendUint32(nil, uint32(len(stsd)+8))
	t.stsd = append(append(t.stsd, "stsd"...), stsd...)
	if n := child(body, "edts", "elst"); n.b != nil {
		elst, err := decode[*ff.ElstBox](n, ff.DecodeElstSR)
		if err != nil {
			return err
		}
		for _, e := range elst.Entries { // the first non-empty edit
			if e.MediaTime >= 0 {
				t.shift = e.MediaTime
				break
			}
		}
	}
	return children(child(moov, "mvex").body(), func(n node) error {
		if n.hdr.Name != "trex" {
			return nil
		}
		trex, err := decode[*ff.TrexBox](n, ff.DecodeTrexSR)
		if err == nil && trex.TrackID == t.id {
			t.trex = *trex
		}
		return err
	})
}

// room says whether the file has room for n more samples claimed by the
// moof at moofStart: each takes at least one byte of the file after it,
// and the file holds at most MaxSamples.
func (s *Segment) room(n, moofStart int64) error {
	total := int64(len(s.Samples)) + n
	if total > MaxSamples {
		return fmt.Errorf("%w: more than %d samples", ErrFormat, MaxSamples)
	}
	if s.size >= 0 && n > s.size-moofStart {
		return fmt.Errorf("%w: a trun claims %d samples, more than the %d bytes after its moof hold", ErrFormat, n, s.size-moofStart)
	}
	if s.size >= 0 && total > s.size {
		return fmt.Errorf("%w: %d samples claimed in a file of %d bytes", ErrFormat, total, s.size)
	}
	return nil
}

// readFragment appends a moof's samples of the video track; moofStart is
// the moof's offset in the file, the base of its data offsets. It returns
// the decode time after the fragment.
func (s *Segment) readFragment(moof []byte, moofStart, dts int64) (int64, error) {
	err := children(moof, func(traf node) error {
		if traf.hdr.Name != "traf" {
			return nil
		}
		var tfhdBox, tfdtBox node
		var truns []node
		err := children(traf.body(), func(n node) error {
			switch {
			case n.hdr.Name == "tfhd" && tfhdBox.b == nil:
				tfhdBox = n
			case n.hdr.Name == "tfdt" && tfdtBox.b == nil:
				tfdtBox = n
			case n.hdr.Name == "trun":
				truns = append(truns, n)
			}
			return nil
		})
		if err != nil || tfhdBox.b == nil {
			return err
		}
		tfhd, err := decode[*ff.TfhdBox](tfhdBox, ff.DecodeTfhdSR)
		if err != nil {
			return err
		}
		if tfhd.TrackID != s.Track.id {
			return nil
		}
		base := moofStart
		if tfhd.HasBaseDataOffset() {
			base = int64(tfhd.BaseDataOffset)
		}
		if tfdtBox.b != nil {
			tfdt, err := decode[*ff.TfdtBox](tfdtBox, ff.DecodeTfdtSR)
			if err != nil {
				return err
			}
			dts = int64(tfdt.BaseMediaDecodeTime())
		}
		pos := base
		for _, n := range truns {
			// The samples it claims, bounded by the file before mp4ff
			// allocates them.
			if body := n.body(); len(body) < 8 {
				return fmt.Errorf("%w: short trun", ErrFormat)
			} else if err := s.room(int64(binary.BigEndian.Uint32(body[4:8])), moofStart); err != nil {
				return err
			}
			trun, err := decode[*ff.TrunBox](n, ff.DecodeTrunSR)
			if err != nil {
				return err
			}
			if trun.HasDataOffset() {
				pos = base + int64(trun.DataOffset)
			}
			if pos < 0 {
				return fmt.Errorf("%w: trun data at offset %d", ErrFormat, pos)
			}
			trun.AddSampleDefaultValues(tfhd, &s.Track.trex)
			if need := len(s.Samples) + len(trun.Samples); need > cap(s.Samples) { // doubling: at most twice the table in all
				grown := make([]Sample, len(s.Samples), min(max(need, 2*cap(s.Samples)), MaxSamples))
				copy(grown, s.Samples)
				s.Samples = grown
			}
			for _, x := range trun.Samples {
				s.Samples = append(s.Samples, Sample{Offset: pos, DTS: dts, Size: x.Size, Duration: x.Dur, CTO: x.CompositionTimeOffset, Sync: IsSync(x.Flags)})
				pos += int64(x.Size)
				dts += int64(x.Dur)
			}
		}
		return nil
	})
	return dts, err
}
