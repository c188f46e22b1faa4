// Package activity finds motion in a camera's picture: small gray frames
// in (the recording ffmpeg's keyframes in copy mode, a few decoded frames a
// second in transcode mode), a changed-pixel share per frame, activity
// intervals, and for each segment a motion score and a 16x16 heatmap out.
//
// Each frame is compared with a running background (an exponential moving
// average whose rate follows the time between frames), pixel by pixel
// against a threshold that grows with that pixel's own noise. The damping
// the NVR projects learnt is built in: a global brightness change (lights,
// an exposure step) is fitted as a gain and an offset and taken out before
// pixels are compared; a change of most of the picture at once re-seeds the
// background instead of counting as motion; changed pixels count only in
// connected regions of a few pixels, and a frame counts as motion only when
// they cover a minimum share of the picture.
//
// The package is pure: no files, no processes. Service runs it for every
// camera behind a bounded queue; the daemon feeds it and stores what it
// finds.
package activity

import (
	"math"
	"time"
)

// GridSize is the heatmap's side: GridSize x GridSize cells.
const GridSize = 16

// Cells is the number of heatmap cells.
const Cells = GridSize * GridSize

// Frame is one small gray picture and its stream time.
type Frame struct {
	// PTS is the frame's time in its ffmpeg run's stream.
	PTS time.Duration
	// W and H are its size; Pix holds W*H luma bytes, row by row.
	W, H int
	Pix  []byte
}

// Params tune the detector. The zero value of a field takes its default
// (DefaultParams).
type Params struct {
	// BackgroundTau is the time constant of the background of still pixels
	// (a pixel flagged changed learns ten times slower, so that a moving
	// object is not learnt as background).
	BackgroundTau time.Duration
	// NoiseTau is the time constant of each pixel's noise estimate.
	NoiseTau time.Duration
	// MinThreshold is the least difference, in gray levels (0-255), for a
	// pixel to count as changed; NoiseFactor times the pixel's noise
	// estimate raises it where the picture is noisy.
	MinThreshold float64
	NoiseFactor  float64
	// MinBlob is the least size, in pixels, of a connected region of
	// changed pixels that counts (smaller specks are noise).
	MinBlob int
	// MinArea is the least share of the picture (0-1) changed pixels must
	// cover for a frame to count as motion.
	MinArea float64
	// GlobalChange: when more than this share of the picture changed before
	// brightness compensation, the background is re-seeded and the frame is
	// not motion (lights switched, an exposure jump). Settle is the share
	// that re-seeds again within SettleTime after that, while the exposure
	// settles; then, too, a frame is motion only over four times MinArea.
	GlobalChange, Settle float64
	SettleTime           time.Duration
}

// DefaultParams are the detector's defaults, tuned on the test camera's
// scenes and the synthetic frames of the tests.
var DefaultParams = Params{
	BackgroundTau: 30 * time.Second,
	NoiseTau:      60 * time.Second,
	MinThreshold:  12,
	NoiseFactor:   3,
	MinBlob:       6,
	MinArea:       0.002,
	GlobalChange:  0.5,
	Settle:        0.2,
	SettleTime:    5 * time.Second,
}

func (p Params) withDefaults() Params {
	d := DefaultParams
	if p.BackgroundTau > 0 {
		d.BackgroundTau = p.BackgroundTau
	}
	if p.NoiseTau > 0 {
		d.NoiseTau = p.NoiseTau
	}
	if p.MinThreshold > 0 {
		d.MinThreshold = p.MinThreshold
	}
	if p.NoiseFactor > 0 {
		d.NoiseFactor = p.NoiseFactor
	}
	if p.MinBlob > 0 {
		d.MinBlob = p.MinBlob
	}
	if p.MinArea > 0 {
		d.MinArea = p.MinArea
	}
	if p.GlobalChange > 0 {
		d.GlobalChange = p.GlobalChange
	}
	if p.Settle > 0 {
		d.Settle = p.Settle
	}
	if p.SettleTime > 0 {
		d.SettleTime = p.SettleTime
	}
	return d
}

// Sample is what the detector found in one frame.
type Sample struct {
	PTS time.Duration
	// Share is the share of the picture (0-1) covered by changed pixels in
	// regions that count.
	Share float64
	// Motion: Share reached MinArea.
	Motion bool
	// Reseeded: the frame re-seeded the background (the first frame, a new
	// size, a global change); it is never motion.
	Reseeded bool
	// Active are the heatmap cells holding changed pixels of a motion
	// frame (at least an eighth of the cell), as a bitmap of Cells bits.
	Active [Cells / 64]uint64
}

// Cell says whether heatmap cell i was active.
func (s Sample) Cell(i int) bool { return s.Active[i/64]&(1<<(i%64)) != 0 }

// Detector compares each frame of one camera with its background. It is
// not safe for concurrent use.
type Detector struct {
	p      Params
	w, h   int
	bg     []float32 // background
	dev    []float32 // mean absolute deviation of each pixel (its noise)
	last   time.Duration
	seeded bool
	// settleUntil: after a re-seed, a large change re-seeds again until then.
	settleUntil time.Duration
	// warm counts the frames after the first that still learn the noise
	// as a plain mean, reporting no motion.
	warm int

	// Scratch, kept to spare the allocations.
	changed []bool
	label   []int32
	sizes   []int32
	stack   []int32
}

// warmFrames is how many frames after the first learn the noise.
const warmFrames = 3

// settleAreaFactor raises MinArea within SettleTime of a re-seed.
const settleAreaFactor = 4

// maxNoise caps a pixel's noise estimate (gray levels): a pixel that
// flickers a lot (a clock's digits) is damped, never blind.
const maxNoise = 24

// NewDetector returns a detector with params p (zero fields: defaults).
func NewDetector(p Params) *Detector { return &Detector{p: p.withDefaults()} }

// Add analyses f. Frames of one run come in stream order; a frame older
// than the previous one (a new run) is taken as it comes.
func (d *Detector) Add(f Frame) Sample {
	s := Sample{PTS: f.PTS}
	n := f.W * f.H
	if n <= 0 || len(f.Pix) < n {
		return s
	}
	if !d.seeded || f.W != d.w || f.H != d.h {
		d.seed(f)
		d.dev = make([]float32, n)
		for i := range d.dev {
			d.dev[i] = float32(d.p.MinThreshold / d.p.NoiseFactor / 2)
		}
		d.warm = warmFrames
		s.Reseeded = true
		return s
	}
	dt := f.PTS - d.last
	if dt <= 0 || dt > time.Hour {
		dt = time.Second
	}
	d.last = f.PTS

	if d.warm > 0 {
		// The first frames learn each pixel's noise as their mean
		// deviation: a noisy camera does not start with a burst of motion.
		// A frame unlike most of the background (the first was black, grey,
		// half drawn, as a camera's first often is) starts them again from
		// it: the jump is no noise.
		raw := 0
		for i := range n {
			if math.Abs(float64(f.Pix[i])-float64(d.bg[i])) > 2*d.p.MinThreshold {
				raw++
			}
		}
		if float64(raw) > d.p.GlobalChange*float64(n) {
			d.seed(f)
			for i := range d.dev {
				d.dev[i] = float32(d.p.MinThreshold / d.p.NoiseFactor / 2)
			}
			d.warm = warmFrames
			s.Reseeded = true
			return s
		}
		k := float32(warmFrames - d.warm + 1)
		for i := range n {
			x := float32(f.Pix[i])
			res := x - d.bg[i]
			if res < 0 {
				res = -res
			}
			d.dev[i] += (min(res, maxNoise) - d.dev[i]) / k
			d.bg[i] += (x - d.bg[i]) / (k + 1)
		}
		d.warm--
		return s
	}

	// Before any compensation: did most of the picture change at once?
	raw := 0
	for i := range n {
		if math.Abs(float64(f.Pix[i])-float64(d.bg[i])) > d.threshold(i) {
			raw++
		}
	}
	rawShare := float64(raw) / float64(n)
	if rawShare > d.p.GlobalChange || (f.PTS < d.settleUntil && rawShare > d.p.Settle) {
		d.seed(f)
		d.settleUntil = f.PTS + d.p.SettleTime
		s.Reseeded = true
		return s
	}

	gain, offset := d.fit(f)
	changed := d.changed[:n]
	for i := range n {
		diff := math.Abs(float64(f.Pix[i]) - (gain*float64(d.bg[i]) + offset))
		changed[i] = diff > d.threshold(i)
	}
	kept := d.blobs(changed)
	s.Share = float64(kept) / float64(n)
	minArea := d.p.MinArea
	if f.PTS < d.settleUntil {
		// Just after a re-seed the picture is still settling (a camera's
		// exposure, its encoder's quality after a jump in bitrate): only
		// a clearly larger change counts.
		minArea *= settleAreaFactor
	}
	s.Motion = s.Share >= minArea
	if s.Motion {
		d.cells(&s, changed)
	}

	// Learn: still pixels at the background's rate, changed ones ten times
	// slower; the noise of each pixel from its residual.
	a := float32(1 - math.Exp(-dt.Seconds()/d.p.BackgroundTau.Seconds()))
	b := float32(1 - math.Exp(-dt.Seconds()/d.p.NoiseTau.Seconds()))
	g, o := float32(gain), float32(offset)
	for i := range n {
		x := float32(f.Pix[i])
		res := x - (g*d.bg[i] + o)
		if res < 0 {
			res = -res
		}
		if changed[i] {
			d.bg[i] += a / 10 * (x - d.bg[i])
			d.dev[i] += b / 4 * (min(res, maxNoise) - d.dev[i])
		} else {
			d.bg[i] += a * (x - d.bg[i])
			d.dev[i] += b * (min(res, maxNoise) - d.dev[i])
		}
	}
	return s
}

func (d *Detector) seed(f Frame) {
	n := f.W * f.H
	d.w, d.h, d.seeded, d.last = f.W, f.H, true, f.PTS
	if len(d.bg) != n {
		d.bg = make([]float32, n)
		d.changed = make([]bool, n)
		d.label = make([]int32, n)
	}
	if len(d.sizes) == 0 {
		d.sizes = make([]int32, 1, 64)
	}
	for i := range n {
		d.bg[i] = float32(f.Pix[i])
	}
}

func (d *Detector) threshold(i int) float64 {
	return max(d.p.MinThreshold, d.p.NoiseFactor*float64(d.dev[i]))
}

// fit finds the global change of brightness, frame ≈ gain*background +
// offset, by least squares over the pixels, then again without the pixels
// the first fit leaves far off (moving objects), so that they do not bend
// it. A flat picture gets an offset alone.
func (d *Detector) fit(f Frame) (gain, offset float64) {
	n := f.W * f.H
	gain, offset = 1, 0
	for pass := range 2 {
		var sx, sy, sxx, sxy, cnt float64
		for i := range n {
			x, y := float64(d.bg[i]), float64(f.Pix[i])
			if pass == 1 && math.Abs(y-(gain*x+offset)) > 2*d.threshold(i) {
				continue
			}
			sx += x
			sy += y
			sxx += x * x
			sxy += x * y
			cnt++
		}
		if cnt < float64(n)/4 {
			return gain, offset
		}
		mx, my := sx/cnt, sy/cnt
		vx := sxx/cnt - mx*mx
		g := 1.0
		if vx > 25 { // a picture with contrast: fit the gain too
			g = (sxy/cnt - mx*my) / vx
			g = min(max(g, 0.5), 2)
		}
		gain, offset = g, my-g*mx
	}
	return gain, offset
}

// blobs keeps the changed pixels in 4-connected regions of at least
// MinBlob pixels (clearing the others in changed) and returns their count.
func (d *Detector) blobs(changed []bool) int {
	w, n := d.w, d.w*d.h
	label := d.label[:n]
	for i := range label {
		label[i] = 0
	}
	sizes := d.sizes[:1] // label 0: none
	for start := range changed {
		if !changed[start] || label[start] != 0 {
			continue
		}
		l := int32(len(sizes))
		stack := append(d.stack[:0], int32(start))
		label[start] = l
		members := int32(0)
		for len(stack) > 0 {
			i := int(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			members++
			x := i % w
			for k, j := range [4]int{i - 1, i + 1, i - w, i + w} {
				if (k == 0 && x == 0) || (k == 1 && x == w-1) || j < 0 || j >= n {
					continue
				}
				if changed[j] && label[j] == 0 {
					label[j] = l
					stack = append(stack, int32(j))
				}
			}
		}
		d.stack = stack
		sizes = append(sizes, members)
	}
	d.sizes = sizes
	kept := 0
	for i, c := range changed {
		if c && int(sizes[label[i]]) >= d.p.MinBlob {
			kept++
		} else {
			changed[i] = false
		}
	}
	return kept
}

// cells marks the heatmap cells where changed pixels cover an eighth of
// the cell.
func (d *Detector) cells(s *Sample, changed []bool) {
	var count [Cells]int
	w, h := d.w, d.h
	for i, c := range changed {
		if c {
			x, y := i%w, i/w
			count[(y*GridSize/h)*GridSize+x*GridSize/w]++
		}
	}
	for cy := range GridSize {
		for cx := range GridSize {
			cw := (cx+1)*w/GridSize - cx*w/GridSize
			ch := (cy+1)*h/GridSize - cy*h/GridSize
			i := cy*GridSize + cx
			if count[i] > 0 && count[i]*8 >= max(1, cw*ch) {
				s.Active[i/64] |= 1 << (i % 64)
			}
		}
	}
}
