package drill

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// Fault is one injected fault and how the system recovered.
type Fault struct {
	Name string
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
	s3        bool
}

// OK says whether the fault recovered within its target.
func (f *Fault) OK() bool {
	return f.Recovered && (f.Target == 0 || f.Recovery <= f.Target)
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
	f := d.fault("camera stall (12 s)", d.names[0])
	d.cams[0].Stall()
	hold(12 * time.Second)
	d.cams[0].Resume()
	f.Cleared, f.Target = time.Now(), cameraTarget

	// 2. cam2's server restarts: down for 6 s.
	if err := at(0.27); err != nil {
		return err
	}
	f = d.fault("camera server restart (down 6 s)", d.names[1])
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
	f = d.fault("ffmpeg killed (SIGKILL)", d.names[2])
	syscall.Kill(c.PID, syscall.SIGKILL)
	f.Cleared, f.Target = f.At, cameraTarget

	// 4. cctvd is killed and started again 2 s later.
	if err := at(0.53); err != nil {
		return err
	}
	f = d.fault("cctvd SIGKILL, restarted after 2 s", d.names...)
	d.mu.Lock()
	cmd, exited := d.daemon, d.exited
	d.mu.Unlock()
	cmd.Process.Kill()
	<-exited
	hold(2 * time.Second)
	if err := d.startDaemon(); err != nil {
		return err
	}
	f.Cleared, f.Target = time.Now(), daemonTarget

	// 5. MinIO is down for five segment lengths.
	if err := at(0.66); err != nil {
		return err
	}
	f = d.fault(fmt.Sprintf("S3 down (%v)", 5*seg), d.names...)
	f.s3 = true
	d.minio.Stop()
	hold(5 * seg)
	if err := d.minio.Start(); err != nil {
		return err
	}
	f.Cleared = time.Now()

	return at(1)
}

func (d *drill) fault(name string, cams ...string) *Fault {
	d.logf("inject: %s", name)
	f := &Fault{Name: name, Cameras: cams, At: time.Now()}
	d.mu.Lock()
	d.faults = append(d.faults, f)
	d.mu.Unlock()
	return f
}
