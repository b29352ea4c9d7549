package alert

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/crmgate/crmgate/fielderr"
)

// Key kinds: what a rule counts per.
const (
	// KeySubject counts per SubjectID; anonymous observations are not
	// counted.
	KeySubject = "subject"
	// KeyIP counts per client address (IPv6 per /64); observations
	// without one are not counted.
	KeyIP = "ip"
	// KeySubjectOrIP counts per SubjectID, and anonymous observations per
	// client address.
	KeySubjectOrIP = "subject_or_ip"
)

// What a rule adds up (Rule.Sum).
const (
	// SumCount counts matching observations (Rule.Sum empty).
	SumCount = ""
	// SumRecords adds up Observation.Records.
	SumRecords = "records"
)

// Severities, from OCSF's severity_id 2 to 5.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// TypeHTTPRequest is the event type of a request's own audit event, the
// only one with an outcome, a status and records.
const TypeHTTPRequest = "http.request"

// Bounds of a rule and of the configuration.
const (
	MinWindow    = time.Second
	MaxWindow    = 24 * time.Hour
	MaxCooldown  = 7 * 24 * time.Hour
	MaxThreshold = 1_000_000_000
	MaxSamples   = 100
	// MaxMaxKeys bounds Config.MaxKeys: 10 million keys are a few GB.
	MaxMaxKeys = 10_000_000
)

// Defaults of Config.
const (
	DefaultMaxKeys = 20_000
	DefaultSamples = 5
)

// Config configures the alert rules. The zero value is valid once Defaults
// has run: it holds the shipped rules (DefaultRules). A gateway without
// alerts leaves the section out rather than configuring it empty.
type Config struct {
	Rules   []Rule `yaml:"rules" jsonschema_description:"The alert rules. Absent: the shipped rules (see docs/alerts.md): repeated denials, failed-login and failed-credential bursts, hijack suspected, bulk reads, step-up failures. Given: exactly these rules, at least one."`
	MaxKeys int    `yaml:"max_keys" jsonschema_description:"Most subjects each rule tracks, and as many client addresses; 250 to 400 bytes each. When full, a key with an empty window goes first, else the one that counted least among the least recently seen. Default 20000 (at most about 8 MB per rule and key kind)."`
	Samples int    `yaml:"sample_request_ids" jsonschema_description:"Most request ids an alert lists, the latest that counted towards it, from 1 to 100. Default 5."`
}

// Rule is one alert rule: it fires when the observations that Match, per
// Key, reach Threshold (counted, or their Records summed) within Window.
type Rule struct {
	Name      string        `yaml:"name" jsonschema_description:"The rule's name, unique: 1 to 64 lower-case letters, digits, _ and -. Alerts and metrics carry it."`
	Match     Match         `yaml:"match" jsonschema_description:"Which audit events count."`
	Key       string        `yaml:"key" jsonschema_description:"What the rule counts per: subject (anonymous events do not count), ip (the client address, IPv6 per /64) or subject_or_ip (the subject, and anonymous events per address). Default subject_or_ip."`
	Sum       string        `yaml:"sum" jsonschema_description:"Empty (default) to count matching events; records to add up the records each response returned (http.request only)."`
	Threshold int64         `yaml:"threshold" jsonschema_description:"The alert fires when the count (or sum) within the window reaches this, from 1 to 1000000000. Required."`
	Window    time.Duration `yaml:"window" jsonschema_description:"The sliding window, from 1s to 24h, kept to a twentieth of itself (see docs/alerts.md). Required."`
	Severity  string        `yaml:"severity" jsonschema_description:"low, medium (default), high or critical."`
	Cooldown  time.Duration `yaml:"cooldown" jsonschema_description:"After firing, the rule does not fire again for the same key for this long, up to 7 days. Default the window."`
}

// Match selects the observations a rule counts. Every list given must hold
// the observation's value; an empty list matches any.
type Match struct {
	Type    string   `yaml:"type" jsonschema_description:"The audit event type, e.g. http.request, auth.login.failure, auth.step_up.failure, session.hijack_suspected. Required; a type the gateway does not emit is allowed and never matches."`
	Outcome []string `yaml:"outcome" jsonschema_description:"Outcomes of http.request events that count, e.g. denied, unauthenticated, rate_limited, step_up. Empty: any."`
	Reason  []string `yaml:"reason" jsonschema_description:"Reasons that count, e.g. invalid_credential, policy, state_replay. Empty: any."`
	Status  []int    `yaml:"status" jsonschema_description:"HTTP statuses of http.request events that count. Empty: any."`
}

// DefaultRules returns the shipped rules, a new slice on every call. They
// are what a configuration without rules gets; docs/alerts.md lists them
// in YAML.
func DefaultRules() []Rule {
	return []Rule{
		{
			// Someone probing what they may not do.
			Name:      "repeated-denials",
			Match:     Match{Type: TypeHTTPRequest, Outcome: []string{"denied"}},
			Key:       KeySubjectOrIP,
			Threshold: 20, Window: time.Minute, Severity: SeverityMedium, Cooldown: 10 * time.Minute,
		},
		{
			// Replayed or forged sign-in callbacks from one address.
			Name:      "failed-login-burst",
			Match:     Match{Type: "auth.login.failure"},
			Key:       KeyIP,
			Threshold: 10, Window: 5 * time.Minute, Severity: SeverityMedium, Cooldown: 15 * time.Minute,
		},
		{
			// Guessing API keys or bearer tokens from one address; once the
			// failed-credentials tier blocks the address, its refusals go on
			// counting.
			Name: "failed-credential-burst",
			Match: Match{Type: TypeHTTPRequest, Outcome: []string{"unauthenticated", "rate_limited"},
				Reason: []string{"invalid_credential", "failed_credentials"}},
			Key:       KeyIP,
			Threshold: 20, Window: 5 * time.Minute, Severity: SeverityMedium, Cooldown: 15 * time.Minute,
		},
		{
			// Every suspected hijack is worth a look.
			Name:      "hijack-suspected",
			Match:     Match{Type: "session.hijack_suspected"},
			Key:       KeySubjectOrIP,
			Threshold: 1, Window: time.Minute, Severity: SeverityHigh, Cooldown: time.Minute,
		},
		{
			// Exfiltration: far more records than a person reads.
			Name:      "bulk-read",
			Match:     Match{Type: TypeHTTPRequest},
			Key:       KeySubjectOrIP,
			Sum:       SumRecords,
			Threshold: 5000, Window: 10 * time.Minute, Severity: SeverityHigh, Cooldown: 30 * time.Minute,
		},
		{
			// A stolen session whose thief cannot pass the second factor.
			Name:      "step-up-failures",
			Match:     Match{Type: "auth.step_up.failure"},
			Key:       KeySubjectOrIP,
			Threshold: 5, Window: 10 * time.Minute, Severity: SeverityMedium, Cooldown: 30 * time.Minute,
		},
	}
}

// Defaults fills unset fields with their defaults: the shipped rules when
// Rules is nil, and the defaults of every rule.
func (c *Config) Defaults() {
	if c.Rules == nil {
		c.Rules = DefaultRules()
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.Samples == 0 {
		c.Samples = DefaultSamples
	}
	for i := range c.Rules {
		c.Rules[i].defaults()
	}
}

// defaults fills unset fields: Key subject_or_ip, Severity medium,
// Cooldown the window.
func (r *Rule) defaults() {
	if r.Key == "" {
		r.Key = KeySubjectOrIP
	}
	if r.Severity == "" {
		r.Severity = SeverityMedium
	}
	if r.Cooldown == 0 {
		r.Cooldown = r.Window
	}
}

var (
	ruleNameRe  = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	eventTypeRe = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)*$`)
)

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	if c.MaxKeys < 1 || c.MaxKeys > MaxMaxKeys {
		add("max_keys", "must be from 1 to %d, got %d", MaxMaxKeys, c.MaxKeys)
	}
	if c.Samples < 1 || c.Samples > MaxSamples {
		add("sample_request_ids", "must be from 1 to %d, got %d", MaxSamples, c.Samples)
	}
	if len(c.Rules) == 0 {
		add("rules", "empty: leave rules out for the shipped rules, or leave the alerts section out for no alerts")
	}
	seen := map[string]int{}
	for i, r := range c.Rules {
		path := fmt.Sprintf("rules[%d]", i)
		if j, dup := seen[r.Name]; dup && r.Name != "" {
			add(path+".name", "%q is the name of rules[%d] too", r.Name, j)
		} else {
			seen[r.Name] = i
		}
		errs = append(errs, fielderr.Prefix(path, r.validate()))
	}
	return errors.Join(errs...)
}

func (r Rule) validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	if !ruleNameRe.MatchString(r.Name) {
		add("name", "%q is not a rule name (1 to 64 lower-case letters, digits, _ and -)", r.Name)
	}
	errs = append(errs, fielderr.Prefix("match", r.Match.validate()))
	switch r.Key {
	case KeySubject, KeyIP, KeySubjectOrIP:
	default:
		add("key", "%q is not allowed (subject, ip, subject_or_ip)", r.Key)
	}
	switch r.Sum {
	case SumCount:
	case SumRecords:
		if r.Match.Type != TypeHTTPRequest {
			add("sum", "records are counted on %s events only, not %q", TypeHTTPRequest, r.Match.Type)
		}
	default:
		add("sum", "%q is not allowed (records, or leave it out to count events)", r.Sum)
	}
	if r.Threshold < 1 || r.Threshold > MaxThreshold {
		add("threshold", "must be from 1 to %d, got %d", MaxThreshold, r.Threshold)
	}
	if r.Window < MinWindow || r.Window > MaxWindow {
		add("window", "must be from %s to %s, got %s", MinWindow, MaxWindow, r.Window)
	}
	if r.Cooldown < 0 || r.Cooldown > MaxCooldown {
		add("cooldown", "must be from 0s to %s, got %s", MaxCooldown, r.Cooldown)
	}
	if _, ok := severityIDs[r.Severity]; !ok {
		add("severity", "%q is not allowed (low, medium, high, critical)", r.Severity)
	}
	return errors.Join(errs...)
}

func (m Match) validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	switch {
	case m.Type == "":
		add("type", "required: the audit event type, e.g. %s or auth.login.failure", TypeHTTPRequest)
	case !eventTypeRe.MatchString(m.Type):
		add("type", "%q is not an event type (dot-separated lower-case words, e.g. %s)", m.Type, TypeHTTPRequest)
	}
	// Outcome and status are checked against a valid type only: one
	// mistake, one error.
	request := m.Type == TypeHTTPRequest || !eventTypeRe.MatchString(m.Type)
	for i, o := range m.Outcome {
		switch {
		case !request:
			add(fmt.Sprintf("outcome[%d]", i), "only %s events have an outcome, not %q", TypeHTTPRequest, m.Type)
		case o == "":
			add(fmt.Sprintf("outcome[%d]", i), "empty")
		}
	}
	for i, r := range m.Reason {
		if r == "" {
			add(fmt.Sprintf("reason[%d]", i), "empty")
		}
	}
	for i, s := range m.Status {
		switch {
		case !request:
			add(fmt.Sprintf("status[%d]", i), "only %s events have a status, not %q", TypeHTTPRequest, m.Type)
		case s < 100 || s > 599:
			add(fmt.Sprintf("status[%d]", i), "%d is not an HTTP status (100 to 599)", s)
		}
	}
	return errors.Join(errs...)
}
