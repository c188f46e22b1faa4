package media

import (
	"slices"
	"testing"
)

func TestMinimal(t *testing.T) {
	daemon := map[string]string{
		"PATH": "/opt/ffmpeg/bin:/usr/bin", "HOME": "/var/cctv", "LIBVA_DRIVER_NAME": "iHD",
		"CCTVD_API_TOKEN": "t0ken-s3cret-abc", "AWS_SECRET_ACCESS_KEY": "aws-secret", "TZ": "Europe/Paris",
		"LANG": "fr_FR.UTF-8", "CREDENTIALS_DIRECTORY": "/run/credentials/cctvd.service",
	}
	got := minimal(func(k string) string { return daemon[k] })
	want := []string{"PATH=/opt/ffmpeg/bin:/usr/bin", "HOME=/var/cctv", "LIBVA_DRIVER_NAME=iHD", "TZ=UTC", "LANG=C", "LC_ALL=C"}
	if !slices.Equal(got, want) {
		t.Errorf("env = %q, want %q", got, want)
	}
	if got := minimal(func(string) string { return "" }); !slices.Equal(got, []string{"PATH=" + DefaultPath, "TZ=UTC", "LANG=C", "LC_ALL=C"}) {
		t.Errorf("empty daemon env: %q", got)
	}
}
