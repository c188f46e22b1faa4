package drill

import (
	"context"
	"sync"
	"time"
)

// sampler watches the disk and the bucket from outside, once a second: when
// each object first appeared in S3, and which local files vanished while
// S3 did not have them.
type sampler struct {
	mu        sync.Mutex
	firstSeen map[string]time.Time // S3 key -> first seen
	vanished  []vanished
	deleted   int // local segments that disappeared, uploaded or not
}

// vanished is a local segment that disappeared while S3 did not have it.
type vanished struct {
	Rel string
	At  time.Time
	// UploadedLeft: at that moment some local segment S3 did have was
	// still on disk, so retention could have deleted that one instead.
	UploadedLeft bool
}

func (s *sampler) run(ctx context.Context, d *drill) {
	s.mu.Lock()
	s.firstSeen = map[string]time.Time{}
	s.mu.Unlock()
	var prevLocal map[string]bool
	inS3 := map[string]bool{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		local := localSegments(d.save)
		if objs, err := d.minio.List(bucket, prefix+"/"); err == nil { // fails while MinIO is down
			now := time.Now()
			s.mu.Lock()
			for _, o := range objs {
				if !inS3[o.Key] {
					inS3[o.Key] = true
					s.firstSeen[o.Key] = now
				}
			}
			s.mu.Unlock()
		}
		uploadedLeft := false
		for rel := range prevLocal {
			if inS3[prefix+"/"+rel] && local[rel] {
				uploadedLeft = true
				break
			}
		}
		for rel := range prevLocal {
			if !local[rel] {
				s.mu.Lock()
				s.deleted++
				s.mu.Unlock()
			}
			if !local[rel] && !inS3[prefix+"/"+rel] {
				s.mu.Lock()
				s.vanished = append(s.vanished, vanished{Rel: rel, At: time.Now(), UploadedLeft: uploadedLeft})
				s.mu.Unlock()
			}
		}
		prevLocal = local
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
