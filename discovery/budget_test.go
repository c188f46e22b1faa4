//go:build integration

package discovery

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/cctvd/cctvd/internal/loginbudget"
	"github.com/cctvd/cctvd/internal/rtspcount"
)

// Discovery's logins come from the budget it shares with ffmpeg and the
// probes: with a wrong password, the first search fails one ONVIF login
// and one DESCRIBE (2 of 3); the second one ONVIF login, then the known
// paths find the budget spent and try none; the third tries nothing. The
// refusals are counted where the camera counts them: the stand-in ONVIF
// device's rejections, and a proxy in front of the real RTSP camera.
func TestDiscoveryKeepsToTheLoginBudget(t *testing.T) {
	cam, _ := cameras(t)
	d := startDevice(t, cam, camPassword)
	proxy, err := rtspcount.Start("127.0.0.1:" + strconv.Itoa(cam.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	var now time.Duration // the budget's clock: still unless moved
	budget := loginbudget.New(func() time.Duration { return now })
	f := New(Config{PathInterval: time.Millisecond, PathBurst: 100, Timeout: 5 * time.Second, Logins: budget})
	tg := target(cam, "wrong")
	tg.RTSPPort, tg.ONVIFPort = proxy.Port(), d.Port()
	tg.Logins = loginbudget.Limit{Max: 3, Window: 30 * time.Minute}
	refusals := func() (onvif, rtsp int) { return len(d.Rejections()), proxy.Counts().Refused }

	_, err = f.Find(context.Background(), tg, nil)
	if o, r := refusals(); !errors.Is(err, ErrAuth) || o != 1 || r != 1 {
		t.Fatalf("first search: %v; refused %d by ONVIF, %d by RTSP, want 1 and 1", err, o, r)
	}
	var a attempts
	_, err = f.Find(context.Background(), tg, a.report)
	if o, r := refusals(); !errors.Is(err, ErrAuth) || o != 2 || r != 1 {
		t.Fatalf("second search: %v; refused %d by ONVIF, %d by RTSP, want 2 and 1", err, o, r)
	}
	var se *loginbudget.SpentError
	if len(a.list) != 2 || !errors.As(a.list[1].Err, &se) || se.Failures != 3 || se.Wait != 30*time.Minute {
		t.Errorf("second search's steps: %+v, want ONVIF refused, then the first path held by the budget (3 refusals, 30 min)", a.list)
	}
	_, err = f.Find(context.Background(), tg, nil)
	if o, r := refusals(); !errors.Is(err, loginbudget.ErrSpent) || errors.Is(err, ErrAuth) || o != 2 || r != 1 {
		t.Fatalf("third search: %v; refused %d by ONVIF, %d by RTSP, want nothing tried", err, o, r)
	}
	// Half an hour on, the budget has logins again; the right password is
	// accepted, and from then on goes ahead whatever the count.
	now = 30 * time.Minute
	tg.Password = camPassword
	found, err := f.Find(context.Background(), tg, nil)
	if err != nil || found.Source != `onvif profile "mainStream"` {
		t.Fatalf("with the right password: %+v, %v", found, err)
	}
	if n := budget.Failures("127.0.0.1", tg.Logins); n != 0 {
		t.Errorf("%d failures in the window after 30 minutes", n)
	}
}
