package testenv

import (
	"testing"

	"github.com/cctvd/cctvd/internal/fixture"
)

// Clip is what ffprobe says of an exported MP4.
type Clip = fixture.Clip

// ProbeClip runs ffprobe on an exported MP4, packet by packet, decoding
// every frame; a file that does not play fails the test.
func ProbeClip(t testing.TB, path string) Clip {
	t.Helper()
	c, err := fixture.ProbeClip(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
