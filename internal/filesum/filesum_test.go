package filesum

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc64"
	"os"
	"path/filepath"
	"testing"
)

// The reference: CRC-64/NVME through the standard library's tables.
var reference = crc64.MakeTable(nvmePoly)

func TestSumsAgainstTheStandardLibrary(t *testing.T) {
	for _, size := range []int{0, 1, 7, 4096, bufSize - 1, bufSize, bufSize + 1, 3*bufSize + 12345} {
		data := make([]byte, size)
		rand.Read(data)
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := File(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if s.SHA256 != hex.EncodeToString(sum[:]) || s.CRC64 != CRC64Base64(crc64.Checksum(data, reference)) || s.Size != int64(size) {
			t.Errorf("%d bytes: %+v", size, s)
		}
		if got, err := ParseCRC64(s.CRC64); err != nil || got != crc64.Checksum(data, reference) {
			t.Errorf("%d bytes: ParseCRC64 = %x, %v", size, got, err)
		}
	}
	// S3's documented check value of CRC-64/NVME ("123456789").
	if got := UpdateCRC64(0, []byte("123456789")); got != 0xae8b14860a799888 {
		t.Errorf("check value %x", got)
	}
	if _, err := ParseCRC64("not base64"); err == nil {
		t.Error("ParseCRC64 accepts garbage")
	}
}

func TestCombineCRC64(t *testing.T) {
	data := make([]byte, 100000)
	rand.Read(data)
	for _, cut := range []int{0, 1, 8, 4096, 65536, 99999, 100000} {
		a, b := data[:cut], data[cut:]
		got := CombineCRC64(UpdateCRC64(0, a), UpdateCRC64(0, b), int64(len(b)))
		if want := crc64.Checksum(data, reference); got != want {
			t.Errorf("cut at %d: %x, want %x", cut, got, want)
		}
	}
	// Update continues a CRC as the combination would.
	if UpdateCRC64(UpdateCRC64(0, data[:500]), data[500:]) != crc64.Checksum(data, reference) {
		t.Error("UpdateCRC64 does not continue a CRC")
	}
}

func TestOfFailsOnAReadError(t *testing.T) {
	if _, err := Of(&failing{bytes.NewReader(make([]byte, 10))}); err == nil {
		t.Error("a read error is not reported")
	}
	if _, err := File(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("an absent file has sums")
	}
}

type failing struct{ r *bytes.Reader }

func (f *failing) Read(p []byte) (int, error) {
	if f.r.Len() == 0 {
		return 0, os.ErrPermission
	}
	return f.r.Read(p)
}

// TestPartCRC64FromBlocks: a part's CRC from the blocks equals the one
// computed over its bytes, for parts on block boundaries; other stretches
// are refused.
func TestPartCRC64FromBlocks(t *testing.T) {
	for _, size := range []int{1, BlockSize - 1, BlockSize, 3*BlockSize + 12345, 8 * BlockSize} {
		data := make([]byte, size)
		rand.Read(data)
		s, err := Of(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if want := (size + BlockSize - 1) / BlockSize; len(s.Blocks) != want {
			t.Fatalf("%d bytes: %d blocks, want %d", size, len(s.Blocks), want)
		}
		back, err := DecodeBlocks(EncodeBlocks(s.Blocks))
		if err != nil || len(back) != len(s.Blocks) {
			t.Fatalf("blocks do not round-trip: %v", err)
		}
		for _, part := range []int{BlockSize, 2 * BlockSize, 5 * BlockSize} {
			for off := 0; off < size; off += part {
				n := min(part, size-off)
				got, ok := PartCRC64(back, int64(size), int64(off), int64(n))
				if want := crc64.Checksum(data[off:off+n], reference); !ok || got != want {
					t.Errorf("%d bytes, part %d at %d: %x %v, want %x", size, part, off, got, ok, want)
				}
			}
		}
		if size > BlockSize {
			if _, ok := PartCRC64(back, int64(size), 1, BlockSize); ok {
				t.Error("a stretch off the blocks' boundaries has a CRC")
			}
			if _, ok := PartCRC64(back, int64(size), 0, BlockSize+1); ok && size != BlockSize+1 {
				t.Error("a stretch ending inside a block has a CRC")
			}
			if _, ok := PartCRC64(back[:len(back)-1], int64(size), 0, BlockSize); ok {
				t.Error("blocks that do not cover the file are trusted")
			}
		}
	}
	if _, err := DecodeBlocks(make([]byte, 7)); err == nil {
		t.Error("DecodeBlocks accepts a torn list")
	}
}
