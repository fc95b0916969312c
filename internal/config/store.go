package config

import (
	"flag"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Store configures stored transfers (the link still works when the
// receiver comes later): where the ciphertext and its metadata live, and
// the operator's policy.
type Store struct {
	// Enabled turns stored transfers on (the default).
	Enabled bool
	// Dir holds the ciphertext (unless S3 is set) and the metadata
	// database (unless --redis shares it between instances).
	Dir string
	S3  S3
	// Policy.
	MaxSize       Bytes
	DefaultExpire time.Duration
	MaxExpire     time.Duration
	MaxDownloads  int
	Unlimited     bool
	QuotaPerOwner Bytes
	QuotaTotal    Bytes
	// AllowFrom limits who may store by address (default: as
	// --allow-create-from); sign-in and sender tokens apply as for links.
	AllowFrom    List
	UploadWithin time.Duration
}

// S3 is an S3-compatible bucket for the ciphertext; credentials come from
// the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or a file.
type S3 struct {
	Endpoint        string
	Bucket          string
	Region          string
	Prefix          string
	Insecure        bool
	CredentialsFile string
}

// DefaultDataDir is where a ferry server keeps stored transfers by default:
// $XDG_DATA_HOME/ferry, else ~/.local/share/ferry, else ./ferry-data.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "ferry")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "ferry")
	}
	return "ferry-data"
}

func defaultStore() Store {
	return Store{
		Enabled:       true,
		Dir:           DefaultDataDir(),
		DefaultExpire: 7 * 24 * time.Hour,
		MaxExpire:     30 * 24 * time.Hour,
		UploadWithin:  24 * time.Hour,
	}
}

func (s *Store) flags(fs *flag.FlagSet) {
	fs.BoolVar(&s.Enabled, "store", s.Enabled, "let senders store transfers for receivers who come later (end-to-end encrypted; --store=false: live transfers only)")
	fs.StringVar(&s.Dir, "store-dir", s.Dir, "folder for stored transfers and their metadata")
	fs.StringVar(&s.S3.Endpoint, "store-s3-endpoint", s.S3.Endpoint, "S3-compatible endpoint (host:port) to keep stored transfers in instead of --store-dir (metadata stays in --store-dir or --redis)")
	fs.StringVar(&s.S3.Bucket, "store-s3-bucket", s.S3.Bucket, "S3 bucket for stored transfers")
	fs.StringVar(&s.S3.Region, "store-s3-region", s.S3.Region, "S3 region (default: the endpoint's)")
	fs.StringVar(&s.S3.Prefix, "store-s3-prefix", s.S3.Prefix, "prefix of the object keys in the bucket")
	fs.BoolVar(&s.S3.Insecure, "store-s3-insecure", s.S3.Insecure, "talk plain HTTP to the S3 endpoint (tests, a private network)")
	fs.StringVar(&s.S3.CredentialsFile, "store-s3-credentials-file", s.S3.CredentialsFile, "AWS-style credentials file (default: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, then ~/.aws/credentials)")
	fs.Var(&s.MaxSize, "store-max-size", "largest stored transfer, e.g. 5GB (0: as --max-transfer-size)")
	fs.DurationVar(&s.DefaultExpire, "store-expire", s.DefaultExpire, "how long a stored transfer is kept when its sender asks for no other lifetime")
	fs.DurationVar(&s.MaxExpire, "store-max-expire", s.MaxExpire, "the longest a sender may ask a stored transfer to be kept")
	fs.IntVar(&s.MaxDownloads, "store-max-downloads", s.MaxDownloads, "the most downloads a sender may allow for one stored transfer (0: no bound)")
	fs.BoolVar(&s.Unlimited, "store-unlimited", s.Unlimited, "let senders allow unlimited downloads until expiry")
	fs.Var(&s.QuotaPerOwner, "store-quota-user", "storage one signed-in user or sender token (or all anonymous senders together) may use, e.g. 20GB (0: no bound)")
	fs.Var(&s.QuotaTotal, "store-quota-total", "storage all stored transfers together may use (0: no bound but the disk or bucket)")
	fs.Var(&s.AllowFrom, "store-allow-from", "comma-separated CIDRs allowed to store transfers (default: as --allow-create-from)")
	fs.DurationVar(&s.UploadWithin, "store-upload-within", s.UploadWithin, "remove a stored transfer whose upload is not finished this long after it began")
}

func (s *Store) validate(bad func(string, ...any)) {
	if !s.Enabled {
		return
	}
	if s.Dir == "" {
		bad("--store-dir must not be empty (or turn storing off with --store=false)")
	}
	if s.S3.Endpoint != "" {
		if u, err := url.Parse("http://" + s.S3.Endpoint); err != nil || u.Host != s.S3.Endpoint {
			bad("--store-s3-endpoint %q must be host:port, without a scheme", s.S3.Endpoint)
		}
		if s.S3.Bucket == "" {
			bad("--store-s3-endpoint needs --store-s3-bucket")
		}
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"store-expire", s.DefaultExpire}, {"store-max-expire", s.MaxExpire}, {"store-upload-within", s.UploadWithin}} {
		if d.d <= 0 {
			bad("--%s must be positive", d.name)
		}
	}
	if s.MaxExpire < s.DefaultExpire {
		bad("--store-max-expire %s is shorter than --store-expire %s", s.MaxExpire, s.DefaultExpire)
	}
	if s.MaxDownloads < 0 || s.MaxSize < 0 || s.QuotaPerOwner < 0 || s.QuotaTotal < 0 {
		bad("store limits must not be negative")
	}
	for _, p := range s.AllowFrom {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad("--store-allow-from: %q is not a CIDR like 10.0.0.0/8", p)
		}
	}
}
