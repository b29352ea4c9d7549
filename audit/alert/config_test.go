package alert

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/fielderr"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(defaults) = %v", err)
	}
	if c.MaxKeys != DefaultMaxKeys || c.Samples != DefaultSamples {
		t.Errorf("Defaults: max_keys %d, sample_request_ids %d, want %d, %d", c.MaxKeys, c.Samples, DefaultMaxKeys, DefaultSamples)
	}
	if d := cmp.Diff(c.Rules, DefaultRules()); d != "" {
		t.Errorf("Defaults rules (-got +want):\n%s", d)
	}
	var names []string
	for _, r := range c.Rules {
		names = append(names, r.Name)
	}
	want := []string{"repeated-denials", "failed-login-burst", "failed-credential-burst", "hijack-suspected", "bulk-read", "step-up-failures"}
	if d := cmp.Diff(names, want); d != "" {
		t.Errorf("default rule names (-got +want):\n%s", d)
	}

	r := Rule{Name: "x", Match: Match{Type: "a.b"}, Threshold: 1, Window: 2 * time.Minute}
	r.defaults()
	if r.Key != KeySubjectOrIP || r.Severity != SeverityMedium || r.Cooldown != 2*time.Minute {
		t.Errorf("Rule.defaults = %+v, want key subject_or_ip, severity medium, cooldown the window", r)
	}
}

// DefaultRules returns a new slice each time: editing one configuration's
// rules must not change another's.
func TestDefaultRulesFresh(t *testing.T) {
	a := DefaultRules()
	a[0].Threshold = 1
	a[0].Match.Outcome[0] = "forwarded"
	if b := DefaultRules(); b[0].Threshold == 1 || b[0].Match.Outcome[0] != "denied" {
		t.Errorf("DefaultRules shares memory between calls: %+v", b[0])
	}
}

func validRule() Rule {
	return Rule{Name: "r", Match: Match{Type: TypeHTTPRequest, Outcome: []string{"denied"}}, Key: KeySubject,
		Threshold: 3, Window: time.Minute, Severity: SeverityHigh, Cooldown: time.Minute}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		paths []string
	}{
		{"valid", func(c *Config) {}, nil},
		{"unknown event type allowed", func(c *Config) { c.Rules[0].Match = Match{Type: "auth.something_new"} }, nil},
		{"reason on a security event", func(c *Config) {
			c.Rules[0].Match = Match{Type: "auth.login.failure", Reason: []string{"state_replay"}}
		}, nil},
		{"max keys", func(c *Config) { c.MaxKeys = -1 }, []string{"max_keys"}},
		{"max keys too many", func(c *Config) { c.MaxKeys = MaxMaxKeys + 1 }, []string{"max_keys"}},
		{"samples", func(c *Config) { c.Samples = MaxSamples + 1 }, []string{"sample_request_ids"}},
		{"empty rules", func(c *Config) { c.Rules = []Rule{} }, []string{"rules"}},
		{"unknown key kind", func(c *Config) { c.Rules[0].Key = "session" }, []string{"rules[0].key"}},
		{"zero threshold", func(c *Config) { c.Rules[0].Threshold = 0 }, []string{"rules[0].threshold"}},
		{"threshold too large", func(c *Config) { c.Rules[0].Threshold = MaxThreshold + 1 }, []string{"rules[0].threshold"}},
		{"zero window", func(c *Config) { c.Rules[0].Window = 0 }, []string{"rules[0].window"}},
		{"negative window", func(c *Config) { c.Rules[0].Window = -time.Minute }, []string{"rules[0].window"}},
		{"window under a second", func(c *Config) { c.Rules[0].Window = 500 * time.Millisecond }, []string{"rules[0].window"}},
		{"window over a day", func(c *Config) { c.Rules[0].Window = 25 * time.Hour }, []string{"rules[0].window"}},
		{"negative cooldown", func(c *Config) { c.Rules[0].Cooldown = -time.Second }, []string{"rules[0].cooldown"}},
		{"severity", func(c *Config) { c.Rules[0].Severity = "urgent" }, []string{"rules[0].severity"}},
		{"sum", func(c *Config) { c.Rules[0].Sum = "bytes" }, []string{"rules[0].sum"}},
		{"sum records on a security event", func(c *Config) {
			c.Rules[0].Match = Match{Type: "auth.login.failure"}
			c.Rules[0].Sum = SumRecords
		}, []string{"rules[0].sum"}},
		{"name", func(c *Config) { c.Rules[0].Name = "Repeated Denials" }, []string{"rules[0].name"}},
		{"no name", func(c *Config) { c.Rules[0].Name = "" }, []string{"rules[0].name"}},
		{"duplicate name", func(c *Config) { c.Rules = append(c.Rules, validRule(), validRule()) }, []string{"rules[1].name", "rules[2].name"}},
		{"no type", func(c *Config) { c.Rules[0].Match.Type = "" }, []string{"rules[0].match.type"}},
		{"type syntax", func(c *Config) { c.Rules[0].Match.Type = "HTTP request" }, []string{"rules[0].match.type"}},
		{"outcome on a security event", func(c *Config) { c.Rules[0].Match.Type = "auth.login.failure" }, []string{"rules[0].match.outcome[0]"}},
		{"empty outcome and reason", func(c *Config) {
			c.Rules[0].Match.Outcome = []string{"denied", ""}
			c.Rules[0].Match.Reason = []string{""}
		}, []string{"rules[0].match.outcome[1]", "rules[0].match.reason[0]"}},
		{"status", func(c *Config) { c.Rules[0].Match.Status = []int{403, 99, 600} }, []string{"rules[0].match.status[1]", "rules[0].match.status[2]"}},
		{"status on a security event", func(c *Config) {
			c.Rules[0].Match = Match{Type: "session.hijack_suspected", Status: []int{403}}
		}, []string{"rules[0].match.status[0]"}},
		{"every problem at once", func(c *Config) {
			c.MaxKeys = 0
			c.Rules = append(c.Rules, Rule{Name: "b", Match: Match{Type: "x"}, Key: "user", Window: -1, Severity: "low"})
		}, []string{"max_keys", "rules[1].key", "rules[1].threshold", "rules[1].window"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Rules: []Rule{validRule()}, MaxKeys: 10, Samples: 5}
			tc.edit(&c)
			if d := cmp.Diff(errorPaths(t, c.Validate()), tc.paths); d != "" {
				t.Errorf("Validate paths (-got +want):\n%s\nerrors: %v", d, c.Validate())
			}
		})
	}
}

func errorPaths(t *testing.T, err error) []string {
	t.Helper()
	var got []string
	for _, e := range fielderr.Flatten(err) {
		fe, ok := errors.AsType[*fielderr.Error](e)
		if !ok {
			t.Fatalf("error %T %v, want *fielderr.Error", e, e)
		}
		got = append(got, fe.Path)
	}
	slices.Sort(got)
	return got
}

func TestConfigValidateMessages(t *testing.T) {
	c := Config{Rules: []Rule{validRule()}, MaxKeys: 10, Samples: 5}
	c.Rules[0].Key = "user"
	c.Rules[0].Threshold = 0
	c.Rules[0].Window = 0
	got := c.Validate().Error()
	for _, want := range []string{
		`rules[0].key: "user" is not allowed (subject, ip, subject_or_ip)`,
		"rules[0].threshold: must be from 1 to 1000000000, got 0",
		"rules[0].window: must be from 1s to 24h0m0s, got 0s",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Validate() = %q, want it to hold %q", got, want)
		}
	}
}

func decodeConfig(t *testing.T, src string) Config {
	t.Helper()
	var doc struct {
		Alerts Config `yaml:"alerts"`
	}
	if err := yaml.NewDecoder(bytes.NewReader([]byte(src)), yaml.Strict()).Decode(&doc); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return doc.Alerts
}

func TestConfigYAML(t *testing.T) {
	c := decodeConfig(t, `
alerts:
  max_keys: 5000
  rules:
    - name: repeated-denials
      match: {type: http.request, outcome: [denied]}
      key: subject
      threshold: 20
      window: 1m
      severity: medium
      cooldown: 5m
    - name: bulk-read
      match: {type: http.request}
      key: subject
      sum: records
      threshold: 5000
      window: 10m
    - name: hijack
      match: {type: session.hijack_suspected}
      threshold: 1
      window: 1m
      severity: high
`)
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate = %v", err)
	}
	want := Config{MaxKeys: 5000, Samples: DefaultSamples, Rules: []Rule{
		{Name: "repeated-denials", Match: Match{Type: "http.request", Outcome: []string{"denied"}}, Key: KeySubject,
			Threshold: 20, Window: time.Minute, Severity: SeverityMedium, Cooldown: 5 * time.Minute},
		{Name: "bulk-read", Match: Match{Type: "http.request"}, Key: KeySubject, Sum: SumRecords,
			Threshold: 5000, Window: 10 * time.Minute, Severity: SeverityMedium, Cooldown: 10 * time.Minute},
		{Name: "hijack", Match: Match{Type: "session.hijack_suspected"}, Key: KeySubjectOrIP,
			Threshold: 1, Window: time.Minute, Severity: SeverityHigh, Cooldown: time.Minute},
	}}
	if d := cmp.Diff(c, want); d != "" {
		t.Errorf("decoded config (-got +want):\n%s", d)
	}
}

// An alerts section without rules gets the shipped rules; an explicitly
// empty list is refused rather than read as "no alerts".
func TestConfigYAMLNoRules(t *testing.T) {
	c := decodeConfig(t, "alerts: {max_keys: 10}\n")
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate = %v", err)
	}
	if len(c.Rules) != len(DefaultRules()) {
		t.Errorf("rules = %d, want the %d shipped rules", len(c.Rules), len(DefaultRules()))
	}
	c = decodeConfig(t, "alerts: {rules: []}\n")
	c.Defaults()
	if d := cmp.Diff(errorPaths(t, c.Validate()), []string{"rules"}); d != "" {
		t.Errorf("rules: [] paths (-got +want):\n%s", d)
	}
}

func TestNewInvalid(t *testing.T) {
	_, err := New(Config{Rules: []Rule{{Name: "r", Match: Match{Type: "x"}, Key: "host", Threshold: 0, Window: 0}}}, nil, nil)
	if d := cmp.Diff(errorPaths(t, err), []string{"rules[0].key", "rules[0].threshold", "rules[0].window"}); d != "" {
		t.Errorf("New paths (-got +want):\n%s", d)
	}
}

// New applies defaults to its own copy: the caller's rules are unchanged.
func TestNewKeepsCallerConfig(t *testing.T) {
	rules := []Rule{{Name: "r", Match: Match{Type: "x"}, Threshold: 1, Window: time.Minute}}
	if _, err := New(Config{Rules: rules}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if rules[0].Key != "" || rules[0].Cooldown != 0 {
		t.Errorf("New changed the caller's rule: %+v", rules[0])
	}
}
