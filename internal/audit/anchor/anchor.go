// Package anchor writes small objects once to an S3 bucket under Object Lock
// in compliance mode, and reads back every version of them. Until an object
// version's retention ends, nobody — not the writer, not the bucket's root
// user — can delete or alter that version; writing the same key again only
// adds a newer version beside it.
package anchor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"
)

// MaxBody bounds what Versions reads from one version: a longer object is
// cut to MaxBody+1 bytes, so the reader can tell it is too long.
const MaxBody = 64 << 10

// ErrNotLocked is returned by Ensure for a bucket without Object Lock.
var ErrNotLocked = errors.New("anchor: bucket has no object lock")

// Params configures a Bucket.
type Params struct {
	Client    *minio.Client
	Bucket    string
	Retention time.Duration    // how long each written version stays locked; required by Put
	Now       func() time.Time // clock for retention dates; nil: time.Now
}

// Bucket is a write-once object store. It holds no resources of its own;
// the minio client is the caller's.
type Bucket struct {
	client    *minio.Client
	name      string
	retention time.Duration
	now       func() time.Time
}

// New returns a Bucket for p.
func New(p Params) (*Bucket, error) {
	if p.Client == nil || p.Bucket == "" {
		return nil, errors.New("anchor: client and bucket are required")
	}
	if p.Retention < 0 {
		return nil, errors.New("anchor: negative retention")
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Bucket{client: p.Client, name: p.Bucket, retention: p.Retention, now: p.Now}, nil
}

// Name returns the bucket's name.
func (b *Bucket) Name() string { return b.name }

// Ensure creates the bucket with Object Lock (which also turns versioning
// on) when it does not exist, and returns ErrNotLocked for an existing bucket
// without it. Object Lock can only be chosen when a bucket is created.
func (b *Bucket) Ensure(ctx context.Context) error {
	ok, err := b.client.BucketExists(ctx, b.name)
	if err != nil {
		return fmt.Errorf("anchor: bucket %s: %w", b.name, err)
	}
	if !ok {
		err := b.client.MakeBucket(ctx, b.name, minio.MakeBucketOptions{ObjectLocking: true})
		if err != nil {
			var er minio.ErrorResponse
			if !errors.As(err, &er) || (er.Code != "BucketAlreadyOwnedByYou" && er.Code != "BucketAlreadyExists") {
				return fmt.Errorf("anchor: create bucket %s: %w", b.name, err)
			}
		}
	}
	enabled, _, _, _, err := b.client.GetObjectLockConfig(ctx, b.name)
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.Code == "ObjectLockConfigurationNotFoundError" {
			return fmt.Errorf("%w: %s", ErrNotLocked, b.name)
		}
		return fmt.Errorf("anchor: bucket %s: object lock: %w", b.name, err)
	}
	if enabled != "Enabled" {
		return fmt.Errorf("%w: %s", ErrNotLocked, b.name)
	}
	return nil
}

// Put writes body as a new version of key, locked in compliance mode for the
// retention period, and returns the version's ID.
func (b *Bucket) Put(ctx context.Context, key string, body []byte) (string, error) {
	if b.retention <= 0 {
		return "", fmt.Errorf("anchor: put %s: no retention period configured", key)
	}
	info, err := b.client.PutObject(ctx, b.name, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{
		ContentType:     "application/json",
		Mode:            minio.Compliance,
		RetainUntilDate: b.now().Add(b.retention).UTC(),
		SendContentMd5:  true, // S3 requires an integrity header with Object Lock
	})
	if err != nil {
		return "", fmt.Errorf("anchor: put %s: %w", key, err)
	}
	if info.VersionID == "" {
		return "", fmt.Errorf("anchor: put %s: no version ID (is versioning on?)", key)
	}
	return info.VersionID, nil
}

// Version is one stored version of an object.
type Version struct {
	Key          string
	VersionID    string
	LastModified time.Time
	IsLatest     bool
	DeleteMarker bool   // a delete marker hides the key but removes no version
	Body         []byte // nil for a delete marker; at most MaxBody+1 bytes
}

// Versions calls fn for every version (delete markers included) of every
// object under prefix. Bodies are read one at a time.
func (b *Bucket) Versions(ctx context.Context, prefix string, fn func(Version) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine if we return early
	for obj := range b.client.ListObjects(ctx, b.name, minio.ListObjectsOptions{
		Prefix: prefix, Recursive: true, WithVersions: true,
	}) {
		if obj.Err != nil {
			return fmt.Errorf("anchor: list %s: %w", b.name, obj.Err)
		}
		v := Version{Key: obj.Key, VersionID: obj.VersionID, LastModified: obj.LastModified,
			IsLatest: obj.IsLatest, DeleteMarker: obj.IsDeleteMarker}
		if !v.DeleteMarker {
			body, err := b.get(ctx, obj.Key, obj.VersionID)
			if err != nil {
				return err
			}
			v.Body = body
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// After calls fn for the current version of every object under prefix whose
// key sorts after startAfter, in key order (S3 lists keys in UTF-8 binary
// order), and returns the last key seen (startAfter when there was none).
// With keys that sort by sequence number, it reads only what is new since
// the last call: one LIST request, and one GET per new object that skip (if
// not nil) does not refuse; fn is not called for skipped keys.
func (b *Bucket) After(ctx context.Context, prefix, startAfter string, skip func(key string) bool, fn func(Version) error) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	last := startAfter
	for obj := range b.client.ListObjects(ctx, b.name, minio.ListObjectsOptions{
		Prefix: prefix, Recursive: true, StartAfter: startAfter,
	}) {
		if obj.Err != nil {
			return last, fmt.Errorf("anchor: list %s: %w", b.name, obj.Err)
		}
		if skip != nil && skip(obj.Key) {
			last = obj.Key
			continue
		}
		body, err := b.get(ctx, obj.Key, "")
		if err != nil {
			return last, err
		}
		if err := fn(Version{Key: obj.Key, VersionID: obj.VersionID, LastModified: obj.LastModified,
			IsLatest: true, Body: body}); err != nil {
			return last, err
		}
		last = obj.Key
	}
	return last, nil
}

// Get reads one version of key (the current one when version is empty), at
// most MaxBody+1 bytes.
func (b *Bucket) Get(ctx context.Context, key, version string) ([]byte, error) {
	return b.get(ctx, key, version)
}

func (b *Bucket) get(ctx context.Context, key, version string) ([]byte, error) {
	o, err := b.client.GetObject(ctx, b.name, key, minio.GetObjectOptions{VersionID: version})
	if err != nil {
		return nil, fmt.Errorf("anchor: get %s: %w", key, err)
	}
	defer o.Close()
	body, err := io.ReadAll(io.LimitReader(o, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("anchor: get %s: %w", key, err)
	}
	return body, nil
}
