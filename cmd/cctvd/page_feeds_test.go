//go:build integration

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPageFeeds: in Chromium, a camera with a sub feed whose main footage
// retention deleted (nothing goes up, the disk limit is small): the card
// says each feed and how far back it reaches; the timeline marks the
// stretch only the sub feed holds, and its tooltip says so; a click there
// plays the sub copy, said; "Send in full quality" records an incident
// request for the minute playing.
func TestPageFeeds(t *testing.T) {
	s := newFeedSetup(t)
	s.s3 = `, "uploadSchedule": [{"from": "00:00", "to": "24:00", "mbps": 0}]`
	s.limitGB = 0.0012 // 1.2 MB: a few main segments (about 300 kB each)
	d := startDaemon(t, "run", "--config", s.writeConfig(t))
	c := newClient(t, d, "")
	awaitRecordings(t, d, c, 3*time.Minute, "retention deletes four main segments", func(rs []feedRec) bool {
		return count(rs, func(r feedRec) bool { return !r.Sub && strings.HasPrefix(r.DeleteCause, "retention") }) >= 4
	})

	p := openPage(t, c.base+"/")
	p.wait("door recording", `!!document.querySelector('[data-camera="door"][data-state="recording"]')`, 30*time.Second)
	p.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	p.click(`#zoom button[data-range="600"]`)
	p.wait("the sub feed's stretch on door's timeline", `!!document.querySelector('[data-camera="door"] .tl-item.span-subfeed[data-feed="sub"]')`, 60*time.Second)
	p.wait("the main feed's span beside it", `!!document.querySelector('[data-camera="door"] .tl-item.span[data-feed="main"]')`, 30*time.Second)
	facts := p.text(`[data-camera="door"] .facts`)
	if !strings.Contains(facts, "main (f1)") || !strings.Contains(facts, "sub (f1-sub)") || !strings.Contains(facts, "on this box from") {
		p.fail("the card does not say the feeds and their reach: %q", facts)
	}
	if legend := p.text(".legend"); !strings.Contains(legend, "Sub feed only") {
		p.fail("the legend does not name the sub feed's copy: %q", legend)
	}
	// The middle of the sub feed's stretch: its tooltip, then a click.
	xy := pageEval[[]float64](p, `(() => { const r = document.querySelector('[data-camera="door"] .tl-item.span-subfeed').getBoundingClientRect();
	  return [r.left + r.width / 2, r.top + r.height / 2]; })()`)
	p.do("hover the sub feed's stretch", chromedp.MouseEvent("mouseMoved", xy[0], xy[1]))
	p.wait("its tooltip", `document.querySelector('[data-camera="door"] .tl-tip').textContent.includes('sub feed only')`, 15*time.Second)
	p.do("click it", chromedp.MouseClickXY(xy[0], xy[1]))
	p.wait("the sub copy playing", `(() => { const v = document.querySelector('#video'), pl = document.querySelector('#player');
	  return !pl.hidden && pl.dataset.feed === 'sub' && v.src.startsWith('blob:') && !v.paused && v.currentTime > 0.3; })()`, 90*time.Second)
	if st := p.text("#player-status"); !strings.Contains(st, "sub feed") {
		p.fail("the player does not say it plays the sub feed: %q", st)
	}
	p.wait("Send in full quality offered", `!document.querySelector('#player-upload').hidden`, 15*time.Second)
	p.click("#player-upload")
	p.wait("the request answered", `/Requested|in S3 already|No main-feed footage/.test(document.querySelector('#player-status').textContent)`, 30*time.Second)
	var reqs struct {
		Requests []struct {
			Camera string    `json:"camera"`
			From   time.Time `json:"from"`
		} `json:"requests"`
	}
	c.json("GET", "/api/v1/uploads/requests", 200, &reqs)
	if len(reqs.Requests) != 1 || reqs.Requests[0].Camera != "door" {
		p.fail("the page's request is not recorded: %+v", reqs.Requests)
	}
	from := int64(pageEval[float64](p, `+document.querySelector('#player').dataset.from`))
	if got := reqs.Requests[0].From.UnixMilli(); got != from {
		p.fail("the request starts at %d, the minute playing at %d", got, from)
	}
	p.noErrors()
	stop(t, d)
}
