package supervisor

import (
	"errors"
	"testing"
	"time"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/loginbudget"
)

// TestSubRefusalsLeaveTheMainRecording: the sub feed's logins count at the
// camera's address with the main's, but a sub path the account may not
// read, refused until the budget is spent, leaves the main's accepted
// credentials free to reconnect, and the sub waits.
func TestSubRefusalsLeaveTheMainRecording(t *testing.T) {
	cam := config.Camera{CameraName: "c", IPAddress: "10.0.0.5", RTSPPort: 554, RTSPPath: "/main", UserName: "viewer", Password: "pw",
		SubStream: &config.SubStream{RTSPPath: "/sub"}}
	subCam, ok := cam.SubCamera()
	if !ok {
		t.Fatal("no sub feed")
	}
	var mono time.Duration
	deps := Deps{Logins: loginbudget.New(func() time.Duration { return mono })}
	main, sub := &Camera{cfg: cam, deps: deps, creds: credentialsOf(cam)}, &Camera{cfg: subCam, deps: deps, creds: credentialsOf(subCam)}
	l, err := main.login()
	if err != nil {
		t.Fatal(err)
	}
	l.Accepted() // the main records
	for i := range config.DefaultMaxFailedLogins {
		l, err := sub.login()
		if err != nil {
			t.Fatalf("sub login %d: %v", i, err)
		}
		l.Refused()
	}
	if _, err := sub.login(); !errors.Is(err, loginbudget.ErrSpent) {
		t.Errorf("the sub after %d refusals: %v, want it to wait", config.DefaultMaxFailedLogins, err)
	}
	if l, err := main.login(); err != nil {
		t.Errorf("the main, accepted, after the sub's refusals: %v, want it to reconnect", err)
	} else {
		l.Accepted()
	}
}
