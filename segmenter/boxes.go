package segmenter

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
)

// boxes reads a fragmented MP4's top-level boxes: how many fragments
// (moof) it holds, and whether ffmpeg wrote it to its end: its boxes tile
// the file exactly and the last is the trailer ffmpeg writes as it closes a
// segment (mfra). A file whose tail never reached the disk (a power cut
// before the data was flushed) is not whole, even when ffmpeg had listed
// it as closed; a file without a fragment holds no frame.
func boxes(path string) (fragments int, whole bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	size := fi.Size()
	var hdr [16]byte
	var off int64
	last := ""
	for off < size {
		if size-off < 8 {
			return fragments, false, nil
		}
		if _, err := f.ReadAt(hdr[:8], off); err != nil {
			return fragments, false, err
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		last = string(hdr[4:8])
		switch n {
		case 0: // the box runs to the end of the file: a muxer still writing
			return fragments, false, nil
		case 1: // 64-bit size
			if _, err := f.ReadAt(hdr[8:16], off+8); err != nil {
				if errors.Is(err, io.EOF) {
					return fragments, false, nil
				}
				return fragments, false, err
			}
			n = int64(binary.BigEndian.Uint64(hdr[8:16]))
			if n < 16 {
				return fragments, false, nil
			}
		default:
			if n < 8 {
				return fragments, false, nil
			}
		}
		if n > size-off {
			return fragments, false, nil // cut short
		}
		if last == "moof" {
			fragments++
		}
		off += n
	}
	return fragments, last == "mfra", nil
}
