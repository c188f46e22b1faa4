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

// CameraReport is one camera's continuity.
type CameraReport struct {
	Name string
	// Up is the seconds the camera was up and the daemon running, the
	// faults' own seconds excluded; Covered the seconds of those with
	// footage in S3.
	Up, Covered float64
	// Holes sums the holes in the footage by their gap-log cause
	// ("unexplained" when the gap log has none).
	Holes map[string]float64
}

// Continuity is Covered / Up.
func (c CameraReport) Continuity() float64 {
	if c.Up <= 0 {
		return 0
	}
	return c.Covered / c.Up
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
		if c.Continuity() < MinContinuity || c.Holes["unexplained"] > 0 {
			return false
		}
	}
	for _, f := range r.Faults {
		if !f.OK() {
			return false
		}
	}
	return true
}

// Write prints the report.
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "continuity drill: %v of recording, %d objects in S3\n\n", r.Duration.Round(time.Second), r.Objects)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "camera\tup s\tcovered s\tcontinuity\tholes by cause")
	for _, c := range r.Cameras {
		var causes []string
		for cause, s := range c.Holes {
			causes = append(causes, fmt.Sprintf("%s %.1fs", cause, s))
		}
		sort.Strings(causes)
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.2f%%\t%s\n", c.Name, c.Up, c.Covered, 100*c.Continuity(), strings.Join(causes, ", "))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tcameras\trecovery\ttarget\tok")
	for _, f := range r.Faults {
		what := "recording again"
		if f.s3 {
			what = "backlog drained"
		}
		target := "-"
		if f.Target > 0 {
			target = f.Target.String()
		}
		rec := "never"
		if f.Recovered {
			rec = fmt.Sprintf("%.1fs (%s)", f.Recovery.Seconds(), what)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", f.Name, strings.Join(f.Cameras, ","), rec, target, f.OK())
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
	fmt.Fprintf(w, "\n%s (continuity at least %.0f%% per camera, every hole explained by the gap log, every fault recovered in time)\n", verdict, 100*MinContinuity)
}

// object is one segment in S3, as the drill found it.
type object struct {
	key        string
	camera     string
	start, end time.Time // from the metadata, to the millisecond
}

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
		if err1 == nil && err2 == nil {
			found = append(found, object{key: o.Key, camera: info.Camera, start: ms, end: me})
		}
	}
	r.Checks = append(r.Checks, Check{"every object plays, and its name matches its content to 1 s", len(bad) == 0 && len(objs) > 0,
		fmt.Sprintf("%d objects, %d bad %s", len(objs), len(bad), strings.Join(first(bad, 3), "; "))})

	d.recoveries(found)
	for _, name := range d.names {
		r.Cameras = append(r.Cameras, d.continuity(name, found, stopped[name]))
	}

	// Nothing S3 did not have was deleted while uploaded footage remained.
	inS3 := map[string]bool{}
	for _, o := range objs {
		inS3[o.Key] = true
	}
	var lost, wrongly []string
	d.samples.mu.Lock()
	for _, v := range d.samples.vanished {
		if inS3[prefix+"/"+v.Rel] {
			continue // it got there after all
		}
		lost = append(lost, v.Rel)
		if v.UploadedLeft {
			wrongly = append(wrongly, v.Rel)
		}
	}
	deleted := d.samples.deleted
	d.samples.mu.Unlock()
	r.Checks = append(r.Checks, Check{"the tight size limit made retention delete", deleted > 0,
		fmt.Sprintf("%d local segments deleted during the drill", deleted)})
	r.Checks = append(r.Checks, Check{"nothing un-uploaded deleted while uploaded footage remained", len(wrongly) == 0,
		fmt.Sprintf("%d local segments lost before upload, %d of them while uploaded ones were left %s", len(lost), len(wrongly), strings.Join(first(wrongly, 3), " "))})

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
	var ivs []interval
	for _, o := range found {
		if o.camera == cam {
			ivs = append(ivs, interval{o.start, o.end})
		}
	}
	for _, iv := range merge(ivs) {
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

// continuity measures one camera's footage in S3 over its window, from its
// first footage to its stop, without the faults' own seconds (from each
// fault until the camera's footage resumed).
func (d *drill) continuity(cam string, found []object, stop time.Time) CameraReport {
	var ivs []interval
	for _, o := range found {
		if o.camera == cam {
			ivs = append(ivs, interval{o.start, o.end})
		}
	}
	union := merge(ivs)
	rep := CameraReport{Name: cam, Holes: map[string]float64{}}
	if len(union) == 0 {
		return rep
	}
	window := interval{union[0].from, stop}
	var excluded []interval
	for _, f := range d.faults {
		if f.s3 || !slices.Contains(f.Cameras, cam) {
			continue
		}
		end := stop
		if resumed, ok := resumedAt(found, cam, f.Cleared); ok {
			end = resumed
		}
		excluded = append(excluded, interval{f.At, end})
	}
	excluded = merge(excluded)
	up := subtract([]interval{window}, excluded)
	rep.Up = measure(up)
	rep.Covered = measure(intersect(union, up))

	// Every hole longer than Abut, faults' or not, must be in the gap log.
	for i := 1; i < len(union); i++ {
		hole := interval{union[i-1].to, union[i].from}
		if hole.to.Sub(hole.from) <= Abut {
			continue
		}
		cause := "unexplained"
		for _, g := range d.gaps[cam] {
			end := g.End
			if end.IsZero() {
				end = stop
			}
			if g.Start.Before(hole.to.Add(Abut)) && end.After(hole.from.Add(-Abut)) {
				cause = g.Cause
				break
			}
		}
		rep.Holes[cause] += hole.to.Sub(hole.from).Seconds()
	}
	return rep
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
