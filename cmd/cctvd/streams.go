package main

import (
	"context"
	"errors"

	"github.com/cctvd/cctvd/catalog"
	"github.com/cctvd/cctvd/supervisor"
)

// streamStore keeps the streams discovery finds in the catalog, for the
// supervisor.
type streamStore struct{ cat *catalog.Catalog }

func (s streamStore) Get(ctx context.Context, camera string) (supervisor.Stream, bool, error) {
	st, err := s.cat.Stream(ctx, camera)
	if errors.Is(err, catalog.ErrNotFound) {
		return supervisor.Stream{}, false, nil
	}
	if err != nil {
		return supervisor.Stream{}, false, err
	}
	return supervisor.Stream{Key: st.Key, URI: st.URI, Source: st.Source, FoundAt: st.FoundAt}, true, nil
}

func (s streamStore) Put(ctx context.Context, camera string, st supervisor.Stream) error {
	return s.cat.PutStream(ctx, catalog.Stream{Camera: camera, Key: st.Key, URI: st.URI, Source: st.Source, FoundAt: st.FoundAt})
}
