package alerts

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocumentedExamples: every example in docs/alerts.md decodes into an
// Event with no field the schema lacks, is consistent with its type
// (severity, state, clears, the details the type fills), and every type
// has one.
func TestDocumentedExamples(t *testing.T) {
	data, err := os.ReadFile("../docs/alerts.md")
	if err != nil {
		t.Fatal(err)
	}
	_, examples, _ := strings.Cut(string(data), "\n## Examples\n")
	examples, _, _ = strings.Cut(examples, "\n## ")
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(examples, -1)
	// The details each type may carry (docs/alerts.md's table).
	allowed := map[Type][]string{
		CameraDown:          {"cameraState", "lastError"},
		CameraUp:            {"downSeconds", "cause", "gapStart", "exitReason", "openSeconds"},
		UploadBacklog:       {"backlogSegments", "backlogBytes", "oldestAgeSeconds", "openSeconds"},
		UploadFailing:       {"lastError", "failingSince", "openSeconds"},
		UploadDeficit:       {"upMbps", "recordedMbps", "lossInSeconds", "lostFootageSeconds", "openSeconds"},
		DiskNearLimit:       {"usedBytes", "limitBytes", "freeBytes", "floorBytes", "backlogBytes", "openSeconds"},
		DiskMissing:         {"diskState", "openSeconds"},
		DeletedBeforeUpload: {"count", "from", "to", "files"},
		QuarantineGrowing:   {"count", "from", "to", "files"},
		ClockStep:           {"count", "stepSeconds", "direction"},
		Activity:            {"count", "from", "to"},
		DaemonStart:         {"previousStop"},
	}
	seen := map[Type]bool{}
	for _, b := range blocks {
		dec := json.NewDecoder(strings.NewReader(b[1]))
		dec.DisallowUnknownFields()
		var ev Event
		if err := dec.Decode(&ev); err != nil {
			t.Errorf("example %s: %v", b[1], err)
			continue
		}
		seen[ev.Type] = true
		info, known := types[ev.Type]
		switch {
		case !known || ev.Schema != Schema || ev.ID == "" || ev.Time.IsZero() || ev.Message == "" || ev.Host == "" || ev.Version == "":
			t.Errorf("example %s %s: incomplete: %+v", ev.Type, ev.ID, ev)
		case ev.State == Cleared && (ev.Clears == "" || ev.Severity != Info):
			t.Errorf("example %s: a clearing names what it clears and is info", ev.ID)
		case ev.State == Raised && (ev.Severity != info.severity || info.clearedAs == "" || ev.Clears != ""):
			t.Errorf("example %s: a raised %s", ev.ID, ev.Type)
		case ev.State == Once && (ev.Severity != info.severity || info.clearedAs != ""):
			t.Errorf("example %s: %s is not a fact of an instant", ev.ID, ev.Type)
		case ev.Type == CameraUp && ev.State != Cleared:
			t.Errorf("example %s: camera-up is camera-down's clearing", ev.ID)
		}
		var raw struct {
			Details map[string]json.RawMessage `json:"details"`
		}
		json.Unmarshal([]byte(b[1]), &raw)
		for k := range raw.Details {
			if !slices.Contains(allowed[ev.Type], k) {
				t.Errorf("example %s: detail %s is not one %s carries", ev.ID, k, ev.Type)
			}
		}
		// What cctvd writes of it reads back the same.
		out, _ := json.Marshal(ev)
		var again Event
		if json.Unmarshal(out, &again); !bytes.Equal(mustJSON(again), out) {
			t.Errorf("example %s does not round-trip", ev.ID)
		}
	}
	for ty := range types {
		if !seen[ty] {
			t.Errorf("docs/alerts.md has no example of %s", ty)
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
