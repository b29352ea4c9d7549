// Package config assembles the gateway's configuration from one YAML file:
// it decodes strictly (unknown keys, wrong types and duplicate keys are
// errors), applies each package's defaults, resolves secret references and
// runs each package's Validate, and reports every problem at once with the
// file, line, key path and what is allowed.
//
// It owns no settings of its own beyond logging: each package owns its
// Config type and its validation.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/crmgate/crmgate/admin"
	"github.com/crmgate/crmgate/audit"
	"github.com/crmgate/crmgate/audit/alert"
	"github.com/crmgate/crmgate/audit/remote"
	"github.com/crmgate/crmgate/auth"
	"github.com/crmgate/crmgate/auth/apikey"
	"github.com/crmgate/crmgate/auth/bearer"
	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/policy/decisionlog"
	"github.com/crmgate/crmgate/proxy"
	"github.com/crmgate/crmgate/proxy/certs"
	"github.com/crmgate/crmgate/ratelimit"
	"github.com/crmgate/crmgate/secret"
	"github.com/crmgate/crmgate/session"
)

// File is the whole configuration file.
type File struct {
	proxy.Config `yaml:",inline"`
	TLS          certs.Config `yaml:"tls" jsonschema_description:"Where the serving certificates come from: ACME, files, or the development CA."`
	Admin        admin.Config `yaml:"admin" jsonschema_description:"The admin listener: health, readiness, metrics."`
	Log          LogConfig    `yaml:"log" jsonschema_description:"Logging."`
	// OIDC and Session go together: browser users sign in with the OIDC
	// provider and keep a server-side session. Both absent: no browser
	// login, and every route must be auth: none or optional.
	OIDC    *auth.Config    `yaml:"oidc" jsonschema_description:"Browser sign-in with an OpenID Connect provider (authorization code flow with PKCE). Requires session."`
	Session *session.Config `yaml:"session" jsonschema_description:"Server-side sessions of browser users signed in through oidc."`
	// APIKeys and Bearer identify API clients.
	APIKeys *apikey.Config `yaml:"api_keys" jsonschema_description:"API keys for API clients: where they are stored and read. Manage them with crmgate apikey or the admin API."`
	Bearer  *bearer.Config `yaml:"bearer" jsonschema_description:"OAuth 2.0 bearer access tokens (JWTs) of machine clients, by issuer."`
	// Policy turns on the policy stage: every request is decided by the
	// Rego policy set.
	Policy *policy.Config `yaml:"policy" jsonschema_description:"Decide every request with the OPA (Rego) policy set in dir or a signed bundle, or ask an OPA server for each decision (see docs/policy.md). Absent: routes are decided by configuration alone. A decision's redact and filter entries are applied to JSON responses (see redact); one that asks for a strict audit write without an audit section is a deny."`
	// DecisionLog writes the policy's decisions in OPA's format.
	DecisionLog *decisionlog.Config `yaml:"decision_log" jsonschema_description:"Write every policy decision in OPA's decision log format (one JSON line each), with sensitive input fields masked (see docs/policy.md#decision-log). Requires policy with dir or bundle (an OPA server writes its own). Absent: no decision log."`
	// Audit records an event for every request and every security event.
	Audit *AuditConfig `yaml:"audit" jsonschema_description:"The audit trail: one event for every request and every security event, in OCSF form, to a hash-chained signed file, standard output, syslog or HTTP collectors, through a disk spool (see docs/audit.md). Absent: no audit trail, and decisions that ask for a strict audit write are denied."`
	// Alerts runs alert rules over the audit events.
	Alerts *AlertsConfig `yaml:"alerts" jsonschema_description:"Alert rules over the audit events (repeated denials, failed-login bursts, hijacks, bulk reads, step-up failures; see docs/alerts.md). An alert is an audit event of its own, also sent to the alert sinks. Requires audit."`

	// Source names the file the configuration was read from and the
	// SHA-256 of its bytes (hex), for the config.loaded audit event.
	Source Source `yaml:"-" json:"-"`
}

// Source is where a configuration came from.
type Source struct {
	Name, SHA256 string
}

// AuditConfig is the audit pipeline with its remote sinks.
type AuditConfig struct {
	audit.Config `yaml:",inline"`
	Syslog       []remote.SyslogConfig `yaml:"syslog" jsonschema_description:"Syslog receivers (RFC 5424 over TLS) that get every event (see docs/audit-sinks.md)."`
	HTTP         []remote.HTTPConfig   `yaml:"http" jsonschema_description:"HTTP collectors (Splunk HEC, Elastic bulk, Loki, any JSON endpoint) that get every event in batches (see docs/audit-sinks.md)."`
}

// AlertsConfig is the alert rules with the sinks that get only alerts.
type AlertsConfig struct {
	alert.Config `yaml:",inline"`
	Syslog       []remote.SyslogConfig `yaml:"syslog" jsonschema_description:"Syslog receivers that get alert events only."`
	Webhook      []remote.HTTPConfig   `yaml:"webhook" jsonschema_description:"HTTP endpoints (a chat or paging webhook) that get alert events only."`
}

// LogConfig configures the process log.
type LogConfig struct {
	Level  string `yaml:"level" jsonschema_description:"debug, info (default), warn or error."`
	Format string `yaml:"format" jsonschema_description:"json (default) or text."`
	// FlushInterval bounds how long a log line may wait in the buffer.
	FlushInterval time.Duration `yaml:"flush_interval" jsonschema_description:"Log lines are buffered and written at least this often (or when 64 KiB are waiting), sparing one write per request. Default 100ms; negative: unbuffered."`
}

// Defaults fills unset fields.
func (c *LogConfig) Defaults() {
	if c.Level == "" {
		c.Level = "info"
	}
	if c.Format == "" {
		c.Format = "json"
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
}

// Validate reports every problem at once.
func (c LogConfig) Validate() error {
	var errs []error
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Level) {
		errs = append(errs, fielderr.New("level", "%q is not allowed (debug, info, warn, error)", c.Level))
	}
	if c.Format != "json" && c.Format != "text" {
		errs = append(errs, fielderr.New("format", "%q is not allowed (json, text)", c.Format))
	}
	return errors.Join(errs...)
}

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File string
	// Line and Column locate the key (1-based); 0 when the key is absent
	// from the file (a required key that is missing).
	Line, Column int
	// Path is the key path, e.g. routes[2].path.
	Path string
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error lists every problem found in a configuration file.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads, decodes, completes and validates the file at path. The
// Resolver reads secret references; its zero value uses the process
// environment and file system.
func Load(path string, res secret.Resolver) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Problems: []Problem{{File: path, Msg: err.Error()}}}
	}
	return Parse(path, data, res)
}

// Parse is Load for bytes already read; name is used in messages.
func Parse(name string, data []byte, res secret.Resolver) (*File, error) {
	var f File
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{Problems: []Problem{{File: name, Msg: "the file is empty"}}}
	}
	// Duplicate keys are refused by default (AllowDuplicateMapKey is not set).
	dec := yaml.NewDecoder(bytes.NewReader(data), yaml.Strict())
	if err := dec.Decode(&f); err != nil {
		p := decodeProblem(name, err)
		if file, perr := parser.ParseBytes(data, 0); perr == nil && p.Line > 0 {
			p.Path = pathAt(file, p.Line, p.Column)
		}
		return nil, &Error{Problems: []Problem{p}}
	}
	sum := sha256.Sum256(data)
	f.Source = Source{Name: name, SHA256: hex.EncodeToString(sum[:])}
	f.Defaults()
	errs := f.resolveSecrets(res)
	errs = append(errs, fielderr.Flatten(f.Validate())...)
	if len(errs) == 0 {
		return &f, nil
	}
	file, _ := parser.ParseBytes(data, 0)
	e := &Error{}
	for _, err := range errs {
		p := Problem{File: name, Msg: err.Error()}
		var fe *fielderr.Error
		if errors.As(err, &fe) {
			p.Path, p.Msg = fe.Path, fe.Msg
			p.Line, p.Column = locate(file, fe.Path)
		}
		e.Problems = append(e.Problems, p)
	}
	slices.SortStableFunc(e.Problems, func(a, b Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return nil, e
}

// Defaults applies every package's defaults.
func (f *File) Defaults() {
	f.Config.Defaults()
	// ACME challenges are answered on the gateway's own listeners; when
	// those are not on 80/443, certmagic must know their ports, or it
	// would try to bind 80/443 itself.
	if f.TLS.Source == certs.SourceACME {
		if p := listenPort(f.Listen.HTTP); f.TLS.ACME.AltHTTPPort == 0 && p != 0 && p != 80 {
			f.TLS.ACME.AltHTTPPort = p
		}
		if p := listenPort(f.Listen.HTTPS); f.TLS.ACME.AltTLSALPNPort == 0 && p != 0 && p != 443 {
			f.TLS.ACME.AltTLSALPNPort = p
		}
	}
	f.TLS.Defaults()
	f.Admin.Defaults()
	f.Log.Defaults()
	if f.OIDC != nil {
		f.OIDC.Defaults()
		if f.Assertion.Issuer == "" {
			f.Assertion.Issuer = f.OIDC.ExternalURL
		}
	}
	if f.Session != nil {
		f.Session.Defaults()
	}
	if f.APIKeys != nil {
		f.APIKeys.Defaults()
	}
	if f.Bearer != nil {
		f.Bearer.Defaults()
	}
	if f.Policy != nil {
		f.Policy.Defaults()
	}
	if f.DecisionLog != nil {
		f.DecisionLog.Defaults()
	}
	if f.Audit != nil {
		f.Audit.Config.Defaults()
		for i := range f.Audit.Syslog {
			f.Audit.Syslog[i].Defaults()
		}
		for i := range f.Audit.HTTP {
			f.Audit.HTTP[i].Defaults()
		}
	}
	if f.Alerts != nil {
		f.Alerts.Config.Defaults()
		for i := range f.Alerts.Syslog {
			f.Alerts.Syslog[i].Defaults()
		}
		for i := range f.Alerts.Webhook {
			f.Alerts.Webhook[i].Defaults()
		}
	}
}

// Validate runs every package's validation, with key paths rooted at the
// file's top level.
func (f *File) Validate() error {
	errs := []error{
		f.Config.Validate(),
		fielderr.Prefix("tls", f.TLS.Validate()),
		fielderr.Prefix("admin", f.Admin.Validate()),
		fielderr.Prefix("log", f.Log.Validate()),
	}
	switch {
	case f.OIDC != nil && f.Session == nil:
		errs = append(errs, fielderr.New("session", "required with oidc: signed-in users keep a server-side session (at least session.keys)"))
	case f.OIDC == nil && f.Session != nil:
		errs = append(errs, fielderr.New("session", "sessions come from browser sign-in; configure oidc as well, or remove session"))
	}
	if f.OIDC != nil {
		errs = append(errs, fielderr.Prefix("oidc", f.OIDC.Validate()))
	}
	if f.Session != nil {
		errs = append(errs, fielderr.Prefix("session", f.Session.Validate()))
		if f.Session.Fingerprint.TrustedJA4Header != "" && len(f.Server.TrustedProxies) == 0 {
			errs = append(errs, fielderr.New("session.fingerprint.trusted_ja4_header",
				"is believed only from server.trusted_proxies, and there are none: name the TLS-terminating proxies that set it"))
		}
	}
	if f.APIKeys != nil {
		errs = append(errs, fielderr.Prefix("api_keys", f.APIKeys.Validate()))
		if f.APIKeys.Store == apikey.StoreRedis {
			errs = append(errs, fielderr.Prefix("api_keys.redis", f.APIKeys.Redis.Validate()))
		}
	}
	if f.Bearer != nil {
		errs = append(errs, fielderr.Prefix("bearer", f.Bearer.Validate()))
	}
	if f.Policy != nil {
		errs = append(errs, fielderr.Prefix("policy", f.Policy.Validate()))
	}
	if f.Audit != nil {
		errs = append(errs, fielderr.Prefix("audit", f.Audit.Config.Validate()))
		for i, c := range f.Audit.Syslog {
			errs = append(errs, fielderr.Prefix(fmt.Sprintf("audit.syslog[%d]", i), c.Validate()))
		}
		for i, c := range f.Audit.HTTP {
			errs = append(errs, fielderr.Prefix(fmt.Sprintf("audit.http[%d]", i), c.Validate()))
		}
	}
	if f.Alerts != nil {
		errs = append(errs, fielderr.Prefix("alerts", f.Alerts.Config.Validate()))
		for i, c := range f.Alerts.Syslog {
			errs = append(errs, fielderr.Prefix(fmt.Sprintf("alerts.syslog[%d]", i), c.Validate()))
		}
		for i, c := range f.Alerts.Webhook {
			errs = append(errs, fielderr.Prefix(fmt.Sprintf("alerts.webhook[%d]", i), c.Validate()))
		}
		if f.Audit == nil {
			errs = append(errs, fielderr.New("alerts", "alerts are rules over the audit events; configure audit as well"))
		}
	}
	if f.DecisionLog != nil {
		errs = append(errs, fielderr.Prefix("decision_log", f.DecisionLog.Validate()))
		switch {
		case f.Policy == nil:
			errs = append(errs, fielderr.New("decision_log", "logs policy decisions, but there is no policy section"))
		case f.Policy.Server != nil:
			errs = append(errs, fielderr.New("decision_log", "logs the decisions the gateway evaluates itself; with policy.server, turn on the OPA server's own decision log (decision_logs in its configuration) and remove decision_log"))
		}
	}
	for i, r := range f.Routes {
		if r.Policy == "" {
			continue
		}
		if err := policy.ValidateEntrypoint(r.Policy); err != nil {
			errs = append(errs, fielderr.New(fmt.Sprintf("routes[%d].policy", i), "%v", err))
		} else if f.Policy == nil {
			errs = append(errs, fielderr.New(fmt.Sprintf("routes[%d].policy", i), "names an entrypoint but there is no policy section"))
		} else if f.Policy.Server != nil {
			if _, err := policy.DataAPIPath(r.Policy); err != nil {
				errs = append(errs, fielderr.New(fmt.Sprintf("routes[%d].policy", i), "%v", err))
			}
		}
	}
	if f.RateLimit != nil && f.RateLimit.Backend == ratelimit.BackendRedis {
		errs = append(errs, fielderr.Prefix("rate_limit.redis", f.RateLimit.Redis.Validate()))
	}
	configured := map[string]bool{proxy.CredSession: f.OIDC != nil, proxy.CredAPIKey: f.APIKeys != nil, proxy.CredBearer: f.Bearer != nil}
	section := map[string]string{proxy.CredSession: "oidc", proxy.CredAPIKey: "api_keys", proxy.CredBearer: "bearer"}
	for i, r := range f.Routes {
		accepts := false
		for j, k := range r.Credentials {
			if _, known := configured[k]; known && !configured[k] {
				errs = append(errs, fielderr.New(fmt.Sprintf("routes[%d].credentials[%d]", i, j), "%s needs the %s section", k, section[k]))
			}
			accepts = accepts || configured[k]
		}
		if len(r.Credentials) == 0 {
			accepts = f.OIDC != nil || f.APIKeys != nil || f.Bearer != nil
		}
		if r.Auth == proxy.AuthRequired && !accepts {
			errs = append(errs, fielderr.New(fmt.Sprintf("routes[%d].auth", i),
				"route %s requires an identified caller (the default, auth: required) but no credential it accepts is configured: configure oidc, api_keys or bearer, or set auth: none (public) or optional", r.ID))
		}
	}
	return errors.Join(errs...)
}

func listenPort(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// decodeProblem turns a YAML decoding error into a Problem with position.
func decodeProblem(name string, err error) Problem {
	p := Problem{File: name, Msg: err.Error()}
	var se yaml.Error
	if errors.As(err, &se) {
		if tk := se.GetToken(); tk != nil && tk.Position != nil {
			p.Line, p.Column = tk.Position.Line, tk.Position.Column
		}
		p.Msg = friendlier(se.GetMessage())
	}
	return p
}

var typeMismatchRe = regexp.MustCompile(`^cannot unmarshal (\S+) into Go (?:struct field \S+|value) of type (\S+)$`)

// friendlier rewords the decoder's Go-centric type errors for operators.
func friendlier(msg string) string {
	m := typeMismatchRe.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	want := m[2]
	switch {
	case strings.HasPrefix(want, "int"), strings.HasPrefix(want, "uint"):
		want = "an integer"
	case want == "bool":
		want = "true or false"
	case want == "time.Duration":
		want = "a duration such as 10s"
	case strings.HasPrefix(want, "[]"):
		want = "a list"
	case strings.HasPrefix(want, "map["), strings.Contains(want, "."):
		want = "a mapping"
	}
	return fmt.Sprintf("expected %s, got %s", want, m[1])
}

// pathAt returns the key path of the node at line:col, for decoding errors
// that know only a position.
func pathAt(file *ast.File, line, col int) string {
	var found string
	var walk func(n ast.Node, path string)
	walk = func(n ast.Node, path string) {
		if n == nil || found != "" {
			return
		}
		if tk := n.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line == line && tk.Position.Column == col && path != "" {
			found = path
			return
		}
		switch v := n.(type) {
		case *ast.MappingNode:
			for _, mv := range v.Values {
				walk(mv, path)
			}
		case *ast.MappingValueNode:
			key := fielderr.Join(path, v.Key.GetToken().Value)
			if tk := v.Key.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line == line && tk.Position.Column == col {
				found = key
				return
			}
			walk(v.Value, key)
		case *ast.SequenceNode:
			for i, e := range v.Values {
				walk(e, fmt.Sprintf("%s[%d]", path, i))
			}
		case *ast.TagNode:
			walk(v.Value, path)
		case *ast.AnchorNode:
			walk(v.Value, path)
		}
	}
	for _, d := range file.Docs {
		walk(d.Body, "")
	}
	return found
}

// locate finds the position of a key path in the file, or of its nearest
// ancestor that is present.
func locate(file *ast.File, path string) (int, int) {
	if file == nil {
		return 0, 0
	}
	for p := path; p != ""; p = parent(p) {
		yp, err := yaml.PathString("$." + p)
		if err != nil {
			continue
		}
		n, err := yp.FilterFile(file)
		if err != nil || n == nil {
			continue
		}
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			return tk.Position.Line, tk.Position.Column
		}
	}
	return 0, 0
}

func parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

// resolveSecrets resolves every secret.Ref in f, reporting each failure at
// its key path.
func (f *File) resolveSecrets(res secret.Resolver) []error {
	var errs []error
	walkRefs(reflect.ValueOf(f).Elem(), "", false, func(path string, r *secret.Ref, token bool) {
		if r.IsZero() {
			return
		}
		resolve := r.Resolve
		if token {
			resolve = r.ResolveToken
		}
		if err := resolve(res); err != nil {
			errs = append(errs, fielderr.New(path, "secret %s: %v", r.String(), err))
		}
	})
	return errs
}

var refType = reflect.TypeFor[secret.Ref]()

// A field tagged secret:"token" holds a credential another system issued
// (token is then true for it and everything below it).
func walkRefs(v reflect.Value, path string, token bool, fn func(string, *secret.Ref, bool)) {
	if v.Type() == refType {
		fn(path, v.Addr().Interface().(*secret.Ref), token)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkRefs(v.Elem(), path, token, fn)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			p := path
			if !sf.Anonymous || name != "" {
				p = fielderr.Join(path, name)
			}
			walkRefs(v.Field(i), p, token || sf.Tag.Get("secret") == "token", fn)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walkRefs(v.Index(i), fmt.Sprintf("%s[%d]", path, i), token, fn)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			// Map values are not addressable: resolve a copy, store it back.
			cp := reflect.New(v.Type().Elem()).Elem()
			cp.Set(iter.Value())
			walkRefs(cp, fielderr.Join(path, fmt.Sprint(iter.Key().Interface())), token, fn)
			v.SetMapIndex(iter.Key(), cp)
		}
	}
}
