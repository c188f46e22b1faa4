// Package filesum takes a file's two checksums in one read: its SHA-256,
// which the catalog, the objects' metadata and the exports' manifests
// carry, and its CRC-64/NVME (S3's CRC64NVME), which S3 checks the bytes
// of a multipart upload against, whole and by 1 MiB block (so that each
// part's CRC, which goes as a header before the part's bytes, comes from
// the blocks instead of a read of the part). Whoever reads a segment whole once (the
// segmenter as it closes it, from the page cache ffmpeg just filled; the
// uploader when no one did) takes both, so the upload itself need not read
// the file before it sends it.
//
// The CRC runs on the CPU's carry-less multiplication (PCLMULQDQ, VPCLMULQDQ,
// ARM's PMULL) through github.com/minio/crc64nvme: tens of GB/s, against
// about 1.5 GB/s for hash/crc64's tables, so beside the SHA-256 it costs
// next to nothing.
package filesum

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/minio/crc64nvme"
)

// Sums are a file's checksums in the forms the catalog and S3 use.
type Sums struct {
	SHA256 string // hex
	CRC64  string // base64 of the big-endian CRC-64/NVME, as S3 gives it
	Size   int64  // the bytes they cover
	// Blocks are the CRC-64/NVME of each BlockSize stretch of the file (the
	// last one may be shorter), so that the CRC of a part of an upload that
	// starts and ends on their boundaries comes from them (PartCRC64)
	// without reading the part again.
	Blocks []uint64
}

// BlockSize is the stretch Sums.Blocks cover: a divisor of every part
// size that is a whole number of MiB.
const BlockSize = 1 << 20

// bufSize is the read size: large enough that the syscalls cost nothing
// beside the hashing, small enough to stay in the CPU's cache.
const bufSize = 256 << 10

// Of reads r to its end and returns its sums.
func Of(r io.Reader) (Sums, error) {
	h := sha256.New()
	var crc, block uint64
	var n int64
	var blocks []uint64
	buf := make([]byte, bufSize)
	for {
		k, err := r.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			crc = crc64nvme.Update(crc, buf[:k])
			for p := buf[:k]; len(p) > 0; {
				chunk := p[:min(int64(len(p)), BlockSize-n%BlockSize)]
				block = crc64nvme.Update(block, chunk)
				n += int64(len(chunk))
				if n%BlockSize == 0 {
					blocks, block = append(blocks, block), 0
				}
				p = p[len(chunk):]
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Sums{}, err
		}
	}
	if n%BlockSize != 0 {
		blocks = append(blocks, block)
	}
	return Sums{SHA256: hex.EncodeToString(h.Sum(nil)), CRC64: CRC64Base64(crc), Size: n, Blocks: blocks}, nil
}

// File returns the sums of the file at path.
func File(path string) (Sums, error) {
	f, err := os.Open(path)
	if err != nil {
		return Sums{}, fmt.Errorf("checksums: %w", err)
	}
	defer f.Close()
	s, err := Of(f)
	if err != nil {
		return Sums{}, fmt.Errorf("checksums of %s: %w", path, err)
	}
	return s, nil
}

// UpdateCRC64 returns the CRC-64/NVME of the bytes crc covers followed by p
// (crc 0: of p alone).
func UpdateCRC64(crc uint64, p []byte) uint64 { return crc64nvme.Update(crc, p) }

// CRC64Base64 is crc as S3 and the catalog write it.
func CRC64Base64(crc uint64) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, crc))
}

// ParseCRC64 reads a CRC64Base64.
func ParseCRC64(s string) (uint64, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 8 {
		return 0, fmt.Errorf("checksums: %q is not a CRC-64 in base64", s)
	}
	return binary.BigEndian.Uint64(b), nil
}

// EncodeBlocks is blocks as the catalog keeps them: 8 bytes each, big-endian.
func EncodeBlocks(blocks []uint64) []byte {
	out := make([]byte, 0, 8*len(blocks))
	for _, b := range blocks {
		out = binary.BigEndian.AppendUint64(out, b)
	}
	return out
}

// DecodeBlocks reads EncodeBlocks.
func DecodeBlocks(b []byte) ([]uint64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("checksums: %d bytes of block CRCs", len(b))
	}
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	return out, nil
}

// PartCRC64 is the CRC-64/NVME of the length bytes at offset of a file of
// size bytes whose Blocks are blocks; false unless the stretch starts on a
// block boundary and ends on one or at the file's end, and blocks cover
// the file.
func PartCRC64(blocks []uint64, size, offset, length int64) (uint64, bool) {
	end := offset + length
	if int64(len(blocks)) != (size+BlockSize-1)/BlockSize || offset < 0 || length <= 0 || end > size ||
		offset%BlockSize != 0 || (end%BlockSize != 0 && end != size) {
		return 0, false
	}
	shift := blockShift()
	var crc uint64
	for i := offset / BlockSize; i*BlockSize < end; i++ {
		if n := size - i*BlockSize; n < BlockSize {
			crc = CombineCRC64(crc, blocks[i], n)
		} else {
			crc = gf2Times(shift, crc) ^ blocks[i]
		}
	}
	return crc, true
}

// blockShift is the operator CombineCRC64 applies to its first CRC for a
// second of BlockSize bytes (it is linear in that CRC): made once, so that
// a block costs 64 steps, not the operator's making.
var blockShift = sync.OnceValue(func() *[64]uint64 {
	var m [64]uint64
	for i := range m {
		m[i] = CombineCRC64(1<<i, 0, BlockSize)
	}
	return &m
})

// nvmePoly is CRC-64/NVME's polynomial, bit-reversed (as hash/crc64 takes it).
const nvmePoly = 0x9a6c9329ac4bc9b5

// CombineCRC64 returns the CRC-64/NVME of A followed by B from the CRCs of
// A and B and B's length: zlib's crc32_combine, in 64 bits. It holds for
// any reflected CRC whose initial value and final XOR are equal (both all
// ones here), so a whole file's CRC comes from its parts' in a few
// microseconds instead of a pass over the bytes.
func CombineCRC64(crcA, crcB uint64, lenB int64) uint64 {
	if lenB <= 0 {
		return crcA
	}
	var even, odd [64]uint64
	odd[0] = nvmePoly // the operator for one zero bit
	row := uint64(1)
	for n := 1; n < 64; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four
	for {
		gf2Square(&even, &odd) // the first time, one zero byte
		if lenB&1 != 0 {
			crcA = gf2Times(&even, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
		gf2Square(&odd, &even)
		if lenB&1 != 0 {
			crcA = gf2Times(&odd, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
	}
	return crcA ^ crcB
}

func gf2Times(mat *[64]uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[64]uint64) {
	for n := range 64 {
		square[n] = gf2Times(mat, mat[n])
	}
}
