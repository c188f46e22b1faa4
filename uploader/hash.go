package uploader

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc64"
	"io"
	"os"
	"strconv"
)

// checksums are a file's, in the forms S3 and the catalog use.
type checksums struct {
	sha256    string // hex: the metadata, the catalog
	sha256b64 string // base64: x-amz-checksum-sha256
	// md5 (hex) and md5raw, of a file that goes up in one PutObject
	// (Content-MD5); empty for a multipart upload.
	md5    string
	md5raw []byte
	// crc64b64 is the CRC-64/NVME of the whole file, base64, as S3 gives a
	// full-object checksum; partCRC64 those of its parts (one part for a
	// single PutObject).
	crc64b64  string
	partCRC64 []string
	// partSize is the multipart upload's part size, 0 for a single PUT.
	partSize int64
	// multipartETag is the ETag S3 gives a multipart upload of the file in
	// parts of partSize: the MD5 of the parts' MD5s, "-", the count.
	multipartETag string
}

// crc64NVME is the table of CRC-64/NVME (S3's CRC64NVME), as hash/crc64
// wants its polynomial: bit-reversed.
const crc64NVMEPoly = 0x9a6c9329ac4bc9b5

var crc64NVME = crc64.MakeTable(crc64NVMEPoly)

// hashFile reads f once for its sha256, its CRC-64/NVME (whole and by
// part) and its MD5 (of the whole file for a single PUT, of each part for a
// multipart upload in parts of partSize, 0 for none), then rewinds it. The
// three run side by side, on as many cores as there are.
func hashFile(f *os.File, size, partSize int64) (checksums, error) {
	c := checksums{partSize: partSize}
	part := partSize
	if part == 0 {
		part = max(size, 1)
	}
	shaIn, crcIn := make(chan []byte, 4), make(chan []byte, 4)
	shaOut := make(chan []byte, 1)
	crcOut := make(chan []uint64, 1)
	go func() {
		h := sha256.New()
		for chunk := range shaIn {
			h.Write(chunk)
		}
		shaOut <- h.Sum(nil)
	}()
	go func() { crcOut <- partCRCs(crcIn, part) }()

	var md5s []byte // the parts' MD5s, or the whole file's
	var m hash.Hash
	var inPart int64
	var readErr error
	for {
		buf := make([]byte, 256<<10) // handed to the other goroutines: a new one each time
		n, err := io.ReadFull(f, buf)
		data := buf[:n]
		if n > 0 {
			shaIn <- data
			crcIn <- data
		}
		for p := data; len(p) > 0; {
			if m == nil {
				m = md5.New()
			}
			chunk := p[:min(int64(len(p)), part-inPart)]
			m.Write(chunk)
			inPart += int64(len(chunk))
			if inPart == part {
				md5s, m, inPart = m.Sum(md5s), nil, 0
			}
			p = p[len(chunk):]
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	close(shaIn)
	close(crcIn)
	shaSum, crcs := <-shaOut, <-crcOut
	if readErr != nil {
		return c, readErr
	}
	if m != nil {
		md5s = m.Sum(md5s)
	}
	c.sha256 = hex.EncodeToString(shaSum)
	c.sha256b64 = base64.StdEncoding.EncodeToString(shaSum)
	var whole uint64
	for i, crc := range crcs {
		c.partCRC64 = append(c.partCRC64, crc64Base64(crc))
		whole = crc64Combine(whole, crc, min(part, size-int64(i)*part))
	}
	c.crc64b64 = crc64Base64(whole)
	if partSize == 0 {
		if len(md5s) == 0 { // an empty file
			sum := md5.Sum(nil)
			md5s = sum[:]
		}
		c.md5raw = md5s
		c.md5 = hex.EncodeToString(md5s)
	} else {
		sum := md5.Sum(md5s)
		c.multipartETag = hex.EncodeToString(sum[:]) + "-" + strconv.Itoa(len(md5s)/md5.Size)
	}
	_, err := f.Seek(0, io.SeekStart)
	return c, err
}

// partCRCs computes the CRC-64/NVME of each part of what comes in.
func partCRCs(in <-chan []byte, part int64) []uint64 {
	var out []uint64
	var crc uint64
	var inPart int64
	for data := range in {
		for len(data) > 0 {
			chunk := data[:min(int64(len(data)), part-inPart)]
			crc = crc64.Update(crc, crc64NVME, chunk)
			inPart += int64(len(chunk))
			if inPart == part {
				out, crc, inPart = append(out, crc), 0, 0
			}
			data = data[len(chunk):]
		}
	}
	if inPart > 0 {
		out = append(out, crc)
	}
	return out
}

func crc64Base64(crc uint64) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, crc))
}

// crc64Combine returns the CRC-64/NVME of A followed by B from the CRCs of
// A and B and B's length: zlib's crc32_combine, in 64 bits. It holds for
// any reflected CRC whose initial value and final XOR are equal (both all
// ones here), so the whole file's CRC comes from its parts' in a few
// microseconds instead of a second pass over the bytes.
func crc64Combine(crcA, crcB uint64, lenB int64) uint64 {
	if lenB <= 0 {
		return crcA
	}
	var even, odd [64]uint64
	odd[0] = crc64NVMEPoly // the operator for one zero bit
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

func isMD5Hex(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
