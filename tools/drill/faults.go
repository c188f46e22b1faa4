package drill

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// Kinds of fault, each with the gap-log causes that may explain the hole
// it leaves.
const (
	KindStall        = "camera-stall"
	KindCameraDown   = "camera-down"
	KindFFmpegKilled = "ffmpeg-killed"
	KindDaemonKilled = "cctvd-killed"
	KindS3Down       = "s3-down"
)

// ExpectedCauses are the gap-log causes that may explain a hole in the
// footage around a fault of each kind. A hole whose cause is not its
// fault's (or that no fault explains) fails the drill. S3 down leaves no
// hole: recording does not wait for S3.
var ExpectedCauses = map[string][]string{
	KindStall:        {"stall"},
	KindCameraDown:   {"unreachable", "ffmpeg-exit"},
	KindFFmpegKilled: {"ffmpeg-exit"},
	KindDaemonKilled: {"daemon-down"},
	KindS3Down:       nil,
}

// Fault is one injected fault and how the system recovered.
type Fault struct {
	Name string
	// Kind is one of the Kind constants.
	Kind string
	// Cameras it hits (all of them for cctvd or S3 faults).
	Cameras []string
	// At is when it was injected, Cleared when its cause went away (the
	// camera resumed or came back, cctvd restarted, MinIO restarted); the
	// same instant for a kill.
	At, Cleared time.Time
	// Recovery is from Cleared until recording resumed (camera and cctvd
	// faults) or the backlog drained (S3); Target bounds it (0: none).
	Recovery time.Duration
	Target   time.Duration
	// Recovered is false when recording never resumed.
	Recovered bool
	// Lost is the footage missing from At until recording resumed, in
	// seconds (the camera that lost most): the fault's own time and its
	// recovery, both loss to whoever watches.
	Lost float64
	// Causes are the gap-log causes of the holes around the fault;
	// WrongCauses those not in ExpectedCauses[Kind].
	Causes, WrongCauses []string
	s3                  bool
}

// OK says whether the fault recovered within its target and every hole
// around it has its expected cause.
func (f *Fault) OK() bool {
	return f.Recovered && f.Target > 0 && f.Recovery <= f.Target && len(f.WrongCauses) == 0
}

// inject runs the schedule: faults at fractions of the drill's duration.
func (d *drill) inject(ctx context.Context, start time.Time) error {
	if err := d.waitRecording(60 * time.Second); err != nil {
		return err
	}
	seg := time.Duration(d.opts.Segment) * time.Second
	at := func(frac float64) error {
		t := start.Add(time.Duration(frac * float64(d.opts.Duration)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(t)): // the schedule is the clock
			return nil
		}
	}
	hold := func(d time.Duration) { time.Sleep(d) } // a fault lasts this long: the drill's own schedule

	// 1. cam1 hangs: frames stop, the RTSP session stays up.
	if err := at(0.12); err != nil {
		return err
	}
	f := d.fault(KindStall, "camera stall (12 s)", d.names[0])
	d.cams[0].Stall()
	hold(12 * time.Second)
	d.cams[0].Resume()
	f.Cleared, f.Target = time.Now(), cameraTarget

	// 2. cam2's server restarts: down for 6 s.
	if err := at(0.27); err != nil {
		return err
	}
	f = d.fault(KindCameraDown, "camera server restart (down 6 s)", d.names[1])
	d.cams[1].Stop()
	hold(6 * time.Second)
	if err := d.cams[1].Start(); err != nil {
		return err
	}
	f.Cleared, f.Target = time.Now(), cameraTarget

	// 3. cam3's ffmpeg is killed.
	if err := at(0.40); err != nil {
		return err
	}
	var c cameraState
	if err := d.api("GET", "/api/v1/cameras/"+d.names[2], &c); err != nil {
		return err
	}
	if c.PID == 0 {
		return fmt.Errorf("%s has no ffmpeg to kill: %+v", d.names[2], c)
	}
	f = d.fault(KindFFmpegKilled, "ffmpeg killed (SIGKILL)", d.names[2])
	syscall.Kill(c.PID, syscall.SIGKILL)
	f.Cleared, f.Target = f.At, cameraTarget

	// 4. cctvd is killed and started again 2 s later.
	if err := at(0.53); err != nil {
		return err
	}
	f = d.fault(KindDaemonKilled, "cctvd SIGKILL, restarted after 2 s", d.names...)
	d.mu.Lock()
	cmd, exited := d.daemon, d.exited
	d.mu.Unlock()
	cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("cctvd had not exited 30 s after SIGKILL")
	}
	hold(2 * time.Second)
	if err := d.startDaemon(); err != nil {
		return err
	}
	f.Cleared, f.Target = time.Now(), daemonTarget

	// 5. MinIO is down for five segment lengths.
	if err := at(0.66); err != nil {
		return err
	}
	f = d.fault(KindS3Down, fmt.Sprintf("S3 down (%v)", 5*seg), d.names...)
	f.s3 = true
	d.minio.Stop()
	hold(5 * seg)
	if err := d.minio.Start(); err != nil {
		return err
	}
	f.Cleared, f.Target = time.Now(), s3Target

	return at(1)
}

func (d *drill) fault(kind, name string, cams ...string) *Fault {
	d.logf("inject: %s", name)
	f := &Fault{Kind: kind, Name: name, Cameras: cams, At: time.Now()}
	d.mu.Lock()
	d.faults = append(d.faults, f)
	d.mu.Unlock()
	return f
}
