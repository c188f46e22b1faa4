package segmenter

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// TestBoxesOfCraftedHeaders: headers ffmpeg does not write (a size of 0,
// "to the end of the file"; sizes smaller than a header; a 64-bit size cut
// short) make a file that is not whole, never an error or a count of
// fragments that are not there; 64-bit sizes are read.
func TestBoxesOfCraftedHeaders(t *testing.T) {
	hdr := func(size uint32, typ string) []byte { return append(binary.BigEndian.AppendUint32(nil, size), typ...) }
	large := func(size uint64, typ string) []byte { return binary.BigEndian.AppendUint64(hdr(1, typ), size) }
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	ftyp := cat(hdr(16, "ftyp"), []byte("isom\x00\x00\x02\x00"))
	moof := hdr(8, "moof")
	mfra := hdr(8, "mfra")
	for _, tc := range []struct {
		name      string
		data      []byte
		fragments int
		whole     bool
	}{
		{"whole", cat(ftyp, moof, hdr(12, "mdat"), []byte("abcd"), mfra), 1, true},
		{"64-bit sizes", cat(ftyp, large(16, "moof"), large(20, "mdat"), []byte("abcd"), large(16, "mfra")), 1, true},
		{"no trailer", cat(ftyp, moof, moof), 2, false},
		{"a box to the end of the file", cat(ftyp, moof, hdr(0, "mdat"), []byte("abcd")), 1, false},
		{"a size smaller than its header", cat(ftyp, hdr(4, "moof"), mfra), 0, false},
		{"a 64-bit size smaller than its header", cat(ftyp, large(12, "moof"), mfra), 0, false},
		{"a 64-bit size cut short", cat(ftyp, moof, hdr(1, "mdat"), []byte{0, 0, 0}), 1, false},
		{"a box longer than the file", cat(ftyp, moof, hdr(100, "mdat"), mfra), 1, false},
		{"stray bytes", cat(ftyp, moof, mfra, []byte{0, 0, 0}), 1, false},
	} {
		p := filepath.Join(t.TempDir(), "seg.mp4")
		if err := os.WriteFile(p, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		n, whole, err := boxes(p)
		if err != nil || n != tc.fragments || whole != tc.whole {
			t.Errorf("%s: %d fragments, whole %v, %v; want %d, %v", tc.name, n, whole, err, tc.fragments, tc.whole)
		}
	}
}
