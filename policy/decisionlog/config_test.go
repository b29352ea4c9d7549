package decisionlog

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/fielderr"
)

func TestDefaults(t *testing.T) {
	var c Config
	c.Defaults()
	want := Config{Output: OutputOff, MaskDefaults: ptr(true), Queue: DefaultQueue, IncludeAllowed: ptr(true)}
	if d := cmp.Diff(c, want); d != "" {
		t.Errorf("Defaults (-got +want):\n%s", d)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of the defaults: %v", err)
	}
	off := Config{MaskDefaults: ptr(false), IncludeAllowed: ptr(false)}
	off.Defaults()
	if *off.MaskDefaults || *off.IncludeAllowed {
		t.Error("Defaults overrode explicit false")
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, c := range []Config{
		{Output: OutputStdout},
		{Output: OutputStderr},
		{Output: "./decisions.log"},
		{Output: "/var/log/crmgate/decisions.log"},
		{Mask: []string{"/input", "/result/reason", "/input/request/headers/user-agent", "/input/a~1b~0c/0"}},
		// A mask equal to or inside a default one is redundant, not wrong.
		{Mask: []string{"/input/subject/email", "/input/subject/claims/name"}},
		{MaskDefaults: ptr(false), Upsert: []Upsert{{Path: "/input/subject/claims/name", Value: "x"}}},
		{Upsert: []Upsert{{Path: "/input/request/client_ip", Value: nil}}, MaskDefaults: ptr(false)},
		{Labels: map[string]string{"env": "prod", "region": "eu"}},
	} {
		c.Defaults()
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", c, err)
		}
	}
}

// Every problem is reported at once, naming its key.
func TestValidateErrors(t *testing.T) {
	c := Config{
		Output: "syslog",
		Mask: []string{
			"/subject/email",
			"input/subject/email",
			"/input/a~2b",
			"",
			"/input/x",
		},
		Upsert: []Upsert{
			{Path: "/input/subject/claims/name", Value: "x"},
			{Path: "/input/x", Value: "y"},
			{Path: "/input/y", Value: "a"},
			{Path: "/input/y/z", Value: "b"},
			{Path: "/result/f", Value: func() {}},
			{Path: "/nd_builtin_cache", Value: 1},
		},
		Queue:  -1,
		Labels: map[string]string{"id": "x", "version": "y", "": "z"},
	}
	c.Defaults()
	var b strings.Builder
	for _, e := range fielderr.Flatten(c.Validate()) {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	golden(t, "config_errors.golden", []byte(b.String()))
}

func TestValidateOutput(t *testing.T) {
	for _, out := range []string{"", "syslog", "stdot", "http://collector/logs", "/var/log/", "./a\x00b"} {
		c := Config{Output: out}
		c.Queue = DefaultQueue
		err := c.Validate()
		if err == nil {
			t.Errorf("Validate(output %q) = nil, want an error", out)
			continue
		}
		if !strings.HasPrefix(err.Error(), "output: ") {
			t.Errorf("Validate(output %q) = %v, want it on output", out, err)
		}
	}
}
