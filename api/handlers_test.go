package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/logring"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// addFile records a segment of camera cam starting at start with a real
// file of the given bytes, and returns its row.
func (e *env) addFile(t *testing.T, cam string, start time.Time, data []byte) catalog.Record {
	t.Helper()
	save := filepath.Dir(filepath.Dir(filepath.Dir(e.rec.Path))) // savePath/camera/day/file
	end := start.Add(10 * time.Second)
	p := filepath.Join(save, layout.DayRel(cam, start), segment.Name(cam, "f1", start, end, 0))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := e.cat.Add(context.Background(), segment.Segment{Camera: cam, FeedID: "f1", Start: start, End: end, Path: p, Size: int64(len(data))},
		"rec/"+cam+"/"+filepath.Base(p))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRecordingFileRanges: the file route answers every kind of Range a
// player sends: the whole file, a range, a suffix, an open end, several
// ranges at once (multipart), and 416 for a range past the end.
func TestRecordingFileRanges(t *testing.T) {
	e := newEnv(t, Config{Listen: "127.0.0.1:0"}, nil)
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	r := e.addFile(t, "door", time.Date(2026, 1, 7, 8, 0, 0, 0, time.UTC), data)
	path := fmt.Sprintf("/api/v1/recordings/%d/file", r.ID)
	get := func(rng string) *http.Response {
		h := map[string]string{}
		if rng != "" {
			h["Range"] = rng
		}
		return e.do(request{method: "GET", path: path, header: h}).Result()
	}
	body := func(resp *http.Response) []byte {
		b, _ := io.ReadAll(resp.Body)
		return b
	}

	resp := get("")
	if b := body(resp); resp.StatusCode != 200 || !bytes.Equal(b, data) || resp.Header.Get("Content-Type") != "video/mp4" ||
		resp.Header.Get("Accept-Ranges") != "bytes" || !strings.Contains(resp.Header.Get("Content-Disposition"), r.Name()) {
		t.Errorf("whole file: %d, %d bytes, headers %v", resp.StatusCode, len(b), resp.Header)
	}
	for _, tt := range []struct {
		rng        string
		from, to   int // inclusive
		contentRng string
	}{
		{"bytes=0-99", 0, 99, "bytes 0-99/1000"},
		{"bytes=100-199", 100, 199, "bytes 100-199/1000"},
		{"bytes=-100", 900, 999, "bytes 900-999/1000"},
		{"bytes=900-", 900, 999, "bytes 900-999/1000"},
		{"bytes=990-5000", 990, 999, "bytes 990-999/1000"}, // an end past the file is the file's end
		{"bytes=999-999", 999, 999, "bytes 999-999/1000"},
	} {
		resp := get(tt.rng)
		b := body(resp)
		if resp.StatusCode != 206 || !bytes.Equal(b, data[tt.from:tt.to+1]) || resp.Header.Get("Content-Range") != tt.contentRng {
			t.Errorf("%s: %d, %d bytes, Content-Range %q; want 206, bytes %d-%d, %q", tt.rng, resp.StatusCode, len(b),
				resp.Header.Get("Content-Range"), tt.from, tt.to, tt.contentRng)
		}
	}

	// Several ranges: one multipart/byteranges answer, each part with its
	// own Content-Range and bytes.
	resp = get("bytes=0-9,500-509,-5")
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != 206 || mt != "multipart/byteranges" {
		t.Fatalf("several ranges: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for _, want := range [][2]int{{0, 9}, {500, 509}, {995, 999}} {
		part, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %v: %v", want, err)
		}
		b, _ := io.ReadAll(part)
		if cr := fmt.Sprintf("bytes %d-%d/1000", want[0], want[1]); part.Header.Get("Content-Range") != cr || !bytes.Equal(b, data[want[0]:want[1]+1]) {
			t.Errorf("part %v: Content-Range %q, %d bytes", want, part.Header.Get("Content-Range"), len(b))
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("more parts than ranges: %v", err)
	}

	// Nothing satisfiable: 416, naming the size.
	for _, rng := range []string{"bytes=1000-", "bytes=5000-6000"} {
		resp := get(rng)
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != "bytes */1000" {
			t.Errorf("%s: %d, Content-Range %q; want 416, bytes */1000", rng, resp.StatusCode, resp.Header.Get("Content-Range"))
		}
	}
	// A Range that cannot be read is refused the same way.
	for _, rng := range []string{"bytes=abc", "bytes=9-3", "pages=1-2"} {
		if resp := get(rng); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("%s: %d, want 416", rng, resp.StatusCode)
		}
	}
}

// TestRecordingGone: a recording whose file is gone answers 404 with JSON,
// whether retention or clearAfterUpload deleted it (the answer names the
// cause and the S3 key) or it vanished behind cctvd's back; its row is
// still there, without a file link.
func TestRecordingGone(t *testing.T) {
	e := newEnv(t, Config{Listen: "127.0.0.1:0"}, nil)
	ctx := context.Background()
	deleted := e.addFile(t, "door", time.Date(2026, 1, 7, 8, 0, 0, 0, time.UTC), []byte("deleted"))
	vanished := e.addFile(t, "door", time.Date(2026, 1, 7, 8, 0, 10, 0, time.UTC), []byte("vanished"))
	if err := e.cat.MarkDeleted(ctx, []int64{deleted.ID}, catalog.CauseSizeLimit); err != nil {
		t.Fatal(err)
	}
	os.Remove(deleted.Path)
	os.Remove(vanished.Path)

	rec := e.do(request{method: "GET", path: fmt.Sprintf("/api/v1/recordings/%d/file", deleted.ID)})
	if msg := errorBody(t, rec)["error"]; rec.Code != 404 || !strings.Contains(msg, catalog.CauseSizeLimit) || !strings.Contains(msg, deleted.Key) {
		t.Errorf("deleted: %d %q; want 404 naming the cause and %s", rec.Code, msg, deleted.Key)
	}
	rec = e.do(request{method: "GET", path: fmt.Sprintf("/api/v1/recordings/%d/file", vanished.ID)})
	if msg := errorBody(t, rec)["error"]; rec.Code != 404 || msg != "the recording is no longer on this box" {
		t.Errorf("vanished: %d %q", rec.Code, msg)
	}
	rec = e.do(request{method: "GET", path: fmt.Sprintf("/api/v1/recordings/%d", deleted.ID)})
	var got Recording
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 || got.Local != catalog.Deleted ||
		got.File != "" || got.DeleteCause != catalog.CauseSizeLimit || got.S3Key != deleted.Key {
		t.Errorf("the deleted recording's row: %d %+v %v", rec.Code, got, err)
	}
	for path, want := range map[string]int{
		"/api/v1/recordings/999999/file": 404, "/api/v1/recordings/999999": 404,
		"/api/v1/recordings/0/file": 400, "/api/v1/recordings/-3": 400, "/api/v1/recordings/abc": 400,
	} {
		if rec := e.do(request{method: "GET", path: path}); rec.Code != want || errorBody(t, rec)["error"] == "" {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
	}
}

// listPage is one page of /recordings.
type listPage struct {
	Recordings []Recording `json:"recordings"`
	Next       string      `json:"next"`
}

func (e *env) list(t *testing.T, query string) (listPage, int) {
	t.Helper()
	rec := e.do(request{method: "GET", path: "/api/v1/recordings?" + query})
	var p listPage
	if rec.Code == 200 {
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
	}
	return p, rec.Code
}

// TestRecordingsPaging: following `next` walks every row once, newest
// first, with no repeat and no hole, for every page size, also where
// several rows start at the same instant (two cameras) and with filters.
func TestRecordingsPaging(t *testing.T) {
	e := newEnv(t, Config{Listen: "127.0.0.1:0"}, nil)
	ctx := context.Background()
	base := time.Date(2026, 1, 7, 8, 0, 0, 0, time.UTC)
	want := []int64{e.rec.ID}
	for i := range 12 {
		start := base.Add(time.Duration(i/2) * 10 * time.Second) // pairs start together
		cam := []string{"door", "gate"}[i%2]
		r := e.addFile(t, cam, start, []byte{byte(i)})
		if i%3 == 0 {
			e.cat.MarkUploaded(ctx, r.ID, `"e"`, "checksum-sha256")
		}
		want = append(want, r.ID)
	}
	all := func(query string) []Recording {
		var out []Recording
		q := query
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatalf("%s: more than 100 pages", query)
			}
			p, code := e.list(t, q)
			if code != 200 {
				t.Fatalf("%s: %d", q, code)
			}
			out = append(out, p.Recordings...)
			if p.Next == "" {
				return out
			}
			q = query + "&cursor=" + p.Next
		}
	}
	for _, limit := range []int{1, 2, 3, 5, 13, 100} {
		got := all("limit=" + strconv.Itoa(limit))
		var ids []int64
		for i, r := range got {
			ids = append(ids, r.ID)
			if i > 0 && r.Start.After(got[i-1].Start) {
				t.Errorf("limit %d: row %d starts after the one before it: not newest first", limit, i)
			}
		}
		sorted := slices.Clone(ids)
		slices.Sort(sorted)
		wantSorted := slices.Clone(want)
		slices.Sort(wantSorted)
		if !slices.Equal(sorted, wantSorted) {
			t.Errorf("limit %d: ids %v, want each of %v once", limit, ids, wantSorted)
		}
	}
	// The last page has no next; a full page that happens to end the rows
	// may have one, which then gives an empty page without next.
	if p, _ := e.list(t, "limit=1000"); p.Next != "" || len(p.Recordings) != 13 {
		t.Errorf("one page of everything: %d rows, next %q", len(p.Recordings), p.Next)
	}
	// Filters hold across pages.
	gate := all("camera=gate&limit=2")
	if len(gate) != 6 || slices.ContainsFunc(gate, func(r Recording) bool { return r.Camera != "gate" }) {
		t.Errorf("camera=gate: %d rows", len(gate))
	}
	up := all("uploaded=true&limit=3")
	if len(up) != 4 || slices.ContainsFunc(up, func(r Recording) bool { return r.Upload != catalog.Uploaded }) {
		t.Errorf("uploaded=true: %d rows", len(up))
	}
	notUp := all("uploaded=false&limit=4")
	if len(notUp) != 9 {
		t.Errorf("uploaded=false: %d rows, want 9", len(notUp))
	}
	ranged := all("from=" + base.Add(10*time.Second).Format(time.RFC3339) + "&to=" + base.Add(30*time.Second).Format(time.RFC3339) + "&limit=1")
	if len(ranged) != 4 {
		t.Errorf("from/to: %d rows, want the 4 of the two middle pairs", len(ranged))
	}
	for _, q := range []string{"cursor=!!", "cursor=" + "bm90LWEtY3Vyc29y", "limit=0", "limit=1001", "limit=x", "uploaded=maybe", "present=2",
		"from=yesterday", "from=2026-01-07T09:00:00Z&to=2026-01-07T08:00:00Z"} {
		if _, code := e.list(t, q); code != 400 {
			t.Errorf("%s: %d, want 400", q, code)
		}
	}
}

// sseEvents reads Server-Sent Events from body onto a channel: each
// event's id and data.
func sseEvents(body io.Reader) <-chan [2]string {
	ch := make(chan [2]string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		var id, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && id != "":
				ch <- [2]string{id, data}
				id, data = "", ""
			}
		}
	}()
	return ch
}

// TestFollowReplaysTheTail: ?follow=true&tail=N sends the last N lines,
// the first of them included, then every new line as it comes, in order.
func TestFollowReplaysTheTail(t *testing.T) {
	// The API reads a hub of its own that only this test writes to: the
	// supervisor's lines go elsewhere, so what is replayed is known.
	hub := logring.NewHub(100, 100)
	e := newEnv(t, Config{Listen: "127.0.0.1:0"}, func(d *Deps) { d.Logs = hub })
	e.hub = hub
	ring := e.hub.Camera("door")
	for i := 1; i <= 6; i++ {
		ring.Append(fmt.Sprintf(`{"level":"info","camera":"door","message":"line %d"}`, i))
	}
	addr := serve(t, e.s)
	for _, tail := range []int{3, 1, 6, 50} {
		t.Run(fmt.Sprintf("tail=%d", tail), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/api/v1/cameras/door/logs?follow=true&tail=%d", addr, tail), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("follow: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			events := sseEvents(resp.Body)
			before := ring.Tail(1)[0].Seq
			replayed := min(tail, int(before))
			newLine := fmt.Sprintf(`{"level":"info","camera":"door","message":"new after tail %d"}`, tail)
			var got []string
			for len(got) < replayed+1 {
				if len(got) == replayed {
					ring.Append(newLine) // once the replay is in, a new line
				}
				select {
				case ev, ok := <-events:
					if !ok {
						t.Fatalf("the stream ended after %q", got)
					}
					got = append(got, ev[0]+" "+ev[1])
				case <-time.After(10 * time.Second):
					t.Fatalf("after 10 s, events %q; want %d replayed and the new line", got, replayed)
				}
			}
			lines := ring.Tail(replayed + 1)
			for i, l := range lines {
				if want := fmt.Sprintf("%d %s", l.Seq, l.Text); got[i] != want {
					t.Errorf("event %d: %q, want %q", i, got[i], want)
				}
			}
			if got[len(got)-1] != fmt.Sprintf("%d %s", before+1, newLine) {
				t.Errorf("last event %q, want the new line", got[len(got)-1])
			}
		})
	}
}

// TestTailWithoutFollow: ?tail=N answers the last N lines as JSON, entries
// parsed, in order; tail=0 none; a bad tail is 400.
func TestTailWithoutFollow(t *testing.T) {
	hub := logring.NewHub(100, 100)
	e := newEnv(t, Config{Listen: "127.0.0.1:0"}, func(d *Deps) { d.Logs = hub })
	ring := hub.Camera("door")
	for i := 1; i <= 5; i++ {
		ring.Append(fmt.Sprintf(`{"message":"line %d"}`, i))
	}
	ring.Append("not json: cut")
	for _, tt := range []struct {
		tail  string
		first string
		n     int
	}{{"2", `{"message":"line 5"}`, 2}, {"0", "", 0}, {"6", `{"message":"line 1"}`, 6}, {"1000", `{"message":"line 1"}`, 6}} {
		rec := e.do(request{method: "GET", path: "/api/v1/cameras/door/logs?tail=" + tt.tail})
		var v struct{ Lines []LogLine }
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || rec.Code != 200 || len(v.Lines) != tt.n {
			t.Fatalf("tail=%s: %d, %d lines, %v", tt.tail, rec.Code, len(v.Lines), err)
		}
		if tt.n > 0 {
			if string(v.Lines[0].Entry) != tt.first || v.Lines[tt.n-1].Text != "not json: cut" || v.Lines[tt.n-1].Entry != nil {
				t.Errorf("tail=%s: first %s, last %+v", tt.tail, v.Lines[0].Entry, v.Lines[tt.n-1])
			}
		}
	}
	for _, q := range []string{"tail=-1", "tail=1001", "tail=x", "follow=maybe"} {
		if rec := e.do(request{method: "GET", path: "/api/v1/cameras/door/logs?" + q}); rec.Code != 400 {
			t.Errorf("%s: %d, want 400", q, rec.Code)
		}
	}
	if rec := e.do(request{method: "GET", path: "/api/v1/cameras/nobody/logs"}); rec.Code != 404 {
		t.Errorf("an unknown camera's log: %d, want 404", rec.Code)
	}
}
