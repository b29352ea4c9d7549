package remote

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

// HTTP body formats.
const (
	FormatNDJSON    = "ndjson"     // one event per line, each line ended by \n
	FormatJSONArray = "json_array" // [event,event,...]
	FormatTemplate  = "template"   // template.prefix, lines joined by template.separator, template.suffix
)

// HTTPConfig configures the HTTP sink. The zero value is not valid: url is
// required; everything else has defaults (see Defaults).
type HTTPConfig struct {
	Name           string         `yaml:"name" jsonschema_description:"Name of the sink in logs and metrics. Default http:SCHEME://HOST."`
	URL            string         `yaml:"url" jsonschema_description:"The collector's endpoint, https://... (http://... only with allow_plaintext). No user:password@: put credentials in headers."`
	AllowPlaintext bool           `yaml:"allow_plaintext" jsonschema_description:"Allow an http:// url, for a collector on the same host or tests: events and tokens travel unencrypted. Default false."`
	Format         string         `yaml:"format" jsonschema_description:"Body format: ndjson (default; one event per line), json_array ([event,...]) or template (see template)."`
	Template       TemplateConfig `yaml:"template" jsonschema_description:"The body of format: template: prefix, then each event's line joined by separator, then suffix."`
	ContentType    string         `yaml:"content_type" jsonschema_description:"Content-Type of the body. Default application/x-ndjson for ndjson, application/json otherwise."`
	Headers        []HeaderConfig `yaml:"headers" jsonschema_description:"Request headers, e.g. the collector's token."`
	Gzip           bool           `yaml:"gzip" jsonschema_description:"Compress request bodies with gzip (Content-Encoding: gzip). Default false."`
	TLS            TLSConfig      `yaml:"tls" jsonschema_description:"TLS to the collector (https:// urls)."`
	Timeout        time.Duration  `yaml:"timeout" jsonschema_description:"Longest one POST may take, from connect to the end of the answer. Default 10s."`
	MaxBatchBytes  int            `yaml:"max_batch_bytes" jsonschema_description:"Largest request body before compression: a batch that would be bigger goes out as several POSTs, in order; a single event that does not fit is refused. Default 1048576 (1 MiB)."`
}

// TemplateConfig is the body of format: template. Placeholders are
// expanded in line only: {{event}}, {{event_string}}, {{uid_string}},
// {{time_ns}}, {{time_ms}} and {{time_s}} (see docs/audit-sinks.md).
type TemplateConfig struct {
	Prefix    string `yaml:"prefix" jsonschema_description:"Text before the first line of a body."`
	Line      string `yaml:"line" jsonschema_description:"One event's text, with placeholders: {{event}} (the JSON object), {{event_string}} (the event as a JSON string literal), {{uid_string}} (metadata.uid as a JSON string), {{time_ns}}, {{time_ms}}, {{time_s}} (the event's time, digits)."`
	Separator string `yaml:"separator" jsonschema_description:"Text between two lines."`
	Suffix    string `yaml:"suffix" jsonschema_description:"Text after the last line of a body."`
}

// HeaderConfig is one request header: a literal value, or a secret with
// an optional literal prefix ("Splunk ", "Bearer ", "ApiKey ").
type HeaderConfig struct {
	Name         string     `yaml:"name" jsonschema_description:"Header name, e.g. Authorization."`
	Value        string     `yaml:"value" jsonschema_description:"Literal value, for what is not secret (a tenant id). Not with secret."`
	Secret       secret.Ref `yaml:"secret" secret:"token" jsonschema_description:"Secret reference (env:NAME or file:/path) to the value, e.g. a token. A token the collector issued needs about 96 bits of entropy (a random UUID has 122), not the 256 of the gateway's own secrets."`
	SecretPrefix string     `yaml:"secret_prefix" jsonschema_description:"Literal text sent before the secret, e.g. 'Splunk ' or 'Bearer '."`
}

// Defaults fills unset fields with their defaults.
func (c *HTTPConfig) Defaults() {
	if c.Format == "" {
		c.Format = FormatNDJSON
	}
	if c.ContentType == "" {
		c.ContentType = "application/json"
		if c.Format == FormatNDJSON {
			c.ContentType = "application/x-ndjson"
		}
	}
	setDur(&c.Timeout, 10*time.Second)
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 1 << 20
	}
	if c.Name == "" {
		if u, err := url.Parse(c.URL); err == nil && u.Host != "" {
			c.Name = "http:" + u.Scheme + "://" + u.Host
		}
	}
}

// headersNotAllowed are set by the sink or the transport.
var headersNotAllowed = map[string]string{
	"Host":              "",
	"Content-Length":    "",
	"Content-Encoding":  " (use gzip)",
	"Content-Type":      " (use content_type)",
	"Transfer-Encoding": "",
	"Connection":        "",
}

// minBatchBytes keeps max_batch_bytes from being a typo for kilobytes.
const minBatchBytes = 4096

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run and secret references to be resolved.
func (c HTTPConfig) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }

	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		add("url", "required (e.g. https://siem.example.com:8088/services/collector)")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		add("url", "%q is not an http(s) URL with a host", redactURL(c.URL))
	case u.User != nil:
		add("url", "must not hold user:password@; send credentials in headers from a secret")
	case u.Scheme == "http" && !c.AllowPlaintext:
		add("url", "is http://: events and tokens would travel unencrypted; use https:// or set allow_plaintext: true for a collector on the same host")
	case u.Scheme == "http" && !c.TLS.IsZero():
		add("tls", "set, but the url is http://")
	}
	errs = append(errs, fielderr.Prefix("tls", c.TLS.validate()))

	tc := c.Template
	switch c.Format {
	case FormatNDJSON, FormatJSONArray:
		if tc != (TemplateConfig{}) {
			add("template", "only used with format: template")
		}
	case FormatTemplate:
		if _, err := newBodyTemplate(c.Format, tc); err != nil {
			errs = append(errs, err)
		}
	default:
		add("format", "%q is not allowed (ndjson, json_array, template)", c.Format)
	}
	if strings.ContainsAny(c.ContentType, "\r\n") || c.ContentType == "" {
		add("content_type", "%q is not a media type", c.ContentType)
	}

	seen := map[string]int{}
	for i, h := range c.Headers {
		path := fmt.Sprintf("headers[%d]", i)
		canon := http.CanonicalHeaderKey(h.Name)
		switch hint, bad := headersNotAllowed[canon]; {
		case !httpguts.ValidHeaderFieldName(h.Name):
			add(path+".name", "%q is not a header name", h.Name)
		case bad:
			add(path+".name", "%s is set by the sink%s", canon, hint)
		default:
			if j, dup := seen[canon]; dup {
				add(path+".name", "%s is already set by headers[%d]", canon, j)
			}
			seen[canon] = i
		}
		switch {
		case h.Secret.IsZero() && h.Value == "":
			add(path, "value or secret is required")
		case !h.Secret.IsZero() && h.Value != "":
			add(path+".value", "value and secret exclude each other (secret_prefix goes before a secret)")
		case h.Secret.IsZero() && h.SecretPrefix != "":
			add(path+".secret_prefix", "only used with secret")
		}
		if !httpguts.ValidHeaderFieldValue(h.Value) {
			add(path+".value", "holds characters not allowed in a header (line breaks, control characters)")
		}
		if !httpguts.ValidHeaderFieldValue(h.SecretPrefix) {
			add(path+".secret_prefix", "holds characters not allowed in a header")
		}
		if v := h.Secret.Value(); v != nil && !httpguts.ValidHeaderFieldValue(string(v)) {
			add(path+".secret", "secret %s holds characters not allowed in a header (a line break inside?)", h.Secret)
		}
	}
	if c.Timeout <= 0 {
		add("timeout", "must be positive, got %s", c.Timeout)
	}
	if c.MaxBatchBytes < minBatchBytes {
		add("max_batch_bytes", "must be at least %d, got %d", minBatchBytes, c.MaxBatchBytes)
	}
	return errors.Join(errs...)
}

// redactURL drops the query and user info, which may hold tokens.
func redactURL(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + "?…"
	}
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			s = s[:j+3] + "…@" + s[i+1:]
		}
	}
	return s
}

// bodyTemplate is the compiled body format.
type bodyTemplate struct {
	prefix, sep, suffix string
	line                lineTemplate
}

// sampleEvents exercise escaping when a template is checked.
var sampleEvents = [][]byte{
	[]byte(`{"metadata":{"uid":"u-1\"x"},"time":1767366245123,"severity_id":1,"message":"a \"quoted\"\nline é {{event}} \u2028"}`),
	[]byte(`{"metadata":{"uid":"u-2"},"time":1767366245124,"severity_id":5,"unmapped":{"event_type":"auth.login"}}`),
}

// newBodyTemplate compiles a format; errors name the template keys.
func newBodyTemplate(format string, tc TemplateConfig) (bodyTemplate, error) {
	switch format {
	case FormatNDJSON:
		tc = TemplateConfig{Line: "{{event}}", Separator: "\n", Suffix: "\n"}
	case FormatJSONArray:
		tc = TemplateConfig{Prefix: "[", Line: "{{event}}", Separator: ",", Suffix: "]"}
	}
	var errs []error
	for _, f := range []struct{ key, v string }{{"prefix", tc.Prefix}, {"separator", tc.Separator}, {"suffix", tc.Suffix}} {
		if strings.Contains(f.v, "{{") {
			errs = append(errs, fielderr.New("template."+f.key, "placeholders are expanded in template.line only"))
		}
	}
	lt, err := compileTemplate(tc.Line)
	switch {
	case tc.Line == "":
		errs = append(errs, fielderr.New("template.line", "required, e.g. {\"event\":{{event}}}"))
	case err != nil:
		errs = append(errs, fielderr.New("template.line", "%v", err))
	case !lt.hasEvent():
		errs = append(errs, fielderr.New("template.line", "%q holds neither {{event}} nor {{event_string}}", tc.Line))
	}
	if err := errors.Join(errs...); err != nil {
		return bodyTemplate{}, err
	}
	bt := bodyTemplate{prefix: tc.Prefix, sep: tc.Separator, suffix: tc.Suffix, line: lt}
	body := bt.prefix
	for i, ev := range sampleEvents {
		if i > 0 {
			body += bt.sep
		}
		m, _ := parseEvent(ev)
		body += string(lt.appendLine(nil, ev, m, time.Now))
	}
	body += bt.suffix
	if !bodyShape([]byte(body)) {
		return bodyTemplate{}, fielderr.New("template", "a body of two events is neither JSON nor NDJSON (note that {{event_string}} and {{uid_string}} bring their own quotes)")
	}
	return bt, nil
}
