package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/segment"
)

// catalogHelperEnv, set to a catalog's path, makes the test binary open
// that catalog as the daemon does (read-write, migrated) and record a
// segment in it instead of running the tests: a test runs it as another
// user to check that user can still use the catalog.
const catalogHelperEnv = "CCTVD_TEST_OPEN_CATALOG"

// openCatalogHelper is the test binary as catalogHelperEnv asks: exit
// status 0 when the catalog opened and took a write.
func openCatalogHelper(path, savePath string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cat, err := catalog.Open(ctx, path, savePath, nil)
	if err == nil {
		start := time.Now().UTC() // a new path each time
		name := fmt.Sprintf("helper-%d.mp4", start.UnixNano())
		_, err = cat.Add(ctx, segment.Segment{Camera: "door", FeedID: "f1", Start: start, End: start.Add(time.Second),
			Path: filepath.Join(savePath, name), Size: 1}, name)
		if cerr := cat.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "uid %d: %v\n", os.Getuid(), err)
		return 1
	}
	return 0
}
