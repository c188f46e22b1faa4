package lvc

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/cctvd/cctvd/internal/mp4"
)

func TestClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://127.0.0.1:18080/api/v1/cameras/door/live", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer 0123456789abcdef0123"}}})
	if err != nil {
		t.Fatal(err, resp)
	}
	c.SetReadLimit(64 << 20)
	var in *mp4.InitSegment
	start := time.Now()
	for time.Since(start) < 15*time.Second {
		typ, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if typ == websocket.MessageText {
			fmt.Printf("%6.2fs text %s\n", time.Since(start).Seconds(), b)
			continue
		}
		if string(b[4:8]) == "ftyp" {
			in, err = mp4.ParseInitSegment(b)
			fmt.Printf("%6.2fs init %d bytes %v %v\n", time.Since(start).Seconds(), len(b), in.Codec, err)
			continue
		}
		f, err := mp4.ParseFragment(in, b)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%6.2fs frag %d bytes t=%.3f d=%.3f n=%d key=%v\n", time.Since(start).Seconds(), len(b), float64(f.DecodeTime)/float64(in.Timescale), float64(f.Duration)/float64(in.Timescale), f.Samples, f.Keyframe)
	}
}
