package mp4

import (
	"bytes"
	"encoding/binary"
	"testing"

	ff "github.com/Eyevinn/mp4ff/mp4"
)

// TestNoFootage: only a file that certainly holds no footage says so: a
// header without a frame, or no video track; anything damaged, cut or
// unknown may hold footage.
func TestNoFootage(t *testing.T) {
	initOf := func(kinds ...string) []byte {
		in := ff.CreateEmptyInit()
		for _, k := range kinds {
			ts := uint32(90000)
			if k == "audio" {
				ts = 48000
			}
			in.AddEmptyTrack(ts, k, "und")
		}
		var b bytes.Buffer
		if err := in.Encode(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	box := func(typ string, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
		return append(append(b, typ...), body...)
	}
	video, audio := initOf("video"), initOf("audio")
	fragment := append(box("moof", make([]byte, 40)), box("mdat", []byte("frame bytes"))...)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tt := range []struct {
		name string
		data []byte
		none bool
	}{
		{"a header without a frame", video, true},
		{"a header and an empty mdat", cat(video, box("mdat", nil)), true},
		{"an audio track only", cat(audio, fragment), true},
		{"video and audio", cat(initOf("video", "audio"), fragment), false},
		{"a fragment of video", cat(video, fragment), false},
		{"cut inside its fragment", cat(video, fragment)[:len(video)+20], false},
		{"zeros", make([]byte, 4096), false},
		{"random words", []byte("this is not an mp4 file at all, not even close"), false},
		{"empty (a power cut emptied it)", nil, true},
		{"a damaged moov", cat(box("moov", []byte("garbage inside the moov box")), fragment), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := NoFootage(bytes.NewReader(tt.data), int64(len(tt.data))); got != tt.none {
				t.Errorf("NoFootage = %t, want %t", got, tt.none)
			}
		})
	}
}
