package uploader

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/internal/filesum"
)

func TestPlanParts(t *testing.T) {
	got := planParts(25, 10, []string{"a", "b", "c"})
	want := []partPlan{{1, 0, 10, "a"}, {2, 10, 10, "b"}, {3, 20, 5, "c"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("planParts = %+v", got)
	}
	if got := planParts(20, 10, []string{"a", "b"}); len(got) != 2 || got[1].size != 10 {
		t.Errorf("an exact multiple: %+v", got)
	}
}

func TestReconcileParts(t *testing.T) {
	inFlight := planParts(35, 10, nil) // the CRCs taken as each part is read
	readFirst := planParts(35, 10, []string{"c1", "c2", "c3", "c4"})
	rec := func(n int32, size int64, crc, etag string) catalog.Part {
		return catalog.Part{Number: n, Size: size, CRC64: crc, ETag: etag}
	}
	nums := func(ps []partPlan) []int32 {
		var out []int32
		for _, p := range ps {
			out = append(out, p.number)
		}
		return out
	}
	tests := []struct {
		name            string
		plan            []partPlan
		recorded        []catalog.Part
		server          map[int32]serverPart
		kept, fresh     []int32
		rest            []int32
		keptETagOfFirst string
	}{
		{"nothing on the server: read and send all", inFlight, nil, nil, nil, nil, []int32{1, 2, 3, 4}, ""},
		{"S3 holds what was recorded: kept, not read", inFlight, []catalog.Part{rec(1, 10, "c1", "e1"), rec(2, 10, "c2", "e2")},
			map[int32]serverPart{1: {10, "e1", "c1"}, 2: {10, "e2", "c2"}}, []int32{1, 2}, nil, []int32{3, 4}, "e1"},
		{"a part S3 confirmed and the record missed is read (its CRC decides)", inFlight, []catalog.Part{rec(1, 10, "c1", "e1")},
			map[int32]serverPart{1: {10, "e1", "c1"}, 3: {10, "e3", "c3"}}, []int32{1}, nil, []int32{2, 3, 4}, "e1"},
		{"a recorded part S3 lacks is sent again", inFlight, []catalog.Part{rec(1, 10, "c1", "e1"), rec(2, 10, "c2", "e2")},
			map[int32]serverPart{2: {10, "e2", "c2"}}, []int32{2}, nil, []int32{1, 3, 4}, "e2"},
		{"a part S3 holds with another checksum is sent again", inFlight, []catalog.Part{rec(1, 10, "c1", "e1")},
			map[int32]serverPart{1: {10, "eX", "cX"}}, nil, nil, []int32{1, 2, 3, 4}, ""},
		{"a part S3 holds with another size is sent again", inFlight, nil,
			map[int32]serverPart{4: {10, "e4", "c4"}}, nil, nil, []int32{1, 2, 3, 4}, ""},
		{"without checksums on the server, the recorded ETag decides", inFlight, []catalog.Part{rec(1, 10, "c1", "e1"), rec(2, 10, "c2", "e2")},
			map[int32]serverPart{1: {10, "e1", ""}, 2: {10, "other", ""}, 3: {10, "e3", ""}}, []int32{1}, nil, []int32{2, 3, 4}, "e1"},
		{"S3's ETag is the one completed with", inFlight, []catalog.Part{rec(1, 10, "c1", "old")},
			map[int32]serverPart{1: {10, "new", "c1"}}, []int32{1}, []int32{1}, []int32{2, 3, 4}, "new"},
		{"parts past the plan are left out", inFlight, nil, map[int32]serverPart{9: {10, "e9", "c9"}}, nil, nil, []int32{1, 2, 3, 4}, ""},
		{"read whole first: a recorded part with another CRC than planned goes again", readFirst, []catalog.Part{rec(1, 10, "cOld", "e1"), rec(2, 10, "c2", "e2")},
			map[int32]serverPart{1: {10, "e1", "cOld"}, 2: {10, "e2", "c2"}}, []int32{2}, nil, []int32{1, 3, 4}, "e2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, fresh, rest := reconcileParts(tt.plan, tt.recorded, tt.server)
			var k, f []int32
			for _, p := range kept {
				k = append(k, p.Number)
			}
			for _, p := range fresh {
				f = append(f, p.Number)
			}
			if !reflect.DeepEqual(k, tt.kept) || !reflect.DeepEqual(f, tt.fresh) || !reflect.DeepEqual(nums(rest), tt.rest) {
				t.Errorf("kept %v, fresh %v, rest %v; want %v, %v, %v", k, f, nums(rest), tt.kept, tt.fresh, tt.rest)
			}
			if len(kept) > 0 && kept[0].ETag != tt.keptETagOfFirst {
				t.Errorf("kept part %d with ETag %s, want %s", kept[0].Number, kept[0].ETag, tt.keptETagOfFirst)
			}
		})
	}
}

// TestHeldAfterReading: a part read for its CRC is kept when S3 holds it
// with that CRC (confirmed, the record cut short), never on the server's
// word alone without a part checksum.
func TestHeldAfterReading(t *testing.T) {
	p := partPlan{number: 3, offset: 20, size: 10}
	for _, tt := range []struct {
		name string
		s    serverPart
		on   bool
		want bool
	}{
		{"S3 holds it with the CRC read", serverPart{10, "e3", "c3"}, true, true},
		{"S3 holds other bytes", serverPart{10, "e3", "cX"}, true, false},
		{"S3 keeps no part checksums and the record does not name it", serverPart{10, "e3", ""}, true, false},
		{"S3 holds another size", serverPart{9, "e3", "c3"}, true, false},
		{"S3 lacks it", serverPart{}, false, false},
	} {
		part, ok := held(p, "c3", tt.s, tt.on, catalog.Part{}, false)
		if ok != tt.want || (ok && part != (catalog.Part{Number: 3, Size: 10, CRC64: "c3", ETag: "e3"})) {
			t.Errorf("%s: %+v %v", tt.name, part, ok)
		}
	}
}

// TestWholeCRC: the parts' CRCs combine into the whole file's, or the
// upload is not completed.
func TestWholeCRC(t *testing.T) {
	data := mp4ish(25)
	var parts []catalog.Part
	for i, off := 0, 0; off < len(data); i, off = i+1, off+10 {
		b := data[off:min(off+10, len(data))]
		parts = append(parts, catalog.Part{Number: int32(i + 1), Size: int64(len(b)), CRC64: filesum.CRC64Base64(filesum.UpdateCRC64(0, b))})
	}
	whole := filesum.CRC64Base64(filesum.UpdateCRC64(0, data))
	if err := wholeCRC(parts, whole); err != nil {
		t.Errorf("the parts of the file: %v", err)
	}
	parts[1].CRC64 = filesum.CRC64Base64(42)
	if err := wholeCRC(parts, whole); !errors.Is(err, errFileChanged) || !errors.Is(err, ErrVerify) {
		t.Errorf("a part with other bytes: %v", err)
	}
}

func TestSumsOfARecord(t *testing.T) {
	m := catalog.Multipart{SHA256: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", CRC64: filesum.CRC64Base64(7),
		PartSize: 10, FileSize: 25, PartCRCs: []string{"a", "b", "c"}, ETag: "x-3"}
	if s, ok := sumsOf(m); !ok || s.partSize != 10 || s.sha256b64 == "" || s.md5 != "" || s.multipartETag != "x-3" || len(s.partCRC64) != 3 {
		t.Errorf("sumsOf = %+v %v", s, ok)
	}
	m.PartCRCs = nil // the parts' CRCs taken as each goes
	if s, ok := sumsOf(m); !ok || s.partCRC64 != nil {
		t.Errorf("a record of an upload read part by part: %+v %v", s, ok)
	}
	m.CRC64 = ""
	if _, ok := sumsOf(m); ok {
		t.Error("a record without the whole file's CRC is trusted")
	}
}
