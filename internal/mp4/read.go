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
// recording) keeps the samples whose bytes are all there.
//
// A file is not trusted (anyone who can write the bucket can write one):
// what it claims is bounded by what it holds before anything is
// allocated. A box is read into memory only as far as the file has
// bytes for it (and at most 64 MiB), a sample takes at least one byte of
// the file after its moof, the entries a trun claims must fit in the
// trun, and a file holds at most MaxSamples samples. Reading a file of n
// bytes allocates O(n), never what its boxes claim.
package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
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
	stsd  []byte // the whole stsd box, copied into joined files
	shift int64  // the init's edit list media time: PTS = DTS + CTO - shift
	trex  defaults
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

type defaults struct {
	duration, size, flags uint32
}

const sampleNonSync = 0x00010000 // sample_is_non_sync_sample in sample flags

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
// a box claiming more than the file holds costs what the file holds.
// io.ErrUnexpectedEOF: the file ends inside the box.
func readBody(r io.Reader, n, left int64) ([]byte, error) {
	if left >= 0 && n > left {
		n = left + 1 // read what is there, and see it end
	}
	var buf bytes.Buffer
	if n <= 1<<20 {
		buf.Grow(int(n))
	}
	got, err := io.CopyN(&buf, r, n)
	if err == nil && left >= 0 && got > left {
		err = io.ErrUnexpectedEOF // more bytes than the file was said to have
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return buf.Bytes(), err
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

// children calls fn for each box in b, with its type and body.
func children(b []byte, fn func(typ string, body []byte) error) error {
	for len(b) > 0 {
		if len(b) < 8 {
			return fmt.Errorf("%w: %d stray bytes in a box", ErrFormat, len(b))
		}
		size, hdr, typ := uint64(binary.BigEndian.Uint32(b[:4])), uint64(8), string(b[4:8])
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return fmt.Errorf("%w: short largesize header", ErrFormat)
			}
			size, hdr = binary.BigEndian.Uint64(b[8:16]), 16
		}
		if size < hdr || size > uint64(len(b)) {
			return fmt.Errorf("%w: box %q of size %d in %d bytes", ErrFormat, typ, size, len(b))
		}
		if err := fn(typ, b[hdr:size]); err != nil {
			return err
		}
		b = b[size:]
	}
	return nil
}

// child returns the body of the first box of type typ in b, nil if none.
func child(b []byte, path ...string) []byte {
	for _, want := range path {
		var found []byte
		_ = children(b, func(typ string, body []byte) error {
			if found == nil && typ == want {
				found = body
			}
			return nil
		})
		if found == nil {
			return nil
		}
		b = found
	}
	return b
}

// reader reads big-endian fields from a box body, remembering the first
// overrun.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}
func (r *reader) u8() uint8   { return r.take(1)[0] }
func (r *reader) u16() uint16 { return binary.BigEndian.Uint16(r.take(2)) }
func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }
func (r *reader) skip(n int)  { r.take(n) }

// versionFlags reads a full box's version and flags.
func (r *reader) versionFlags() (uint8, uint32) {
	v := r.u32()
	return uint8(v >> 24), v & 0xffffff
}

// readInit reads the moov: the first video track, its sample description,
// timescale, size, edit list and fragment defaults.
func (s *Segment) readInit(moov []byte) error {
	found := false
	err := children(moov, func(typ string, body []byte) error {
		if typ != "trak" || found {
			return nil
		}
		hdlr := child(body, "mdia", "hdlr")
		if len(hdlr) < 12 || string(hdlr[8:12]) != "vide" {
			return nil
		}
		found = true
		t := &s.Track
		tkhd := &reader{b: child(body, "tkhd")}
		if v, _ := tkhd.versionFlags(); v == 1 {
			tkhd.skip(16)
			t.id = tkhd.u32()
			tkhd.skip(4 + 8)
		} else {
			tkhd.skip(8)
			t.id = tkhd.u32()
			tkhd.skip(4 + 4)
		}
		tkhd.skip(8 + 2 + 2 + 2 + 2 + 36)
		t.Width, t.Height = tkhd.u32()>>16, tkhd.u32()>>16
		mdhd := &reader{b: child(body, "mdia", "mdhd")}
		if v, _ := mdhd.versionFlags(); v == 1 {
			mdhd.skip(16)
		} else {
			mdhd.skip(8)
		}
		t.Timescale = mdhd.u32()
		if tkhd.bad || mdhd.bad || t.Timescale == 0 {
			return fmt.Errorf("%w: bad tkhd or mdhd", ErrFormat)
		}
		stsd := child(body, "mdia", "minf", "stbl", "stsd")
		if len(stsd) < 16 {
			return fmt.Errorf("%w: no sample description", ErrFormat)
		}
		t.Codec = string(stsd[12:16])
		t.stsd = binary.BigEndian.AppendUint32(nil, uint32(len(stsd)+8))
		t.stsd = append(append(t.stsd, "stsd"...), stsd...)
		if elst := child(body, "edts", "elst"); elst != nil {
			t.shift = editShift(elst)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: no video track", ErrFormat)
	}
	return children(child(moov, "mvex"), func(typ string, body []byte) error {
		if typ != "trex" {
			return nil
		}
		r := &reader{b: body}
		r.versionFlags()
		if r.u32() != s.Track.id {
			return nil
		}
		r.skip(4) // default_sample_description_index
		s.Track.trex = defaults{duration: r.u32(), size: r.u32(), flags: r.u32()}
		if r.bad {
			return fmt.Errorf("%w: short trex", ErrFormat)
		}
		return nil
	})
}

// editShift is the media time of an edit list's first non-empty entry.
func editShift(elst []byte) int64 {
	r := &reader{b: elst}
	v, _ := r.versionFlags()
	n := r.u32()
	for i := uint32(0); i < n && !r.bad; i++ {
		var mt int64
		if v == 1 {
			r.skip(8)
			mt = int64(r.u64())
		} else {
			r.skip(4)
			mt = int64(int32(r.u32()))
		}
		r.skip(4)
		if mt >= 0 && !r.bad {
			return mt
		}
	}
	return 0
}

// tfhd flags.
const (
	tfBaseDataOffset  = 0x000001
	tfSampleDescIndex = 0x000002
	tfDefaultDuration = 0x000008
	tfDefaultSize     = 0x000010
	tfDefaultFlags    = 0x000020
)

// trun flags.
const (
	trDataOffset       = 0x000001
	trFirstSampleFlags = 0x000004
	trDuration         = 0x000100
	trSize             = 0x000200
	trFlags            = 0x000400
	trCTO              = 0x000800
)

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
	err := children(moof, func(typ string, traf []byte) error {
		if typ != "traf" {
			return nil
		}
		h := &reader{b: child(traf, "tfhd")}
		_, flags := h.versionFlags()
		if h.u32() != s.Track.id {
			return nil
		}
		d := s.Track.trex
		base := moofStart
		if flags&tfBaseDataOffset != 0 {
			base = int64(h.u64())
		}
		if flags&tfSampleDescIndex != 0 {
			h.skip(4)
		}
		if flags&tfDefaultDuration != 0 {
			d.duration = h.u32()
		}
		if flags&tfDefaultSize != 0 {
			d.size = h.u32()
		}
		if flags&tfDefaultFlags != 0 {
			d.flags = h.u32()
		}
		if h.bad {
			return fmt.Errorf("%w: short tfhd", ErrFormat)
		}
		if tfdt := child(traf, "tfdt"); tfdt != nil {
			r := &reader{b: tfdt}
			if v, _ := r.versionFlags(); v == 1 {
				dts = int64(r.u64())
			} else {
				dts = int64(r.u32())
			}
			if r.bad {
				return fmt.Errorf("%w: short tfdt", ErrFormat)
			}
		}
		pos := base
		return children(traf, func(typ string, trun []byte) error {
			if typ != "trun" {
				return nil
			}
			r := &reader{b: trun}
			_, tf := r.versionFlags()
			count := r.u32()
			if tf&trDataOffset != 0 {
				pos = base + int64(int32(r.u32()))
			}
			firstFlags, hasFirst := uint32(0), tf&trFirstSampleFlags != 0
			if hasFirst {
				firstFlags = r.u32()
			}
			per := 0
			for _, f := range []uint32{trDuration, trSize, trFlags, trCTO} {
				if tf&f != 0 {
					per += 4
				}
			}
			if r.bad || uint64(count)*uint64(per) > uint64(len(r.b)) {
				return fmt.Errorf("%w: trun of %d samples in %d bytes", ErrFormat, count, len(r.b))
			}
			if err := s.room(int64(count), moofStart); err != nil {
				return err
			}
			if pos < 0 {
				return fmt.Errorf("%w: trun data at offset %d", ErrFormat, pos)
			}
			if need := len(s.Samples) + int(count); need > cap(s.Samples) { // doubling: at most twice the table in all
				grown := make([]Sample, len(s.Samples), min(max(need, 2*cap(s.Samples)), MaxSamples))
				copy(grown, s.Samples)
				s.Samples = grown
			}
			for i := uint32(0); i < count; i++ {
				smp := Sample{Offset: pos, DTS: dts, Duration: d.duration, Size: d.size}
				sflags := d.flags
				if i == 0 && hasFirst {
					sflags = firstFlags
				}
				if tf&trDuration != 0 {
					smp.Duration = r.u32()
				}
				if tf&trSize != 0 {
					smp.Size = r.u32()
				}
				if tf&trFlags != 0 {
					sflags = r.u32()
				}
				if tf&trCTO != 0 {
					smp.CTO = int32(r.u32()) // version 1 is signed; version 0 offsets stay far below 2^31
				}
				smp.Sync = sflags&sampleNonSync == 0
				s.Samples = append(s.Samples, smp)
				pos += int64(smp.Size)
				dts += int64(smp.Duration)
			}
			return nil
		})
	})
	return dts, err
}
