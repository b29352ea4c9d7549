package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/goccy/go-yaml"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/assertion"
	"github.com/crmgate/crmgate/secret"
)

// evalTimeout bounds the traced evaluation that explains a decision:
// generous, since tracing is slow. The decision itself is made within the
// gateway's deadline (policy.eval_timeout of -c, else its default).
const evalTimeout = 10 * time.Second

// explainNone turns the explanation off: the output is the JSON alone.
const explainNone = "none"

// evalFlags are the flags of `crmgate policy eval`.
type evalFlags struct {
	input      string
	entrypoint entrypointsFlag
	explain    string
	printInput bool
	failOnDeny bool
	request    requestFlags
}

func cmdPolicyEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newPolicyFlags("eval", stderr)
	var f evalFlags
	fs.StringVar(&f.input, "input", "", "JSON file with the whole input (see docs/policy.md)")
	fs.Var(&f.entrypoint, "entrypoint", "rule to query")
	fs.StringVar(&f.explain, "explain", policy.ExplainRules, "rules, notes, fails, full or none")
	fs.BoolVar(&f.printInput, "print-input", false, "print the input before the decision")
	fs.BoolVar(&f.failOnDeny, "fail-on-deny", false, "exit 1 on a deny")
	f.request.register(fs)
	dir, err := parseWithDir(fs, args)
	if err != nil {
		return err
	}
	if len(f.entrypoint) > 1 {
		return usageError(stderr, "eval", "one --entrypoint at a time")
	}
	if f.explain != explainNone && f.explain != policy.ExplainRules && f.explain != policy.ExplainNotes &&
		f.explain != policy.ExplainFails && f.explain != policy.ExplainFull {
		return usageError(stderr, "eval", "--explain %q: want rules, notes, fails, full or none", f.explain)
	}

	var in *policy.Input
	ep := ""
	// The decision is made within the gateway's deadline, so that a
	// policy too slow for it is the timeout deny the gateway would give.
	deadline := policy.DefaultEvalTimeout
	if len(f.entrypoint) == 1 {
		ep = f.entrypoint[0]
	}
	switch {
	case f.input != "":
		if set := f.request.setFlags(fs); len(set) > 0 {
			return usageError(stderr, "eval", "--input is the whole input; it does not combine with %s", set)
		}
		if in, err = readInput(f.input); err != nil {
			return err
		}
	case f.request.request != "":
		req, err := f.request.build(stderr)
		if err != nil {
			return err
		}
		in = req.input
		if ep == "" {
			ep = req.entrypoint
		}
		if req.evalTimeout > 0 {
			deadline = req.evalTimeout
		}
	default:
		return usageError(stderr, "eval", "give the request: --request 'METHOD PATH' --as WHO, or --input FILE")
	}
	if ep == "" {
		ep = policy.DefaultEntrypoint
	}

	set, err := compilePolicy(ctx, dir, []string{ep}, stderr)
	if err != nil {
		return err
	}
	d := set.Decide(ctx, in, ep, deadline)
	var ex *policy.Explanation
	if f.explain != explainNone {
		ectx, cancel := context.WithTimeout(ctx, evalTimeout)
		defer cancel()
		var traced policy.Decision
		if traced, ex, err = set.Explain(ectx, in, ep, f.explain); err != nil {
			return err
		}
		if d.Reason == policy.ReasonTimeout && traced.Reason != policy.ReasonTimeout {
			fmt.Fprintf(stderr, "note: the policy needs more than the gateway's eval_timeout (%s) here; given %s it would decide allow=%v (%s)\n",
				deadline, evalTimeout, traced.Allow, traced.Reason)
		}
	}

	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if f.printInput {
		if err := printInput(enc, in); err != nil {
			return err
		}
	}
	if err := enc.Encode(d); err != nil {
		return err
	}
	if ex != nil {
		printExplanation(stdout, ex)
	}
	switch {
	case d.Failed():
		return fmt.Errorf("the decision failed (a deny, %s): %s", d.Reason, d.Error)
	case !d.Allow && f.failOnDeny:
		return fmt.Errorf("denied: %s", d.Reason)
	}
	return nil
}

// printInput writes the input as the policy sees it: OPA's value of it,
// where absent lists are empty rather than null. An input that has no
// such value (it is invalid: the decision says why) is written as read.
func printInput(enc *json.Encoder, in *policy.Input) error {
	v, err := in.Value()
	if err != nil {
		return enc.Encode(in)
	}
	j, err := ast.JSON(v)
	if err != nil {
		return enc.Encode(in)
	}
	return enc.Encode(j)
}

// printExplanation writes the rules that held and, in the trace modes,
// OPA's trace.
func printExplanation(w io.Writer, ex *policy.Explanation) {
	if len(ex.Rules) == 0 {
		fmt.Fprintln(w, "because: no rule of the set held")
	} else {
		fmt.Fprintln(w, "because:")
		for _, h := range ex.Rules {
			fmt.Fprintf(w, "  %s\n", h)
		}
	}
	if ex.Trace != "" {
		fmt.Fprintln(w, "trace:")
		fmt.Fprint(w, ex.Trace)
	}
}

// readInput reads a whole input written as in docs/policy.md; unknown
// fields are refused, so that a misspelt field cannot silently make a
// test case mean something else.
func readInput(path string) (*policy.Input, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var in policy.Input
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("--input %s: %w (the input's fields are in docs/policy.md)", path, err)
	}
	return &in, nil
}

// loadPolicyConfig loads a gateway configuration for its routes and
// policy section, as `crmgate config validate` checks it, except that no
// secret is read: a freshly generated key stands in for each (a public key
// suiting policy.bundle.algorithm for the bundle's public_key, a signing
// key for the others), so that the secret files and variables of a
// deployment need not exist where its policy is evaluated. Problems are
// printed to stderr.
func loadPolicyConfig(path string, stderr io.Writer) (*config.File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var peek struct {
		Policy struct {
			Bundle struct {
				PublicKey string `yaml:"public_key"`
				Algorithm string `yaml:"algorithm"`
			} `yaml:"bundle"`
		} `yaml:"policy"`
		Audit struct {
			File struct {
				SigningKey string `yaml:"signing_key"`
			} `yaml:"file"`
		} `yaml:"audit"`
	}
	_ = yaml.Unmarshal(raw, &peek) // config.Load reports a malformed file
	bundleKey, auditKey := peek.Policy.Bundle.PublicKey, peek.Audit.File.SigningKey
	standIn := func(ref string) ([]byte, error) {
		switch {
		case bundleKey != "" && ref == bundleKey:
			return policy.StandInVerificationKey(peek.Policy.Bundle.Algorithm)
		case auditKey != "" && ref == auditKey:
			return generateAuditKey()
		}
		return assertion.GenerateKeyPEM()
	}
	res := secret.Resolver{
		LookupEnv: func(name string) (string, bool) {
			b, err := standIn("env:" + name)
			return string(b), err == nil
		},
		ReadFile: func(file string) ([]byte, error) { return standIn("file:" + file) },
	}
	f, err := config.Load(path, res)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, ce.Error())
			return nil, fmt.Errorf("%s: %d problem(s)", path, len(ce.Problems))
		}
		return nil, err
	}
	return f, nil
}

// flagNames lists the names of the flags of fs that were set on the
// command line among names.
func flagNames(fs *flag.FlagSet, names ...string) []string {
	var set []string
	fs.Visit(func(f *flag.Flag) {
		for _, n := range names {
			if f.Name == n {
				set = append(set, "--"+n)
			}
		}
	})
	return set
}
