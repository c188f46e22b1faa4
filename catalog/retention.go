package catalog

import (
	"context"
	"fmt"
	"strings"
)

// Causes of deletion by retention, in Record.DeleteCause.
const (
	CauseSizeLimit = "retention-size-limit" // savePath reached clearWhenFilePathReachGB
	CauseFreeSpace = "retention-free-space" // the filesystem ran below its free-space floor
)

// Totals are the files present on disk, as the catalog knows them.
type Totals struct {
	Bytes int64
	Count int64
}

const (
	qTotals = `SELECT present_bytes, present_count FROM totals WHERE id = 1`
)

// Totals reads the running totals (one row, kept by triggers).
func (c *Catalog) Totals(ctx context.Context) (Totals, error) {
	var t Totals
	err := c.db.QueryRowContext(ctx, qTotals).Scan(&t.Bytes, &t.Count)
	if err != nil {
		return t, c.check(fmt.Errorf("catalog: totals: %w", err))
	}
	return t, nil
}

// RetentionCandidates returns up to n segments present on disk in the
// order retention deletes them: uploaded ones oldest first, then, only once
// no uploaded one is left, the others oldest first; in each, the main
// feeds' footage before the sub feeds' (feeds.go), so a camera's sub feed
// reaches further back than its main. Every walk uses an index, so the
// cost does not grow with the number of rows.
func (c *Catalog) RetentionCandidates(ctx context.Context, n int) ([]Record, error) {
	return c.retentionFeeds(ctx, n)
}

// MarkDeleted records, in one transaction, that these files are about to
// be deleted, and why. Retention marks first and unlinks after: a crash in
// between leaves rows marked deleted whose files exist, which Reconcile
// turns back to present.
func (c *Catalog) MarkDeleted(ctx context.Context, ids []int64, cause string) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{toNS(c.now()), cause}
	for _, id := range ids {
		args = append(args, id)
	}
	return c.exec(ctx, "mark deleted", `UPDATE segments SET local = 'deleted', deleted_ns = ?, delete_cause = ?
		WHERE id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, args...)
}

// MarkPresent undoes MarkDeleted for a file that could not be deleted.
func (c *Catalog) MarkPresent(ctx context.Context, id int64) error {
	return c.exec(ctx, "mark present", `UPDATE segments SET local = 'present', deleted_ns = 0, delete_cause = '' WHERE id = ?`, id)
}
