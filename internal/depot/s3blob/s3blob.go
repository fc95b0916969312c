// Package s3blob keeps stored transfers' ciphertext in an S3-compatible
// bucket (AWS S3, MinIO, SeaweedFS, R2, …) through minio-go:
//
//	<prefix><id>/data       the data object, uploaded as a multipart upload
//	<prefix><id>/manifest   the sealed manifest
//
// Part n of the depot is S3 part n+1. Parts stream from the caller's reader
// into the request body (with a known length), and reads stream from the
// response body: nothing holds a part in memory.
package s3blob

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrydev/ferry/internal/depot"
	"github.com/ferrydev/ferry/internal/stored"
)

const (
	dataName     = "data"
	manifestName = "manifest"
	// maxParts is S3's limit on the parts of a multipart upload: with
	// depot.PartSize, data objects up to about 78 GiB.
	maxParts = 10000
	// maxManifest is the largest manifest object (§6.3): "FSM1", salt,
	// nonce and tag around at most stored.MaxManifest bytes.
	maxManifest = stored.MaxManifest + 4 + stored.SaltLen + 12 + stored.Overhead
)

// Config says where the bucket is and how to sign in. Its String and
// LogValue never show the keys.
type Config struct {
	Endpoint string // host[:port], e.g. "s3.eu-central-1.amazonaws.com" or "127.0.0.1:8333"
	Bucket   string
	Region   string // "" lets the client find out (AWS) or use us-east-1
	Prefix   string // put before every key, e.g. "ferry/"
	TLS      bool   // https (true) or plain http to the endpoint

	// Keys given directly (tests, or flags). When AccessKeyID is empty the
	// usual chain is used: the environment (AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, or MinIO's MINIO_ROOT_USER…),
	// then the shared credentials file (CredentialsFile, else
	// AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials; profile Profile or
	// AWS_PROFILE), then IAM (an instance or container role).
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	CredentialsFile string
	Profile         string
}

// credentialSource says where keys come from, without them.
func (c Config) credentialSource() string {
	if c.AccessKeyID != "" {
		return "given"
	}
	if c.CredentialsFile != "" {
		return "environment, file " + c.CredentialsFile + ", IAM"
	}
	return "environment, shared file, IAM"
}

// String describes c without its keys.
func (c Config) String() string {
	scheme := "http"
	if c.TLS {
		scheme = "https"
	}
	return fmt.Sprintf("s3 %s://%s bucket=%s region=%s prefix=%q credentials=%s",
		scheme, c.Endpoint, c.Bucket, c.Region, c.Prefix, c.credentialSource())
}

// GoString keeps %#v from printing the keys too.
func (c Config) GoString() string { return "s3blob.Config{" + c.String() + "}" }

// LogValue logs c without its keys.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", c.Endpoint),
		slog.String("bucket", c.Bucket),
		slog.String("region", c.Region),
		slog.String("prefix", c.Prefix),
		slog.Bool("tls", c.TLS),
		slog.String("credentials", c.credentialSource()),
	)
}

func (c Config) credentials() *credentials.Credentials {
	if c.AccessKeyID != "" {
		return credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.EnvMinio{},
		&credentials.FileAWSCredentials{Filename: c.CredentialsFile, Profile: c.Profile},
		&credentials.IAM{},
	})
}

// Blobs is a depot.Blobs in an S3 bucket.
type Blobs struct {
	core   minio.Core
	bucket string
	prefix string
}

var _ depot.Blobs = (*Blobs)(nil)

// New returns Blobs for cfg; it does not contact the endpoint (Check does).
func New(cfg Config) (*Blobs, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3blob: endpoint and bucket are needed")
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  cfg.credentials(),
		Secure: cfg.TLS,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3blob: %w", err)
	}
	return &Blobs{core: minio.Core{Client: c}, bucket: cfg.Bucket, prefix: cfg.Prefix}, nil
}

// Check asks the endpoint whether the bucket is there, so that a server
// with a wrong configuration says so when it starts.
func (b *Blobs) Check(ctx context.Context) error {
	ok, err := b.core.BucketExists(ctx, b.bucket)
	if err != nil {
		return wrap("check", err)
	}
	if !ok {
		return fmt.Errorf("s3blob: bucket %q does not exist", b.bucket)
	}
	return nil
}

func (b *Blobs) key(id, name string) string { return b.prefix + id + "/" + name }

// fullCodes are S3 error codes that mean the bucket or the storage behind
// it is full, or a quota reached: AWS (EntityTooLarge: an object or part
// over the limit), Ceph RGW and others (QuotaExceeded), MinIO
// (XMinioStorageFull, XMinioAdminBucketQuotaExceeded), and generic ones.
var fullCodes = map[string]bool{
	"EntityTooLarge":                 true,
	"QuotaExceeded":                  true,
	"XMinioStorageFull":              true,
	"XMinioAdminBucketQuotaExceeded": true,
	"InsufficientStorage":            true,
	"StorageFull":                    true,
}

// wrap gives an S3 error the depot's meaning, keeping the S3 code in the text.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch {
		case fullCodes[er.Code], er.StatusCode == http.StatusInsufficientStorage:
			return fmt.Errorf("s3blob: %s: %w: %w", op, depot.ErrFull, err)
		case er.Code == "NoSuchUpload", er.Code == "NoSuchKey":
			return fmt.Errorf("s3blob: %s: %w (%s)", op, depot.ErrNotFound, er.Code)
		case er.Code == "InvalidRange":
			return fmt.Errorf("s3blob: %s: %w", op, depot.ErrRange)
		case er.Code == "InvalidPart", er.Code == "InvalidPartOrder", er.Code == "EntityTooSmall":
			return fmt.Errorf("s3blob: %s: %w: %w", op, depot.ErrPart, err)
		}
	}
	return fmt.Errorf("s3blob: %s: %w", op, err)
}

// Begin starts a multipart upload of the data object; the handle is S3's
// upload id.
func (b *Blobs) Begin(ctx context.Context, id string) (string, error) {
	if err := depot.CheckID(id); err != nil {
		return "", err
	}
	up, err := b.core.NewMultipartUpload(ctx, b.bucket, b.key(id, dataName),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return "", wrap("begin", err)
	}
	return up, nil
}

// WritePart uploads part n as S3 part n+1, streaming size bytes from r.
func (b *Blobs) WritePart(ctx context.Context, id, upload string, n int, r io.Reader, size int64) error {
	if err := depot.CheckID(id); err != nil {
		return err
	}
	if n < 0 || n >= maxParts || size <= 0 || size > depot.PartSize {
		return fmt.Errorf("s3blob: part %d of %d bytes: %w", n, size, depot.ErrPart)
	}
	if upload == "" {
		return fmt.Errorf("s3blob: write part: %w", depot.ErrNotFound)
	}
	// The LimitReader hides r's other methods: the client neither closes r
	// nor seeks it back to retry with some other bytes.
	_, err := b.core.PutObjectPart(ctx, b.bucket, b.key(id, dataName), upload, n+1,
		io.LimitReader(r, size), size, minio.PutObjectPartOptions{})
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.Code == "AccessDenied" {
			// SeaweedFS turns a bucket over its quota read-only and then
			// answers writes with AccessDenied; the upload itself was
			// begun with the same keys, so here it is the quota.
			return fmt.Errorf("s3blob: write part: %w: %w", depot.ErrFull, err)
		}
		return wrap("write part", err)
	}
	return nil
}

// Complete checks that S3 holds parts 1…parts, all but the last of
// PartSize bytes, and completes the upload with them.
//
// A part written twice is listed twice by some servers (SeaweedFS keeps
// every upload of a part, with a one-second LastModified); they take every
// ETag of a part number in the completion and use the newest part that
// matches one. Servers that replace a part (AWS, MinIO) list it once.
func (b *Blobs) Complete(ctx context.Context, id, upload string, parts int) error {
	if err := depot.CheckID(id); err != nil {
		return err
	}
	if parts < 1 || parts > maxParts {
		return fmt.Errorf("s3blob: complete %d parts: %w", parts, depot.ErrPart)
	}
	if upload == "" {
		return fmt.Errorf("s3blob: complete: %w", depot.ErrNotFound)
	}
	key := b.key(id, dataName)
	listed := make([][]minio.ObjectPart, parts)
	marker := 0
	for {
		res, err := b.core.ListObjectParts(ctx, b.bucket, key, upload, marker, 1000)
		if err != nil {
			return wrap("complete", err)
		}
		for _, p := range res.ObjectParts {
			if i := p.PartNumber - 1; i >= 0 && i < parts { // parts after the last are dropped
				listed[i] = append(listed[i], p)
			}
		}
		if !res.IsTruncated || res.NextPartNumberMarker <= marker {
			break
		}
		marker = res.NextPartNumberMarker
	}
	var done []minio.CompletePart
	for i, ps := range listed {
		if len(ps) == 0 {
			return fmt.Errorf("s3blob: complete: part %d of %d missing: %w", i, parts, depot.ErrPart)
		}
		// The newest (the larger if LastModified ties) is the one checked.
		newest := slices.MaxFunc(ps, func(a, b minio.ObjectPart) int {
			return cmp.Or(a.LastModified.Compare(b.LastModified), cmp.Compare(a.Size, b.Size))
		})
		if newest.Size <= 0 || newest.Size > depot.PartSize || i < parts-1 && newest.Size != depot.PartSize {
			return fmt.Errorf("s3blob: complete: part %d has %d bytes: %w", i, newest.Size, depot.ErrPart)
		}
		etags := make(map[string]bool)
		for _, p := range ps {
			if !etags[p.ETag] {
				etags[p.ETag] = true
				done = append(done, minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag})
			}
		}
	}
	_, err := b.core.CompleteMultipartUpload(ctx, b.bucket, key, upload, done,
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	return wrap("complete", err)
}

// PutManifest stores the manifest in one PUT (S3 replaces objects atomically).
func (b *Blobs) PutManifest(ctx context.Context, id string, m []byte) error {
	if err := depot.CheckID(id); err != nil {
		return err
	}
	if len(m) > maxManifest {
		return fmt.Errorf("s3blob: manifest of %d bytes: %w", len(m), depot.ErrPart)
	}
	_, err := b.core.PutObject(ctx, b.bucket, b.key(id, manifestName), bytes.NewReader(m), int64(len(m)), "", "",
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	return wrap("put manifest", err)
}

// Manifest returns the manifest.
func (b *Blobs) Manifest(ctx context.Context, id string) ([]byte, error) {
	if err := depot.CheckID(id); err != nil {
		return nil, err
	}
	body, _, _, err := b.core.GetObject(ctx, b.bucket, b.key(id, manifestName), minio.GetObjectOptions{})
	if err != nil {
		return nil, wrap("manifest", err)
	}
	defer body.Close()
	m, err := io.ReadAll(io.LimitReader(body, maxManifest+1))
	if err != nil {
		return nil, wrap("manifest", err)
	}
	if len(m) > maxManifest {
		return nil, fmt.Errorf("s3blob: manifest over %d bytes", maxManifest)
	}
	return m, nil
}

// Read returns bytes [off, off+n) of the data object from one ranged GET.
func (b *Blobs) Read(ctx context.Context, id string, off, n int64) (io.ReadCloser, error) {
	if err := depot.CheckID(id); err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("s3blob: read [%d, +%d): %w", off, n, depot.ErrRange)
	}
	key := b.key(id, dataName)
	if n == 0 {
		// HTTP has no empty range: ask for the size.
		info, err := b.core.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{})
		if err != nil {
			return nil, wrap("read", err)
		}
		if off > info.Size {
			return nil, fmt.Errorf("s3blob: read [%d, +0) of %d bytes: %w", off, info.Size, depot.ErrRange)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+n-1); err != nil {
		return nil, fmt.Errorf("s3blob: read: %w", err)
	}
	body, info, _, err := b.core.GetObject(ctx, b.bucket, key, opts)
	if err != nil {
		return nil, wrap("read", err)
	}
	// A range past the end comes back cut short, not as an error.
	if info.Size != n {
		body.Close()
		return nil, fmt.Errorf("s3blob: read [%d, +%d): %d bytes there: %w", off, n, info.Size, depot.ErrRange)
	}
	return body, nil
}

// Delete aborts every upload of id still in progress and removes its objects.
func (b *Blobs) Delete(ctx context.Context, id string) error {
	if err := depot.CheckID(id); err != nil {
		return err
	}
	dir := b.prefix + id + "/"
	for u := range b.core.ListIncompleteUploads(ctx, b.bucket, dir, true) {
		if u.Err != nil {
			return wrap("delete", u.Err)
		}
		if err := b.core.AbortMultipartUpload(ctx, b.bucket, u.Key, u.UploadID); err != nil {
			if err := wrap("delete", err); !errors.Is(err, depot.ErrNotFound) {
				return err
			}
		}
	}
	for o := range b.core.Client.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true}) {
		if o.Err != nil {
			return wrap("delete", o.Err)
		}
		if err := b.core.RemoveObject(ctx, b.bucket, o.Key, minio.RemoveObjectOptions{}); err != nil {
			return wrap("delete", err)
		}
	}
	return nil
}

// idOf returns the id of a key or common prefix under the prefix, or "".
func (b *Blobs) idOf(key string) string {
	rest, ok := strings.CutPrefix(key, b.prefix)
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "/")
	if !ok || depot.CheckID(id) != nil {
		return ""
	}
	return id
}

// List calls fn once with every id that has objects or uploads in progress.
// Objects are listed by key, not by "folder": a server that keeps empty
// folders (SeaweedFS) would list a deleted id's. The keys of one id are
// next to each other in the listing, so only the ids with uploads in
// progress are held in memory.
func (b *Blobs) List(ctx context.Context, fn func(id string) error) error {
	ctx, cancel := context.WithCancel(ctx) // stops the listings if fn fails
	defer cancel()
	uploading := make(map[string]bool)
	for u := range b.core.ListIncompleteUploads(ctx, b.bucket, b.prefix, true) {
		if u.Err != nil {
			return wrap("list", u.Err)
		}
		if id := b.idOf(u.Key); id != "" {
			uploading[id] = true
		}
	}
	last := ""
	for o := range b.core.Client.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.prefix, Recursive: true}) {
		if o.Err != nil {
			return wrap("list", o.Err)
		}
		id := b.idOf(o.Key)
		if id == "" || id == last {
			continue
		}
		last = id
		delete(uploading, id)
		if err := fn(id); err != nil {
			return err
		}
	}
	for id := range uploading {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}
