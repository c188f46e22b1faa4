package export

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/uploader"
)

// A camera with a sub stream has two feeds, and a range's best copy is
// the main feed's where it exists and the sub feed's where it is gone
// (retention deletes a camera's main footage first; the sub feed may be
// the only one off-site). The two feeds' parameter sets and sizes differ,
// so their footage never goes into one MP4: an export is of one feed.
// When the best copy of a range is all one feed, the export is one MP4 of
// it, and its manifest says which (Manifest.Feed, and FeedNote when it is
// the sub feed because the main copy is gone). When it is of both, the
// range is handed over as parts, each one feed's stretch, each its own
// MP4 with its manifest (MixedError lists them; the API answers 300 with
// them, the CLI writes one file per part, the page plays them in turn).

// The feeds an export may ask for.
const (
	FeedBest = ""     // the main feed where it exists, the sub feed where it is gone
	FeedMain = "main" // the main feed only
	FeedSub  = "sub"  // the sub feed only
)

// NoteSubOnly is the manifest's FeedNote for a sub copy handed over
// because the range's main copy is gone.
const NoteSubOnly = "the main feed's copy of this range is gone (deleted from the box and not in S3): this is the sub feed's copy, at its lower resolution"

// Part is one feed's stretch of a range whose best copy is of both feeds.
type Part struct {
	Feed   string    `json:"feed"`
	FeedID string    `json:"feedId"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

// MixedError says a range's best copy is of both feeds: each part is an
// export of its own (ask for it with its range and feed).
type MixedError struct {
	Parts []Part
}

func (e *MixedError) Error() string {
	var b strings.Builder
	b.WriteString("export: the range's best copy is of two feeds, which never go into one MP4; export each part on its own:")
	for _, p := range e.Parts {
		fmt.Fprintf(&b, " %s %s to %s;", p.Feed, p.From.Format(time.RFC3339Nano), p.To.Format(time.RFC3339Nano))
	}
	return strings.TrimSuffix(b.String(), ";")
}

// classifyFeeds marks the sub feed's segments: those of a feed id any
// segment is known to be sub of (a catalog row says so). From the bucket
// alone, which does not say, a camera with two or more feed ids in the
// range has its main feed the one of the highest bitrate, and the others
// are sub copies. One feed id: all main, as before.
func classifyFeeds(segs []Segment) {
	subIDs := map[string]bool{}
	type rate struct {
		bytes int64
		secs  float64
	}
	rates := map[string]*rate{}
	for _, s := range segs {
		if s.Sub {
			subIDs[s.FeedID] = true
		}
		r := rates[s.FeedID]
		if r == nil {
			r = &rate{}
			rates[s.FeedID] = r
		}
		r.bytes += s.Bytes
		r.secs += s.End.Sub(s.Start).Seconds()
	}
	if len(subIDs) == 0 && len(rates) > 1 {
		main, best := "", -1.0
		for id, r := range rates {
			if r.secs <= 0 {
				continue
			}
			if bps := float64(r.bytes) / r.secs; bps > best || (bps == best && id < main) {
				main, best = id, bps
			}
		}
		for id := range rates {
			if id != main {
				subIDs[id] = true
			}
		}
	}
	for i := range segs {
		segs[i].Sub = subIDs[segs[i].FeedID]
	}
}

// SelectFeed returns the segments of [from, to) to export for feed, the
// feed they are of ("" when the camera shows no sub feed: as before) and
// the manifest's note. For FeedBest it is a *MixedError when the best
// copy is of both feeds.
func SelectFeed(segs []Segment, from, to time.Time, feed string) ([]Segment, string, string, error) {
	classifyFeeds(segs)
	var mains, subs []Segment
	for _, s := range segs {
		if s.Sub {
			subs = append(subs, s)
		} else {
			mains = append(mains, s)
		}
	}
	if len(subs) == 0 && feed != FeedSub {
		return segs, "", "", nil // one feed: the export of before
	}
	switch feed {
	case FeedMain:
		return mains, FeedMain, "", nil
	case FeedSub:
		return subs, FeedSub, "", nil
	}
	holes := uncovered(mains, from, to)
	var fills []Part
	for _, h := range holes {
		for _, s := range subs {
			if !s.available() {
				continue
			}
			a, b := maxTime(h.From, s.Start), minTime(h.To, s.End)
			if b.Sub(a) > time.Second { // names are to the second
				fills = append(fills, Part{Feed: FeedSub, FeedID: s.FeedID, From: a, To: b})
			}
		}
	}
	if len(fills) == 0 {
		return mains, FeedMain, "", nil
	}
	if len(holes) == 1 && !holes[0].From.After(from) && !holes[0].To.Before(to) {
		return subs, FeedSub, NoteSubOnly, nil // no main footage in the range at all
	}
	var pieces []Part
	for _, s := range mains {
		if s.available() && minTime(s.End, to).Sub(maxTime(s.Start, from)) > time.Second { // names are to the second
			pieces = append(pieces, Part{Feed: FeedMain, FeedID: s.FeedID, From: maxTime(s.Start, from), To: minTime(s.End, to)})
		}
	}
	pieces = append(pieces, fills...)
	sort.SliceStable(pieces, func(i, j int) bool { return pieces[i].From.Before(pieces[j].From) })
	var parts []Part
	for _, p := range pieces {
		if n := len(parts); n > 0 && parts[n-1].Feed == p.Feed {
			parts[n-1].To = maxTime(parts[n-1].To, p.To)
			continue
		}
		if n := len(parts); n > 0 {
			parts[n-1].To = p.From // the previous part runs up to this one: no frame is lost between
		}
		parts = append(parts, p)
	}
	parts[0].From, parts[len(parts)-1].To = from, to
	if len(parts) == 1 { // all the footage there is, of one feed
		if parts[0].Feed == FeedSub {
			return subs, FeedSub, NoteSubOnly, nil
		}
		return mains, FeedMain, "", nil
	}
	return nil, "", "", &MixedError{Parts: parts}
}

// uncovered returns the stretches of [from, to) no available segment of
// segs holds (a second's slack: names are to the second).
func uncovered(segs []Segment, from, to time.Time) []Range {
	var av []Segment
	for _, s := range segs {
		if s.available() && s.End.After(from) && s.Start.Before(to) {
			av = append(av, s)
		}
	}
	sort.SliceStable(av, func(i, j int) bool { return av[i].Start.Before(av[j].Start) })
	var out []Range
	at := from
	for _, s := range av {
		if s.Start.Sub(at) > time.Second {
			out = append(out, Range{From: at, To: s.Start})
		}
		at = maxTime(at, s.End)
	}
	if to.Sub(at) > time.Second {
		out = append(out, Range{From: at, To: to})
	}
	return out
}

// MarkSubFromBucket reads, for a listing of the bucket alone, the feed
// metadata of one object of each feed id (uploader.MetaFeed): a feed id
// whose object says "sub" is the sub feed's. A listing of one feed id
// cannot be told apart by its bitrate; the metadata can.
func MarkSubFromBucket(ctx context.Context, api S3API, segs []Segment) error {
	seen := map[string]bool{}
	for _, s := range segs {
		if seen[s.FeedID] {
			continue
		}
		seen[s.FeedID] = true
		h, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Key)})
		if err != nil {
			return fmt.Errorf("head s3://%s/%s: %w", s.Bucket, s.Key, err)
		}
		if h.Metadata[uploader.MetaFeed] == FeedSub {
			for i := range segs {
				if segs[i].FeedID == s.FeedID {
					segs[i].Sub = true
				}
			}
		}
	}
	return nil
}
