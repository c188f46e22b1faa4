package mp4

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/Eyevinn/mp4ff/hevc"
	ff "github.com/Eyevinn/mp4ff/mp4"
)

// Synthetic init segments and fragments, made with mp4ff as ffmpeg's
// segment muxer lays them out: ftyp+moov with mvex, then moof+mdat pairs.

const testSPS = "6764001eacd940a02ff9610000030001000003003c8f162d96" // H.264 High, 640x360
const testPPS = "68ebecb22c"

func testInit(t *testing.T, timescale uint32) []byte {
	t.Helper()
	sps, _ := hex.DecodeString(testSPS)
	pps, _ := hex.DecodeString(testPPS)
	in := ff.CreateEmptyInit()
	in.AddEmptyTrack(timescale, "video", "und")
	if err := in.Moov.Trak.SetAVCDescriptor("avc1", [][]byte{sps}, [][]byte{pps}, true); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := in.Encode(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// testFragment is a moof+mdat of n samples of dur each from decode time
// dts, the first with flags first, the others non-sync; tfdt64 makes a
// 64-bit tfdt whatever the value.
func testFragment(t *testing.T, seq uint32, dts uint64, n int, dur uint32, first uint32, tfdt64 bool) []byte {
	t.Helper()
	f, err := ff.CreateFragment(seq, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		flags := ff.NonSyncSampleFlags | ff.SampleDependsOn1
		if i == 0 {
			flags = first
		}
		f.AddFullSample(ff.FullSample{Sample: ff.Sample{Flags: flags, Dur: dur, Size: 4}, DecodeTime: dts + uint64(i)*uint64(dur), Data: []byte{0, 0, 0, byte(i)}})
	}
	if tfdt64 {
		f.Moof.Traf.Tfdt.Version = 1
	}
	var b bytes.Buffer
	if err := f.Encode(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParseInitSegment(t *testing.T) {
	in, err := ParseInitSegment(testInit(t, 12800))
	if err != nil {
		t.Fatal(err)
	}
	if in.Codec != "avc1.64001e" || in.MIME != `video/mp4; codecs="avc1.64001e"` || in.Timescale != 12800 || in.Width != 640 || in.Height != 360 {
		t.Errorf("init: %+v", in)
	}
	same, _ := ParseInitSegment(testInit(t, 12800))
	other, _ := ParseInitSegment(testInit(t, 90000))
	if !in.SameStream(same) || in.SameStream(other) {
		t.Error("SameStream: the same stream differs, or another timescale is the same")
	}
	if _, err := ParseInitSegment(testFragment(t, 1, 0, 2, 512, ff.SyncSampleFlags, false)); !errors.Is(err, ErrFormat) {
		t.Errorf("a fragment as init: %v", err)
	}
}

// Keyframe detection (the first sample's flags) and the fragment's times,
// from the trun, with defaults where it has none.
func TestParseFragment(t *testing.T) {
	in, err := ParseInitSegment(testInit(t, 12800))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		first       uint32
		keyframe    bool
		dts         uint64
		n           int
		dur         uint32
		wantDur     uint64
		wantSamples int
	}{
		{"ffmpeg's keyframe flags (depends on nothing)", ff.SyncSampleFlags, true, 0, 13, 512, 13 * 512, 13},
		{"sync by the non-sync bit alone (flags 0)", 0, true, 6656, 5, 512, 5 * 512, 5},
		{"a fragment cut at half a second, not at a keyframe", ff.NonSyncSampleFlags | ff.SampleDependsOn1, false, 1 << 20, 13, 512, 13 * 512, 13},
		{"a leading, non-sync sample", ff.NonSyncSampleFlags, false, 12800, 1, 1024, 1024, 1},
	}
	for _, tt := range tests {
		f, err := ParseFragment(in, testFragment(t, 7, tt.dts, tt.n, tt.dur, tt.first, false))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if f.Keyframe != tt.keyframe || f.DecodeTime != tt.dts || f.Duration != tt.wantDur || f.Samples != tt.wantSamples {
			t.Errorf("%s: keyframe %v, at %d, for %d, %d samples; want %v, %d, %d, %d", tt.name, f.Keyframe, f.DecodeTime, f.Duration, f.Samples,
				tt.keyframe, tt.dts, tt.wantDur, tt.wantSamples)
		}
	}
	if _, err := ParseFragment(in, testInit(t, 12800)); !errors.Is(err, ErrFormat) {
		t.Errorf("an init as fragment: %v", err)
	}
}

// The decode time rewritten: samples and their bytes unchanged, whether
// the tfdt was 64 bits (ffmpeg's) or grows from 32 (data offsets moved).
func TestWithDecodeTime(t *testing.T) {
	in, _ := ParseInitSegment(testInit(t, 12800))
	for _, wide := range []bool{true, false} {
		raw := testFragment(t, 3, 512, 4, 512, ff.SyncSampleFlags, wide)
		f, err := ParseFragment(in, raw)
		if err != nil {
			t.Fatal(err)
		}
		out, err := f.WithDecodeTime(1 << 40)
		if err != nil {
			t.Fatal(err)
		}
		g, err := ParseFragment(in, out)
		if err != nil {
			t.Fatalf("tfdt64 %v: the rewritten fragment: %v", wide, err)
		}
		if g.DecodeTime != 1<<40 || g.Duration != 4*512 || !g.Keyframe {
			t.Errorf("tfdt64 %v: rewritten to %+v", wide, g)
		}
		// The samples' bytes are where the trun says.
		sr, err := ff.DecodeFile(bytes.NewReader(append(testInit(t, 12800), out...)))
		if err != nil {
			t.Fatal(err)
		}
		samples, err := sr.Segments[0].Fragments[0].GetFullSamples(sr.Init.Moov.Mvex.Trex)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range samples {
			if !bytes.Equal(s.Data, []byte{0, 0, 0, byte(i)}) || s.DecodeTime != 1<<40+uint64(i)*512 {
				t.Errorf("tfdt64 %v: sample %d: %v at %d", wide, i, s.Data, s.DecodeTime)
			}
		}
		if wide && len(out) != len(raw) {
			t.Errorf("a 64-bit tfdt rewritten changed the size: %d -> %d", len(raw), len(out))
		}
	}
}

// Box boundaries in a file being written: a box not all there yet is
// ErrIncomplete, never a box.
func TestReadBoxHeader(t *testing.T) {
	file := append(testInit(t, 12800), testFragment(t, 1, 0, 3, 512, ff.SyncSampleFlags, true)...)
	var types []string
	for off := int64(0); ; {
		h, err := ReadBoxHeader(bytes.NewReader(file), off, int64(len(file)))
		if errors.Is(err, ErrIncomplete) {
			if off != int64(len(file)) {
				t.Errorf("incomplete at %d of %d", off, len(file))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, h.Type)
		off += h.Size
	}
	if got := string(bytes.Join(bs(types), []byte(","))); got != "ftyp,moov,moof,mdat" {
		t.Errorf("boxes %s", got)
	}
	for _, cut := range []int{len(file) - 1, len(file) - 4, 4} {
		r := bytes.NewReader(file[:cut])
		var off int64
		for {
			h, err := ReadBoxHeader(r, off, int64(cut))
			if err != nil {
				if !errors.Is(err, ErrIncomplete) {
					t.Errorf("cut at %d: %v", cut, err)
				}
				break
			}
			if off+h.Size > int64(cut) {
				t.Errorf("cut at %d: a box to %d", cut, off+h.Size)
			}
			off += h.Size
		}
	}
	bad := []byte{0, 0, 0, 0, 'm', 'o', 'o', 'f', 0, 0, 0, 0}
	if _, err := ReadBoxHeader(bytes.NewReader(bad), 0, int64(len(bad))); !errors.Is(err, ErrFormat) {
		t.Errorf("a box of size 0: %v", err)
	}
}

func bs(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// TestHostileSPSIsNoPanic: the parameter sets in an init segment are the
// camera's. An H.265 SPS on which mp4ff's parser indexes out of range
// (cpb_cnt_minus1 = 255, found by fuzzing) gives the sample entry's type
// as codec, not a panic of the caller (live view's reader: the daemon).
func TestHostileSPSIsNoPanic(t *testing.T) {
	data, err := os.ReadFile("testdata/golden/hevc/seg000.mp4")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ff.DecodeFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	hvcc := f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.HvcX.HvcC
	replaced := false
	for i, a := range hvcc.NaluArrays {
		if a.NaluType() == hevc.NALU_SPS {
			hvcc.NaluArrays[i] = hevc.NewNaluArray(true, hevc.NALU_SPS, [][]byte{[]byte("B000000000000002007\x7f\xe970000000007A000\x04\x00")})
			replaced = true
		}
	}
	if !replaced {
		t.Fatal("the golden H.265 segment has no SPS")
	}
	var init bytes.Buffer
	if err := f.Init.Encode(&init); err != nil {
		t.Fatal(err)
	}
	var in *InitSegment
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("ParseInitSegment panicked on the camera's SPS: %v", p)
			}
		}()
		in, err = ParseInitSegment(init.Bytes())
	}()
	if err != nil {
		t.Fatalf("a parseable init segment with an odd SPS: %v", err)
	}
	if in.Codec != "hvc1" && in.Codec != "hev1" {
		t.Errorf("codec %q, want the sample entry's type", in.Codec)
	}
}
