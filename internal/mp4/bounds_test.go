package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
)

// box is an MP4 box of type typ around body.
func box(typ string, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	out := binary.BigEndian.AppendUint32(nil, uint32(8+len(b)))
	return append(append(out, typ...), b...)
}

// u32s is big-endian words.
func u32s(v ...uint32) []byte {
	var out []byte
	for _, x := range v {
		out = binary.BigEndian.AppendUint32(out, x)
	}
	return out
}

// craftedInit is the smallest moov this package reads: one video track
// (id 1, timescale 1000) with an avc1 sample description, and its trex.
func craftedInit() []byte { return craftedInitWith() }

// craftedInitWith is craftedInit with more boxes in its sample table,
// before the sample description.
func craftedInitWith(stbl ...[]byte) []byte {
	tkhd := box("tkhd", u32s(0, 0, 0, 1, 0, 0), make([]byte, 8+8+36), u32s(16<<16, 16<<16))
	mdhd := box("mdhd", u32s(0, 0, 0, 1000, 0, 0))
	hdlr := box("hdlr", u32s(0, 0), []byte("vide"), make([]byte, 13))
	stsd := box("stsd", u32s(0, 1), box("avc1"))
	trak := box("trak", tkhd, box("mdia", mdhd, hdlr, box("minf", box("stbl", append(stbl, stsd)...))))
	trex := box("trex", u32s(0, 1, 1, 100, 0, 0))
	return box("moov", trak, box("mvex", trex))
}

// craftedBomb is the review's 440-byte file: a valid init, then one moof
// whose truns carry no per-sample field and each claim 2^20 samples in
// 16 bytes, and a tiny mdat.
func craftedBomb() []byte { return craftedBombOf(1 << 20) }

// craftedBombOf is craftedBomb with truns claiming count samples each.
func craftedBombOf(count uint32) []byte {
	var truns [][]byte
	truns = append(truns, box("tfhd", u32s(0, 1)))
	file := append(box("ftyp", []byte("isom"), u32s(0x200), []byte("isomavc1")), craftedInit()...)
	for len(file)+8+8+16+16*(len(truns))+16 < 440 {
		truns = append(truns, box("trun", u32s(0, count)))
	}
	moof := box("moof", box("mfhd", u32s(0, 1)), box("traf", truns...))
	file = append(file, moof...)
	return append(file, box("mdat", make([]byte, 440-len(file)-8))...)
}

// allocated is the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestClaimedSamplesAreBoundedByTheFile: a trun may claim 2^20 samples in
// 16 bytes; a sample takes at least one byte of the file, so a file of
// 440 bytes holds at most 440 of them, whatever its boxes claim. Read
// (streaming, as from S3) and ReadAt (a local file) both answer with
// ErrFormat after allocating a few kilobytes, not gigabytes.
func TestClaimedSamplesAreBoundedByTheFile(t *testing.T) {
	data := craftedBomb()
	if len(data) != 440 {
		t.Fatalf("crafted %d bytes, want 440", len(data))
	}
	for _, tc := range []struct {
		name string
		read func() error
	}{
		{"Read", func() error { _, _, err := Read(bytes.NewReader(data), int64(len(data))); return err }},
		{"ReadAt", func() error { _, err := ReadAt(bytes.NewReader(data), int64(len(data))); return err }},
	} {
		var err error
		n := allocated(func() { err = tc.read() })
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", tc.name, err)
		}
		if n > 1<<20 {
			t.Errorf("%s: allocated %d bytes reading a 440-byte file, want under 1 MiB", tc.name, n)
		}
		t.Logf("%s: %d bytes allocated: %v", tc.name, n, err)
	}
}

// TestTrunClaimsAreBoundedBeforeDecoding: mp4ff (which decodes the truns)
// refuses a trun without per-sample fields that claims more than 1024
// samples, but allocates 16 KiB for one of 16 bytes that claims 1024. The
// claim is bounded by the file before mp4ff sees the trun: the 440-byte
// file made of such truns costs what a file of 440 bytes may (as
// TestClaimedSamplesAreBoundedByTheFile), not 16 KiB and a sample table
// for the first trun.
func TestTrunClaimsAreBoundedBeforeDecoding(t *testing.T) {
	data := craftedBombOf(1024)
	var err error
	n := allocated(func() { _, _, err = Read(bytes.NewReader(data), int64(len(data))) })
	if !errors.Is(err, ErrFormat) {
		t.Errorf("err = %v, want ErrFormat", err)
	}
	if n > 32<<10 {
		t.Errorf("allocated %d bytes reading a 440-byte file, want under 32 KiB", n)
	}
	t.Logf("%d bytes allocated: %v", n, err)
}

// TestBoxesNotNeededAreNotDecoded: a sample group description (sgpd) of
// 28 bytes whose one "alst" entry claims a roll count of 65535 makes mp4ff
// v0.50.0 allocate 4 GiB when it decodes the box (the entry's remaining
// length underflows). Read hands mp4ff only the boxes it needs, never a
// whole moov: a moov of a few hundred bytes holding a dozen of them costs
// what its bytes do.
func TestBoxesNotNeededAreNotDecoded(t *testing.T) {
	sgpd := box("sgpd", u32s(1<<24), []byte("alst"), u32s(4, 1), []byte{0xff, 0xff, 0, 0})
	var extra [][]byte
	for range 12 {
		extra = append(extra, sgpd)
	}
	init := craftedInitWith(extra...)
	var err error
	n := allocated(func() { _, _, err = Read(bytes.NewReader(init), int64(len(init))) })
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "no video samples") {
		t.Errorf("err = %v, want ErrFormat: no video samples", err)
	}
	if n > 32<<10 {
		t.Errorf("allocated %d bytes reading a moov of %d bytes, want under 32 KiB", n, len(init))
	}
}

// TestBoxLargerThanTheFile: a moof claiming 60 MB in a file of a few
// hundred bytes allocates what the file holds, not what the box claims.
func TestBoxLargerThanTheFile(t *testing.T) {
	init := craftedInit()
	data := append(init, u32s(60<<20)...)
	data = append(data, "moof"...)
	data = append(data, make([]byte, 100)...)
	for _, size := range []int64{int64(len(data)), -1} {
		var seg *Segment
		var err error
		n := allocated(func() { seg, _, err = Read(bytes.NewReader(data), size) })
		if n > 1<<20 {
			t.Errorf("size %d: allocated %d bytes for a %d-byte file", size, n, len(data))
		}
		if err == nil {
			t.Errorf("size %d: read %d samples from a file with none", size, len(seg.Samples))
		}
	}
}

// TestSamplesPerFileAreCapped: truns that each fit in the file may not
// claim together more samples than it has bytes; and even a file large
// enough to hold them may not claim more than MaxSamples.
func TestSamplesPerFileAreCapped(t *testing.T) {
	moof := func(counts ...uint32) []byte {
		truns := [][]byte{box("tfhd", u32s(0x10, 1, 1))} // default sample size 1
		for _, n := range counts {
			truns = append(truns, box("trun", u32s(0, n)))
		}
		return box("moof", box("traf", truns...))
	}
	for _, tc := range []struct {
		name   string
		counts []uint32
		extra  int64 // bytes the file claims after the moof
		want   string
	}{
		{"truns adding up to more than the file's bytes", []uint32{1000, 1000}, 1000, "samples claimed in a file of"},
		{"more than MaxSamples", []uint32{MaxSamples + 1}, MaxSamples + 2, "more than 4194304 samples"},
	} {
		file := append(craftedInit(), moof(tc.counts...)...)
		size := int64(len(file)) + tc.extra
		var err error
		n := allocated(func() { _, _, err = Read(bytes.NewReader(file), size) })
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrFormat saying %q", tc.name, err, tc.want)
		}
		if n > 1<<20 {
			t.Errorf("%s: allocated %d bytes", tc.name, n)
		}
	}
}

// FuzzRead: whatever the bytes, Read and ReadAt return (an error or a
// segment whose samples lie in the file), never panic, and agree. Seeds:
// a real segment (ffmpeg's, testdata), the crafted files above, and
// shapes of damage (empty, cut short).
func FuzzRead(f *testing.F) {
	real, err := os.ReadFile("testdata/segment.mp4")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{real, real[:len(real)/2], real[:100], craftedBomb(), craftedInit(), {}, []byte("\x00\x00\x00\x01moov")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		seg, n, err := Read(bytes.NewReader(data), int64(len(data)))
		seg2, err2 := ReadAt(bytes.NewReader(data), int64(len(data)))
		if (err == nil) != (err2 == nil) {
			t.Fatalf("Read: %v, ReadAt: %v", err, err2)
		}
		if err != nil {
			return
		}
		if n != int64(len(data)) {
			t.Errorf("read %d of %d bytes", n, len(data))
		}
		if len(seg.Samples) != len(seg2.Samples) || len(seg.Samples) > len(data) {
			t.Fatalf("%d and %d samples in %d bytes", len(seg.Samples), len(seg2.Samples), len(data))
		}
		for _, s := range seg.Samples {
			if s.Offset < 0 || s.Offset+int64(s.Size) > int64(len(data)) {
				t.Fatalf("sample at %d of %d bytes outside the file of %d", s.Offset, s.Size, len(data))
			}
		}
	})
}
