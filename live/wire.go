package live

import (
	"encoding/json"
	"time"

	"github.com/cctvd/cctvd/internal/mp4"
)

// The messages of the live WebSocket, in the order a viewer gets them:
//
//	text   {"type":"init","mime":"video/mp4; codecs=\"avc1.64001e\"","codec":"avc1.64001e","width":640,"height":360,"stream":1}
//	binary the init segment (ftyp, moov) the init message announces
//	text   {"type":"clock","media":12.5,"wall":"2026-01-06T12:00:00.5Z"}   media time 12.5 s is that wall-clock time
//	       (without "wall": not known yet, for the segment from media time 12.5 s on: ffmpeg just started)
//	binary a media fragment (moof, mdat), the first one at a keyframe
//	binary ... every fragment ffmpeg writes, about every half second
//
// and, whenever they happen:
//
//	text   {"type":"init",...} + binary: the stream changed (a new ffmpeg run recording another codec or size):
//	       a player changes its SourceBuffer's type (or makes a new one) before it appends what follows
//	text   {"type":"drop","fragments":6}: the viewer fell behind; that many fragments were left out, and the
//	       next fragment is a keyframe further on the same timeline
//	text   {"type":"waiting","reason":"..."}: nothing to show yet (the camera is not recording)
//
// Media times run on one timeline across segments and ffmpeg runs (the
// fragments' decode times are rewritten), so a player appends everything
// to one SourceBuffer; "stream" counts the init segments of the timeline.

type initMsg struct {
	Type   string `json:"type"`
	MIME   string `json:"mime"`
	Codec  string `json:"codec"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Stream int    `json:"stream"`
}

type clockMsg struct {
	Type  string    `json:"type"`
	Media float64   `json:"media"`
	Wall  time.Time `json:"wall,omitzero"`
}

type dropMsg struct {
	Type      string `json:"type"`
	Fragments int    `json:"fragments"`
}

type waitingMsg struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

func textFrame(v any) *Frame {
	b, err := json.Marshal(v)
	if err != nil {
		panic("live: " + err.Error()) // fixed types: cannot fail
	}
	return &Frame{Text: true, Data: b}
}

func initFrames(in *mp4.InitSegment, stream int) []*Frame {
	return []*Frame{
		textFrame(initMsg{Type: "init", MIME: in.MIME, Codec: in.Codec, Width: in.Width, Height: in.Height, Stream: stream}),
		{Data: in.Bytes},
	}
}

func clockFrame(media float64, wall time.Time) *Frame {
	return textFrame(clockMsg{Type: "clock", Media: media, Wall: wall.UTC()})
}

func dropFrame(n int) *Frame { return textFrame(dropMsg{Type: "drop", Fragments: n}) }

func waitingFrame(reason string) *Frame {
	return textFrame(waitingMsg{Type: "waiting", Reason: reason})
}
