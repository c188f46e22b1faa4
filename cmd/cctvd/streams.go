package main

import (
	"context"
	"errors"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/keeper"
	"github.com/cctvd/cctvd/supervisor"
)

// streamStore keeps the streams discovery finds in the catalog, for the
// supervisor. The catalog opens beside recording, within a second as a
// rule: a camera that needs its stream waits that long for it rather than
// discover again (which costs the camera login attempts); a catalog that
// is not usable by then costs one discovery, never recording.
type streamStore struct{ keep *keeper.Keeper }

// streamWait bounds the wait for the catalog.
const streamWait = 5 * time.Second

func (s streamStore) ready(ctx context.Context) { s.readyWithin(ctx, streamWait) }

func (s streamStore) readyWithin(ctx context.Context, wait time.Duration) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_ = s.keep.WaitFor(wctx, func(st keeper.Status) bool { return st.State == keeper.Ready })
}

func (s streamStore) Get(ctx context.Context, camera string) (supervisor.Stream, bool, error) {
	s.ready(ctx)
	st, err := s.keep.Stream(ctx, camera)
	if errors.Is(err, catalog.ErrNotFound) {
		return supervisor.Stream{}, false, nil
	}
	if err != nil {
		return supervisor.Stream{}, false, err
	}
	return supervisor.Stream{Key: st.Key, URI: st.URI, Source: st.Source, FoundAt: st.FoundAt}, true, nil
}

func (s streamStore) Put(ctx context.Context, camera string, st supervisor.Stream) error {
	s.ready(ctx)
	return s.keep.PutStream(ctx, catalog.Stream{Camera: camera, Key: st.Key, URI: st.URI, Source: st.Source, FoundAt: st.FoundAt})
}

// RecordedBefore says whether the catalog holds footage of the camera:
// asked when no stream was ever found for it, it means an earlier cctvd
// recorded it at rtsp://ip:rtspPort/ (see supervisor.RecordedBefore).
func (s streamStore) RecordedBefore(ctx context.Context, camera string) (bool, error) {
	s.ready(ctx)
	_, err := s.keep.Latest(ctx, camera)
	if errors.Is(err, catalog.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// probeStore keeps mode auto's decisions in the catalog, for the
// supervisor: a restarted daemon records at once, as before its restart.
type probeStore struct{ streamStore }

// probeWait bounds a probe's wait for the catalog: without it, a start
// costs a probe (mode auto) and a second of ffmpeg's probing, never more.
const probeWait = time.Second

func (s probeStore) GetProbe(ctx context.Context, camera string) (supervisor.Probe, bool, error) {
	s.readyWithin(ctx, probeWait)
	p, err := s.keep.Probe(ctx, camera)
	if errors.Is(err, catalog.ErrNotFound) {
		return supervisor.Probe{}, false, nil
	}
	if err != nil {
		return supervisor.Probe{}, false, err
	}
	return supervisor.Probe{Key: p.Key, Decision: p.Decision, Codec: p.Codec, Stream: p.Stream, Loose: p.Loose, ProbedAt: p.ProbedAt}, true, nil
}

func (s probeStore) PutProbe(ctx context.Context, camera string, p supervisor.Probe) error {
	s.readyWithin(ctx, probeWait)
	return s.keep.PutProbe(ctx, catalog.Probe{Camera: camera, Key: p.Key, Decision: p.Decision, Codec: p.Codec, Stream: p.Stream, Loose: p.Loose, ProbedAt: p.ProbedAt})
}
