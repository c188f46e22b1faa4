package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Bounds of api.maxExportRange.
const (
	MinExportRange = time.Minute
	MaxExportRange = 31 * 24 * time.Hour
)

func (a API) validateExport(v *validator) {
	if r := a.MaxExportRange.Std(); r < MinExportRange || r > MaxExportRange {
		v.add("api.maxExportRange", "must be %s to %s (got %s)", MinExportRange, MaxExportRange, r)
	}
}

// LoadS3 loads only what reaching the bucket needs, for commands that may
// run far from the box (`cctvd export --from-s3`, `cctvd verify`): the
// file at path (none when path is "") is decoded as strictly as Load does
// (an unknown key is an error), override (command-line flags, if not nil)
// changes it, then it is normalised and only s3Config and awsCredentials
// are validated. A file holding just those two blocks loads; so does the
// box's own config.
func LoadS3(path string, getenv func(string) string, override func(*Config)) (*Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := decodeStrict(data, cfg); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if override != nil {
		override(cfg)
	}
	cfg.normalize(getenv)
	if err := cfg.ValidateS3(); err != nil {
		if path != "" {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		return nil, err
	}
	return cfg, nil
}

// ValidateS3 is Validate restricted to s3Config and awsCredentials.
func (c *Config) ValidateS3() error {
	err := c.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var keep []FieldError
	for _, p := range ve.Problems {
		if strings.HasPrefix(p.Path, "s3Config.") || strings.HasPrefix(p.Path, "awsCredentials.") {
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	return &ValidationError{Problems: keep}
}
