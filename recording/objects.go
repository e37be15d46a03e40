package recording

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/objstore"
)

// Objects is the S3 bucket holding encrypted recording chunks. It only ever
// sees ciphertext. It is safe for concurrent use.
type Objects struct {
	core   *minio.Core
	bucket string
	region string
}

// NewObjects connects to the bucket described by c (no network I/O yet).
func NewObjects(c config.S3) (*Objects, error) {
	if c.Endpoint == "" || c.Bucket == "" {
		return nil, errors.New("recording: s3.endpoint and s3.bucket are required")
	}
	opts, err := objstore.Options(c) // TLS settings: one place for every S3 client
	if err != nil {
		return nil, fmt.Errorf("recording: s3 client: %w", err)
	}
	// Our own retry loop (upload.go) handles outages; fail fast here.
	opts.MaxRetries = 1
	core, err := minio.NewCore(c.Endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("recording: s3 client: %w", err)
	}
	return &Objects{core: core, bucket: c.Bucket, region: c.Region}, nil
}

// EnsureBucket creates the bucket when it does not exist.
func (o *Objects) EnsureBucket(ctx context.Context) error {
	ok, err := o.core.BucketExists(ctx, o.bucket)
	if err != nil {
		return fmt.Errorf("recording: bucket: %w", err)
	}
	if ok {
		return nil
	}
	if err := o.core.MakeBucket(ctx, o.bucket, minio.MakeBucketOptions{Region: o.region}); err != nil {
		if resp := minio.ToErrorResponse(err); resp.Code == "BucketAlreadyOwnedByYou" {
			return nil
		}
		return fmt.Errorf("recording: make bucket: %w", err)
	}
	return nil
}

// Bucket returns the bucket name.
func (o *Objects) Bucket() string { return o.bucket }

// newObjectKey returns an opaque key: nothing in it names the visit, the
// participant or a date.
func newObjectKey() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("recording: object key: %w", err)
	}
	return "rec/" + hex.EncodeToString(b[:]), nil
}

const objectContentType = "application/octet-stream"

func (o *Objects) newUpload(ctx context.Context, key string) (string, error) {
	return o.core.NewMultipartUpload(ctx, o.bucket, key, minio.PutObjectOptions{ContentType: objectContentType})
}

func (o *Objects) putPart(ctx context.Context, key, uploadID string, n int, data []byte) (minio.CompletePart, error) {
	p, err := o.core.PutObjectPart(ctx, o.bucket, key, uploadID, n, bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{})
	if err != nil {
		return minio.CompletePart{}, err
	}
	return minio.CompletePart{PartNumber: n, ETag: p.ETag}, nil
}

func (o *Objects) complete(ctx context.Context, key, uploadID string, parts []minio.CompletePart) error {
	_, err := o.core.CompleteMultipartUpload(ctx, o.bucket, key, uploadID, parts, minio.PutObjectOptions{ContentType: objectContentType})
	return err
}

func (o *Objects) abort(ctx context.Context, key, uploadID string) error {
	return o.core.AbortMultipartUpload(ctx, o.bucket, key, uploadID)
}

// Size returns an object's size.
func (o *Objects) Size(ctx context.Context, key string) (int64, error) {
	info, err := o.core.StatObject(ctx, o.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return 0, fmt.Errorf("recording: stat object: %w", err)
	}
	return info.Size, nil
}

// Remove deletes an object; a missing object is not an error.
func (o *Objects) Remove(ctx context.Context, key string) error {
	err := o.core.RemoveObject(ctx, o.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != "NoSuchKey" {
		return fmt.Errorf("recording: remove object: %w", err)
	}
	return nil
}

// Get reads a whole object (tests and tools).
func (o *Objects) Get(ctx context.Context, key string) ([]byte, error) {
	rc, _, _, err := o.core.GetObject(ctx, o.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("recording: get object: %w", err)
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// ReaderAt returns an io.ReaderAt over an object: each ReadAt is one ranged
// GET. ctx bounds every read.
func (o *Objects) ReaderAt(ctx context.Context, key string) io.ReaderAt {
	return objectReaderAt{ctx: ctx, o: o, key: key}
}

type objectReaderAt struct {
	ctx context.Context // a request's context, held for its one ServeContent call
	o   *Objects
	key string
}

func (r objectReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+int64(len(p))-1); err != nil {
		return 0, err
	}
	rc, _, _, err := r.o.core.GetObject(r.ctx, r.o.bucket, r.key, opts)
	if err != nil {
		return 0, fmt.Errorf("recording: ranged get: %w", err)
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// minioPart is a completed part of a multipart upload.
type minioPart = minio.CompletePart
