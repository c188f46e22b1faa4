package uploader

import (
	"context"
	"slices"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/config"
)

// The queue's order: which waiting segments go up next. It is a piece of
// its own, in three steps, so that policies have one place to go:
//
//  1. the order (Config.Order): the oldest waiting first (the catalog's
//     Due), or the newest (DueNewest), read a window at a time, within
//     the feed policy's classes (feeds.go: requested ranges, sub feeds,
//     main feeds);
//  2. the rules (Config.Rules), which reorder that window: none today
//     (the feed policy and, under a deficit, segments with activity first
//     are in the catalog's order of step 1, feeds.go) — a Rule sees
//     whether the plan is in deficit;
//  3. under a deficit, the segments that cannot reach S3 before retention
//     deletes them are left (skipped): their upload would be wasted, and
//     the link goes to segments that can make it. Each skip is counted,
//     said in the status, and logged once an episode.

// Rule compares two waiting segments for the queue (negative: a goes
// first; 0: the order decides); deficit says whether the plan is in
// deficit.
type Rule func(a, b catalog.Record, deficit bool) int

// lookahead is how many more segments than free slots the queue reads,
// for the rules to reorder and the deficit to skip over.
const lookahead = 16

// next returns up to free segments to start, leaving out skip.
func (u *Uploader) next(ctx context.Context, cfg Config, free int, skip map[int64]bool) ([]catalog.Record, error) {
	in, deficit := u.planView()
	window := free
	if len(cfg.Rules) > 0 || deficit {
		window = free + lookahead
	}
	due := u.deps.Catalog.Due
	if cfg.Order == config.UploadNewest {
		due = u.deps.Catalog.DueNewest
	}
	if fc, ok := u.deps.Catalog.(FeedCatalog); ok { // the feed policy (feeds.go)
		due = func(ctx context.Context, limit int, skip map[int64]bool) ([]catalog.Record, error) {
			return u.dueByPolicy(ctx, fc, cfg, limit, skip, deficit)
		}
	}
	recs, err := due(ctx, window, skip)
	if err != nil {
		return nil, err
	}
	if len(cfg.Rules) > 0 {
		slices.SortStableFunc(recs, func(a, b catalog.Record) int {
			for _, rule := range cfg.Rules {
				if c := rule(a, b, deficit); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	out := make([]catalog.Record, 0, free)
	for _, r := range recs {
		if len(out) == free {
			break
		}
		if deficit && u.cannotFinish(ctx, in, cfg, r) {
			u.skip(r)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// cannotFinish says whether r, started now, would be deleted by retention
// before it reached S3: its upload takes longer than the time until
// retention deletes it, behind the room left and the footage waiting that
// retention deletes first (plan.go; the feeds' order: feeds.go).
func (u *Uploader) cannotFinish(ctx context.Context, in PlanInput, cfg Config, r catalog.Record) bool {
	older, err := u.waitingBefore(ctx, r)
	if err != nil {
		return false // never skip on a guess
	}
	deleteIn, ok := in.DeleteIn(older)
	if !ok {
		return false
	}
	sendIn, ok := in.SendIn(r.Bytes, cfg.Concurrency)
	return ok && sendIn > deleteIn
}

// skip records that the queue left r under a deficit.
func (u *Uploader) skip(r catalog.Record) {
	u.planMu.Lock()
	first := len(u.skipped) == 0
	if u.skipped == nil {
		u.skipped = map[int64]bool{}
	}
	again := u.skipped[r.ID]
	u.skipped[r.ID] = true
	u.planMu.Unlock()
	if again {
		return
	}
	if first {
		u.log.Warn().Str("segment", r.Name()).Msg("upload deficit: leaving the waiting segments that cannot reach S3 before retention deletes them, " +
			"so the link goes to those that can (counted in the status; logged once until the deficit clears)")
	}
	u.update(func(s *Status) {
		s.Plan.Skipped++
		s.LastSkipped = r.Name()
	})
}

// skippedIDs are the segments left in this deficit episode.
func (u *Uploader) skippedIDs(into map[int64]bool) {
	u.planMu.Lock()
	defer u.planMu.Unlock()
	for id := range u.skipped {
		into[id] = true
	}
}

// SegmentDeleted tells the uploader that retention deleted r. A segment
// S3 did not have, deleted while a later one goes up in its place (the
// order is newest first, or the deficit skipped it), is counted and said:
// in the status, and in the log once a deficit episode.
func (u *Uploader) SegmentDeleted(r catalog.Record) {
	if r.Upload == catalog.Uploaded {
		return
	}
	u.planMu.Lock()
	var later string
	if _, going := u.inflight[r.ID]; going { // its upload goes on from the open file
		u.planMu.Unlock()
		return
	}
	for _, f := range u.inflight {
		if f.Start.After(r.Start) && f.ID != r.ID {
			later = f.Name()
			break
		}
	}
	first := later != "" && !u.saidDeleted
	if later != "" {
		u.saidDeleted = true
	}
	u.planMu.Unlock()
	if later == "" {
		return
	}
	if first {
		u.log.Warn().Str("segment", r.Name()).Str("uploading", later).
			Msg("retention deleted a segment S3 did not have while a later one goes up in its place (counted in the status; logged once an episode)")
	}
	u.update(func(s *Status) {
		s.Plan.DeletedWaiting++
		s.LastDeletedWaiting = r.Name()
	})
}

// setInflight keeps the segments going up, for SegmentDeleted.
func (u *Uploader) setInflight(r catalog.Record, on bool) {
	u.planMu.Lock()
	defer u.planMu.Unlock()
	if u.inflight == nil {
		u.inflight = map[int64]catalog.Record{}
	}
	if on {
		u.inflight[r.ID] = r
	} else {
		delete(u.inflight, r.ID)
	}
}
