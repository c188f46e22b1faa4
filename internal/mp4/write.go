package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
	"time"
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
	f.Frames = len(t.sizes)

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
	mdatHdr := 8
	if dataSize+8 > math.MaxUint32 {
		mdatHdr = 16
	}
	moov := movie.box(0, false)
	wide := int64(len(ftyp)+len(moov)+mdatHdr)+dataSize > math.MaxUint32
	if wide {
		moov = movie.box(0, true)
	}
	dataStart := int64(len(ftyp) + len(moov) + mdatHdr)
	moov = movie.box(dataStart, wide) // now with the real offsets; same size
	head := append(ftyp, moov...)
	if mdatHdr == 16 {
		head = binary.BigEndian.AppendUint32(head, 1)
		head = append(head, "mdat"...)
		head = binary.BigEndian.AppendUint64(head, uint64(dataSize+16))
	} else {
		head = binary.BigEndian.AppendUint32(head, uint32(dataSize+8))
		head = append(head, "mdat"...)
	}
	f.head = head
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
	hi, lo := bits.Mul64(u, uint64(to))
	var carry uint64
	lo, carry = bits.Add64(lo, uint64(from)/2, 0)
	hi += carry
	q := uint64(math.MaxInt64)
	if hi < uint64(from) {
		q, _ = bits.Div64(hi, lo, uint64(from))
		q = min(q, math.MaxInt64)
	}
	if neg {
		return -int64(q)
	}
	return int64(q)
}

// tables are the sample tables of the joined track.
type tables struct {
	sizes  []uint32
	stts   []run // count, delta
	ctts   []run // count, offset
	stss   []uint32
	chunks []chunk
	allKey bool
	negCTO bool
	// lastEnd and lastSrc locate the end of the previous sample's bytes.
	lastEnd int64
	lastSrc int
}

type run struct {
	count uint32
	value int64
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
	if len(t.sizes) == 0 {
		t.allKey = true
	}
	t.sizes = append(t.sizes, s.Size)
	n := uint32(len(t.sizes))
	t.stts = appendRun(t.stts, int64(dur))
	t.ctts = appendRun(t.ctts, int64(s.CTO))
	if s.CTO < 0 {
		t.negCTO = true
	}
	if s.Sync {
		t.stss = append(t.stss, n)
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

func appendRun(runs []run, v int64) []run {
	if n := len(runs); n > 0 && runs[n-1].value == v {
		runs[n-1].count++
		return runs
	}
	return append(runs, run{count: 1, value: v})
}

// writer builds boxes.
type writer struct{ b []byte }

func (w *writer) box(typ string, body func()) {
	start := len(w.b)
	w.b = append(w.b, 0, 0, 0, 0)
	w.b = append(w.b, typ...)
	body()
	binary.BigEndian.PutUint32(w.b[start:], uint32(len(w.b)-start))
}

// fullBox is a box with a version and flags.
func (w *writer) fullBox(typ string, version uint8, flags uint32, body func()) {
	w.box(typ, func() {
		w.u32(uint32(version)<<24 | flags)
		body()
	})
}

func (w *writer) u16(v uint16)   { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *writer) u32(v uint32)   { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64)   { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *writer) zeros(n int)    { w.b = append(w.b, make([]byte, n)...) }
func (w *writer) bytes(b []byte) { w.b = append(w.b, b...) }

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

func (w *writer) time(v uint64, version uint8) {
	if version == 1 {
		w.u64(v)
	} else {
		w.u32(uint32(v))
	}
}

var unityMatrix = []uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000}

func (w *writer) matrix() {
	for _, v := range unityMatrix {
		w.u32(v)
	}
}

func ftypBox(codec string) []byte {
	var w writer
	w.box("ftyp", func() {
		w.bytes([]byte("isom"))
		w.u32(0x200)
		w.bytes([]byte("isomiso2"))
		if codec == "avc1" {
			w.bytes([]byte("avc1"))
		}
		w.bytes([]byte("mp41"))
	})
	return w.b
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

// box writes the moov; dataStart is the file offset of the first chunk,
// wide selects 64-bit chunk offsets.
func (m movie) box(dataStart int64, wide bool) []byte {
	var w writer
	tr := m.track
	w.box("moov", func() {
		v := version(m.created, uint64(m.editDuration))
		w.fullBox("mvhd", v, 0, func() {
			w.time(m.created, v)
			w.time(m.created, v)
			w.u32(movieTimescale)
			w.time(uint64(m.editDuration), v)
			w.u32(0x00010000) // rate 1.0
			w.u16(0x0100)     // volume 1.0
			w.zeros(10)
			w.matrix()
			w.zeros(24)
			w.u32(2) // next track id
		})
		w.box("trak", func() {
			w.fullBox("tkhd", v, 3, func() { // enabled, in movie
				w.time(m.created, v)
				w.time(m.created, v)
				w.u32(1) // track id
				w.u32(0)
				w.time(uint64(m.editDuration), v)
				w.zeros(8)
				w.u16(0) // layer
				w.u16(0) // alternate group
				w.u16(0) // volume: video
				w.u16(0)
				w.matrix()
				w.u32(tr.Width << 16)
				w.u32(tr.Height << 16)
			})
			w.box("edts", func() {
				ev := version(uint64(m.editDuration), uint64(m.editStart))
				w.fullBox("elst", ev, 0, func() {
					w.u32(1)
					w.time(uint64(m.editDuration), ev)
					w.time(uint64(m.editStart), ev)
					w.u16(1) // rate 1.0
					w.u16(0)
				})
			})
			w.box("mdia", func() {
				mv := version(m.created, uint64(m.mediaDuration))
				w.fullBox("mdhd", mv, 0, func() {
					w.time(m.created, mv)
					w.time(m.created, mv)
					w.u32(tr.Timescale)
					w.time(uint64(m.mediaDuration), mv)
					w.u16(0x55c4) // "und"
					w.u16(0)
				})
				w.fullBox("hdlr", 0, 0, func() {
					w.u32(0)
					w.bytes([]byte("vide"))
					w.zeros(12)
					w.bytes([]byte("VideoHandler\x00"))
				})
				w.box("minf", func() {
					w.fullBox("vmhd", 0, 1, func() { w.zeros(8) })
					w.box("dinf", func() {
						w.fullBox("dref", 0, 0, func() {
							w.u32(1)
							w.fullBox("url ", 0, 1, func() {}) // data in this file
						})
					})
					w.box("stbl", func() { m.stbl(&w, dataStart, wide) })
				})
			})
		})
	})
	return w.b
}

func (m movie) stbl(w *writer, dataStart int64, wide bool) {
	t := m.t
	w.bytes(m.track.stsd)
	w.fullBox("stts", 0, 0, func() {
		w.u32(uint32(len(t.stts)))
		for _, r := range t.stts {
			w.u32(r.count)
			w.u32(uint32(r.value))
		}
	})
	if len(t.ctts) > 1 || (len(t.ctts) == 1 && t.ctts[0].value != 0) {
		v := uint8(0)
		if t.negCTO {
			v = 1
		}
		w.fullBox("ctts", v, 0, func() {
			w.u32(uint32(len(t.ctts)))
			for _, r := range t.ctts {
				w.u32(r.count)
				w.u32(uint32(int32(r.value)))
			}
		})
	}
	if !t.allKey {
		w.fullBox("stss", 0, 0, func() {
			w.u32(uint32(len(t.stss)))
			for _, n := range t.stss {
				w.u32(n)
			}
		})
	}
	w.fullBox("stsc", 0, 0, func() {
		var entries [][2]uint32 // first chunk (1-based), samples per chunk
		for i, c := range t.chunks {
			if n := len(entries); n == 0 || entries[n-1][1] != c.count {
				entries = append(entries, [2]uint32{uint32(i + 1), c.count})
			}
		}
		w.u32(uint32(len(entries)))
		for _, e := range entries {
			w.u32(e[0])
			w.u32(e[1])
			w.u32(1) // sample description index
		}
	})
	w.fullBox("stsz", 0, 0, func() {
		w.u32(0) // sizes vary
		w.u32(uint32(len(t.sizes)))
		for _, s := range t.sizes {
			w.u32(s)
		}
	})
	typ := "stco"
	if wide {
		typ = "co64"
	}
	w.fullBox(typ, 0, 0, func() {
		w.u32(uint32(len(t.chunks)))
		off := dataStart
		for _, c := range t.chunks {
			if wide {
				w.u64(uint64(off))
			} else {
				w.u32(uint32(off))
			}
			off += c.n
		}
	})
}
