package decisionlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/crmgate/crmgate/fielderr"
)

// Outputs that are not files.
const (
	// OutputOff writes no decision log (the default).
	OutputOff = "off"
	// OutputStdout writes to the process's standard output.
	OutputStdout = "stdout"
	// OutputStderr writes to the process's standard error.
	OutputStderr = "stderr"
)

// DefaultQueue is the default number of events waiting to be written
// before further ones are dropped.
const DefaultQueue = 4096

// maxQueue bounds Config.Queue: each waiting event holds its encoded line.
const maxQueue = 1 << 20

// DefaultMasks are the pointers erased from every event unless
// Config.MaskDefaults is false: the fields of the input that identify a
// person beyond the subject's id, or that hold free text which may carry
// personal data or secrets. The audit log keeps who did what; a decision
// log is for understanding and replaying policy decisions, is often kept
// longer and read more widely, and does not need them. docs/policy.md
// gives the reason for each.
var DefaultMasks = []string{
	"/input/request/client_ip",
	"/input/request/query",
	"/input/request/headers/referer",
	"/input/subject/email",
	"/input/subject/claims",
	"/input/subject/api_key/owner",
}

// reservedLabels are set by the logger itself (OPA's instance labels).
var reservedLabels = []string{"id", "version"}

// Config configures the decision log. The zero value is valid once
// Defaults has run: no decision log. MaskDefaults and IncludeAllowed are
// pointers so that an absent key can mean true; nil means true.
type Config struct {
	Output         string            `yaml:"output" jsonschema_description:"Where decision log events go, one JSON line each in OPA's decision log event format: off (default), stdout, stderr, or the path of a file (it must contain a /, e.g. ./decisions.log), opened for appending and created with mode 0600."`
	Mask           []string          `yaml:"mask" jsonschema_description:"JSON pointers (RFC 6901) of event fields to erase, as OPA's mask policy does, e.g. /input/request/headers/user-agent; each must start with /input or /result. An erased field that was present is listed in the event's erased field."`
	MaskDefaults   *bool             `yaml:"mask_defaults" jsonschema_description:"Also erase the built-in list of fields that identify a person or hold free text: /input/request/client_ip, /input/request/query, /input/request/headers/referer, /input/subject/email, /input/subject/claims, /input/subject/api_key/owner. Default true."`
	Upsert         []Upsert          `yaml:"upsert" jsonschema_description:"Fields to replace with a fixed value (OPA's upsert mask operation), listed in the event's masked field. A missing field is added where its parent is an object."`
	Queue          int               `yaml:"queue" jsonschema_description:"Events waiting to be written; when the queue is full further events are dropped and counted, so a slow output never slows requests. Default 4096."`
	Labels         map[string]string `yaml:"labels" jsonschema_description:"Labels added to every event's labels, next to id (the gateway instance) and version, which cannot be set here."`
	IncludeAllowed *bool             `yaml:"include_allowed" jsonschema_description:"Log allowed requests too. Default true; false logs denies only."`
}

// Upsert replaces the field at Path with Value.
type Upsert struct {
	Path  string `yaml:"path" jsonschema_description:"JSON pointer (RFC 6901) of the field, starting with /input or /result, e.g. /input/request/client_ip."`
	Value any    `yaml:"value" jsonschema_description:"The value written instead: any JSON value, null included."`
}

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	if c.Output == "" {
		c.Output = OutputOff
	}
	if c.MaskDefaults == nil {
		c.MaskDefaults = ptr(true)
	}
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	if c.IncludeAllowed == nil {
		c.IncludeAllowed = ptr(true)
	}
}

func ptr[T any](v T) *T { return &v }

// enabled reports whether a *bool set by Defaults is true; nil counts as
// the default, true.
func enabled(b *bool) bool { return b == nil || *b }

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run; it opens nothing.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }

	switch out := c.Output; {
	case out == OutputOff, out == OutputStdout, out == OutputStderr:
	case out == "":
		add("output", "required: off, stdout, stderr or a file path")
	case strings.Contains(out, "://"):
		add("output", "%q: only files are supported (off, stdout, stderr, or a path such as /var/log/crmgate/decisions.log)", out)
	case !strings.Contains(out, "/"):
		add("output", "%q is not allowed (off, stdout, stderr, or a file path containing a /, e.g. ./%s)", out, out)
	case strings.HasSuffix(out, "/"):
		add("output", "%q names a folder; name the file", out)
	case strings.ContainsRune(out, 0):
		add("output", "%q holds a NUL byte", out)
	}
	if c.Queue < 1 || c.Queue > maxQueue {
		add("queue", "must be between 1 and %d, got %d", maxQueue, c.Queue)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
		switch {
		case k == "":
			add("labels", "a label name is empty")
		case slices.Contains(reservedLabels, k):
			add("labels."+k, "is set by crmgate (the instance id and version) and cannot be configured")
		}
	}
	_, ruleErrs := compileRules(c.rules())
	errs = append(errs, ruleErrs...)
	return errors.Join(errs...)
}

// rules lists the mask rules of the configuration: the default masks (when
// on), then mask, then upsert, each with the key that configured it.
func (c Config) rules() []rule {
	var rs []rule
	if enabled(c.MaskDefaults) {
		for _, p := range DefaultMasks {
			rs = append(rs, rule{origin: "mask_defaults", pointer: p, op: opErase})
		}
	}
	for i, p := range c.Mask {
		rs = append(rs, rule{origin: fmt.Sprintf("mask[%d]", i), pointer: p, op: opErase})
	}
	for i, u := range c.Upsert {
		r := rule{origin: fmt.Sprintf("upsert[%d].path", i), pointer: u.Path, op: opUpsert}
		v, err := json.Marshal(u.Value)
		if err != nil {
			r.valueErr = fielderr.New(fmt.Sprintf("upsert[%d].value", i), "has no JSON form: %v", err)
		}
		r.value = v
		rs = append(rs, r)
	}
	return rs
}
