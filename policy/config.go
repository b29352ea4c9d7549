package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"golang.org/x/net/http/httpguts"

	"github.com/crmgate/crmgate/fielderr"
)

// Defaults of Config.
const (
	DefaultDir         = "policies"
	DefaultEntrypoint  = "data.crmgate.authz.decision"
	DefaultEvalTimeout = 50 * time.Millisecond
	DefaultTestTimeout = 30 * time.Second
	DefaultDebounce    = 200 * time.Millisecond
)

// Reload modes.
const (
	// ReloadWatch recompiles the folder whenever a file in it changes.
	ReloadWatch = "watch"
	// ReloadOff loads the folder once, at start-up.
	ReloadOff = "off"

	// ReuseOn reuses a decision for an identical input within the same
	// second of request time (see reuse.go); ReuseOff evaluates every
	// request.
	ReuseOn  = "on"
	ReuseOff = "off"
	// DefaultReuseEntries is how many decisions a set keeps per second.
	DefaultReuseEntries = 4096
)

// DefaultHeaders are the request headers a policy sees when Config.Headers
// is nil: those that describe the client and the request's intent, and none
// that carries a credential.
var DefaultHeaders = []string{
	"accept",
	"accept-language",
	"content-length",
	"content-type",
	"origin",
	"referer",
	"sec-fetch-dest",
	"sec-fetch-mode",
	"sec-fetch-site",
	"user-agent",
	"x-requested-with",
}

// secretHeaders carry credentials; the input never holds them, because an
// input ends up in logs, decision logs and test fixtures.
var secretHeaders = []string{"authorization", "cookie", "proxy-authorization", "x-api-key"}

// Config configures the policy stage. The zero value is valid once
// Defaults has run: the shipped folder, the shipped entrypoint, a 50ms
// evaluation deadline and hot reload. A set comes from a folder (Dir) or
// from a signed OPA bundle (Bundle), never both; or, with Server, the
// decisions come from an OPA server and no set is loaded here at all.
type Config struct {
	Dir          string        `yaml:"dir" jsonschema_description:"Folder of the policy set: every .rego, .json, .yaml and .yml file below it (hidden files and folders are skipped). *_test.rego files are the set's tests: they must pass before a set takes effect and are never enforced. Default policies, unless bundle or server is set: a set comes from dir or from bundle, not both, and not with server."`
	Bundle       *BundleConfig `yaml:"bundle" jsonschema_description:"Load the policy set from a signed OPA bundle (a .tar.gz file or an https URL) instead of dir; its signature is verified before anything in it is used (see docs/policy.md#bundles)."`
	Server       *ServerConfig `yaml:"server" jsonschema_description:"Ask an OPA server (opa run --server, e.g. a sidecar on loopback or a Unix socket) for every decision through its Data API instead of evaluating a set in the gateway (see docs/policy.md#decisions-from-an-opa-server). Excludes dir, bundle, shadow, eval_timeout, reload, debounce and test_timeout, which concern a set the gateway evaluates itself."`
	Entrypoint   string        `yaml:"entrypoint" jsonschema_description:"Rule that decides routes which name no policy of their own, e.g. data.crmgate.authz.decision (the default). It must evaluate to a decision object."`
	EvalTimeout  time.Duration `yaml:"eval_timeout" jsonschema_description:"Longest evaluation of one decision; a slower policy is a deny (policy_timeout). Default 50ms. Not with server, whose timeout bounds a decision instead."`
	Headers      []string      `yaml:"headers" jsonschema_description:"Request headers (case-insensitive) that the policy sees in input.request.headers, lower-cased. Default accept, accept-language, content-length, content-type, origin, referer, sec-fetch-dest, sec-fetch-mode, sec-fetch-site, user-agent, x-requested-with. Set to [] for none. Headers carrying credentials (authorization, cookie, proxy-authorization, x-api-key) are refused."`
	Reload       string        `yaml:"reload" jsonschema_description:"watch (default): recompile the folder when a file in it changes (a bundle file: when it is replaced; a bundle URL: every bundle.poll_interval), and switch to the new set only if it compiles and its tests pass; off: load once at start-up."`
	Debounce     time.Duration `yaml:"debounce" jsonschema_description:"Quiet time after the last file change (of the folder or the bundle file) before a reload starts, so that a multi-file change is compiled once. Default 200ms."`
	TestTimeout  time.Duration `yaml:"test_timeout" jsonschema_description:"Longest run of a set's own tests (*_test.rego) before it may take effect; a slower run rejects the set. Default 30s."`
	Reuse        string        `yaml:"reuse" jsonschema_description:"on (default): a request whose policy input equals an earlier request's in every field but the request id, within the same second of request time, gets the earlier decision without another evaluation (never for a set that calls a non-deterministic built-in such as time.now_ns or rand.intn; see docs/policy.md#decision-reuse); off: every request is evaluated. Not with server: the gateway cannot see what the server's policy calls."`
	ReuseEntries int           `yaml:"reuse_entries" jsonschema_description:"Most decisions kept for reuse within one second. Default 4096."`
	Shadow       *ShadowConfig `yaml:"shadow" jsonschema_description:"Shadow mode: a candidate policy set (a folder) decides every request too, off the request path and without enforcing anything; each disagreement with the active set is counted and logged with both decisions (see docs/policy.md#shadow-mode). Absent: no shadow mode."`
}

// Defaults fills unset fields with their defaults. With Server, the
// settings of a set evaluated in the gateway (folder, deadline, reload)
// are left unset, so that one written by mistake is reported.
func (c *Config) Defaults() {
	if c.Entrypoint == "" {
		c.Entrypoint = DefaultEntrypoint
	}
	if c.Headers == nil {
		c.Headers = append([]string(nil), DefaultHeaders...)
	}
	if c.Server != nil {
		c.Server.Defaults()
		return
	}
	// The folder is the default source only without a bundle, so that a
	// dir written next to a bundle is told apart from the default.
	if c.Bundle != nil {
		c.Bundle.Defaults()
	} else if c.Dir == "" {
		c.Dir = DefaultDir
	}
	if c.EvalTimeout == 0 {
		c.EvalTimeout = DefaultEvalTimeout
	}
	if c.Reload == "" {
		c.Reload = ReloadWatch
	}
	if c.Debounce == 0 {
		c.Debounce = DefaultDebounce
	}
	if c.TestTimeout == 0 {
		c.TestTimeout = DefaultTestTimeout
	}
	if c.Reuse == "" {
		c.Reuse = ReuseOn
	}
	if c.ReuseEntries == 0 {
		c.ReuseEntries = DefaultReuseEntries
	}
	if c.Shadow != nil {
		c.Shadow.Defaults()
	}
}

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run and the bundle's secret references to be resolved;
// it reads neither the folder nor the bundle.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }

	if c.Server != nil {
		errs = append(errs, c.validateServer()...)
	} else if c.Bundle != nil {
		if c.Dir != "" {
			add("dir", "a policy set comes from dir or from bundle, not both: remove one")
		}
		errs = append(errs, fielderr.Prefix("bundle", c.Bundle.Validate()))
	} else if c.Dir == "" {
		add("dir", "required: the folder of the policy set")
	}
	if err := ValidateEntrypoint(c.Entrypoint); err != nil {
		add("entrypoint", "%v", err)
	} else if c.Server != nil {
		if _, err := DataAPIPath(c.Entrypoint); err != nil {
			add("entrypoint", "%v", err)
		}
	}
	seen := map[string]int{}
	for i, h := range c.Headers {
		path := fmt.Sprintf("headers[%d]", i)
		name := strings.ToLower(h)
		switch {
		case !httpguts.ValidHeaderFieldName(h):
			add(path, "%q is not a header name", h)
		case isSecretHeader(name):
			add(path, "%q carries credentials and is never given to the policy", h)
		default:
			if j, dup := seen[name]; dup {
				add(path, "%q repeats headers[%d]", h, j)
			}
			seen[name] = i
		}
	}
	if c.Server != nil {
		return errors.Join(errs...)
	}
	if c.EvalTimeout <= 0 {
		add("eval_timeout", "must be positive, got %s", c.EvalTimeout)
	} else if c.EvalTimeout > 10*time.Second {
		add("eval_timeout", "%s is longer than 10s; a decision sits on every request", c.EvalTimeout)
	}
	switch c.Reload {
	case ReloadWatch, ReloadOff:
	default:
		add("reload", "%q is not allowed (watch, off)", c.Reload)
	}
	switch c.Reuse {
	case ReuseOn, ReuseOff:
	default:
		add("reuse", "%q is not allowed (on, off)", c.Reuse)
	}
	if c.ReuseEntries < 1 || c.ReuseEntries > 1<<20 {
		add("reuse_entries", "must be between 1 and 1048576, got %d", c.ReuseEntries)
	}
	if c.Debounce < 0 {
		add("debounce", "must not be negative, got %s", c.Debounce)
	}
	if c.TestTimeout <= 0 {
		add("test_timeout", "must be positive, got %s", c.TestTimeout)
	}
	if c.Shadow != nil {
		errs = append(errs, fielderr.Prefix("shadow", c.Shadow.Validate(c.Dir)))
	}
	return errors.Join(errs...)
}

// validateServer reports the settings that cannot go with Server: they
// describe a set the gateway evaluates itself.
func (c Config) validateServer() []error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	const own = "with server, the OPA server evaluates the policy; this setting concerns a set the gateway evaluates itself: remove it"
	if c.Dir != "" {
		add("dir", "decisions come from server or from a set in dir, not both: remove one")
	}
	if c.Bundle != nil {
		add("bundle", "decisions come from server or from a set in bundle, not both: remove one (the OPA server can load the bundle itself)")
	}
	if c.Shadow != nil {
		add("shadow", "shadow mode compares two sets the gateway evaluates; it is not available with server")
	}
	if c.EvalTimeout != 0 {
		add("eval_timeout", "with server, a decision's deadline is server.timeout (the round trip and OPA's evaluation): remove eval_timeout")
	}
	if c.Reload != "" {
		add("reload", "%s (the OPA server reloads its own policies)", own)
	}
	if c.Debounce != 0 {
		add("debounce", "%s", own)
	}
	if c.TestTimeout != 0 {
		add("test_timeout", "%s (run the tests with opa test or crmgate policy test before publishing)", own)
	}
	if c.Reuse != "" || c.ReuseEntries != 0 {
		add("reuse", "with server, every decision is asked of the OPA server: the gateway cannot tell whether its policy is deterministic, so it reuses none; remove reuse and reuse_entries")
	}
	return append(errs, fielderr.Prefix("server", c.Server.Validate()))
}

func isSecretHeader(lower string) bool {
	for _, s := range secretHeaders {
		if lower == s {
			return true
		}
	}
	return false
}

// ValidateEntrypoint checks that ep is a rule reference a policy set can
// define: data followed by at least a package and a rule name, with no
// variables, e.g. data.crmgate.authz.decision.
func ValidateEntrypoint(ep string) error {
	if ep == "" {
		return errors.New("empty; a rule reference such as data.crmgate.authz.decision is required")
	}
	ref, err := ast.ParseRef(ep)
	if err != nil {
		return fmt.Errorf("%q is not a rule reference (e.g. data.crmgate.authz.decision)", ep)
	}
	if !ref.HasPrefix(ast.DefaultRootRef) || len(ref) < 3 || !ref.IsGround() {
		return fmt.Errorf("%q must start with data. and name a package and a rule (e.g. data.crmgate.authz.decision)", ep)
	}
	return nil
}
