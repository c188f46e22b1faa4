package uploader

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ClientConfig says how to reach S3.
type ClientConfig struct {
	// Region of the bucket. Empty: from the SDK's default chain.
	Region string
	// Endpoint of an S3-compatible server; empty for AWS.
	Endpoint string
	// PathStyle addresses buckets as endpoint/bucket/key.
	PathStyle bool
	// AccessKeyID and SecretAccessKey are static credentials; empty for
	// the SDK's default chain (environment, shared files, instance role).
	AccessKeyID, SecretAccessKey string
	// MaxAttempts of one request, retries included. Default 10.
	MaxAttempts int
	// Limiter, if set, caps what every connection of the client writes
	// (the uploader's client; exports and the rebuild have their own).
	Limiter *Limiter
}

// NewClient builds the S3 client: the SDK's standard retryer with
// MaxAttempts 10 and no client-side retry rate limit (with the default
// token bucket, a server restart of a few seconds exhausts the retry budget
// and fails uploads), and checksums only where an operation requires them
// (with the newer default, MinIO over HTTPS rejects bodies over 16 MiB with
// "chunk too big", and some S3-compatible servers store the aws-chunked
// framing inside the object).
func NewClient(ctx context.Context, cc ClientConfig) (*s3.Client, error) {
	if cc.MaxAttempts == 0 {
		cc.MaxAttempts = 10
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cc.MaxAttempts
				o.RateLimiter = ratelimit.None
			})
		}),
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		// A buildable client, so that AWS_CA_BUNDLE still applies.
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().
			WithDialerOptions(func(d *net.Dialer) { d.Timeout = 5 * time.Second }).
			WithTransportOptions(func(tr *http.Transport) {
				tr.TLSHandshakeTimeout = 10 * time.Second
				tr.ResponseHeaderTimeout = 2 * time.Minute // after the body is sent: the server assembling a part
				tr.MaxIdleConnsPerHost = 16
				if cc.Limiter != nil {
					tr.DialContext = cc.Limiter.Dial(tr.DialContext)
				}
			})),
	}
	if cc.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cc.Region))
	}
	if cc.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cc.AccessKeyID, cc.SecretAccessKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cc.Endpoint != "" {
			o.BaseEndpoint = aws.String(cc.Endpoint)
		}
		o.UsePathStyle = cc.PathStyle
	}), nil
}
