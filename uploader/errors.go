package uploader

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// classify turns a failed attempt into a message for people and says
// whether S3 itself is at fault (unreachable, refusing the credentials, no
// bucket, server errors), which pauses the whole queue, rather than this
// one segment.
func classify(err error, bucket string) (msg string, service bool) {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch code := api.ErrorCode(); code {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "ExpiredToken",
			"InvalidToken", "AuthorizationHeaderMalformed", "InvalidClientTokenId":
			return fmt.Sprintf("S3 refused the credentials (%s): %s", code, api.ErrorMessage()), true
		case "NoSuchBucket":
			return fmt.Sprintf("bucket %q does not exist", bucket), true
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "XMinioServerNotInitialized":
			return fmt.Sprintf("S3 is unavailable (%s): %s", code, api.ErrorMessage()), true
		}
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) && resp.HTTPStatusCode() >= 500 {
		return fmt.Sprintf("S3 server error (HTTP %d): %v", resp.HTTPStatusCode(), err), true
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return "S3 unreachable: " + op.Error(), true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "S3 unreachable: " + dns.Error(), true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "S3 timed out: " + err.Error(), true
	}
	if errors.Is(err, errConflictsTaken) {
		return err.Error(), false
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "local file: " + pe.Error(), false
	}
	return err.Error(), false
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled)
}

// isPreconditionFailed: S3 refused a conditional write, the key is taken.
func isPreconditionFailed(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "PreconditionFailed" {
		return true
	}
	var resp *awshttp.ResponseError
	return errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusPreconditionFailed
}

// isNotImplemented: the server does not implement something the request
// asked for (for a conditional write: If-None-Match).
func isNotImplemented(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "NotImplemented" {
		return true
	}
	var resp *awshttp.ResponseError
	return errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusNotImplemented
}
