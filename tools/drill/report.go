package drill

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cctvd/cctvd/internal/fixture"
	"github.com/cctvd/cctvd/segment"
	"github.com/cctvd/cctvd/uploader"
)

// MinContinuity is the continuity every camera must reach.
const MinContinuity = 0.99

// Abut is how far apart two segments may be without a gap explaining it.
const Abut = time.Second

// Report is what the drill found.
type Report struct {
	Duration time.Duration
	Cameras  []CameraReport
	Faults   []*Fault
	Objects  int
	Checks   []Check
}

// CameraReport is one camera's footage over the drill, as a person
// watching it would find it: each object placed at its start for as long
// as it plays (ffprobe), not for as long as its name or metadata says.
type CameraReport struct {
	Name string
	// Window is from cctvd's first start to the camera's stop. FaultTime
	// is the part of it the faults hitting this camera took by themselves
	// (from each fault until its cause cleared: the camera stalled or
	// down, cctvd not running); Covered is the footage in the rest.
	// Start-up, recovery and every other hole count as loss.
	Window, FaultTime, Covered float64
	// StartUp is from cctvd's first start to the camera's first footage.
	StartUp time.Duration
	// Allowed is the loss the targets allow: start-up and each fault's
	// recovery target, plus 1 - MinContinuity of the window.
	Allowed float64
	// UpOld and CoveredOld are the older measure, side by side: from the
	// first footage, with each fault's seconds until footage resumed (its
	// recovery too) left out.
	UpOld, CoveredOld float64
	// Holes sums the holes in the footage by their gap-log cause
	// ("unexplained" when the gap log has none).
	Holes map[string]float64
	// EndSkew is the largest difference between where an object's
	// metadata says it ends and where its played duration ends.
	EndSkew time.Duration
}

// Continuity is the share of the window, the faults' own time left out,
// that has footage: recovery and start-up count as loss.
func (c CameraReport) Continuity() float64 {
	if up := c.Window - c.FaultTime; up > 0 {
		return c.Covered / up
	}
	return 0
}

// Lost is the seconds of the window without footage, the faults' own
// time left out.
func (c CameraReport) Lost() float64 { return c.Window - c.FaultTime - c.Covered }

// ContinuityOld is CoveredOld / UpOld: the faults' seconds until footage
// resumed left out, as the drill measured before.
func (c CameraReport) ContinuityOld() float64 {
	if c.UpOld <= 0 {
		return 0
	}
	return c.CoveredOld / c.UpOld
}

// OK says whether the camera's footage is within its targets.
func (c CameraReport) OK() bool {
	return c.Window > 0 && c.ContinuityOld() >= MinContinuity && c.Lost() <= c.Allowed && c.StartUp <= startTarget
}

// Check is one pass/fail check.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// OK says whether the drill passed.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	for _, c := range r.Cameras {
		if !c.OK() {
			return false
		}
	}
	for _, f := range r.Faults {
		if !f.OK() {
			return false
		}
	}
	return len(r.Cameras) > 0
}

// Write prints the report.
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "continuity drill: %v of recording, %d objects in S3\n\n", r.Duration.Round(time.Second), r.Objects)
	fmt.Fprintf(w, "Footage is each object from its start for as long as it plays (ffprobe). Continuity: footage over the\n"+
		"window from cctvd's first start to the camera's stop, the faults' own time left out (start-up and\n"+
		"recovery count as loss). The older measure, beside it, also leaves out each fault's recovery and the\n"+
		"start-up. Lost is the window's seconds without footage beyond the faults' own; allowed is start-up's\n"+
		"and each recovery's target plus %.0f%% of the window.\n\n", 100*(1-MinContinuity))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "camera\twindow s\tfaults' own s\tfootage s\tcontinuity\tolder measure\tstart-up\tlost s (allowed)\tend skew\tholes by cause\tok")
	for _, c := range r.Cameras {
		var causes []string
		for cause, s := range c.Holes {
			causes = append(causes, fmt.Sprintf("%s %.1fs", cause, s))
		}
		sort.Strings(causes)
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.2f%%\t%.2f%%\t%.1fs\t%.1f (%.1f)\t%.2fs\t%s\t%v\n", c.Name, c.Window, c.FaultTime, c.Covered,
			100*c.Continuity(), 100*c.ContinuityOld(), c.StartUp.Seconds(), c.Lost(), c.Allowed, c.EndSkew.Seconds(), strings.Join(causes, ", "), c.OK())
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tcameras\tlasted\trecovery\ttarget\tfootage lost\tgap-log causes (expected)\tok")
	for _, f := range r.Faults {
		what := "recording again"
		if f.s3 {
			what = "backlog in S3"
		}
		target := "none"
		if f.Target > 0 {
			target = f.Target.String()
		}
		rec := "never"
		if f.Recovered {
			rec = fmt.Sprintf("%.1fs (%s)", f.Recovery.Seconds(), what)
		}
		causes := strings.Join(f.Causes, ",")
		if causes == "" {
			causes = "no hole"
		}
		expected := strings.Join(ExpectedCauses[f.Kind], ",")
		if expected == "" {
			expected = "no hole"
		}
		if len(f.WrongCauses) > 0 {
			causes += "; WRONG: " + strings.Join(f.WrongCauses, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%s\t%s\t%.1fs\t%s (%s)\t%v\n", f.Name, strings.Join(f.Cameras, ","), f.Cleared.Sub(f.At).Seconds(),
			rec, target, f.Lost, causes, expected, f.OK())
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, c.Name, c.Detail)
	}
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\n%s (per camera: the older measure at least %.0f%%, the loss within what the targets allow, start-up within %v; "+
		"every fault recovered within its target, every hole with its fault's cause)\n", verdict, 100*MinContinuity, startTarget)
}

// object is one segment in S3, as the drill found it.
type object struct {
	key        string
	camera     string
	start, end time.Time     // from the metadata, to the millisecond
	played     time.Duration // how long it plays (ffprobe)
}

// footage is the interval the object covers for a viewer: from its start
// for as long as it plays.
func (o object) footage() interval { return interval{o.start, o.start.Add(o.played)} }

type interval struct{ from, to time.Time }

func (d *drill) analyse(start time.Time, stopped map[string]time.Time) (*Report, error) {
	r := &Report{Duration: time.Since(start), Faults: d.faults}
	objs, err := d.minio.List(bucket, prefix+"/")
	if err != nil {
		return nil, err
	}
	r.Objects = len(objs)
	client := d.minio.Client()
	tmp, err := os.MkdirTemp(d.opts.WorkDir, "objects")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	var found []object
	var bad []string
	for _, o := range objs {
		name := filepath.Base(o.Key)
		info, err := segment.Parse(name)
		if err != nil {
			bad = append(bad, o.Key+": not a segment name")
			continue
		}
		out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.Key)})
		if err != nil {
			return nil, err
		}
		p := filepath.Join(tmp, name)
		f, _ := os.Create(p)
		io.Copy(f, out.Body)
		f.Close()
		out.Body.Close()
		ms, err1 := time.Parse(uploader.MetaTimeLayout, out.Metadata[uploader.MetaStart])
		me, err2 := time.Parse(uploader.MetaTimeLayout, out.Metadata[uploader.MetaEnd])
		probe, perr := fixture.ProbeFile(p)
		os.Remove(p)
		switch {
		case perr != nil:
			bad = append(bad, o.Key+": does not play: "+perr.Error())
		case err1 != nil || err2 != nil:
			bad = append(bad, o.Key+": no start/end metadata")
		case (info.End.Sub(info.Start) - probe.Duration).Abs() > time.Second:
			bad = append(bad, fmt.Sprintf("%s: the name says %v, the content plays %v", o.Key, info.End.Sub(info.Start), probe.Duration))
		case !ms.Round(time.Second).Equal(info.Start) || !me.Round(time.Second).Equal(info.End):
			bad = append(bad, o.Key+": metadata and name disagree")
		}
		if perr == nil && err1 == nil && err2 == nil {
			// Footage is what plays: an object that does not play, or
			// has no start, covers nothing.
			found = append(found, object{key: o.Key, camera: info.Camera, start: ms, end: me, played: probe.Duration})
		}
	}
	r.Checks = append(r.Checks, Check{"every object plays, and its name matches its content to 1 s", len(bad) == 0 && len(objs) > 0,
		fmt.Sprintf("%d objects, %d bad %s", len(objs), len(bad), strings.Join(first(bad, 3), "; "))})

	d.recoveries(found)
	var unexpected []string
	for _, name := range d.names {
		c, odd := d.continuity(name, found, stopped[name])
		r.Cameras = append(r.Cameras, c)
		unexpected = append(unexpected, odd...)
	}
	r.Checks = append(r.Checks, Check{"every hole in the footage is a fault's", len(unexpected) == 0,
		fmt.Sprintf("%d holes longer than %v at no fault %s", len(unexpected), Abut, strings.Join(first(unexpected, 3), "; "))})

	r.Checks = append(r.Checks, d.deletions(objs)...)

	// No secret in anything captured.
	d.mu.Lock()
	captured := d.out.String() + d.bodies.String()
	d.mu.Unlock()
	var leaks []string
	for _, secret := range []string{camPassword, d.minio.SecretKey} {
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), url.UserPassword("", secret).String()[1:]} {
			if strings.Contains(captured, form) {
				leaks = append(leaks, fmt.Sprintf("%q", form))
			}
		}
	}
	r.Checks = append(r.Checks, Check{"no secret in any log line or API response", len(leaks) == 0,
		fmt.Sprintf("%d bytes of logs and API responses searched %s", len(captured), strings.Join(leaks, " "))})
	return r, nil
}

// deletions checks what vanished from the disk: retention must have
// deleted something (the tight limit), and every segment that vanished
// before S3 had it must be in the gap log as retention's, deleted when no
// uploaded segment was left to delete instead (the limit forced it).
func (d *drill) deletions(objs []fixture.Object) []Check {
	inS3 := map[string]bool{}
	for _, o := range objs {
		inS3[o.Key] = true
	}
	d.samples.mu.Lock()
	vanishedList := slices.Clone(d.samples.vanished)
	deleted := d.samples.deleted
	d.samples.mu.Unlock()
	var lost, unexplained []string
	for _, v := range vanishedList {
		if inS3[prefix+"/"+v.Rel] {
			continue // it got there after all
		}
		lost = append(lost, v.Rel)
		if why := d.lossExplained(v); why != "" {
			unexplained = append(unexplained, v.Rel+" ("+why+")")
		}
	}
	return []Check{
		{"the tight size limit made retention delete", deleted > 0, fmt.Sprintf("%d local segments deleted during the drill", deleted)},
		{"footage deleted before upload only when the limit forced it, each in the gap log as retention", len(unexplained) == 0,
			fmt.Sprintf("%d local segments lost before upload, %d of them not so %s", len(lost), len(unexplained), strings.Join(first(unexplained, 3), " "))},
	}
}

// lossExplained says why a segment that vanished before S3 had it is not
// explained ("" when it is): the limit must have forced it (no uploaded
// segment left on disk to delete instead) and the gap log must hold a
// retention gap over it.
func (d *drill) lossExplained(v vanished) string {
	info, err := segment.Parse(filepath.Base(v.Rel))
	if err != nil {
		return "not a segment name"
	}
	if v.UploadedLeft {
		return "uploaded segments were still on disk"
	}
	for _, g := range d.gaps[info.Camera] {
		if g.Cause == "retention" && !g.Start.After(info.Start.Add(Abut)) && !g.End.Before(info.End.Add(-Abut)) {
			return ""
		}
	}
	return "no retention gap over it"
}

// footageOf is a camera's footage, merged.
func footageOf(found []object, cam string) []interval {
	var ivs []interval
	for _, o := range found {
		if o.camera == cam {
			ivs = append(ivs, o.footage())
		}
	}
	return merge(ivs)
}

// recoveries measures each fault's recovery from S3: for camera and
// cctvd faults, the first footage after the fault cleared; for S3, when
// the last segment recorded before it came back appeared in the bucket.
func (d *drill) recoveries(found []object) {
	for _, f := range d.faults {
		if f.s3 {
			d.samples.mu.Lock()
			f.Recovered = true
			for _, o := range found {
				if o.start.Before(f.Cleared) {
					seen, ok := d.samples.firstSeen[o.key]
					if !ok {
						f.Recovered = false
						continue
					}
					f.Recovery = max(f.Recovery, seen.Sub(f.Cleared))
				}
			}
			d.samples.mu.Unlock()
			continue
		}
		f.Recovered = true
		for _, cam := range f.Cameras {
			resumed, ok := resumedAt(found, cam, f.Cleared)
			if !ok {
				f.Recovered = false
				continue
			}
			f.Recovery = max(f.Recovery, resumed.Sub(f.Cleared))
		}
	}
}

// resumedAt is when a camera's footage resumed after a fault cleared at t:
// the start of the first stretch of footage that goes on past t (allowing a
// second for the estimate of wall-clock times), or t itself when footage
// never stopped. Stretches, not objects: the last segment of the run a
// fault ended can start just before it (a kill a moment after a segment
// boundary) and is no resumption.
func resumedAt(found []object, cam string, t time.Time) (time.Time, bool) {
	for _, iv := range footageOf(found, cam) {
		if !iv.to.After(t.Add(time.Second)) {
			continue // ended before the fault cleared
		}
		if iv.from.Before(t) {
			return t, true // footage went on through it
		}
		return iv.from, true
	}
	return time.Time{}, false
}

// continuity measures one camera's footage in S3 over its window, from
// cctvd's first start to the camera's stop, and the older measure beside
// it; it attributes every hole to the fault at its time, recording the
// gap log's cause on the fault, and returns the holes no fault explains.
func (d *drill) continuity(cam string, found []object, stop time.Time) (CameraReport, []string) {
	union := footageOf(found, cam)
	rep := CameraReport{Name: cam, Holes: map[string]float64{}}
	for _, o := range found {
		if o.camera == cam {
			rep.EndSkew = max(rep.EndSkew, o.end.Sub(o.footage().to).Abs())
		}
	}
	if len(union) == 0 || !stop.After(d.firstStart) {
		return rep, nil
	}
	window := []interval{{d.firstStart, stop}}
	rep.Window = measure(window)
	rep.StartUp = union[0].from.Sub(d.firstStart)
	rep.Allowed = startTarget.Seconds()

	// The faults' own time, and each fault's time until footage resumed.
	var own, untilResumed []interval
	type span struct {
		f           *Fault
		from, until time.Time
	}
	var spans []span
	for _, f := range d.faults {
		if f.s3 || !slices.Contains(f.Cameras, cam) {
			continue
		}
		own = append(own, interval{f.At, f.Cleared})
		end := stop
		if resumed, ok := resumedAt(found, cam, f.Cleared); ok {
			end = resumed
		}
		untilResumed = append(untilResumed, interval{f.At, end})
		spans = append(spans, span{f, f.At, end})
		rep.Allowed += f.Target.Seconds()
		f.Lost = max(f.Lost, measure(subtract([]interval{{f.At, end}}, union)))
	}
	up := subtract(window, merge(own))
	rep.FaultTime = rep.Window - measure(up)
	rep.Covered = measure(intersect(union, up))
	rep.Allowed += (1 - MinContinuity) * measure(up)

	upOld := subtract([]interval{{union[0].from, stop}}, merge(untilResumed))
	rep.UpOld = measure(upOld)
	rep.CoveredOld = measure(intersect(union, upOld))

	// Every hole longer than Abut must be a fault's, with its cause.
	var unexpected []string
	for i := 1; i < len(union); i++ {
		hole := interval{union[i-1].to, union[i].from}
		if hole.to.Sub(hole.from) <= Abut {
			continue
		}
		cause := d.causeOf(cam, hole, stop)
		rep.Holes[cause] += hole.to.Sub(hole.from).Seconds()
		i := slices.IndexFunc(spans, func(s span) bool {
			return hole.from.Before(s.until.Add(Abut)) && hole.to.After(s.from.Add(-Abut))
		})
		if i < 0 {
			if cause != "retention" { // footage deleted before upload: checked with the deletions
				unexpected = append(unexpected, fmt.Sprintf("%s %s+%.1fs %s", cam, hole.from.Format("15:04:05.0"), hole.to.Sub(hole.from).Seconds(), cause))
			}
			continue
		}
		f := spans[i].f
		if !slices.Contains(f.Causes, cause) {
			f.Causes = append(f.Causes, cause)
		}
		if !slices.Contains(ExpectedCauses[f.Kind], cause) {
			f.WrongCauses = append(f.WrongCauses, cam+":"+cause)
		}
	}
	return rep, unexpected
}

// causeOf is the cause of the gap-log entry that overlaps the hole most
// ("unexplained" when none does).
func (d *drill) causeOf(cam string, hole interval, stop time.Time) string {
	cause, best := "unexplained", 0.0
	grown := interval{hole.from.Add(-Abut), hole.to.Add(Abut)}
	for _, g := range d.gaps[cam] {
		end := g.End
		if end.IsZero() {
			end = stop
		}
		if o := measure(intersect([]interval{grown}, []interval{{g.Start, end}})); o > best {
			cause, best = g.Cause, o
		}
	}
	return cause
}

// merge sorts intervals and joins those that overlap or touch.
func merge(ivs []interval) []interval {
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].from.Before(ivs[j].from) })
	var out []interval
	for _, iv := range ivs {
		if n := len(out); n > 0 && !iv.from.After(out[n-1].to) {
			if iv.to.After(out[n-1].to) {
				out[n-1].to = iv.to
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// subtract removes the (merged) cuts from the intervals.
func subtract(ivs, cuts []interval) []interval {
	out := ivs
	for _, c := range cuts {
		var next []interval
		for _, iv := range out {
			if !c.to.After(iv.from) || !c.from.Before(iv.to) {
				next = append(next, iv)
				continue
			}
			if c.from.After(iv.from) {
				next = append(next, interval{iv.from, c.from})
			}
			if c.to.Before(iv.to) {
				next = append(next, interval{c.to, iv.to})
			}
		}
		out = next
	}
	return out
}

// intersect returns a ∩ b for two merged lists.
func intersect(a, b []interval) []interval {
	var out []interval
	for _, x := range a {
		for _, y := range b {
			from, to := maxTime(x.from, y.from), minTime(x.to, y.to)
			if to.After(from) {
				out = append(out, interval{from, to})
			}
		}
	}
	return out
}

func measure(ivs []interval) float64 {
	var s float64
	for _, iv := range ivs {
		s += iv.to.Sub(iv.from).Seconds()
	}
	return s
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func first(list []string, n int) []string {
	if len(list) > n {
		return append(list[:n:n], "...")
	}
	return list
}
