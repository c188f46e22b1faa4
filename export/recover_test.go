package export

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/segment"
)

// panickingS3 is a fake S3 client (a real server cannot be made to panic
// in our code) whose every call panics, as a bug in reading a hostile
// object would.
type panickingS3 struct{}

func (panickingS3) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	panic("a bug reading the object")
}

func (panickingS3) HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	panic("a bug reading the object")
}

func (panickingS3) ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	panic("a bug listing the bucket")
}

// TestBuildPanicFailsTheExportNotTheDaemon: a panic while a source is read
// (in one of the build's goroutines) fails that export with ErrInternal,
// logged with its stack; the process goes on and the service builds again.
func TestBuildPanicFailsTheExportNotTheDaemon(t *testing.T) {
	ctx := context.Background()
	save := t.TempDir()
	cat, err := catalog.Open(ctx, filepath.Join(save, ".cctvd", layout.CatalogName), save, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	start := t0
	end := start.Add(10 * time.Second)
	p := filepath.Join(save, layout.DayRel("door", start), segment.Name("door", "f1", start, end, 0))
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("x"), 0o644)
	r, err := cat.Add(ctx, segment.Segment{Camera: "door", FeedID: "f1", Start: start, End: end, Path: p, Size: 1}, "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.MarkUploaded(ctx, r.ID, "e", "test"); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := cat.MarkLocalDeleted(ctx, r.ID, catalog.CauseClearAfterUpload); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	svc := NewService(ServiceConfig{Bucket: "b"}, ServiceDeps{Catalog: cat, S3: panickingS3{}, Log: zerolog.New(&logs)})
	defer svc.Close()
	for try := range 2 { // the failed build leaves nothing behind: the next one runs too
		_, err := svc.Clip(ctx, "door", start, end)
		if !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), "a bug reading the object") {
			t.Fatalf("try %d: err = %v, want ErrInternal", try, err)
		}
	}
	if !strings.Contains(logs.String(), "panicked") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("the panic is not logged with its stack:\n%s", logs.String())
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if svc.building != 0 || len(svc.clips) != 0 {
		t.Errorf("after failed builds: %d building, %d clips", svc.building, len(svc.clips))
	}
}
