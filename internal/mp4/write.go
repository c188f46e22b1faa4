package mp4

import (
	"errors"
	"fmt"
	"io"
	"math"
	mathbits "math/bits"
	"sort"
	"time"

	"github.com/Eyevinn/mp4ff/bits"
	ff "github.com/Eyevinn/mp4ff/mp4"
)

// Part is a run of one segment's samples, [First, Last) in decode order,
// in a join. Every part but the first should start at a keyframe.
type Part struct {
	Seg *Segment
	// Source names the segment's file to the SourceReader.
	Source      int
	First, Last int
}

// Join describes a joined file: parts played one after the other, each
// starting where the previous ends (the time between them is skipped).
type Join struct {
	Parts []Part
	// Start is the presentation time, in the first part's PTS units, at
	// which playing starts: the edit list hides the samples before it
	// (the first part starts at the keyframe at or before it). Clamped to
	// the first part's first sample.
	Start int64
	// End is the presentation time, in the last part's PTS units, at which
	// playing stops; clamped to the end of its last sample (math.MaxInt64:
	// no cut).
	End int64
	// Created is written as the movie's creation time: the wall-clock time
	// of the first frame played.
	Created time.Time
}

// SourceReader reads the bytes of the joined segments' files.
type SourceReader interface {
	ReadAt(source int, p []byte, off int64) (int, error)
}

// File is a joined MP4: its header in memory, its sample bytes as extents
// of the sources. Its methods are safe for concurrent use when the
// SourceReader's are.
type File struct {
	head   []byte
	chunks []extent
	size   int64
	src    SourceReader

	// Duration is how long it plays (the edit list's duration).
	Duration time.Duration
	// Frames counts its samples, those before the start included.
	Frames int
	// Offsets holds where each part starts in the played timeline,
	// clamped at 0 (the first part's is 0).
	Offsets []time.Duration
	// Track is the video track's description.
	Track Track
}

// extent is a run of output bytes copied from one source.
type extent struct {
	off    int64 // in the output
	source int
	srcOff int64
	n      int64
}

// Size is the file's length in bytes.
func (f *File) Size() int64 { return f.size }

// ReadAt implements io.ReaderAt.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("mp4: negative offset")
	}
	n := 0
	for len(p) > 0 && off < f.size {
		var m int
		if off < int64(len(f.head)) {
			m = copy(p, f.head[off:])
		} else {
			i := sort.Search(len(f.chunks), func(i int) bool { return f.chunks[i].off+f.chunks[i].n > off })
			c := f.chunks[i]
			within := off - c.off
			want := min(int64(len(p)), c.n-within)
			var err error
			m, err = f.src.ReadAt(c.source, p[:want], c.srcOff+within)
			if int64(m) < want {
				if err == nil || errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return n + m, fmt.Errorf("mp4: read source %d at %d: %w", c.source, c.srcOff+within+int64(m), err)
			}
		}
		p, off, n = p[m:], off+int64(m), n+m
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// movieTimescale is the timescale of the movie header and the edit list:
// milliseconds.
const movieTimescale = 1000

// secondsTo1904 is the offset of the Unix epoch from MP4's (1904-01-01).
const secondsTo1904 = 2082844800

// ErrMixedFormats is returned by Build for parts whose tracks differ.
var ErrMixedFormats = errors.New("mp4: the parts' video formats differ")

// Build lays out the joined file. It reads no sample bytes: those are
// read through src when the File is read.
func Build(j Join, src SourceReader) (*File, error) {
	if len(j.Parts) == 0 {
		return nil, errors.New("mp4: nothing to join")
	}
	track := j.Parts[0].Seg.Track
	if len(track.stsd) < 8 {
		return nil, errors.New("mp4: part 0's track has no sample description (not a segment Read found)")
	}
	t := tables{}
	var outDTS int64                   // decode time of the next output sample
	presentEnd := int64(math.MinInt64) // end of the last presented sample (PTS + duration), output timeline
	f := &File{src: src, Track: track}
	var ptsDelta []int64 // per part: output PTS - source PTS
	for pi, p := range j.Parts {
		if !p.Seg.Track.SameFormat(track) {
			return nil, fmt.Errorf("%w: part %d is %s, part 0 %s", ErrMixedFormats, pi, p.Seg.Track, track)
		}
		if p.First < 0 || p.Last > len(p.Seg.Samples) || p.First >= p.Last {
			return nil, fmt.Errorf("mp4: part %d: bad sample run [%d, %d) of %d", pi, p.First, p.Last, len(p.Seg.Samples))
		}
		samples := p.Seg.Samples
		delta := outDTS - samples[p.First].DTS
		ptsDelta = append(ptsDelta, delta)
		for i := p.First; i < p.Last; i++ {
			s := samples[i]
			dur := int64(s.Duration)
			if i+1 < len(samples) {
				dur = samples[i+1].DTS - s.DTS
			}
			if dur < 0 || dur > math.MaxUint32 {
				dur = 0
			}
			t.add(p.Source, s, uint32(dur))
			presentEnd = max(presentEnd, p.Seg.PTS(i)+delta+dur)
			outDTS += dur
		}
	}
	first := j.Parts[0]
	firstPTS := first.Seg.PTS(first.First) + ptsDelta[0]
	start := max(firstPTS, satAdd(j.Start, ptsDelta[0]))
	end := min(presentEnd, satAdd(j.End, ptsDelta[len(ptsDelta)-1]))
	if end <= start {
		return nil, fmt.Errorf("mp4: nothing to play: start %d, end %d", start, end)
	}
	for pi, p := range j.Parts {
		f.Offsets = append(f.Offsets, time.Duration(max(0, scale(p.Seg.PTS(p.First)+ptsDelta[pi]-start, int64(track.Timescale), int64(time.Second)))))
	}
	ts := int64(track.Timescale)
	f.Duration = time.Duration(scale(end-start, ts, int64(time.Second)))
	f.Frames = len(t.stsz.SampleSize)

	// Layout: ftyp, moov, mdat header, then the chunks. The moov's size
	// does not depend on the chunk offsets, only on their width.
	var dataSize int64
	for _, c := range t.chunks {
		dataSize += c.n
	}
	created := uint64(max(0, j.Created.Unix()+secondsTo1904))
	movie := movie{
		track: track, t: &t, created: created,
		mediaDuration: outDTS,
		editDuration:  scale(end-start, ts, movieTimescale),
		editStart:     start + track.shift, // the edit list is in composition time
	}
	ftyp := ftypBox(track.Codec)
	mdatHdr := uint64(8)
	if dataSize+8 > math.MaxUint32 {
		mdatHdr = 16
	}
	moov, setOffsets := movie.box(false)
	wide := int64(ftyp.Size()+moov.Size()+mdatHdr)+dataSize > math.MaxUint32
	if wide {
		moov, setOffsets = movie.box(true)
	}
	dataStart := int64(ftyp.Size() + moov.Size() + mdatHdr)
	setOffsets(dataStart)
	sw := bits.NewFixedSliceWriter(int(dataStart))
	if err := ftyp.EncodeSW(sw); err != nil {
		return nil, fmt.Errorf("mp4: encode ftyp: %w", err)
	}
	if err := moov.EncodeSW(sw); err != nil {
		return nil, fmt.Errorf("mp4: encode moov: %w", err)
	}
	if err := ff.EncodeHeaderWithSizeSW("mdat", uint64(dataSize)+mdatHdr, mdatHdr == 16, sw); err != nil {
		return nil, fmt.Errorf("mp4: encode mdat header: %w", err)
	}
	if int64(len(sw.Bytes())) != dataStart {
		return nil, fmt.Errorf("mp4: header of %d bytes, laid out as %d", len(sw.Bytes()), dataStart)
	}
	f.head = sw.Bytes()
	off := dataStart
	for _, c := range t.chunks {
		f.chunks = append(f.chunks, extent{off: off, source: c.source, srcOff: c.srcOff, n: c.n})
		off += c.n
	}
	f.size = off
	return f, nil
}

// satAdd adds without overflowing (End may be math.MaxInt64).
func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}

// scale converts v from units of from per second to units of to per
// second, rounding to nearest, saturating at the int64 range.
func scale(v, from, to int64) int64 {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u
	}
	hi, lo := mathbits.Mul64(u, uint64(to))
	var carry uint64
	lo, carry = mathbits.Add64(lo, uint64(from)/2, 0)
	hi += carry
	q := uint64(math.MaxInt64)
	if hi < uint64(from) {
		q, _ = mathbits.Div64(hi, lo, uint64(from))
		q = min(q, math.MaxInt64)
	}
	if neg {
		return -int64(q)
	}
	return int64(q)
}

// tables are the sample tables of the joined track, as the boxes that
// hold them.
type tables struct {
	stts   ff.SttsBox // runs of equal durations
	ctts   ff.CttsBox // runs of equal composition offsets
	stss   ff.StssBox
	stsz   ff.StszBox
	chunks []chunk
	allKey bool
	negCTO bool
	// lastEnd and lastSrc locate the end of the previous sample's bytes.
	lastEnd int64
	lastSrc int
}

type chunk struct {
	source int
	srcOff int64
	n      int64
	count  uint32
}

// maxChunk bounds a chunk's bytes, so a player reading one does not
// fetch more than it needs.
const maxChunk = 4 << 20

func (t *tables) add(source int, s Sample, dur uint32) {
	if len(t.stsz.SampleSize) == 0 {
		t.allKey = true
		t.ctts.EndSampleNr = []uint32{0}
	}
	t.stsz.SampleSize = append(t.stsz.SampleSize, s.Size)
	n := uint32(len(t.stsz.SampleSize))
	t.stsz.SampleNumber = n
	if k := len(t.stts.SampleCount) - 1; k >= 0 && t.stts.SampleTimeDelta[k] == dur {
		t.stts.SampleCount[k]++
	} else {
		t.stts.SampleCount = append(t.stts.SampleCount, 1)
		t.stts.SampleTimeDelta = append(t.stts.SampleTimeDelta, dur)
	}
	if k := len(t.ctts.SampleOffset) - 1; k >= 0 && t.ctts.SampleOffset[k] == s.CTO {
		t.ctts.EndSampleNr[k+1] = n
	} else {
		t.ctts.SampleOffset = append(t.ctts.SampleOffset, s.CTO)
		t.ctts.EndSampleNr = append(t.ctts.EndSampleNr, n)
	}
	if s.CTO < 0 {
		t.negCTO = true
	}
	if s.Sync {
		t.stss.SampleNumber = append(t.stss.SampleNumber, n)
	} else {
		t.allKey = false
	}
	if c := len(t.chunks) - 1; c >= 0 && t.lastSrc == source && t.lastEnd == s.Offset && t.chunks[c].n+int64(s.Size) <= maxChunk {
		t.chunks[c].n += int64(s.Size)
		t.chunks[c].count++
	} else {
		t.chunks = append(t.chunks, chunk{source: source, srcOff: s.Offset, n: int64(s.Size), count: 1})
	}
	t.lastEnd, t.lastSrc = s.Offset+int64(s.Size), source
}

// version is the full-box version for time fields holding vals: 1
// (64-bit fields) when one needs more than 32 bits, else 0.
func version(vals ...uint64) uint8 {
	for _, v := range vals {
		if v > math.MaxUint32 {
			return 1
		}
	}
	return 0
}

func ftypBox(codec string) *ff.FtypBox {
	brands := []string{"isom", "iso2"}
	if codec == "avc1" {
		brands = append(brands, "avc1")
	}
	return ff.NewFtyp("isom", 0x200, append(brands, "mp41"))
}

// movie is the joined file's moov.
type movie struct {
	track         Track
	t             *tables
	created       uint64
	mediaDuration int64 // media timescale
	editDuration  int64 // movie timescale
	editStart     int64 // media timescale, composition time
}

// box makes the moov, its chunk offsets 64-bit if wide; setOffsets sets
// them once the file offset of the first chunk is known (the moov's size
// does not change).
func (m movie) box(wide bool) (moov *ff.MoovBox, setOffsets func(dataStart int64)) {
	tr, t := m.track, m.t
	v := version(m.created, uint64(m.editDuration))
	moov = ff.NewMoovBox()
	moov.AddChild(&ff.MvhdBox{Version: v, CreationTime: m.created, ModificationTime: m.created, Timescale: movieTimescale,
		Duration: uint64(m.editDuration), Rate: 0x00010000, Volume: 0x0100, NextTrackID: 2})
	trak := &ff.TrakBox{}
	moov.AddChild(trak)
	trak.AddChild(&ff.TkhdBox{Version: v, Flags: 3, CreationTime: m.created, ModificationTime: m.created, TrackID: 1, // enabled, in movie
		Duration: uint64(m.editDuration), Width: ff.Fixed32(tr.Width << 16), Height: ff.Fixed32(tr.Height << 16)})
	edts := &ff.EdtsBox{}
	edts.AddChild(&ff.ElstBox{Version: version(uint64(m.editDuration), uint64(m.editStart)),
		Entries: []ff.ElstEntry{{SegmentDuration: uint64(m.editDuration), MediaTime: m.editStart, MediaRateInteger: 1}}})
	trak.AddChild(edts)
	mdia := &ff.MdiaBox{}
	trak.AddChild(mdia)
	mdia.AddChild(&ff.MdhdBox{Version: version(m.created, uint64(m.mediaDuration)), CreationTime: m.created, ModificationTime: m.created,
		Timescale: tr.Timescale, Duration: uint64(m.mediaDuration), Language: 0x55c4}) // "und"
	mdia.AddChild(&ff.HdlrBox{HandlerType: "vide", Name: "VideoHandler"})
	minf := &ff.MinfBox{}
	mdia.AddChild(minf)
	minf.AddChild(ff.CreateVmhd())
	dinf := &ff.DinfBox{}
	dinf.AddChild(ff.CreateDref()) // one url entry: the data is in this file
	minf.AddChild(dinf)
	stbl := &ff.StblBox{}
	minf.AddChild(stbl)

	// The source's sample description, as it is.
	stbl.AddChild(ff.CreateUnknownBox("stsd", uint64(len(tr.stsd)), tr.stsd[8:]))
	stbl.AddChild(&t.stts)
	if len(t.ctts.SampleOffset) > 1 || (len(t.ctts.SampleOffset) == 1 && t.ctts.SampleOffset[0] != 0) {
		t.ctts.Version = 0
		if t.negCTO {
			t.ctts.Version = 1
		}
		stbl.AddChild(&t.ctts)
	}
	if !t.allKey {
		stbl.AddChild(&t.stss)
	}
	stsc := &ff.StscBox{}
	for i, c := range t.chunks {
		if n := len(stsc.Entries); n == 0 || stsc.Entries[n-1].SamplesPerChunk != c.count {
			_ = stsc.AddEntry(uint32(i+1), c.count, 1) // first chunk (1-based), samples per chunk, sample description 1
		}
	}
	stbl.AddChild(stsc)
	stbl.AddChild(&t.stsz)
	chunkOffsets := func(set func(i int, off int64)) func(int64) {
		return func(dataStart int64) {
			off := dataStart
			for i, c := range t.chunks {
				set(i, off)
				off += c.n
			}
		}
	}
	if wide {
		co64 := &ff.Co64Box{ChunkOffset: make([]uint64, len(t.chunks))}
		stbl.AddChild(co64)
		return moov, chunkOffsets(func(i int, off int64) { co64.ChunkOffset[i] = uint64(off) })
	}
	stco := &ff.StcoBox{ChunkOffset: make([]uint32, len(t.chunks))}
	stbl.AddChild(stco)
	return moov, chunkOffsets(func(i int, off int64) { stco.ChunkOffset[i] = uint32(off) })
}
