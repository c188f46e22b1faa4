package uploader

import (
	"reflect"
	"testing"

	"github.com/cctvd/cctvd/catalog"
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
	plan := planParts(35, 10, []string{"c1", "c2", "c3", "c4"})
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
		recorded        []catalog.Part
		server          map[int32]serverPart
		kept, fresh     []int32
		send            []int32
		keptETagOfFirst string
	}{
		{"nothing on the server: send all", nil, nil, nil, nil, []int32{1, 2, 3, 4}, ""},
		{"S3 holds what was recorded", []catalog.Part{rec(1, 10, "c1", "e1"), rec(2, 10, "c2", "e2")},
			map[int32]serverPart{1: {10, "e1", "c1"}, 2: {10, "e2", "c2"}}, []int32{1, 2}, nil, []int32{3, 4}, "e1"},
		{"S3 confirmed a part the record missed (a crash in between)", []catalog.Part{rec(1, 10, "c1", "e1")},
			map[int32]serverPart{1: {10, "e1", "c1"}, 3: {10, "e3", "c3"}}, []int32{1, 3}, []int32{3}, []int32{2, 4}, "e1"},
		{"a recorded part S3 lacks is sent again", []catalog.Part{rec(1, 10, "c1", "e1"), rec(2, 10, "c2", "e2")},
			map[int32]serverPart{2: {10, "e2", "c2"}}, []int32{2}, nil, []int32{1, 3, 4}, "e2"},
		{"a part S3 holds with another checksum is sent again", []catalog.Part{rec(1, 10, "c1", "e1")},
			map[int32]serverPart{1: {10, "eX", "cX"}}, nil, nil, []int32{1, 2, 3, 4}, ""},
		{"a part S3 holds with another size is sent again", nil,
			map[int32]serverPart{4: {10, "e4", "c4"}}, nil, nil, []int32{1, 2, 3, 4}, ""},
		{"without checksums on the server, the recorded ETag decides", []catalog.Part{rec(1, 10, "c1", "e1"), rec(2, 10, "c2", "e2")},
			map[int32]serverPart{1: {10, "e1", ""}, 2: {10, "other", ""}, 3: {10, "e3", ""}}, []int32{1}, nil, []int32{2, 3, 4}, "e1"},
		{"S3's ETag is the one completed with", []catalog.Part{rec(1, 10, "c1", "old")},
			map[int32]serverPart{1: {10, "new", "c1"}}, []int32{1}, []int32{1}, []int32{2, 3, 4}, "new"},
		{"parts past the plan are left out", nil, map[int32]serverPart{9: {10, "e9", "c9"}}, nil, nil, []int32{1, 2, 3, 4}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, fresh, send := reconcileParts(plan, tt.recorded, tt.server)
			var k, f []int32
			for _, p := range kept {
				k = append(k, p.Number)
			}
			for _, p := range fresh {
				f = append(f, p.Number)
			}
			if !reflect.DeepEqual(k, tt.kept) || !reflect.DeepEqual(f, tt.fresh) || !reflect.DeepEqual(nums(send), tt.send) {
				t.Errorf("kept %v, fresh %v, send %v; want %v, %v, %v", k, f, nums(send), tt.kept, tt.fresh, tt.send)
			}
			if len(kept) > 0 && kept[0].ETag != tt.keptETagOfFirst {
				t.Errorf("kept part %d with ETag %s, want %s", kept[0].Number, kept[0].ETag, tt.keptETagOfFirst)
			}
		})
	}
}

func TestSumsOfARecord(t *testing.T) {
	m := catalog.Multipart{SHA256: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", CRC64: "crc",
		PartSize: 10, FileSize: 25, PartCRCs: []string{"a", "b", "c"}, ETag: "x-3"}
	if s, ok := sumsOf(m); !ok || s.partSize != 10 || s.sha256b64 == "" || s.md5 != "" || s.multipartETag != "x-3" {
		t.Errorf("sumsOf = %+v %v", s, ok)
	}
	m.PartCRCs = m.PartCRCs[:2] // the record does not cover the file
	if _, ok := sumsOf(m); ok {
		t.Error("a record without every part's checksum is trusted")
	}
}
