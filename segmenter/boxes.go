package segmenter

import (
	"errors"
	"os"

	"github.com/cctvd/cctvd/internal/mp4"
)

// boxes reads a fragmented MP4's top-level boxes: how many fragments
// (moof) it holds, and whether ffmpeg wrote it to its end: its boxes tile
// the file exactly and the last is the trailer ffmpeg writes as it closes a
// segment (mfra). A file whose tail never reached the disk (a power cut
// before the data was flushed) is not whole, even when ffmpeg had listed
// it as closed; a file without a fragment holds no frame. A header that is
// cut short or cannot be one (mp4.ReadBoxHeader: ErrIncomplete, ErrFormat,
// a size of 0 among them: a muxer still writing) ends the walk: not whole.
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
	last := ""
	for off := int64(0); off < size; {
		h, err := mp4.ReadBoxHeader(f, off, size)
		if errors.Is(err, mp4.ErrIncomplete) || errors.Is(err, mp4.ErrFormat) {
			return fragments, false, nil
		}
		if err != nil {
			return fragments, false, err
		}
		if h.Type == "moof" {
			fragments++
		}
		last = h.Type
		off += h.Size
	}
	return fragments, last == "mfra", nil
}
