package volume

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/internal/watch"
	"github.com/cctvd/cctvd/layout"
)

// State says whether savePath is the expected disk.
type State string

// The volume states.
const (
	Checking   State = "checking"   // not looked at yet
	OK         State = "ok"         // savePath is the expected volume: recording may go on
	Missing    State = "missing"    // the expected marker is not there: the disk is missing
	Foreign    State = "foreign"    // savePath holds another cctvd volume
	Changed    State = "changed"    // savePath's filesystem changed while recording
	Unreadable State = "unreadable" // savePath or its marker cannot be read
)

// Status is the volume's state, for the API, /readyz and the metrics.
type Status struct {
	State State     `json:"state"`
	Since time.Time `json:"since"`
	// Message says what is wrong and what to do, when State is not OK.
	Message  string `json:"message,omitempty"`
	SavePath string `json:"savePath"`
	// ID is the volume's id when State is OK; Expected is the id looked
	// for, when one is.
	ID         string `json:"id,omitempty"`
	Expected   string `json:"expected,omitempty"`
	Filesystem string `json:"filesystem,omitempty"`
	// Anchor is the file outside savePath that remembers the volume, ""
	// when there is no place for it.
	Anchor string `json:"anchor,omitempty"`
}

// Config is the guard's configuration.
type Config struct {
	SavePath string
	// AnchorDir holds the anchor (see AnchorDir); "" for none.
	AnchorDir string
	// Poll is the period of the checks. Default 2s.
	Poll time.Duration
}

// Deps are the guard's collaborators.
type Deps struct {
	Log zerolog.Logger
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// After waits on the monotonic clock; time.After by default.
	After func(time.Duration) <-chan time.Time
}

// Guard checks that savePath is the expected volume, at start and every
// Poll. Run owns the checks; Status and WaitFor may be called from anywhere.
type Guard struct {
	cfg    Config
	deps   Deps
	log    zerolog.Logger
	status *watch.Value[Status]

	mu       sync.Mutex // Check's, for tests that call it beside Run
	expected *Identity  // without an anchor place: the volume this process recorded on
	okFS     string     // the filesystem savePath was on when it became OK
}

// New returns a Guard.
func New(cfg Config, deps Deps) *Guard {
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.After == nil {
		deps.After = time.After
	}
	st := Status{State: Checking, Since: deps.Now(), SavePath: cfg.SavePath}
	if cfg.AnchorDir != "" {
		st.Anchor = filepath.Join(cfg.AnchorDir, AnchorName)
	}
	return &Guard{cfg: cfg, deps: deps, log: deps.Log.With().Str("component", "volume").Logger(), status: watch.New(st)}
}

// Status returns the volume's state.
func (g *Guard) Status() Status { return g.status.Get() }

// WaitFor returns once cond holds for the status, or ctx ends.
func (g *Guard) WaitFor(ctx context.Context, cond func(Status) bool) error {
	return g.status.WaitFor(ctx, cond)
}

// Run checks now and every Poll until ctx ends.
func (g *Guard) Run(ctx context.Context) error {
	if g.cfg.AnchorDir == "" {
		g.log.Warn().Str("savePath", g.cfg.SavePath).
			Msg("no place outside savePath to remember its disk (stateDir is inside savePath and $STATE_DIRECTORY is not set): " +
				"a missing disk at the first start cannot be told from an empty folder; run cctvd from its systemd unit or set storageConfig.stateDir elsewhere")
	}
	for {
		g.Check()
		select {
		case <-ctx.Done():
			return nil
		case <-g.deps.After(g.cfg.Poll):
		}
	}
}

// Check looks at savePath once and updates the status.
func (g *Guard) Check() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	prev := g.status.Get()
	next := g.evaluate(prev.State)
	g.status.Update(func(s *Status) {
		if s.State != next.State {
			s.Since = g.deps.Now()
		}
		s.State, s.Message, s.ID, s.Expected, s.Filesystem = next.State, next.Message, next.ID, next.Expected, next.Filesystem
	})
	switch {
	case next.State == prev.State && next.Message == prev.Message:
	case next.State == OK:
		g.log.Info().Str("savePath", g.cfg.SavePath).Str("volume", next.ID).Str("filesystem", next.Filesystem).
			Msg("savePath is cctvd's recordings volume")
	default:
		g.log.Error().Str("savePath", g.cfg.SavePath).Str("state", string(next.State)).
			Msg("recording is held: " + next.Message) // what to do is the message; tests and operators read it
	}
	return g.status.Get()
}

// evaluate decides the state and carries out what the decision asks
// (creating the marker, remembering it).
func (g *Guard) evaluate(prev State) Status {
	save := g.cfg.SavePath
	out := Status{SavePath: save}
	var anchorPath string
	expected := g.expected
	if g.cfg.AnchorDir != "" {
		anchorPath = filepath.Join(g.cfg.AnchorDir, AnchorName)
		expected = nil
		var a anchor
		switch err := readJSON(anchorPath, &a); {
		case err == nil && a.SavePath == save && a.ID != "":
			expected = &a.Identity
		case err != nil && !isNotExist(err):
			g.log.Warn().Err(err).Str("anchor", anchorPath).Msg("cannot read the remembered volume; taking savePath as it is")
		}
	}
	if expected != nil {
		out.Expected = expected.ID
	}

	fi, statErr := os.Stat(save)
	saveExists := statErr == nil && fi.IsDir()
	var info fsInfo
	var marker Identity
	markerErr := statErr
	if saveExists {
		var err error
		if info, err = identify(save); err != nil {
			markerErr = err
		} else {
			markerErr = readJSON(layout.Marker(save), &marker)
		}
	}
	out.Filesystem = info.id

	d := decide(expected, saveExists, markerErr, marker, info)
	if d.state == OK && prev == OK && g.okFS != "" && info.id != g.okFS {
		d = decision{state: Changed, msg: fmt.Sprintf("savePath's filesystem changed while recording (from %s to %s): the disk was unmounted or replaced", g.okFS, info.id)}
	}
	out.State, out.Message = d.state, d.msg
	if d.state != OK {
		if d.state == Changed {
			g.okFS = ""
		}
		return out
	}

	id := marker
	if d.create {
		if !saveExists {
			if err := os.MkdirAll(save, 0o755); err != nil {
				return Status{SavePath: save, State: Unreadable, Message: fmt.Sprintf("cannot create savePath: %v", err)}
			}
			if info, err := identify(save); err == nil {
				out.Filesystem = info.id
			}
		}
		if i, err := identify(save); err == nil {
			info = i
		}
		id = Identity{ID: newID(), Created: g.deps.Now().UTC(), Filesystem: info.id, FSType: info.fsType, Device: info.device, UUID: uuidOf(info.device)}
		if err := writeJSON(layout.Marker(save), id); err != nil {
			return Status{SavePath: save, State: Unreadable, Message: fmt.Sprintf("cannot write the volume marker: %v", err), Filesystem: info.id}
		}
		what := "first start: savePath is now marked as cctvd's recordings volume"
		if hasRecordings(save) {
			what = "savePath holds recordings of an earlier cctvd without a volume marker (an upgrade): marked it as cctvd's recordings volume"
		}
		g.log.Info().Str("savePath", save).Str("volume", id.ID).Str("filesystem", info.id).Str("uuid", id.UUID).Msg(what)
	}
	if anchorPath != "" && (expected == nil || expected.ID != id.ID || expected.Filesystem != info.id) {
		if expected != nil && expected.Filesystem != info.id {
			g.log.Warn().Str("volume", id.ID).Str("from", expected.Filesystem).Str("to", info.id).
				Msg("cctvd's recordings volume is on another filesystem than before (copied to a new disk?); remembering the new one")
		}
		id.Filesystem, id.FSType, id.Device = info.id, info.fsType, info.device
		if err := os.MkdirAll(g.cfg.AnchorDir, 0o755); err != nil {
			g.log.Error().Err(err).Msg("cannot create the folder that remembers savePath's volume")
		} else if err := writeJSON(anchorPath, anchor{SavePath: save, Identity: id}); err != nil {
			g.log.Error().Err(err).Str("anchor", anchorPath).Msg("cannot remember savePath's volume")
		}
	}
	if g.cfg.AnchorDir == "" {
		g.expected = &id
	}
	g.okFS = info.id
	out.ID, out.Expected = id.ID, id.ID
	return out
}

// decision is what a check concludes.
type decision struct {
	state  State
	create bool // write a new marker
	msg    string
}

// decide is the pure part of a check: what savePath's state is, given the
// volume expected there (nil: none), whether savePath exists, the marker
// read from it (markerErr from reading it) and its filesystem.
func decide(expected *Identity, saveExists bool, markerErr error, marker Identity, fs fsInfo) decision {
	if expected != nil {
		where := fmt.Sprintf("volume %s (filesystem %s", expected.ID, expected.Filesystem)
		if expected.UUID != "" {
			where += ", UUID " + expected.UUID
		}
		where += ")"
		switch {
		case !saveExists:
			return decision{state: Missing, msg: fmt.Sprintf("savePath does not exist: cctvd's recordings disk, %s, is not mounted; waiting for it", where)}
		case markerErr == nil && marker.ID == expected.ID:
			return decision{state: OK}
		case markerErr == nil:
			return decision{state: Foreign, msg: fmt.Sprintf("savePath holds another cctvd volume (%s) than the expected %s; "+
				"if this disk is the one to record on from now on, delete the file that remembers the old one (volume.json beside the catalog or in $STATE_DIRECTORY)", marker.ID, where)}
		case isNotExist(markerErr):
			return decision{state: Missing, msg: fmt.Sprintf("savePath (filesystem %s) has no volume marker: cctvd's recordings disk, %s, is missing or not mounted; "+
				"waiting for it. If savePath is the disk to record on from now on, delete the file that remembers the old one (volume.json beside the catalog or in $STATE_DIRECTORY)", fs.id, where)}
		default:
			return decision{state: Unreadable, msg: fmt.Sprintf("cannot read savePath's volume marker: %v", markerErr)}
		}
	}
	switch {
	case !saveExists && markerErr != nil && !isNotExist(markerErr):
		return decision{state: Unreadable, msg: fmt.Sprintf("cannot read savePath: %v", markerErr)}
	case !saveExists, isNotExist(markerErr):
		return decision{state: OK, create: true}
	case markerErr == nil && marker.ID != "":
		return decision{state: OK}
	case markerErr == nil:
		return decision{state: Unreadable, msg: "savePath's volume marker has no id; delete " + layout.MarkerName + " to mark savePath anew"}
	default:
		return decision{state: Unreadable, msg: fmt.Sprintf("cannot read savePath's volume marker: %v", markerErr)}
	}
}
