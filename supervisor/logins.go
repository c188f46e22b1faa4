package supervisor

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/internal/loginbudget"
)

// WaitingCredentials: the camera refused its credentials as many times as
// the camera's failed-login budget allows (cameras[].maxFailedLogins within
// failedLoginWindow, counted at its address with discovery's and the other
// cameras' there): it tries again at NextAttempt, when the oldest refusal
// leaves the window, or at once after a reload with new credentials or an
// operator's Retry (which spends one more login).
const WaitingCredentials StateName = "waiting-credentials"

// credentials is how the camera logs in, as the budget counts it.
type credentials struct {
	host string // the address logins are counted at
	key  string // loginbudget.Key of the user and password
	ok   bool   // the camera has credentials (a login can be refused)
}

func credentialsOf(cam config.Camera) credentials {
	u := cam.URL()
	switch u.Scheme {
	case "file", "invalid":
		return credentials{}
	}
	host := cam.IPAddress
	if cam.StreamURL != "" {
		host = u.Host
	}
	if u.User == nil {
		return credentials{host: loginbudget.Host(host)}
	}
	pw, _ := u.User.Password()
	key := loginbudget.Key(u.User.Username(), pw)
	if cam.IsSub() {
		// The sub feed's logins count at the address with the main's, but
		// its verdict is its own: a sub path the account may not read
		// (refused) must not make the main's accepted credentials wait
		// behind the count, nor can the main's acceptance let the sub's
		// refusals go on past it.
		key += "|" + cam.Feed
	}
	return credentials{host: loginbudget.Host(host), key: key, ok: true}
}

// loginLimit is the camera's budget (config's defaults for a camera built
// without them, as in tests).
func loginLimit(cam config.Camera) loginbudget.Limit {
	lim := loginbudget.Limit{Max: cam.MaxFailedLogins, Window: cam.FailedLoginWindow.Std()}
	if lim.Max <= 0 {
		lim.Max = config.DefaultMaxFailedLogins
	}
	if lim.Window <= 0 {
		lim.Window = config.DefaultFailedLoginWindow
	}
	return lim
}

// login takes one login from the budget for a probe or an ffmpeg run: nil
// (and no error) for a camera without credentials, a *SpentError when the
// camera must wait.
func (c *Camera) login() (*loginbudget.Login, error) {
	if !c.creds.ok {
		return nil, nil
	}
	return c.deps.Logins.Take(c.creds.host, c.creds.key, loginLimit(c.cfg))
}

// spent checks, before a run, whether its logins would go; it returns
// the budget's change channel read before the check, to wait on.
func (c *Camera) spent() (*loginbudget.SpentError, <-chan struct{}) {
	changed := c.deps.Logins.Changed()
	if !c.creds.ok {
		return nil, changed
	}
	var se *loginbudget.SpentError
	if err := c.deps.Logins.Check(c.creds.host, c.creds.key, loginLimit(c.cfg)); errors.As(err, &se) {
		return se, changed
	}
	return nil, changed
}

// countFailures shows the refused logins at the camera's address.
func (c *Camera) countFailures() {
	if !c.creds.ok {
		return
	}
	n := c.deps.Logins.Failures(c.creds.host, loginLimit(c.cfg))
	c.update(func(s *Status) { s.FailedLogins = n })
}

// waitCredentials shows the camera waiting for its credentials until the
// budget has a login again (a refusal left the window, a login in flight
// ended, a grant), a Start or Retry pokes it, or ctx ends.
func (c *Camera) waitCredentials(ctx context.Context, se *loginbudget.SpentError, changed <-chan struct{}) {
	next := c.deps.Now().Add(se.Wait)
	entering := c.status.Get().State != WaitingCredentials
	c.update(func(s *Status) {
		s.State, s.NextAttempt, s.PID, s.Progress, s.FailedLogins = WaitingCredentials, next, 0, nil, se.Failures
	})
	if entering {
		c.log.Warn().Int("failedLogins", se.Failures).Int("maxFailedLogins", se.Limit.Max).Dur("window", se.Limit.Window).
			Time("next", next).Str("address", se.Host).
			Msg("waiting for the camera's credentials")
	}
	select {
	case <-ctx.Done():
	case <-c.deps.After(se.Wait):
	case <-changed:
	case <-c.wake:
	}
	// NextAttempt stays until the camera does try (Run clears it then): a
	// budget that changed but is still spent waits again with a new time,
	// and the page never shows the wait without its next try.
}

// Retry has a camera waiting for its credentials (or in backoff) try at
// once: its next login goes past the failed-login budget once, and counts
// if refused. A stopped camera stays stopped.
func (c *Camera) Retry() {
	if c.creds.ok {
		c.deps.Logins.Grant(c.creds.host, c.creds.key)
	}
	c.poke()
}

// refusedIn says whether ffmpeg's or ffprobe's output reports that the
// camera refused the credentials, and the line that says so. ffmpeg
// reports it in two ways, both read: the RTSP (or HTTP) answer as the
// camera phrased it, "method DESCRIBE failed: 401 Unauthorized" (the
// reason phrase is the camera's: "Unauthorised", "Authorization Required",
// none), and its own error text for the code, fixed whatever the camera
// said: "Server returned 401 Unauthorized (authorization failed)" or "403
// Forbidden (access denied)".
func refusedIn(lines []string) (string, bool) {
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if strings.Contains(l, "401 Unauthorized (authorization failed)") || strings.Contains(l, "403 Forbidden (access denied)") ||
			refusedAnswer.MatchString(l) {
			return l, true
		}
	}
	return "", false
}

// refusedAnswer is a method's RTSP answer 401 or 403 (ffmpeg's rtsp.c:
// "method %s failed: %d%s"), or an HTTP one (http.c: "HTTP error %d %s").
var refusedAnswer = regexp.MustCompile(`method [A-Z_]+ failed: 40[13]\b|HTTP error 40[13]\b`)

// probeRefused is the error of a probe the camera refused: the run ends
// as an auth failure without ffmpeg (another login would be another
// refusal).
type probeRefused struct{ line string }

func (e *probeRefused) Error() string {
	return "camera refused the credentials (ffprobe): " + trimLevel(e.line)
}
