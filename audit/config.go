package audit

import (
	"errors"
	"path/filepath"
	"strings"
	"time"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

// On-full policies: what happens when the spool's disk budget is spent.
const (
	// OnFullRefuse: no audit, no access. Emit returns ErrRefused and
	// Accepting reports false; the gateway answers 503.
	OnFullRefuse = "refuse"
	// OnFullDrop: keep serving; the lost events are counted and an
	// audit.loss event is recorded once delivery resumes.
	OnFullDrop = "drop"
)

// Defaults.
const (
	DefaultQueue              = 8192
	DefaultSpoolMaxBytes      = 1 << 30
	DefaultFileMaxSize        = 100 << 20
	DefaultFileMaxAge         = 24 * time.Hour
	DefaultCheckpointInterval = time.Minute
	DefaultCloseTimeout       = 5 * time.Second
)

const (
	maxQueue = 1 << 20
	// minSpoolBytes leaves room for at least a few segments.
	minSpoolBytes = 1 << 20
)

// Config configures the audit trail. The zero value is not valid: the
// spool directory is required; everything else has a default (see
// Defaults). Syslog and HTTP sinks are configured by their own packages
// and passed to New as Options.Sinks.
type Config struct {
	Queue        int                `yaml:"queue" jsonschema_description:"Events waiting in memory per sink before further ones go to the disk spool. Default 8192."`
	Spool        SpoolConfig        `yaml:"spool" jsonschema_description:"The disk spool that holds events a sink cannot take yet (it is down, or its queue is full), replayed in order when it can."`
	File         FileConfig         `yaml:"file" jsonschema_description:"The local file sink: JSON lines with a SHA-256 hash chain and Ed25519-signed checkpoints, rotated and compressed. Off when path is empty."`
	Stdout       StdoutConfig       `yaml:"stdout" jsonschema_description:"Write every event as a JSON line to standard output (for container log collectors)."`
	Pseudonymise PseudonymiseConfig `yaml:"pseudonymise" jsonschema_description:"Replace subject identifiers (user id and name, in actor.user and user) by a keyed HMAC-SHA256 pseudonym."`
	Retention    RetentionConfig    `yaml:"retention" jsonschema_description:"Delete closed, signed segments of the file sink after an age; each deletion is recorded as an audit.retention.deleted event."`
	CloseTimeout time.Duration      `yaml:"close_timeout" jsonschema_description:"At shutdown, how long sinks get to take what is queued; the rest stays in the spool for the next start. Default 5s."`
}

// SpoolConfig configures the disk spool.
type SpoolConfig struct {
	Dir      string `yaml:"dir" jsonschema_description:"Directory of the spool (one subdirectory per sink), created with mode 0700. Required, e.g. /var/lib/crmgate/audit-spool."`
	MaxBytes int64  `yaml:"max_bytes" jsonschema_description:"Disk budget of the spool in bytes, all sinks together. Default 1073741824 (1 GiB)."`
	OnFull   string `yaml:"on_full" jsonschema_description:"When the budget is spent: refuse (default; no audit, no access: requests get 503 until the spool drains) or drop (keep serving; lost events are counted in crmgate_audit_events_lost_total and an audit.loss event is recorded when delivery resumes)."`
}

// FileConfig configures the file sink.
type FileConfig struct {
	Path               string        `yaml:"path" jsonschema_description:"The active log file, e.g. /var/log/crmgate/audit.log; closed segments are renamed next to it as audit-<first seq>.log (.log.gz when compressed). Files are created with mode 0600. Empty: no file sink."`
	MaxSize            int64         `yaml:"max_size" jsonschema_description:"Rotate the active file when it reaches this many bytes. Default 104857600 (100 MiB)."`
	MaxAge             time.Duration `yaml:"max_age" jsonschema_description:"Rotate the active file when its first event is this old. Default 24h."`
	Compress           *bool         `yaml:"compress" jsonschema_description:"Gzip closed segments. Default true."`
	SigningKey         secret.Ref    `yaml:"signing_key" jsonschema_description:"Secret reference (env:NAME or file:/path) to the Ed25519 key that signs checkpoints: a PKCS#8 PEM private key (openssl genpkey -algorithm ed25519), or the 32-byte seed raw, hex- or base64-encoded (openssl rand -hex 32). Required with path."`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval" jsonschema_description:"Sign the chain head at least this often while events arrive, and at every rotation and shutdown. Default 1m."`
}

// StdoutConfig configures the standard output sink.
type StdoutConfig struct {
	Enabled bool `yaml:"enabled" jsonschema_description:"Write events to standard output. Default false."`
}

// PseudonymiseConfig configures pseudonymisation.
type PseudonymiseConfig struct {
	Key secret.Ref `yaml:"key" jsonschema_description:"Secret reference (env:NAME or file:/path) to the deployment's HMAC-SHA256 key, at least 32 bytes. Set: subject ids and names are recorded as hmac:<128-bit hex>. Unset: recorded as they are."`
}

// RetentionConfig configures retention of the file sink's segments.
type RetentionConfig struct {
	MaxAge time.Duration `yaml:"max_age" jsonschema_description:"Delete closed segments whose last event is older than this, e.g. 2160h (90 days). 0 (default): keep everything."`
}

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	if c.Spool.MaxBytes == 0 {
		c.Spool.MaxBytes = DefaultSpoolMaxBytes
	}
	if c.Spool.OnFull == "" {
		c.Spool.OnFull = OnFullRefuse
	}
	if c.File.MaxSize == 0 {
		c.File.MaxSize = DefaultFileMaxSize
	}
	if c.File.MaxAge == 0 {
		c.File.MaxAge = DefaultFileMaxAge
	}
	if c.File.Compress == nil {
		t := true
		c.File.Compress = &t
	}
	if c.File.CheckpointInterval == 0 {
		c.File.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
}

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run and secret references to be resolved; it opens
// nothing.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }

	if c.Queue < 1 || c.Queue > maxQueue {
		add("queue", "must be between 1 and %d, got %d", maxQueue, c.Queue)
	}
	switch {
	case c.Spool.Dir == "":
		add("spool.dir", "required: a directory for events a sink cannot take yet, e.g. /var/lib/crmgate/audit-spool")
	case strings.ContainsRune(c.Spool.Dir, 0):
		add("spool.dir", "%q holds a NUL byte", c.Spool.Dir)
	}
	if c.Spool.MaxBytes < minSpoolBytes {
		add("spool.max_bytes", "must be at least %d (1 MiB), got %d", minSpoolBytes, c.Spool.MaxBytes)
	}
	switch c.Spool.OnFull {
	case OnFullRefuse, OnFullDrop:
	default:
		add("spool.on_full", "%q is not allowed (refuse, drop)", c.Spool.OnFull)
	}
	if c.File.Path != "" {
		f := c.File
		switch {
		case strings.HasSuffix(f.Path, "/"):
			add("file.path", "%q names a folder; name the file", f.Path)
		case strings.ContainsRune(f.Path, 0):
			add("file.path", "%q holds a NUL byte", f.Path)
		case filepath.Ext(f.Path) == ".gz":
			add("file.path", "%q: the active file is not compressed; name it e.g. audit.log", f.Path)
		}
		if c.Spool.Dir != "" && filepath.Clean(filepath.Dir(f.Path)) == filepath.Clean(c.Spool.Dir) {
			add("file.path", "must not be in spool.dir %q", c.Spool.Dir)
		}
		if f.MaxSize < 4096 {
			add("file.max_size", "must be at least 4096 bytes, got %d", f.MaxSize)
		}
		if f.MaxAge < time.Minute {
			add("file.max_age", "must be at least 1m, got %s", f.MaxAge)
		}
		if f.CheckpointInterval < time.Second {
			add("file.checkpoint_interval", "must be at least 1s, got %s", f.CheckpointInterval)
		}
		switch {
		case f.SigningKey.IsZero():
			add("file.signing_key", "required: a secret reference (env:NAME or file:/path) to an Ed25519 private key (PKCS#8 PEM, or a 32-byte seed raw, hex or base64)")
		case f.SigningKey.Value() == nil:
			// Not resolved: the config package reports why at this path.
		default:
			if _, err := ParsePrivateKey(f.SigningKey.Value()); err != nil {
				add("file.signing_key", "secret %s: %v", f.SigningKey, err)
			}
		}
	} else if !c.File.SigningKey.IsZero() {
		add("file.signing_key", "set without file.path: there is no file sink to sign")
	}
	if k := c.Pseudonymise.Key; !k.IsZero() && k.Value() != nil && len(k.Value()) < 32 {
		add("pseudonymise.key", "secret %s is %d bytes, at least 32 are required", k, len(k.Value()))
	}
	if c.Retention.MaxAge < 0 {
		add("retention.max_age", "must not be negative, got %s", c.Retention.MaxAge)
	} else if c.Retention.MaxAge > 0 {
		if c.File.Path == "" {
			add("retention.max_age", "set without file.path: retention applies to the file sink's segments")
		} else if c.Retention.MaxAge < c.File.MaxAge {
			add("retention.max_age", "%s is shorter than file.max_age %s: segments would be deleted as soon as they close", c.Retention.MaxAge, c.File.MaxAge)
		}
	}
	if c.CloseTimeout <= 0 {
		add("close_timeout", "must be positive, got %s", c.CloseTimeout)
	}
	return errors.Join(errs...)
}
