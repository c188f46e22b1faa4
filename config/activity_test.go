package config

import (
	"slices"
	"testing"
)

func TestActivitySettings(t *testing.T) {
	cfg, problems := parseEdited(t)
	if problems != nil || !cfg.Cameras[0].ActivityEnabled() || cfg.StorageConfig.KeepActiveDays != 0 {
		t.Fatalf("the design note's config: activity %v, keepActiveDays %d (%v); want on and 0", cfg.Cameras[0].ActivityEnabled(), cfg.StorageConfig.KeepActiveDays, problems)
	}
	cfg, problems = parseEdited(t, camera(1, "activity", false), storage("keepActiveDays", 90))
	if problems != nil || !cfg.Cameras[0].ActivityEnabled() || cfg.Cameras[1].ActivityEnabled() || cfg.StorageConfig.KeepActiveDays != 90 {
		t.Errorf("activity false on camera2, keepActiveDays 90: %v %v %d (%v)", cfg.Cameras[0].ActivityEnabled(), cfg.Cameras[1].ActivityEnabled(), cfg.StorageConfig.KeepActiveDays, problems)
	}
	for _, tt := range []struct {
		e    edit
		want string
	}{
		{storage("keepActiveDays", -1), `storageConfig.keepActiveDays: must be 0 (off) or a number of days up to 36500 (got -1)`},
		{storage("keepActiveDays", MaxCatalogRetentionDays+1), `storageConfig.keepActiveDays: must be 0 (off) or a number of days up to 36500 (got 36501)`},
		{camera(0, "activity", "yes"), `cameras[0].activity: must be true or false, not a string`},
	} {
		if _, got := parseEdited(t, tt.e); !slices.Contains(got, tt.want) {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
