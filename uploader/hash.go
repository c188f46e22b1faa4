package uploader

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"os"
	"strconv"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/filesum"
)

// One read per upload. A segment's SHA-256 and whole-file CRC-64/NVME are
// taken when it closes (the segmenter, package filesum, from the page cache
// ffmpeg just filled) and kept in its row; an upload starts from them:
//
//   - a single PutObject carries the SHA-256 (x-amz-checksum-sha256 and the
//     sha256 metadata), both known before the first byte goes; S3 computes
//     the SHA-256 of what it receives and refuses the object unless they
//     are equal, so the file is read once, by the send;
//   - a multipart upload carries the SHA-256 in its metadata from
//     CreateMultipartUpload; each part's CRC (its header: MinIO refuses a
//     part without one in an upload with a checksum, "checksum missing")
//     comes from the CRCs by 1 MiB block taken at close (filesum), so each
//     part is read once, by its send; only a part size that is not a whole
//     number of MiB, or a row without blocks, reads each part for its CRC
//     just before it goes, sending it from the page cache that read
//     filled. The parts' CRCs combine into the whole file's, which must
//     equal the one taken at close before the completion asks S3 to check
//     the same, and S3 refuses a part whose bytes do not match its CRC.
//
// So the bytes S3 keeps are tied to the sha256 the object's metadata
// carries by a checksum taken in the same read as that sha256, as before,
// without a pass over the file before the upload. Bytes that no longer
// match (the file changed, or the disk returned others) fail verification
// (errFileChanged): the row's CRC is forgotten and the next attempt reads
// the file whole first (hashFile), then uploads what is on the disk now.
//
// hashFile, the read before the send, is for the rows without checksums
// (rebuilt from the disk or S3, left by an older cctvd, or whose file
// changed) and for servers that keep no checksums, whose ETag is checked
// against the file's MD5 instead (then the MD5 must be known before a
// single PutObject, as its Content-MD5).

// checksums are a file's, in the forms S3 and the catalog use.
type checksums struct {
	sha256    string // hex: the metadata, the catalog
	sha256b64 string // base64: x-amz-checksum-sha256
	// crc64b64 is the CRC-64/NVME of the whole file, base64, as S3 gives a
	// full-object checksum.
	crc64b64 string
	// partSize is the multipart upload's part size, 0 for a single PUT.
	partSize int64
	// partCRC64 are the parts' CRCs when the file was read whole before the
	// upload (hashFile); nil when each part's is taken as it goes.
	partCRC64 []string
	// md5 (hex) and md5raw, of a file that goes up in one PutObject
	// (Content-MD5), and multipartETag, the ETag S3 gives a multipart upload
	// in parts of partSize (the MD5 of the parts' MD5s, "-", the count):
	// known only when hashFile took them, for a server that keeps no
	// checksums.
	md5           string
	md5raw        []byte
	multipartETag string
}

// rowSums are the checksums the catalog keeps of r's file of size bytes
// (taken when it closed, or by an earlier attempt's hashFile), for an
// upload in parts of partSize (0: one PUT), with each part's CRC when the
// row has the file's CRCs by block and the parts fall on their boundaries
// (then no part is read before it is sent); false when it keeps no usable
// pair, or the file no longer has the size they were taken at.
func rowSums(r catalog.Record, size, partSize int64) (checksums, bool) {
	raw, err := hex.DecodeString(r.SHA256)
	if err != nil || len(raw) != sha256.Size || r.Bytes != size {
		return checksums{}, false
	}
	if _, err := filesum.ParseCRC64(r.CRC64); err != nil {
		return checksums{}, false
	}
	c := checksums{sha256: r.SHA256, sha256b64: base64.StdEncoding.EncodeToString(raw), crc64b64: r.CRC64, partSize: partSize}
	if partSize == 0 {
		return c, true
	}
	blocks, err := filesum.DecodeBlocks(r.CRC64Blocks)
	if err != nil || len(blocks) == 0 {
		return c, true
	}
	var crcs []string
	for off := int64(0); off < size; off += partSize {
		crc, ok := filesum.PartCRC64(blocks, size, off, min(partSize, size-off))
		if !ok {
			return c, true // the parts' CRCs are read as each goes
		}
		crcs = append(crcs, filesum.CRC64Base64(crc))
	}
	c.partCRC64 = crcs
	return c, true
}

// hashFile reads f whole for its sha256 and its CRC-64/NVME (whole and by
// part: partSize, 0 for a single PUT) and, withMD5, its MD5 (of the whole
// file for a single PUT, of each part for a multipart upload), then rewinds
// it. The SHA-256 runs beside the rest, on another core.
func hashFile(f *os.File, size, partSize int64, withMD5 bool) (checksums, error) {
	c := checksums{partSize: partSize}
	part := partSize
	if part == 0 {
		part = max(size, 1)
	}
	shaIn := make(chan []byte, 4)
	shaOut := make(chan []byte, 1)
	go func() {
		h := sha256.New()
		for chunk := range shaIn {
			h.Write(chunk)
		}
		shaOut <- h.Sum(nil)
	}()

	var md5s []byte // the parts' MD5s, or the whole file's
	var m hash.Hash
	var crcs []uint64
	var crc, whole uint64
	var inPart int64
	var readErr error
	for {
		buf := make([]byte, 256<<10) // handed to the SHA-256's goroutine: a new one each time
		n, err := io.ReadFull(f, buf)
		data := buf[:n]
		if n > 0 {
			shaIn <- data
			whole = filesum.UpdateCRC64(whole, data)
		}
		for p := data; len(p) > 0; {
			chunk := p[:min(int64(len(p)), part-inPart)]
			crc = filesum.UpdateCRC64(crc, chunk)
			if withMD5 {
				if m == nil {
					m = md5.New()
				}
				m.Write(chunk)
			}
			inPart += int64(len(chunk))
			if inPart == part {
				crcs, crc, inPart = append(crcs, crc), 0, 0
				if m != nil {
					md5s, m = m.Sum(md5s), nil
				}
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
	shaSum := <-shaOut
	if readErr != nil {
		return c, readErr
	}
	if inPart > 0 {
		crcs = append(crcs, crc)
		if m != nil {
			md5s = m.Sum(md5s)
		}
	}
	c.sha256 = hex.EncodeToString(shaSum)
	c.sha256b64 = base64.StdEncoding.EncodeToString(shaSum)
	c.crc64b64 = filesum.CRC64Base64(whole)
	if partSize > 0 {
		for _, p := range crcs {
			c.partCRC64 = append(c.partCRC64, filesum.CRC64Base64(p))
		}
	}
	switch {
	case !withMD5:
	case partSize == 0:
		if len(md5s) == 0 { // an empty file
			sum := md5.Sum(nil)
			md5s = sum[:]
		}
		c.md5raw = md5s
		c.md5 = hex.EncodeToString(md5s)
	default:
		sum := md5.Sum(md5s)
		c.multipartETag = hex.EncodeToString(sum[:]) + "-" + strconv.Itoa(len(md5s)/md5.Size)
	}
	_, err := f.Seek(0, io.SeekStart)
	return c, err
}

func isMD5Hex(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
