package uploader

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"path"
	"strings"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cctvd/cctvd/segment"
)

// httpError is the SDK's error for an answer with this HTTP status.
func httpError(status int) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: errors.New("answer")}}
}

func apiError(code string) error {
	return fmt.Errorf("put: %w", &smithy.GenericAPIError{Code: code, Message: "the server's words"})
}

// TestClassifyFailures: which failures are S3's (the whole queue pauses)
// and which the segment's, and what people are told.
func TestClassifyFailures(t *testing.T) {
	for _, tt := range []struct {
		err     error
		msg     string // the message's beginning
		service bool
	}{
		{apiError("InvalidAccessKeyId"), "S3 refused the credentials (InvalidAccessKeyId): the server's words", true},
		{apiError("SignatureDoesNotMatch"), "S3 refused the credentials (SignatureDoesNotMatch)", true},
		{apiError("AccessDenied"), "S3 refused the credentials (AccessDenied)", true},
		{apiError("ExpiredToken"), "S3 refused the credentials (ExpiredToken)", true},
		{apiError("NoSuchBucket"), `bucket "cctv" does not exist`, true},
		{apiError("SlowDown"), "S3 is unavailable (SlowDown): the server's words", true},
		{apiError("XMinioServerNotInitialized"), "S3 is unavailable (XMinioServerNotInitialized)", true},
		{httpError(503), "S3 server error (HTTP 503)", true},
		{httpError(500), "S3 server error (HTTP 500)", true},
		{httpError(499), "", false},
		{httpError(404), "", false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, "S3 unreachable: dial tcp: connection refused", true},
		{&net.DNSError{Err: "no such host", Name: "s3.invalid"}, "S3 unreachable: lookup s3.invalid: no such host", true},
		{fmt.Errorf("put: %w", context.DeadlineExceeded), "S3 timed out: put: context deadline exceeded", true},
		{fmt.Errorf("upload k: %w", errConflictsTaken), "upload k: S3 holds different content under the key and under every conflict key", false},
		{&fs.PathError{Op: "open", Path: "/rec/x.mp4", Err: fs.ErrNotExist}, "local file: open /rec/x.mp4: file does not exist", false},
		{apiError("EntityTooLarge"), "put: api error EntityTooLarge", false},
		{errors.New("something else"), "something else", false},
	} {
		msg, service := classify(tt.err, "cctv")
		if service != tt.service || !strings.HasPrefix(msg, tt.msg) {
			t.Errorf("%v: %q, S3's fault %v; want %q..., %v", tt.err, msg, service, tt.msg, tt.service)
		}
	}
}

func TestClassifyConditionalWrites(t *testing.T) {
	for _, tt := range []struct {
		err                  error
		precondition, notImp bool
	}{
		{apiError("PreconditionFailed"), true, false},
		{httpError(http.StatusPreconditionFailed), true, false},
		{apiError("NotImplemented"), false, true},
		{httpError(http.StatusNotImplemented), false, true},
		{httpError(http.StatusConflict), false, false},
		{apiError("NoSuchKey"), false, false},
		{errors.New("plain"), false, false},
	} {
		if got := isPreconditionFailed(tt.err); got != tt.precondition {
			t.Errorf("isPreconditionFailed(%v) = %v", tt.err, got)
		}
		if got := isNotImplemented(tt.err); got != tt.notImp {
			t.Errorf("isNotImplemented(%v) = %v", tt.err, got)
		}
	}
	if !isCanceled(fmt.Errorf("x: %w", context.Canceled)) || isCanceled(context.DeadlineExceeded) {
		t.Error("isCanceled")
	}
}

// TestClassifyRetryDelays: the first pause is the initial one, each
// failure doubles it up to the maximum, and the jitter spreads pauses
// over ±20%, no further.
func TestClassifyRetryDelays(t *testing.T) {
	for _, tt := range []struct {
		attempts int
		want     time.Duration
	}{{0, time.Second}, {1, time.Second}, {3, 4 * time.Second}, {31, 5 * time.Minute}, {1000, 5 * time.Minute}} {
		lo, hi := time.Duration(1<<62), time.Duration(0)
		for range 2000 {
			d := retryDelay(tt.attempts, time.Second, 5*time.Minute)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < tt.want*8/10 || hi > tt.want*12/10 || lo > tt.want*85/100 || hi < tt.want*115/100 {
			t.Errorf("retryDelay(%d) from %v to %v over 2000 draws; want %v ±20%%, spread over it", tt.attempts, lo, hi, tt.want)
		}
	}
}

// TestConflictKeys: a segment's conflict keys are five, each named for its
// content by another 12 hex digits of its sha256, and read back as the
// segment's own by segment.Parse.
func TestConflictKeys(t *testing.T) {
	sha := fmt.Sprintf("%x", sha256.Sum256([]byte("a segment")))
	key := "rec/cam1/2026-01-06/cam1_xx_20260106T120000Z_20260106T120010Z.mp4"
	keys := ConflictKeys(key, sha)
	if len(keys) != conflictNames || keys[0] != ConflictKey(key, sha) {
		t.Fatalf("ConflictKeys = %v", keys)
	}
	seen := map[string]bool{}
	for i, k := range keys {
		info, err := segment.Parse(path.Base(k))
		if err != nil || info.Camera != "cam1" || info.Conflict != sha[12*i:12*i+12] || seen[k] {
			t.Errorf("conflict key %d %s: %+v, %v", i, k, info, err)
		}
		seen[k] = true
	}
}
