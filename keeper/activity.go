package keeper

import (
	"context"
	"time"

	"github.com/cctvd/cctvd/catalog"
)

// Activity is catalog.Activity.
func (k *Keeper) Activity(ctx context.Context, camera string, from, to time.Time) ([]catalog.ActivityInterval, error) {
	return with(k, func(c *catalog.Catalog) ([]catalog.ActivityInterval, error) { return c.Activity(ctx, camera, from, to) })
}

// ActivityUpTo is catalog.ActivityUpTo.
func (k *Keeper) ActivityUpTo(ctx context.Context, camera string, from, to time.Time, limit int) ([]catalog.ActivityInterval, error) {
	return with(k, func(c *catalog.Catalog) ([]catalog.ActivityInterval, error) {
		return c.ActivityUpTo(ctx, camera, from, to, limit)
	})
}
