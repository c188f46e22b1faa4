package uploader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/media"
)

// The decode lane. A file cctvd did not see close (catalog.Record.MustDecode:
// rebuilt from the disk, salvaged, back after it was gone) is decoded whole
// by ffprobe before it goes up. That can take minutes, so it never runs in
// an upload slot: an attempt that finds such a file (and S3 without it)
// hands the row over (catalog.AwaitDecode) and frees its slot, and the
// row is not due for upload until the lane has a verdict. The lane checks
// one file at a time, the rows tried least often first, then the oldest,
// within a budget that grows with the segment (media.DecodeBudget):
//
//   - ffprobe decodes it: the row is due for upload (decode check passed);
//   - ffprobe reports invalid data or decoding errors in it, or decodes
//     no frame (media.ErrUndecodable): it is quarantined, as any damaged
//     file (and its footage reported lost unless S3 keeps an earlier
//     upload of it);
//   - the checker itself fails (killed by a signal, not done within the
//     budget, not started, or stopped by the system: an I/O error, no
//     memory, no permission, an exit ffprobe does not explain; see
//     media.Frames): the row waits DecodeRetry (doubling) behind
//     the others, and after DecodeTries such failures it goes up with the
//     cheap structural check only, flagged in the catalog
//     (catalog.DecodeSkipped) and in the object's metadata
//     (x-amz-meta-decode-check: skipped), logged and counted.
//
// So no row whose checker keeps failing sits at the head of any queue, and
// a segment closed since never waits for another's decode.

// decoder is the decode lane: Run's goroutine, started and awaited by the
// uploader's Run.
type decoder struct {
	u    *Uploader
	wake chan struct{}
}

// notify tells the lane a row was handed over. It never blocks.
func (d *decoder) notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run checks the rows handed over until ctx ends. A check cut short by
// the stop leaves its row waiting, not counted: the next start checks it.
func (d *decoder) run(ctx context.Context) {
	u := d.u
	// notBefore: the end of each row's backoff after its checker failed,
	// on the monotonic clock.
	notBefore := map[int64]time.Duration{}
	for {
		now := u.clock.Mono()
		skip := make(map[int64]bool, len(notBefore))
		wait := time.Minute // a safety net; a hand-over wakes the lane
		for id, t := range notBefore {
			if t <= now {
				delete(notBefore, id)
				continue
			}
			skip[id] = true
			wait = min(wait, t-now)
		}
		recs, err := u.deps.Catalog.DecodeDue(ctx, 1, skip)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			u.log.Error().Err(err).Msg("cannot read the decode queue")
		}
		if len(recs) == 1 {
			if retryIn := d.check(ctx, recs[0]); retryIn > 0 {
				notBefore[recs[0].ID] = u.clock.Mono() + retryIn
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-u.clock.After(max(wait, 10*time.Millisecond)):
		}
	}
}

// check decodes one row's file and records the verdict. It returns how
// long the row must wait before it is checked again (0: it has a verdict,
// or the lane is stopping).
func (d *decoder) check(ctx context.Context, r catalog.Record) time.Duration {
	u := d.u
	cfg := u.settings()
	keep := context.WithoutCancel(ctx)
	if _, err := os.Stat(r.Path); err != nil {
		// Gone without the catalog hearing of it yet (reconcile will): no
		// verdict on the file, and no spin on the row meanwhile.
		u.log.Warn().Err(err).Str("segment", r.Name()).Msg("cannot decode a file before upload: it is not there")
		return cfg.DecodeRetry
	}
	budget := cfg.DecodeBudget(r.End.Sub(r.Start), r.Bytes)
	u.update(func(s *Status) { s.Decoding = r.Name() })
	start := u.clock.Mono()
	frames, err := media.Frames(ctx, cfg.ProbePath, r.Path, budget)
	took := u.clock.Mono() - start
	u.update(func(s *Status) { s.Decoding = "" })
	switch {
	case ctx.Err() != nil:
		return 0
	case err == nil:
		if err := u.deps.Catalog.SetDecoded(keep, r.ID); err != nil {
			u.log.Error().Err(err).Str("segment", r.Name()).Msg("cannot record a decoded file")
			return cfg.DecodeRetry
		}
		u.log.Debug().Str("segment", r.Name()).Int("frames", frames).Dur("took", took).Msg("decoded before upload")
		u.Notify()
		return 0
	case errors.Is(err, media.ErrUndecodable):
		qerr := u.attempter().quarantine(ctx, r, "ffprobe decodes no video in the file: "+err.Error())
		if !errors.Is(qerr, errQuarantined) {
			u.log.Error().Err(qerr).Str("segment", r.Name()).Msg("cannot quarantine a file ffprobe cannot decode")
			return cfg.DecodeRetry
		}
		return 0
	}
	// The checker failed, not the file.
	msg := u.deps.Redactor.String(fmt.Sprintf("the decode check could not run: %v", err))
	tries, rerr := u.deps.Catalog.DecodeFailedToRun(keep, r.ID, msg)
	if rerr != nil {
		u.log.Error().Err(rerr).Str("segment", r.Name()).Msg("cannot record a decode check that could not run")
		return cfg.DecodeRetry
	}
	if tries < cfg.DecodeTries {
		retryIn := retryDelay(tries, cfg.DecodeRetry, 16*cfg.DecodeRetry)
		u.log.Warn().Err(err).Str("segment", r.Name()).Int("tries", tries).Dur("budget", budget).Dur("retryIn", retryIn).
			Msg("the decode check before upload could not run; other files go first")
		return retryIn
	}
	if err := u.deps.Catalog.SkipDecode(keep, r.ID); err != nil {
		u.log.Error().Err(err).Str("segment", r.Name()).Msg("cannot record a skipped decode check")
		return cfg.DecodeRetry
	}
	u.log.Warn().Err(err).Str("segment", r.Name()).Int("tries", tries).
		Msg("the decode check before upload could not run " + fmt.Sprint(tries) + " times: uploading with the structural check only (decode-check: skipped)")
	u.update(func(s *Status) { s.DecodeSkipped++ })
	u.Notify()
	return 0
}
