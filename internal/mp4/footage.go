package mp4

import (
	"bytes"
	"io"

	ff "github.com/Eyevinn/mp4ff/mp4"
)

// maxTopBoxes bounds the top-level boxes NoFootage walks: a 24 h segment
// of half-second fragments has about 173 000 moof and mdat boxes.
const maxTopBoxes = 1 << 20

// NoFootage says whether the file r (of size bytes) certainly holds no
// footage: every top-level box is whole and none of them holds a frame (no
// moof, no mdat with bytes: a segment ffmpeg opened and never wrote a
// frame to; an empty file), or its moov has no video track (no video
// stream). A file it cannot walk to its end (damaged, cut inside a box,
// random bytes) may hold footage: false. It reads the box headers, and
// the moov (at most 4 MiB), nothing else.
func NoFootage(r io.ReaderAt, size int64) bool {
	var frames, moovSeen, video bool
	off := int64(0)
	for n := 0; off < size; n++ {
		if n == maxTopBoxes {
			return false
		}
		h, err := ReadBoxHeader(r, off, size)
		if err != nil {
			return false
		}
		switch h.Type {
		case "moof":
			frames = true
		case "mdat":
			frames = frames || h.Size > int64(h.HeaderLen)
		case "moov":
			if moovSeen || h.Size > maxLiveBox {
				return false
			}
			moovSeen = true
			b := make([]byte, h.Size)
			if _, err := r.ReadAt(b, off); err != nil {
				return false
			}
			var ok bool
			if video, ok = hasVideoTrack(b); !ok {
				return false
			}
		}
		off += h.Size
	}
	return off == size && (!frames || (moovSeen && !video))
}

// hasVideoTrack says whether the moov box b holds a video track; ok is
// false when b cannot be decoded.
func hasVideoTrack(b []byte) (video, ok bool) {
	defer func() {
		if recover() != nil { // a moov that makes the library panic: cannot tell
			video, ok = false, false
		}
	}()
	box, err := ff.DecodeBox(0, bytes.NewReader(b))
	if err != nil {
		return false, false
	}
	moov, isMoov := box.(*ff.MoovBox)
	if !isMoov {
		return false, false
	}
	for _, t := range moov.Traks {
		if t.Mdia != nil && t.Mdia.Hdlr != nil && t.Mdia.Hdlr.HandlerType == "vide" {
			return true, true
		}
	}
	return false, true
}
