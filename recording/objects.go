package recording

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

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
	rc, _, hdr, err := r.o.core.GetObject(r.ctx, r.o.bucket, r.key, opts)
	if s3Code(err) == "InvalidRange" {
		return 0, io.EOF // the object ends before off: shorter than its row says
	}
	if err != nil {
		return 0, fmt.Errorf("recording: ranged get: %w", err)
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		// Fewer bytes than asked: io.EOF only if the object really ends
		// there (which a reader takes for truncation, an integrity
		// failure); a transfer cut short is a storage error.
		if total, ok := contentRangeTotal(hdr.Get("Content-Range")); ok && total < off+int64(len(p)) {
			return n, io.EOF
		}
		return n, fmt.Errorf("recording: ranged get: %d of %d bytes: %w", n, len(p), io.ErrUnexpectedEOF)
	}
	return n, err
}

// contentRangeTotal reads the object size from "bytes a-b/total".
func contentRangeTotal(v string) (int64, bool) {
	i := strings.LastIndexByte(v, '/')
	if i < 0 {
		return 0, false
	}
	total, err := strconv.ParseInt(v[i+1:], 10, 64)
	return total, err == nil && total >= 0
}

// uploadedParts lists the parts of an open multipart upload, in part order.
func (o *Objects) uploadedParts(ctx context.Context, key, uploadID string) ([]minio.ObjectPart, error) {
	var out []minio.ObjectPart
	marker := 0
	for {
		res, err := o.core.ListObjectParts(ctx, o.bucket, key, uploadID, marker, 1000)
		if err != nil {
			return nil, err
		}
		out = append(out, res.ObjectParts...)
		if !res.IsTruncated || res.NextPartNumberMarker <= marker {
			return out, nil
		}
		marker = res.NextPartNumberMarker
	}
}

// uploadsOf lists the open multipart uploads of one object key.
func (o *Objects) uploadsOf(ctx context.Context, key string) ([]minio.ObjectMultipartInfo, error) {
	all, err := o.listUploads(ctx, key)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, u := range all {
		if u.Key == key {
			out = append(out, u)
		}
	}
	return out, nil
}

// listUploads lists the bucket's open multipart uploads whose key starts
// with prefix. MinIO lists by exact object name when a prefix is given, and
// with an empty prefix only the uploads begun since the server started
// (it expires older ones itself: MINIO_API_STALE_UPLOADS_EXPIRY, 24 h);
// AWS S3 lists them all.
func (o *Objects) listUploads(ctx context.Context, prefix string) ([]minio.ObjectMultipartInfo, error) {
	var out []minio.ObjectMultipartInfo
	keyMarker, idMarker := "", ""
	for range 1000 { // at most a million uploads a pass
		res, err := o.core.ListMultipartUploads(ctx, o.bucket, prefix, keyMarker, idMarker, "", 1000)
		if err != nil {
			return nil, fmt.Errorf("recording: list multipart uploads: %w", err)
		}
		out = append(out, res.Uploads...)
		if !res.IsTruncated || (res.NextKeyMarker == keyMarker && res.NextUploadIDMarker == idMarker) {
			break
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
	return out, nil
}

// open returns a reader over a whole object.
func (o *Objects) open(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, _, _, err := o.core.GetObject(ctx, o.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("recording: get object: %w", err)
	}
	return rc, nil
}

// minioPart is a completed part of a multipart upload.
type minioPart = minio.CompletePart
