package remote

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

func errStrings(err error) []string {
	var out []string
	for _, e := range fielderr.Flatten(err) {
		out = append(out, e.Error())
	}
	return out
}

func TestSyslogConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  SyslogConfig
		want []string
	}{
		{"defaults", SyslogConfig{Address: "siem.example.com:6514"}, nil},
		{"everything wrong", SyslogConfig{
			Address: "siem", Transport: "udp", Facility: "local9", AppName: "crm gate",
			Hostname: "a b", MaxMessageBytes: 100, DialTimeout: -1, WriteTimeout: -1,
		}, []string{
			`address: "siem" is not host:port (e.g. siem.example.com:6514)`,
			`transport: "udp" is not allowed (tls, tcp)`,
			`facility: "local9" is not a facility (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, clock, local0, local1, local2, local3, local4, local5, local6, local7)`,
			`app_name: "crm gate" is not allowed (1 to 48 printable ASCII characters, no spaces)`,
			`hostname: "a b" is not allowed (1 to 255 printable ASCII characters, no spaces)`,
			`max_message_bytes: must be at least 2048 (RFC 5425 §4.3.1), got 100`,
			`dial_timeout: must be positive, got -1ns`,
			`write_timeout: must be positive, got -1ns`,
		}},
		{"tls with tcp", SyslogConfig{Address: "127.0.0.1:514", Transport: TransportTCP, TLS: TLSConfig{CAFile: "/ca.pem"}},
			[]string{"tls: set, but transport is tcp; use transport: tls"}},
		{"cert without key", SyslogConfig{Address: "h:1", TLS: TLSConfig{ClientCert: "/c.pem"}},
			[]string{"tls.client_key: client_cert and client_key go together"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Defaults()
			if d := cmp.Diff(errStrings(tt.cfg.Validate()), tt.want); d != "" {
				t.Errorf("Validate() (-got +want):\n%s", d)
			}
		})
	}
}

func TestHTTPConfigValidate(t *testing.T) {
	tok := secret.FromValue([]byte("Zm9vYmFyYmF6cXV4cXV1eHF1dXo0MjQyNDI0MjQyNDI0MjQy"))
	tests := []struct {
		name string
		cfg  HTTPConfig
		want []string
	}{
		{"defaults", HTTPConfig{URL: "https://siem.example.com/ingest"}, nil},
		{"plaintext refused", HTTPConfig{URL: "http://127.0.0.1:3100/loki/api/v1/push"},
			[]string{"url: is http://: events and tokens would travel unencrypted; use https:// or set allow_plaintext: true for a collector on the same host"}},
		{"plaintext allowed", HTTPConfig{URL: "http://127.0.0.1:3100/x", AllowPlaintext: true}, nil},
		{"credentials in url", HTTPConfig{URL: "https://u:p@siem.example.com/?token=x"},
			[]string{"url: must not hold user:password@; send credentials in headers from a secret"}},
		{"not a url", HTTPConfig{URL: "siem.example.com?token=abc"},
			[]string{`url: "siem.example.com?…" is not an http(s) URL with a host`}},
		{"template with ndjson", HTTPConfig{URL: "https://h/", Template: TemplateConfig{Line: "{{event}}"}},
			[]string{"template: only used with format: template"}},
		{"template problems", HTTPConfig{URL: "https://h/", Format: FormatTemplate, Template: TemplateConfig{Prefix: "{{event}}", Line: `{"e":{{evnt}}}`}},
			[]string{
				"template.prefix: placeholders are expanded in template.line only",
				"template.line: {{evnt}} is not a placeholder ({{event}}, {{event_string}}, {{uid_string}}, {{time_ns}}, {{time_ms}}, {{time_s}})",
			}},
		{"template without event", HTTPConfig{URL: "https://h/", Format: FormatTemplate, Template: TemplateConfig{Line: `{"t":{{time_ms}}}`}},
			[]string{`template.line: "{\"t\":{{time_ms}}}" holds neither {{event}} nor {{event_string}}`}},
		{"unclosed placeholder", HTTPConfig{URL: "https://h/", Format: FormatTemplate, Template: TemplateConfig{Line: `{"e":{{event}`}},
			[]string{`template.line: "{{event}" opens a placeholder that does not close with }}`}},
		{"template that is not JSON", HTTPConfig{URL: "https://h/", Format: FormatTemplate, Template: TemplateConfig{Line: `[{{time_ns}},"{{event_string}}"]`, Separator: ","}},
			[]string{"template: a body of two events is neither JSON nor NDJSON (note that {{event_string}} and {{uid_string}} bring their own quotes)"}},
		{"headers", HTTPConfig{URL: "https://h/", MaxBatchBytes: 10, Timeout: -1, Headers: []HeaderConfig{
			{Name: "Authorization", SecretPrefix: "Splunk ", Secret: tok},
			{Name: "authorization", Value: "again"},
			{Name: "Content-Type", Value: "text/plain"},
			{Name: "Bad Name", Value: "x"},
			{Name: "X-A", Value: "a\r\nInjected: yes"},
			{Name: "X-B"},
			{Name: "X-C", Value: "v", Secret: tok},
			{Name: "X-D", Value: "v", SecretPrefix: "p "},
			{Name: "X-E", Secret: secret.FromValue([]byte("Zm9vYmFyYmF6cXV4cXV1eHF1dXo0MjQy\nNDI0MjQyNDI0MjQy"))},
		}}, []string{
			"headers[1].name: Authorization is already set by headers[0]",
			"headers[2].name: Content-Type is set by the sink (use content_type)",
			`headers[3].name: "Bad Name" is not a header name`,
			"headers[4].value: holds characters not allowed in a header (line breaks, control characters)",
			"headers[5]: value or secret is required",
			"headers[6].value: value and secret exclude each other (secret_prefix goes before a secret)",
			"headers[7].secret_prefix: only used with secret",
			"headers[8].secret: secret generated holds characters not allowed in a header (a line break inside?)",
			"timeout: must be positive, got -1ns",
			"max_batch_bytes: must be at least 4096, got 10",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Defaults()
			if d := cmp.Diff(errStrings(tt.cfg.Validate()), tt.want); d != "" {
				t.Errorf("Validate() (-got +want):\n%s", d)
			}
		})
	}
}

func TestNewReportsTLSFiles(t *testing.T) {
	cfg := SyslogConfig{Address: "h:6514", TLS: TLSConfig{CAFile: "/nonexistent/ca.pem"}}
	cfg.Defaults()
	_, err := NewSyslog(cfg, nil)
	want := []string{"tls.ca_file: open /nonexistent/ca.pem: no such file or directory"}
	if d := cmp.Diff(errStrings(err), want); d != "" {
		t.Errorf("NewSyslog() (-got +want):\n%s", d)
	}
	h := HTTPConfig{URL: "https://h/", TLS: TLSConfig{ClientCert: "/nonexistent/c.pem", ClientKey: secret.MustParseRef("file:/k")}}
	h.Defaults()
	_, err = NewHTTP(h, nil)
	want = []string{"tls.client_cert: open /nonexistent/c.pem: no such file or directory"}
	if d := cmp.Diff(errStrings(err), want); d != "" {
		t.Errorf("NewHTTP() (-got +want):\n%s", d)
	}
}

func TestSyslogSeverity(t *testing.T) {
	// OCSF severity_id → RFC 5424 severity.
	want := map[int]int{0: 6, 1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 1, 99: 6, -1: 6}
	for id, sev := range want {
		if got := syslogSeverity(id); got != sev {
			t.Errorf("syslogSeverity(%d) = %d, want %d", id, got, sev)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := mustTime("2026-01-02T15:04:05Z")
	tests := map[string]int{"": 0, "0": 0, "-5": 0, "30": 30, " 30 ": 30, "1e3": 0, "Fri, 02 Jan 2026 15:04:35 GMT": 30, "Fri, 02 Jan 2026 15:00:00 GMT": 0, "99999999999": 365 * 24 * 3600}
	for in, secs := range tests {
		if got := parseRetryAfter(in, now); got.Seconds() != float64(secs) {
			t.Errorf("parseRetryAfter(%q) = %s, want %ds", in, got, secs)
		}
	}
}
