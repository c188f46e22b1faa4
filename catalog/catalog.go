// Package catalog is the crash-safe record of every segment: where it is,
// what it holds (size, checksums), whether S3 has it and whether the local
// file still exists. It is the upload queue, retention's deletion order and
// the recordings API's source.
//
// It is an SQLite database (modernc.org/sqlite, pure Go, so the binary stays
// static) in WAL mode, in the state folder, with synchronous=FULL: every
// commit is on the disk when it returns, so a row that justifies deleting a
// file (uploaded, deleted) survives a power cut that the unlink survives.
// It is a cache: the disk stays the truth for what exists locally and S3
// for what is uploaded. Reconcile, run at start-up and hourly, adds files
// the catalog lacks and marks rows whose file vanished, walking the disk
// one day folder at a time, so its memory does not grow with the number of
// rows. A catalog SQLite finds corrupt is moved aside (MoveAside, never
// deleted) and rebuilt; a write that fails on a full filesystem releases a
// reserve file kept beside the database and is tried once more; rows of
// footage no longer on the local disk are pruned after an age (Prune), so
// the catalog stays bounded for years.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/cctvd/cctvd/segment"
)

// UploadState says where a segment is on its way to S3.
type UploadState string

// The upload states.
const (
	Pending   UploadState = "pending"   // waiting for (another) attempt
	Uploading UploadState = "uploading" // an attempt is under way
	Uploaded  UploadState = "uploaded"  // S3 has it, verified
)

// LocalState says whether the local file exists.
type LocalState string

// The local states.
const (
	Present LocalState = "present"
	Deleted LocalState = "deleted" // by clearAfterUpload or retention (DeleteCause says which)
	Missing LocalState = "missing" // gone without cctvd deleting it
	// Quarantined: the file is damaged (empty, shorter than it closed, no
	// decodable video) and was moved to savePath/.quarantine/<camera>/,
	// where Path now points; it is never uploaded.
	Quarantined LocalState = "quarantined"
)

// Causes of local deletion, in Record.DeleteCause.
const (
	CauseClearAfterUpload = "clear-after-upload"
	CauseVanished         = "vanished"
	CauseCorrupt          = "corrupt" // quarantined by the uploader; LastError says why
)

// Record is one segment's row.
type Record struct {
	ID       int64
	Camera   string
	FeedID   string
	Start    time.Time
	End      time.Time
	Path     string // absolute
	Bytes    int64
	SHA256   string
	MD5      string
	Salvaged bool

	Upload      UploadState
	Key         string
	ETag        string
	UploadID    string
	Attempts    int
	NextAttempt time.Time
	LastError   string
	UploadedAt  time.Time
	// VerifyRemote asks the uploader to check S3 before uploading: the
	// object may be there already (a row rebuilt from disk, or an attempt
	// cut short by a crash).
	VerifyRemote bool
	// ConflictKey, when set, is the key this segment belongs under, where
	// S3 already held different content: that object was left as it was
	// and the segment went up under Key instead.
	ConflictKey string
	// Verified says how S3's copy was checked against the local file
	// (uploader.Verified*); empty for rows uploaded by cctvd v0.1.0.
	Verified string
	// MustDecode asks the uploader to decode the file (ffprobe) before it
	// goes up: cctvd did not see it close and fsync it (a row rebuilt from
	// the disk, a salvaged segment, a row left pending by cctvd v0.1.0).
	MustDecode bool
	// DecodeCheck is where that decode is (Decode*): waiting for the
	// uploader's decode lane, passed, skipped (the checker itself failed
	// DecodeTries times: the file went up with the cheap structural check
	// only) or failed (quarantined). Empty when no decode was asked.
	DecodeCheck string
	// DecodeTries counts the decode checks that could not run (ffprobe
	// killed, not done within its budget, not started).
	DecodeTries int
	// Bucket is the bucket S3's copy is in (Key holds s3Path): set when it
	// goes up, so that a later change of s3Bucket still finds it. Empty for
	// rows not uploaded, and for rows uploaded before cctvd kept it, until
	// the daemon opens the catalog with its bucket (Options.Bucket).
	Bucket string
	// CRC64 is the file's CRC-64/NVME (base64, as S3 gives it), taken with
	// SHA256 in one read (package filesum): as the segment closed, or by the
	// uploader. Empty when the pair is not known to hold for the file (rows
	// made otherwise, a file that changed): the uploader then reads the
	// file whole before it sends it.
	CRC64 string
	// CRC64Blocks are the file's CRC-64/NVME by 1 MiB block (package
	// filesum's EncodeBlocks), taken in the same read; empty where CRC64 is.
	CRC64Blocks []byte
	// Sub says the segment is of its camera's sub feed (feeds.go).
	Sub bool

	Local       LocalState
	DeletedAt   time.Time
	DeleteCause string
	CreatedAt   time.Time
}

// Name is the segment's file name.
func (r Record) Name() string { return filepath.Base(r.Path) }

// Where a row's decode check is, in Record.DecodeCheck.
const (
	DecodeWaiting = "waiting" // handed to the decode lane; not due for upload until it has a verdict
	DecodePassed  = "passed"  // ffprobe decoded it
	DecodeSkipped = "skipped" // the checker could not run, DecodeTries times: it goes up with the cheap check only
	DecodeFailed  = "failed"  // ffprobe ran and decodes no video in it: quarantined
)

// ErrNotFound is returned for an id the catalog does not hold.
var ErrNotFound = errors.New("no such recording")

// ErrPathTaken is returned by Add for a path a row already holds: a new
// file is never recorded as an old row (which may say uploaded, or
// deleted). The segmenter asks PathTaken before it names a file, so this
// should not happen.
var ErrPathTaken = errors.New("path already recorded")

// Catalog is the segment database. It is safe for concurrent use.
type Catalog struct {
	db       *sql.DB
	path     string
	savePath string
	now      func() time.Time
	reserve  *Reserve
	log      zerolog.Logger

	corruptOnce sync.Once
	onCorrupt   func(error)
	bucket      string   // Options.Bucket
	subFeeds    sync.Map // camera → its sub feed's id, from MarkSubFeeds (feeds.go)
}

// Options say how to open a catalog.
type Options struct {
	// Path is the database file.
	Path string
	// SavePath is the recordings folder; rows hold paths relative to it.
	SavePath string
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// Reserve, if set, is released when a write fails because the
	// filesystem is full, and the write is tried once more.
	Reserve *Reserve
	// OnCorrupt, if set, is called once, from the goroutine that found it,
	// when a query finds the database corrupt: the catalog should be
	// closed, moved aside and rebuilt.
	OnCorrupt func(error)
	// Log receives the catalog's own warnings (a released reserve).
	Log zerolog.Logger
	// Bucket and Prefix are s3Bucket and s3Path as configured. Rows
	// uploaded before the catalog kept each row's bucket get Bucket the
	// first time the catalog is opened with one (see fillBuckets), and
	// MarkUploaded records uploads in Bucket.
	Bucket, Prefix string
}

// Open opens (creating if needed) the catalog at path for recordings under
// savePath.
func Open(ctx context.Context, path, savePath string, now func() time.Time) (*Catalog, error) {
	return OpenWith(ctx, Options{Path: path, SavePath: savePath, Now: now})
}

// OpenWith opens (creating if needed) the catalog, migrates it and reads
// each table once, so that a damaged or foreign file is found here: the
// error then satisfies IsCorrupt (or wraps ErrNewerSchema for a catalog of
// a newer cctvd) and the caller can MoveAside the file and open a new one.
func OpenWith(ctx context.Context, o Options) (*Catalog, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o755); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if err := checkHeader(o.Path); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", o.Path, err)
	}
	// A 2 MB page cache per connection (SQLite's default is 8 MB): the
	// queue and retention read through indexes, and an NVR box is small.
	// synchronous(FULL): in WAL mode, NORMAL may roll back the last commits
	// at a power cut, and some of them (uploaded, deleted) precede an
	// unlink. FULL syncs the WAL at each commit (BenchmarkAdd: the cost).
	dsn := o.Path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=cache_size(-2000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("catalog: open %s: %w", o.Path, err)
	}
	db.SetMaxOpenConns(3)
	c := &Catalog{db: db, path: o.Path, savePath: o.SavePath, now: o.Now, reserve: o.Reserve, log: o.Log, bucket: o.Bucket}
	err = c.write(func() error { return c.migrate(ctx) })
	if err == nil && o.Bucket != "" {
		err = c.write(func() error { return c.fillBuckets(ctx, o.Bucket, o.Prefix) })
	}
	if err == nil {
		err = c.firstRead(ctx)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog %s: %w", o.Path, err)
	}
	c.onCorrupt = o.OnCorrupt // from here on: found while running
	return c, nil
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// checkHeader finds a file that is not a database before SQLite opens it:
// SQLite would reset the -wal beside it, which is kept for inspection.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	if n == 0 && (errors.Is(err, io.EOF)) {
		return nil // empty: SQLite makes it a database
	}
	if string(head[:n]) != sqliteHeader {
		return fmt.Errorf("%w: not an SQLite database", ErrCorrupt)
	}
	return nil
}

// firstRead reads each table once: a file that is not a database, or whose
// schema or first pages are damaged, fails here rather than later.
func (c *Catalog) firstRead(ctx context.Context) error {
	for _, q := range []string{
		`SELECT COUNT(*) FROM totals`,
		`SELECT COALESCE(MAX(id), 0) FROM segments`,
		`SELECT COUNT(*) FROM (SELECT path FROM segments ORDER BY path DESC LIMIT 1)`,
		`SELECT COALESCE(MAX(id), 0) FROM gaps`,
		`SELECT COUNT(*) FROM cameras`,
		`SELECT COUNT(*) FROM state`,
		`SELECT COUNT(*) FROM locations`,
		`SELECT COUNT(*) FROM multipart`,
		`SELECT COUNT(*) FROM multipart_parts`,
	} {
		var n int64
		if err := c.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("first read: %w", err)
		}
	}
	return nil
}

// Close closes the database.
func (c *Catalog) Close() error { return c.db.Close() }

// Path is the database file.
func (c *Catalog) Path() string { return c.path }

// check passes err through, and reports a corrupt database once.
func (c *Catalog) check(err error) error {
	if err != nil && IsCorrupt(err) && c.onCorrupt != nil {
		c.corruptOnce.Do(func() { c.onCorrupt(err) })
	}
	return err
}

// write runs a write; when it fails because the filesystem is full, it
// releases the reserve and runs it once more.
func (c *Catalog) write(fn func() error) error {
	err := fn()
	if IsFull(err) && c.reserve != nil && c.reserve.Release() {
		c.log.Warn().Err(err).Str("reserve", c.reserve.Path()).Int64("bytes", c.reserve.Size()).
			Msg("the catalog's filesystem is full: released the reserve so the catalog can record the deletions that free space")
		err = fn()
	}
	return c.check(err)
}

var migrations = []string{
	`CREATE TABLE segments (
		id              INTEGER PRIMARY KEY,
		camera          TEXT    NOT NULL,
		feed_id         TEXT    NOT NULL,
		start_ns        INTEGER NOT NULL,
		end_ns          INTEGER NOT NULL,
		path            TEXT    NOT NULL UNIQUE, -- relative to savePath
		bytes           INTEGER NOT NULL,
		sha256          TEXT    NOT NULL DEFAULT '',
		md5             TEXT    NOT NULL DEFAULT '',
		salvaged        INTEGER NOT NULL DEFAULT 0,
		upload          TEXT    NOT NULL DEFAULT 'pending',
		s3_key          TEXT    NOT NULL,
		etag            TEXT    NOT NULL DEFAULT '',
		upload_id       TEXT    NOT NULL DEFAULT '',
		attempts        INTEGER NOT NULL DEFAULT 0,
		next_attempt_ns INTEGER NOT NULL DEFAULT 0,
		last_error      TEXT    NOT NULL DEFAULT '',
		uploaded_ns     INTEGER NOT NULL DEFAULT 0,
		verify_remote   INTEGER NOT NULL DEFAULT 0,
		local           TEXT    NOT NULL DEFAULT 'present',
		deleted_ns      INTEGER NOT NULL DEFAULT 0,
		delete_cause    TEXT    NOT NULL DEFAULT '',
		created_ns      INTEGER NOT NULL
	);
	CREATE INDEX segments_queue ON segments(upload, local, start_ns);
	CREATE INDEX segments_camera ON segments(camera, start_ns);`,

	// Running totals of the files present, kept by triggers in the same
	// transaction as each change, so that retention reads one row instead
	// of summing the table.
	`CREATE TABLE totals (
		id            INTEGER PRIMARY KEY CHECK (id = 1),
		present_bytes INTEGER NOT NULL,
		present_count INTEGER NOT NULL
	);
	INSERT INTO totals SELECT 1, COALESCE(SUM(bytes), 0), COUNT(*) FROM segments WHERE local = 'present';
	CREATE TRIGGER totals_insert AFTER INSERT ON segments WHEN NEW.local = 'present' BEGIN
		UPDATE totals SET present_bytes = present_bytes + NEW.bytes, present_count = present_count + 1;
	END;
	CREATE TRIGGER totals_delete AFTER DELETE ON segments WHEN OLD.local = 'present' BEGIN
		UPDATE totals SET present_bytes = present_bytes - OLD.bytes, present_count = present_count - 1;
	END;
	CREATE TRIGGER totals_update AFTER UPDATE OF local, bytes ON segments BEGIN
		UPDATE totals SET
			present_bytes = present_bytes
				- (CASE WHEN OLD.local = 'present' THEN OLD.bytes ELSE 0 END)
				+ (CASE WHEN NEW.local = 'present' THEN NEW.bytes ELSE 0 END),
			present_count = present_count
				- (CASE WHEN OLD.local = 'present' THEN 1 ELSE 0 END)
				+ (CASE WHEN NEW.local = 'present' THEN 1 ELSE 0 END);
	END;
	CREATE INDEX segments_local ON segments(local, start_ns);`,

	// What operators asked of each camera, kept across restarts.
	`CREATE TABLE cameras (
		camera     TEXT PRIMARY KEY,
		stopped    INTEGER NOT NULL,
		changed_ns INTEGER NOT NULL
	);`,

	// The gap log: intervals without footage while a camera should have
	// been recording. end_ns 0: the gap is still open.
	`CREATE TABLE gaps (
		id       INTEGER PRIMARY KEY,
		camera   TEXT    NOT NULL,
		start_ns INTEGER NOT NULL,
		end_ns   INTEGER NOT NULL DEFAULT 0,
		cause    TEXT    NOT NULL,
		detail   TEXT    NOT NULL DEFAULT ''
	);
	CREATE INDEX gaps_camera ON gaps(camera, start_ns);`,

	// Streams found by discovery for cameras without a path (no
	// credentials in uri): used again after a restart.
	`CREATE TABLE streams (
		camera   TEXT PRIMARY KEY,
		key      TEXT    NOT NULL,
		uri      TEXT    NOT NULL,
		source   TEXT    NOT NULL,
		found_ns INTEGER NOT NULL
	);`,

	// Uploads never overwrite different content (conflict_key: the key
	// whose object was kept, s3_key then names where the segment went) and
	// say how they were verified. must_decode: the uploader decodes the file
	// before it goes up, as cctvd did not see it close: set by triggers for
	// every row added with verify_remote (rebuilt from the disk) or salvaged,
	// and every row that comes back present, whoever writes them; and for
	// the rows v0.1.0 left waiting (it did not fsync segments). Rows of
	// v0.1.0 keep their values otherwise; the new columns start empty.
	`ALTER TABLE segments ADD COLUMN conflict_key TEXT NOT NULL DEFAULT '';
	ALTER TABLE segments ADD COLUMN verified TEXT NOT NULL DEFAULT '';
	ALTER TABLE segments ADD COLUMN must_decode INTEGER NOT NULL DEFAULT 0;
	UPDATE segments SET must_decode = 1 WHERE upload != 'uploaded' AND local = 'present';
	CREATE TRIGGER must_decode_insert AFTER INSERT ON segments WHEN NEW.verify_remote = 1 OR NEW.salvaged = 1 BEGIN
		UPDATE segments SET must_decode = 1 WHERE id = NEW.id;
	END;
	CREATE TRIGGER must_decode_returned AFTER UPDATE OF local ON segments
		WHEN OLD.local != 'present' AND NEW.local = 'present' AND NEW.upload != 'uploaded' BEGIN
		UPDATE segments SET must_decode = 1 WHERE id = NEW.id;
	END;`,

	// Every start-up query and every pass over the catalog reads through an
	// index, so start-up time does not grow with the number of rows: the
	// present files by path (reconcile walks them day folder by day
	// folder), multipart uploads under way (a partial index: almost no row
	// has one), and gaps by end (open gaps, pruning).
	`CREATE INDEX segments_present_path ON segments(path) WHERE local = 'present';
	CREATE INDEX segments_upload_id ON segments(upload_id) WHERE upload_id != '';
	CREATE INDEX gaps_end ON gaps(end_ns);
	CREATE INDEX cameras_stopped ON cameras(camera) WHERE stopped = 1;`,

	// Small facts about the catalog itself, such as the progress of a
	// rebuild from S3.
	`CREATE TABLE state (
		key   TEXT PRIMARY KEY,
		value TEXT NOT NULL
	) WITHOUT ROWID;`,

	// The decode check runs in a lane of its own: decode_check says where
	// it is (waiting, passed, skipped, failed), decode_tries how often its
	// checker could not run. The queue's partial index leaves the rows
	// waiting for a decode out, the lane's holds only them. A row whose file
	// comes back starts afresh.
	`ALTER TABLE segments ADD COLUMN decode_check TEXT NOT NULL DEFAULT '';
	ALTER TABLE segments ADD COLUMN decode_tries INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX segments_due ON segments(start_ns, id) WHERE upload = 'pending' AND local = 'present' AND decode_check != 'waiting';
	CREATE INDEX segments_decoding ON segments(decode_tries, start_ns, id) WHERE decode_check = 'waiting';
	CREATE TRIGGER decode_returned AFTER UPDATE OF local ON segments
		WHEN OLD.local != 'present' AND NEW.local = 'present' AND NEW.upload != 'uploaded' BEGIN
		UPDATE segments SET decode_check = '', decode_tries = 0 WHERE id = NEW.id;
	END;`,

	// Each row keeps the bucket its object went to (s3_key holds s3Path),
	// and locations every (bucket, prefix) the catalog has uploaded to,
	// pruned rows included, so that exports find footage after s3Bucket or
	// s3Path changed. Rows uploaded before are filled with the bucket
	// configured the first time the daemon opens the catalog (fillBuckets;
	// the state row says it is due).
	`ALTER TABLE segments ADD COLUMN bucket TEXT NOT NULL DEFAULT '';
	CREATE TABLE locations (
		bucket   TEXT    NOT NULL,
		prefix   TEXT    NOT NULL,
		first_ns INTEGER NOT NULL,
		PRIMARY KEY (bucket, prefix)
	) WITHOUT ROWID;
	INSERT OR IGNORE INTO state (key, value) VALUES ('fill-buckets', '');`,

	// Multipart uploads resume where they stopped: each upload under way
	// keeps what the file was when it began and every part S3 confirmed
	// (a row's upload_id still names it). segments_start finds what the
	// cameras recorded over a span (the upload plan's production rate).
	// No row changes.
	`CREATE TABLE multipart (
		segment_id INTEGER PRIMARY KEY,
		upload_id  TEXT    NOT NULL,
		s3_key     TEXT    NOT NULL,
		bucket     TEXT    NOT NULL,
		part_size  INTEGER NOT NULL,
		file_size  INTEGER NOT NULL,
		mtime_ns   INTEGER NOT NULL,
		sha256     TEXT    NOT NULL,
		crc64      TEXT    NOT NULL,
		part_crcs  TEXT    NOT NULL,
		etag       TEXT    NOT NULL,
		created_ns INTEGER NOT NULL
	);
	CREATE TABLE multipart_parts (
		segment_id INTEGER NOT NULL,
		part       INTEGER NOT NULL,
		size       INTEGER NOT NULL,
		crc64      TEXT    NOT NULL,
		etag       TEXT    NOT NULL,
		PRIMARY KEY (segment_id, part)
	) WITHOUT ROWID;
	CREATE INDEX segments_start ON segments(start_ns);`,
	// Activity (activity.go): each analysed segment's score and heatmap,
	// and its intervals, keyed by the segment's path (stable across a
	// rebuild, which writes them before the row), forgotten with the row.
	migrateActivity,

	// A segment's CRC-64/NVME, whole and by 1 MiB block, taken with its
	// sha256 as it closes, so that its upload reads it once (package
	// filesum). Rows kept from before start without them.
	`ALTER TABLE segments ADD COLUMN crc64 TEXT NOT NULL DEFAULT '';
	ALTER TABLE segments ADD COLUMN crc64_blocks BLOB NOT NULL DEFAULT x'';`,

	migrationFeeds, // feeds.go

	migrationProbes, // probes.go
}

func (c *Catalog) migrate(ctx context.Context) error {
	var version int
	if err := c.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("%w: schema version %d, this cctvd knows %d", ErrNewerSchema, version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := c.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, i+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

const columns = `id, camera, feed_id, start_ns, end_ns, path, bytes, sha256, md5, salvaged,
	upload, s3_key, etag, upload_id, attempts, next_attempt_ns, last_error, uploaded_ns, verify_remote,
	local, deleted_ns, delete_cause, created_ns, conflict_key, verified, must_decode,
	decode_check, decode_tries, bucket, crc64, crc64_blocks, sub`

type scanner interface{ Scan(...any) error }

func (c *Catalog) scan(s scanner) (Record, error) {
	var r Record
	var start, end, next, uploaded, deleted, created int64
	var rel string
	err := s.Scan(&r.ID, &r.Camera, &r.FeedID, &start, &end, &rel, &r.Bytes, &r.SHA256, &r.MD5, &r.Salvaged,
		&r.Upload, &r.Key, &r.ETag, &r.UploadID, &r.Attempts, &next, &r.LastError, &uploaded, &r.VerifyRemote,
		&r.Local, &deleted, &r.DeleteCause, &created, &r.ConflictKey, &r.Verified, &r.MustDecode,
		&r.DecodeCheck, &r.DecodeTries, &r.Bucket, &r.CRC64, &r.CRC64Blocks, &r.Sub)
	if err != nil {
		return r, err
	}
	r.Path = filepath.Join(c.savePath, rel)
	r.Start, r.End, r.CreatedAt = fromNS(start), fromNS(end), fromNS(created)
	r.NextAttempt, r.UploadedAt, r.DeletedAt = fromNS(next), fromNS(uploaded), fromNS(deleted)
	return r, nil
}

func fromNS(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func toNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func (c *Catalog) rel(path string) (string, error) {
	rel, err := filepath.Rel(c.savePath, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("catalog: %s is not under %s", path, c.savePath)
	}
	return filepath.ToSlash(rel), nil
}

// Add records a closed segment, to be uploaded under key. A path a row
// already holds is ErrPathTaken, and changes nothing, unless that row is
// Reconcile's record of this very file (present, same size and times, to
// be checked against S3), added between the file's rename and this call:
// then that row is returned.
func (c *Catalog) Add(ctx context.Context, seg segment.Segment, key string) (Record, error) {
	rel, err := c.rel(seg.Path)
	if err != nil {
		return Record{}, err
	}
	var res sql.Result
	err = c.write(func() error {
		var err error
		res, err = c.db.ExecContext(ctx, `INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, sha256, crc64, crc64_blocks, salvaged, s3_key, created_ns, sub)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO NOTHING`,
			seg.Camera, seg.FeedID, toNS(seg.Start), toNS(seg.End), rel, seg.Size, seg.SHA256, seg.CRC64, blocksOf(seg), seg.Salvaged, key, toNS(c.now()), seg.Sub)
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("catalog: add %s: %w", rel, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Record{}, fmt.Errorf("catalog: add %s: %w", rel, err)
	} else if n == 1 {
		id, err := res.LastInsertId()
		if err != nil {
			return Record{}, fmt.Errorf("catalog: add %s: %w", rel, err)
		}
		return c.Get(ctx, id)
	}
	old, err := c.one(ctx, `WHERE path = ?`, rel)
	if err != nil {
		return Record{}, err
	}
	// The path was free on disk when the segmenter renamed the file there
	// (it never replaces one): a row saying present, not uploaded, to be
	// checked, with this size, was made from this file.
	if old.Local == Present && old.Upload != Uploaded && old.VerifyRemote && old.Bytes == seg.Size {
		return old, nil
	}
	return Record{}, fmt.Errorf("catalog: add %s: %w (row %d: %s, %s)", rel, ErrPathTaken, old.ID, old.Upload, old.Local)
}

// PathTaken says whether a row, in any state, holds the path rel (relative
// to savePath, slash-separated). It reads the path's unique index.
func (c *Catalog) PathTaken(ctx context.Context, rel string) (bool, error) {
	var one int
	err := c.db.QueryRowContext(ctx, `SELECT 1 FROM segments WHERE path = ?`, rel).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("catalog: %w", err)
	}
	return true, nil
}

// AddMany records many closed segments in one transaction, as Add does
// one by one.
func (c *Catalog) AddMany(ctx context.Context, segs []segment.Segment, keyFor func(rel string) string) error {
	return c.write(func() error { return c.addMany(ctx, segs, keyFor) })
}

func (c *Catalog) addMany(ctx context.Context, segs []segment.Segment, keyFor func(rel string) string) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog: add: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO segments (camera, feed_id, start_ns, end_ns, path, bytes, sha256, crc64, crc64_blocks, salvaged, s3_key, created_ns, sub)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("catalog: add: %w", err)
	}
	defer stmt.Close()
	now := toNS(c.now())
	for _, seg := range segs {
		rel, err := c.rel(seg.Path)
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, seg.Camera, seg.FeedID, toNS(seg.Start), toNS(seg.End), rel, seg.Size, seg.SHA256, seg.CRC64, blocksOf(seg),
			seg.Salvaged, keyFor(rel), now, seg.Sub); err != nil {
			return fmt.Errorf("catalog: add %s: %w", rel, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog: add: %w", err)
	}
	return nil
}

// Get returns the row with this id.
func (c *Catalog) Get(ctx context.Context, id int64) (Record, error) {
	return c.one(ctx, `WHERE id = ?`, id)
}

// ByPath returns the row of the file at path.
func (c *Catalog) ByPath(ctx context.Context, path string) (Record, error) {
	rel, err := c.rel(path)
	if err != nil {
		return Record{}, err
	}
	return c.one(ctx, `WHERE path = ?`, rel)
}

func (c *Catalog) one(ctx context.Context, where string, args ...any) (Record, error) {
	r, err := c.scan(c.db.QueryRowContext(ctx, `SELECT `+columns+` FROM segments `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, c.check(fmt.Errorf("catalog: %w", err))
	}
	return r, nil
}

func (c *Catalog) many(ctx context.Context, query string, args ...any) ([]Record, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+columns+` FROM segments `+query, args...)
	if err != nil {
		return nil, c.check(fmt.Errorf("catalog: %w", err))
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := c.scan(rows)
		if err != nil {
			return nil, c.check(fmt.Errorf("catalog: %w", err))
		}
		out = append(out, r)
	}
	return out, c.check(rows.Err())
}

func (c *Catalog) exec(ctx context.Context, what, query string, args ...any) error {
	err := c.write(func() error {
		_, err := c.db.ExecContext(ctx, query, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("catalog: %s: %w", what, err)
	}
	return nil
}

// blocksOf is seg's CRC64Blocks as the column keeps them (never NULL).
func blocksOf(seg segment.Segment) []byte {
	if seg.CRC64Blocks == nil || seg.CRC64 == "" {
		return []byte{}
	}
	return seg.CRC64Blocks
}
