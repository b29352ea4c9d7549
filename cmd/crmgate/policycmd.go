package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/crmgate/crmgate/policy"
)

const policyUsage = `usage:
  crmgate policy check DIR [--entrypoint RULE]...       compile the set and check every entrypoint is defined
  crmgate policy test  DIR [--timeout 30s]              run the set's *_test.rego tests
  crmgate policy eval  DIR --input FILE [--entrypoint RULE]
                                                         print the decision for an input (JSON, see docs/policy.md)

RULE defaults to data.crmgate.authz.decision. Errors name the file and line.
`

// entrypointsFlag collects --entrypoint values.
type entrypointsFlag []string

func (e *entrypointsFlag) String() string { return fmt.Sprint(*e) }
func (e *entrypointsFlag) Set(v string) error {
	if err := policy.ValidateEntrypoint(v); err != nil {
		return err
	}
	*e = append(*e, v)
	return nil
}

func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, policyUsage)
		return errUsage
	}
	sub, dir := args[0], args[1]
	fs := newFlags("policy "+sub, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage) }
	var eps entrypointsFlag
	fs.Var(&eps, "entrypoint", "rule the gateway queries (repeatable)")
	timeout := fs.Duration("timeout", 30*time.Second, "longest run of the tests")
	input := fs.String("input", "", "JSON file with the input (eval)")
	switch sub {
	case "check", "test", "eval":
	default:
		fmt.Fprintf(stderr, "crmgate policy: unknown subcommand %q\n\n%s", sub, policyUsage)
		return errUsage
	}
	if err := parseFlags(fs, args[2:]); err != nil {
		return err
	}
	if fs.NArg() != 0 || (sub == "eval" && *input == "") {
		fmt.Fprint(stderr, policyUsage)
		return errUsage
	}
	if len(eps) == 0 {
		eps = entrypointsFlag{policy.DefaultEntrypoint}
	}
	src, err := policy.ReadSource(dir)
	if err != nil {
		return err
	}
	set, err := policy.Compile(ctx, src, eps)
	if err != nil {
		var ce *policy.CompileError
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, ce.Error())
			return fmt.Errorf("%s: %d problem(s)", dir, max(1, len(ce.Errors)))
		}
		return err
	}
	switch sub {
	case "check":
		fmt.Fprintf(stdout, "%s: ok (revision %s, %d module(s), entrypoints %v)\n", dir, set.Revision(), len(set.Modules()), set.Entrypoints())
		return nil
	case "test":
		tctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		rep, err := set.Test(tctx, *timeout)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s\n", dir, rep)
		if !rep.OK() {
			return errors.New("tests failed")
		}
		return nil
	default: // eval
		b, err := os.ReadFile(*input)
		if err != nil {
			return err
		}
		var in policy.Input
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return fmt.Errorf("--input %s: %w (the input's fields are in docs/policy.md)", *input, err)
		}
		d := set.Decide(ctx, &in, eps[0], 5*time.Second)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return err
		}
		if d.Failed() {
			return fmt.Errorf("the decision failed (a deny): %s", d.Error)
		}
		return nil
	}
}
