package mp4

// Live fragments: the init segment (ftyp and moov) and the media fragments
// (moof and mdat) of a segment as ffmpeg writes it, one box at a time, for
// a live viewer. Boxes are parsed by Eyevinn's mp4ff, whole: the segment
// being written is cctvd's own ffmpeg's, not a file from the bucket (Read,
// which reads those, hands mp4ff only the boxes it needs).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/Eyevinn/mp4ff/bits"
	"github.com/Eyevinn/mp4ff/hevc"
	ff "github.com/Eyevinn/mp4ff/mp4"
)

// ErrIncomplete: the box is not all there yet (a file being written).
var ErrIncomplete = errors.New("mp4: box not complete yet")

// maxLiveBox bounds a moov or moof read into memory, and maxFragmentData
// an mdat: a fragment of half a second is far smaller, even at 50 Mbit/s.
const (
	maxLiveBox      = 4 << 20
	maxFragmentData = 64 << 20
)

// BoxHeader is a top-level box's type and extent.
type BoxHeader struct {
	Type string
	// Size is the whole box's size, header included; HeaderLen its header's.
	Size      int64
	HeaderLen int
}

// ReadBoxHeader reads the header of the box at off in a file of size
// bytes (which may still grow). ErrIncomplete when the header, or the box,
// is not all there; ErrFormat for a header that cannot be one (a size of
// 0, "to the end of the file", is refused: ffmpeg never writes it in a
// fragmented file).
func ReadBoxHeader(r io.ReaderAt, off, size int64) (BoxHeader, error) {
	if size-off < 8 {
		return BoxHeader{}, ErrIncomplete
	}
	n := min(size-off, 16)
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return BoxHeader{}, fmt.Errorf("mp4: read box header at %d: %w", off, err)
	}
	if binary.BigEndian.Uint32(buf) == 1 && n < 16 {
		return BoxHeader{}, ErrIncomplete
	}
	h, err := ff.DecodeHeader(bytes.NewReader(buf))
	if err != nil {
		return BoxHeader{}, fmt.Errorf("%w: box header at %d: %v", ErrFormat, off, err)
	}
	if h.Size > 1<<40 {
		return BoxHeader{}, fmt.Errorf("%w: box %q at %d of %d bytes", ErrFormat, h.Name, off, h.Size)
	}
	bh := BoxHeader{Type: h.Name, Size: int64(h.Size), HeaderLen: h.Hdrlen}
	if off+bh.Size > size {
		return bh, ErrIncomplete
	}
	return bh, nil
}

// InitSegment is a segment's ftyp and moov, and what a player needs to
// know of its video track.
type InitSegment struct {
	// Bytes are the ftyp and moov boxes, as written.
	Bytes []byte
	// Codec is the RFC 6381 codec string (avc1.64001f, hvc1.1.6.L93.B0);
	// MIME the type a Media Source is asked for.
	Codec, MIME string
	// Width and Height are the sample entry's size, in pixels.
	Width, Height int
	// Timescale is the track's media timescale (units per second).
	Timescale uint32

	trackID uint32
	trex    *ff.TrexBox
	key     string // what SameStream compares: timescale and sample description
}

// ParseInitSegment parses b, an ftyp (optional) and a moov holding one
// video track (H.264 or H.265) with its fragment defaults (mvex).
//
// The bytes are the recording ffmpeg's, but what they hold (the parameter
// sets above all) is the camera's: a panic in the library's decoding is an
// ErrFormat, never a crash of the caller.
func ParseInitSegment(b []byte) (in *InitSegment, err error) {
	defer func() {
		if r := recover(); r != nil {
			in, err = nil, fmt.Errorf("%w: init segment: %v", ErrFormat, r)
		}
	}()
	var moov *ff.MoovBox
	sr := bits.NewFixedSliceReader(b)
	for pos := 0; pos < len(b); {
		box, err := ff.DecodeBoxSR(uint64(pos), sr)
		if err != nil {
			return nil, fmt.Errorf("%w: init segment: %v", ErrFormat, err)
		}
		if m, ok := box.(*ff.MoovBox); ok {
			moov = m
		}
		pos += int(box.Size())
	}
	if moov == nil {
		return nil, fmt.Errorf("%w: init segment without moov", ErrFormat)
	}
	in = &InitSegment{Bytes: b}
	var trak *ff.TrakBox
	for _, t := range moov.Traks {
		if t.Mdia != nil && t.Mdia.Hdlr != nil && t.Mdia.Hdlr.HandlerType == "vide" {
			trak = t
			break
		}
	}
	if trak == nil || trak.Tkhd == nil || trak.Mdia.Mdhd == nil || trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil || trak.Mdia.Minf.Stbl.Stsd == nil {
		return nil, fmt.Errorf("%w: init segment without a video track", ErrFormat)
	}
	in.trackID = trak.Tkhd.TrackID
	in.Timescale = trak.Mdia.Mdhd.Timescale
	if in.Timescale == 0 {
		return nil, fmt.Errorf("%w: video track with timescale 0", ErrFormat)
	}
	stsd := trak.Mdia.Minf.Stbl.Stsd
	var entry *ff.VisualSampleEntryBox
	switch {
	case stsd.AvcX != nil && stsd.AvcX.AvcC != nil:
		entry = stsd.AvcX
		c := entry.AvcC
		in.Codec = fmt.Sprintf("%s.%02x%02x%02x", entry.Type(), c.AVCProfileIndication, c.ProfileCompatibility, c.AVCLevelIndication)
	case stsd.HvcX != nil && stsd.HvcX.HvcC != nil:
		entry = stsd.HvcX
		in.Codec = entry.Type()
		in.Codec = hevcCodec(entry)
	default:
		return nil, fmt.Errorf("%w: the video track is neither H.264 nor H.265", ErrFormat)
	}
	in.Width, in.Height = int(entry.Width), int(entry.Height)
	in.MIME = fmt.Sprintf(`video/mp4; codecs="%s"`, in.Codec)
	if moov.Mvex != nil {
		for _, t := range moov.Mvex.Trexs {
			if t.TrackID == in.trackID {
				in.trex = t
			}
		}
	}
	var sd bytes.Buffer
	if err := stsd.Encode(&sd); err != nil {
		return nil, fmt.Errorf("%w: sample description: %v", ErrFormat, err)
	}
	in.key = fmt.Sprintf("%d/", in.Timescale) + sd.String()
	return in, nil
}

// SameStream says whether fragments of o can follow fragments of in on
// one decoder: same timescale, same sample description (codec, size,
// parameter sets). A player needs o's init segment otherwise.
func (in *InitSegment) SameStream(o *InitSegment) bool { return in.key == o.key }

// Fragment is one media fragment: a moof and its mdat.
type Fragment struct {
	// Bytes are the moof and the mdat, as written.
	Bytes []byte
	// DecodeTime is the first sample's decode time and Duration the
	// fragment's, in the track's timescale.
	DecodeTime, Duration uint64
	// Samples counts its samples (frames).
	Samples int
	// Keyframe: its first sample is a sync sample, where a decoder can
	// start. ffmpeg's frag_keyframe starts a fragment at every keyframe.
	Keyframe bool

	moof *ff.MoofBox
}

// ParseFragment parses b, a moof followed by its mdat, of the track in.
func ParseFragment(in *InitSegment, b []byte) (*Fragment, error) {
	sr := bits.NewFixedSliceReader(b)
	box, err := ff.DecodeBoxSR(0, sr)
	if err != nil {
		return nil, fmt.Errorf("%w: fragment: %v", ErrFormat, err)
	}
	moof, ok := box.(*ff.MoofBox)
	if !ok {
		return nil, fmt.Errorf("%w: fragment starts with %q, not moof", ErrFormat, box.Type())
	}
	f := &Fragment{Bytes: b, moof: moof}
	var traf *ff.TrafBox
	for _, t := range moof.Trafs {
		if t.Tfhd != nil && t.Tfhd.TrackID == in.trackID {
			traf = t
		}
	}
	if traf == nil || traf.Tfdt == nil {
		return nil, fmt.Errorf("%w: fragment without the video track's traf and tfdt", ErrFormat)
	}
	f.DecodeTime = traf.Tfdt.BaseMediaDecodeTime()
	for i, trun := range traf.Truns {
		f.Duration += trun.AddSampleDefaultValues(traf.Tfhd, in.trex)
		if i == 0 && len(trun.Samples) > 0 {
			f.Keyframe = IsSync(trun.Samples[0].Flags)
		}
		f.Samples += len(trun.Samples)
	}
	if f.Samples == 0 {
		return nil, fmt.Errorf("%w: fragment without samples", ErrFormat)
	}
	return f, nil
}

// IsSync says whether sample flags (ISO 14496-12 8.8.3.1) mark a sync
// sample: sample_is_non_sync_sample is clear.
func IsSync(flags uint32) bool { return flags&ff.NonSyncSampleFlags == 0 }

// WithDecodeTime returns the fragment's bytes with its decode time (tfdt)
// set to t, the mdat's bytes as they are: fragments of several segments,
// each starting near 0, then play as one timeline. A tfdt that grows from
// 32 to 64 bits moves the sample data, and the trun's data offsets with it.
func (f *Fragment) WithDecodeTime(t uint64) ([]byte, error) {
	oldSize := f.moof.Size()
	for _, traf := range f.moof.Trafs {
		if traf.Tfdt == nil {
			continue
		}
		traf.Tfdt.SetBaseMediaDecodeTime(t)
		traf.Tfdt.Version = 1 // always 64 bits, as ffmpeg writes it: the size does not change with t
	}
	newSize := f.moof.Size()
	if delta := int64(newSize) - int64(oldSize); delta != 0 {
		for _, traf := range f.moof.Trafs {
			for _, trun := range traf.Truns {
				if trun.HasDataOffset() {
					trun.DataOffset += int32(delta)
				}
			}
		}
	}
	sw := bits.NewFixedSliceWriter(int(newSize) + len(f.Bytes) - int(oldSize))
	if err := f.moof.EncodeSW(sw); err != nil {
		return nil, fmt.Errorf("mp4: encode moof: %w", err)
	}
	sw.WriteBytes(f.Bytes[oldSize:])
	if err := sw.AccError(); err != nil {
		return nil, fmt.Errorf("mp4: encode fragment: %w", err)
	}
	f.DecodeTime = t
	return sw.Bytes(), nil
}

// MaxInitSize and MaxFragmentSize bound what a reader takes into memory.
func MaxInitSize() int64 { return maxLiveBox }

// MaxFragmentSize is the largest moof plus mdat a reader takes.
func MaxFragmentSize() int64 { return maxLiveBox + maxFragmentData }

// hevcCodec is the RFC 6381 codec string of an H.265 sample entry, from
// its SPS; only the entry's type where the SPS does not parse, or makes
// the parser panic (mp4ff v0.50.0 indexes out of range on an SPS whose
// cpb_cnt_minus1 is 255). The string only helps the browser choose.
func hevcCodec(entry *ff.VisualSampleEntryBox) (codec string) {
	codec = entry.Type()
	defer func() {
		if recover() != nil {
			codec = entry.Type()
		}
	}()
	if spss := entry.HvcC.GetNalusForType(hevc.NALU_SPS); len(spss) > 0 {
		if sps, err := hevc.ParseSPSNALUnit(spss[0]); err == nil {
			codec = hevc.CodecString(entry.Type(), sps)
		}
	}
	return codec
}
