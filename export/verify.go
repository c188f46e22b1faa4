package export

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cctvd/cctvd/uploader"
)

// Check is the result of checking one thing a manifest names.
type Check struct {
	// What is checked: an S3 key, or the clip's file.
	What string
	OK   bool
	// How it was checked: "head" (size, ETag and sha256 metadata as
	// recorded), "download" (the bytes hashed) or "file".
	How string
	// Problem says what does not match; empty when OK.
	Problem string
	// Skipped: not checked (the clip is not beside the manifest).
	Skipped bool
}

// Verify checks every source a manifest names against the bucket, and
// the clip when it is beside the manifest (in dir). A source whose size,
// ETag (computed by S3 from the bytes it stores) and sha256 metadata are
// all as recorded passes on a HEAD; otherwise, or with full, it is
// downloaded and hashed. It returns one Check per source and one for the
// clip; an error only when S3 cannot be asked.
func Verify(ctx context.Context, m *Manifest, api S3API, bucket, dir string, full bool) ([]Check, error) {
	if bucket == "" {
		bucket = m.Bucket
	}
	var out []Check
	for _, src := range m.Sources {
		c, err := verifySource(ctx, api, cmp.Or(src.Bucket, bucket), src, full)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return append(out, verifyClip(m, dir)), nil
}

func verifySource(ctx context.Context, api S3API, bucket string, src ManifestSource, full bool) (Check, error) {
	c := Check{What: "s3://" + bucket + "/" + src.Key, How: "head"}
	head, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(src.Key)})
	var nf *types.NotFound
	if errors.As(err, &nf) {
		c.Problem = "not in the bucket"
		if !src.Uploaded {
			c.Problem += " (it was not uploaded yet when the clip was made)"
		}
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("head %s: %w", c.What, err)
	}
	size, etag := aws.ToInt64(head.ContentLength), strings.Trim(aws.ToString(head.ETag), `"`)
	if size != src.Bytes {
		c.Problem = fmt.Sprintf("%d bytes, the manifest says %d", size, src.Bytes)
		return c, nil
	}
	if !full && src.ETag != "" && etag == src.ETag && head.Metadata[uploader.MetaSHA256] == src.SHA256 {
		c.OK = true
		return c, nil
	}
	// The metadata is not enough (changed, missing, or not trusted): hash
	// the bytes.
	c.How = "download"
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(src.Key)})
	if err != nil {
		return c, fmt.Errorf("get %s: %w", c.What, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		return c, fmt.Errorf("read %s: %w", c.What, err)
	}
	switch sum := hex.EncodeToString(h.Sum(nil)); {
	case n != src.Bytes:
		c.Problem = fmt.Sprintf("%d bytes, the manifest says %d", n, src.Bytes)
	case sum != src.SHA256:
		c.Problem = fmt.Sprintf("sha256 %s, the manifest says %s", sum, src.SHA256)
	default:
		c.OK = true
	}
	return c, nil
}

func verifyClip(m *Manifest, dir string) Check {
	path := filepath.Join(dir, filepath.Base(m.Export.File))
	c := Check{What: path, How: "file"}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		c.Skipped, c.Problem = true, "not beside the manifest: not checked"
		return c
	}
	if err != nil {
		c.Problem = err.Error()
		return c
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	switch sum := hex.EncodeToString(h.Sum(nil)); {
	case err != nil:
		c.Problem = err.Error()
	case n != m.Export.Bytes:
		c.Problem = fmt.Sprintf("%d bytes, the manifest says %d", n, m.Export.Bytes)
	case sum != m.Export.SHA256:
		c.Problem = fmt.Sprintf("sha256 %s, the manifest says %s", sum, m.Export.SHA256)
	default:
		c.OK = true
	}
	return c
}
