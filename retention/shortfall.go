package retention

import (
	"fmt"
	"strings"

	"github.com/cctvd/cctvd/catalog"
)

// kept is what a decision could not delete.
type kept struct {
	quarantine  int64 // quarantined files whose deletion failed
	failed      int64 // segments whose unlink failed
	notUploaded bool  // segments S3 lacks, kept because uploaded ones could not go
}

// toReach is how far a decision of cause still is from its target: bytes
// over the size target, or short of the free-space target (5% above the
// floor).
func toReach(cause string, used, target, free, floor int64) int64 {
	if cause == catalog.CauseFreeSpace {
		return floor + floor/20 - free
	}
	return used - target
}

// shortfall says in plain words why a decision stayed still bytes from
// its target: what savePath holds that retention may not delete, the
// quarantine first.
func shortfall(cause string, still int64, h held, u Usage, qLimit int64, k kept) string {
	var what string
	if cause == catalog.CauseFreeSpace {
		what = fmt.Sprintf("the filesystem has %s free, %s short of its floor and nothing more can be deleted", size(int64(u.Free)), size(still))
	} else {
		what = fmt.Sprintf("savePath holds %s, %s over the cleanup target, and nothing more can be deleted", size(h.total()), size(still))
	}
	var why []string
	if h.quarantine > 0 {
		q := fmt.Sprintf("the quarantine holds %s of damaged files (its bound is %s", size(h.quarantine), size(qLimit))
		if qLimit == 0 {
			q = fmt.Sprintf("the quarantine holds %s of damaged files (it has no bound: storageConfig.quarantinePercent is 0", size(h.quarantine))
		}
		if k.quarantine > 0 {
			q += fmt.Sprintf("; %s of them could not be deleted", size(k.quarantine))
		}
		why = append(why, q+")")
	}
	if h.staging > 0 {
		why = append(why, fmt.Sprintf("%s are segments being written", size(h.staging)))
	}
	if k.failed > 0 {
		why = append(why, fmt.Sprintf("%s of recordings could not be deleted (see the log)", size(k.failed)))
	}
	if k.notUploaded {
		why = append(why, "recordings S3 does not have yet are kept while uploaded ones cannot be deleted")
	}
	if cause == catalog.CauseFreeSpace {
		if others := int64(u.Total) - int64(u.Free) - h.total(); others > 0 {
			why = append(why, fmt.Sprintf("%s of the filesystem are files cctvd does not own", size(others)))
		}
	}
	if len(why) == 0 {
		return what
	}
	return what + ": " + strings.Join(why, "; ")
}

// size writes bytes in decimal units, as clearWhenFilePathReachGB counts.
func size(n int64) string {
	switch a := max(n, -n); {
	case a >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}
