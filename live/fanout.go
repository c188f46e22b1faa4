package live

import (
	"context"
	"errors"
	"sync"
)

// Frame is one WebSocket message to a viewer: a text message (JSON, see
// wire.go) or a binary one (an init segment, or a media fragment).
type Frame struct {
	Text bool
	Data []byte

	media bool // a media fragment: dropped when the viewer falls behind
	key   bool // a media fragment starting at a keyframe: a viewer may start there
}

// ErrClosed: the viewer was closed (it left, or live view stopped).
var ErrClosed = errors.New("live: viewer closed")

// queue is one viewer's frames not yet written, bounded in frames and in
// bytes. The frames are shared by every viewer of the camera (the queue
// holds references, never copies), and a viewer that falls behind is not
// buffered for: its fragments are dropped and it resumes at the next
// keyframe with a "drop" message (Moonfire NVR's rule). Control frames
// (init, clock) are never dropped, so what follows a drop decodes.
type queue struct {
	maxFrames, maxBytes int

	mu      sync.Mutex
	frames  []*Frame
	media   int // media frames in frames
	bytes   int // bytes of the media frames
	waitKey bool
	joining bool // waiting for the first keyframe: nothing was dropped
	dropped int  // fragments dropped since the last drop message
	drops   int  // drop episodes, in all
	closed  bool
	ready   chan struct{} // a token when frames (or closed) changed
}

func newQueue(maxFrames, maxBytes int) *queue {
	return &queue{maxFrames: maxFrames, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// push adds f, or drops it by the rule; it never blocks. It reports
// whether the viewer fell behind with this frame (a new drop episode).
func (q *queue) push(f *Frame) (fellBehind bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	if !f.media {
		q.frames = append(q.frames, f)
		q.signal()
		return false
	}
	if !q.waitKey && (q.media+1 > q.maxFrames || q.bytes+len(f.Data) > q.maxBytes) {
		q.dropMedia()
		q.waitKey, fellBehind = true, true
		q.drops++
	}
	if q.waitKey {
		if !f.key {
			if !q.joining {
				q.dropped++
			}
			return fellBehind
		}
		q.waitKey, q.joining = false, false
		if q.dropped > 0 {
			q.frames = append(q.frames, dropFrame(q.dropped))
			q.dropped = 0
		}
	}
	q.frames = append(q.frames, f)
	q.media++
	q.bytes += len(f.Data)
	q.signal()
	return fellBehind
}

// prefill adds f whatever the bounds: what a new viewer starts with (the
// fragments from the newest keyframe, kept within QueueBytes).
func (q *queue) prefill(f *Frame) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.frames = append(q.frames, f)
	if f.media {
		q.media++
		q.bytes += len(f.Data)
	}
	q.signal()
}

// startAtKey makes the viewer skip media until the next keyframe, without
// a drop message: a new viewer when no keyframe is at hand.
func (q *queue) startAtKey() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waitKey, q.joining = true, true
}

// dropMedia removes the media frames queued, keeping the control frames
// in their order. Under q.mu.
func (q *queue) dropMedia() {
	kept := q.frames[:0]
	for _, f := range q.frames {
		if f.media {
			q.dropped++
			continue
		}
		kept = append(kept, f)
	}
	clear(q.frames[len(kept):]) // no reference kept to what was dropped
	q.frames = kept
	q.media, q.bytes = 0, 0
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// next takes the oldest frame, waiting for one until ctx ends or the
// queue is closed.
func (q *queue) next(ctx context.Context) (*Frame, error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, ErrClosed
		}
		if len(q.frames) > 0 {
			f := q.frames[0]
			q.frames[0] = nil
			q.frames = q.frames[1:]
			if f.media {
				q.media--
				q.bytes -= len(f.Data)
			}
			q.mu.Unlock()
			return f, nil
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// close ends the queue: next returns ErrClosed, and what was queued is
// let go.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	clear(q.frames)
	q.frames, q.media, q.bytes = nil, 0, 0
	q.signal()
}

// stats are a queue's counts.
func (q *queue) stats() (queued, bytes, drops int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames), q.bytes, q.drops
}
