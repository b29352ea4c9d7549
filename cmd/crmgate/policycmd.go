package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/cover"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
)

const policyUsage = `usage:
  crmgate policy check DIR [--entrypoint RULE]... [-c CONFIG]
        compile the set (strict mode), check every entrypoint is defined and
        gives decisions of the documented schema
  crmgate policy test DIR [--timeout 30s] [--coverage] [--min-coverage PCT] [--format text|json]
        run the set's *_test.rego tests; --coverage reports which lines of the
        policy they evaluate, --min-coverage fails below PCT percent (implies
        --coverage), --format json prints OPA's coverage JSON
  crmgate policy eval DIR --request 'METHOD PATH[?QUERY]' --as WHO [flags]
  crmgate policy eval DIR --input FILE [--entrypoint RULE]
        print the decision for one request, and the rules that made it

eval, the request (as the gateway would build the policy's input):
  -c CONFIG              resolve the route as a gateway with this configuration
                         would (secrets are not read); the route's policy is the
                         entrypoint, the policy section's headers the allow-list
  --route ID --param K=V --tag T
                         without -c: the route, by hand (--param, --tag repeat)
  --host HOST            Host header (default localhost)
  --header 'Name: value' request header (repeatable); only allow-listed ones
                         reach the policy, credential headers are refused
  --client-ip IP         the client's address
  --time RFC3339         when the request arrives (default now)
eval, the caller:
  --as USER              a signed-in user: --role R, --group G, --email E,
                         --acr A, --amr M (repeatable; default pwd),
                         --auth-age 10m (since sign-in; default 0s)
  --as key:NAME          an API key (also --api-key NAME): --scope S, --tier T
  --as service:ID        a service client (bearer token): --role R
  --as anonymous         no credentials
  --subject FILE         input.subject as JSON instead (unknown fields refused)
eval, the output:
  --entrypoint RULE      the rule to query (default: the route's, else the
                         configuration's, else data.crmgate.authz.decision)
  --explain MODE         rules (default: the rules that held, file:line),
                         notes, fails or full (OPA's trace, as opa eval
                         --explain), none
  --print-input          print the input before the decision
  --fail-on-deny         exit 1 on a deny (default: only a failed decision,
                         e.g. undefined, is an error)

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

// usageError prints msg and the usage hint, and returns errUsage.
func usageError(stderr io.Writer, sub, format string, args ...any) error {
	fmt.Fprintf(stderr, "crmgate policy %s: %s\n(crmgate policy -h lists the flags)\n", sub, fmt.Sprintf(format, args...))
	return errUsage
}

func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return errUsage
	}
	switch args[0] {
	case "check":
		return cmdPolicyCheck(ctx, args[1:], stdout, stderr)
	case "test":
		return cmdPolicyTest(ctx, args[1:], stdout, stderr)
	case "eval":
		return cmdPolicyEval(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, policyUsage)
		return nil
	}
	fmt.Fprintf(stderr, "crmgate policy: unknown subcommand %q\n\n%s", args[0], policyUsage)
	return errUsage
}

// parseWithDir parses the flags of a subcommand whose one argument, DIR,
// may come before, between or after them.
func parseWithDir(fs *flag.FlagSet, args []string) (string, error) {
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	if fs.NArg() == 0 {
		return "", usageError(fs.Output(), strings.TrimPrefix(fs.Name(), "crmgate policy "), "the policy folder DIR is missing")
	}
	dir := fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return "", err
	}
	if fs.NArg() != 0 {
		return "", usageError(fs.Output(), strings.TrimPrefix(fs.Name(), "crmgate policy "), "unexpected argument %q", fs.Arg(0))
	}
	return dir, nil
}

func newPolicyFlags(sub string, stderr io.Writer) *flag.FlagSet {
	fs := newFlags("policy "+sub, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage) }
	return fs
}

// compilePolicy reads and compiles dir for eps, printing compile errors
// (each with file and line) to stderr.
func compilePolicy(ctx context.Context, dir string, eps []string, stderr io.Writer) (*policy.Set, error) {
	src, err := policy.ReadSource(dir)
	if err != nil {
		return nil, err
	}
	set, err := policy.Compile(ctx, src, eps)
	if err != nil {
		var ce *policy.CompileError
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, ce.Error())
			return nil, fmt.Errorf("%s: %d problem(s)", dir, max(1, len(ce.Errors)))
		}
		return nil, err
	}
	return set, nil
}

func cmdPolicyCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newPolicyFlags("check", stderr)
	var eps entrypointsFlag
	fs.Var(&eps, "entrypoint", "rule the gateway queries (repeatable)")
	cfgPath := fs.String("c", "", "configuration file: also check every entrypoint its routes name")
	dir, err := parseWithDir(fs, args)
	if err != nil {
		return err
	}
	if *cfgPath != "" {
		f, err := loadPolicyConfig(*cfgPath, stderr)
		if err != nil {
			return err
		}
		eps = append(eps, configEntrypoints(f)...)
	}
	if len(eps) == 0 {
		eps = entrypointsFlag{policy.DefaultEntrypoint}
	}
	set, err := compilePolicy(ctx, dir, eps, stderr)
	if err != nil {
		return err
	}
	if probs := set.CheckDecisions(ctx); len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(stderr, p)
		}
		return fmt.Errorf("%s: %d problem(s) with the decisions", dir, len(probs))
	}
	fmt.Fprintf(stdout, "%s: ok (revision %s, %d module(s), entrypoints %v)\n", dir, set.Revision(), len(set.Modules()), set.Entrypoints())
	return nil
}

// configEntrypoints are the entrypoints a gateway with f prepares: its
// default and every route's.
func configEntrypoints(f *config.File) []string {
	def := policy.DefaultEntrypoint
	if f.Policy != nil {
		def = f.Policy.Entrypoint
	}
	eps := []string{def}
	for _, r := range f.Routes {
		if r.Policy != "" {
			eps = append(eps, r.Policy)
		}
	}
	return eps
}

// percentFlag is a percentage from 0 to 100.
type percentFlag struct {
	v   float64
	set bool
}

func (p *percentFlag) String() string { return strconv.FormatFloat(p.v, 'f', -1, 64) }
func (p *percentFlag) Set(s string) error {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v < 0 || v > 100 {
		return fmt.Errorf("%q is not a percentage from 0 to 100", s)
	}
	p.v, p.set = v, true
	return nil
}

func cmdPolicyTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newPolicyFlags("test", stderr)
	var eps entrypointsFlag
	fs.Var(&eps, "entrypoint", "rule the gateway queries (repeatable)")
	timeout := fs.Duration("timeout", 30*time.Second, "longest run of the tests")
	coverage := fs.Bool("coverage", false, "report the lines of the policy the tests evaluate")
	var minCoverage percentFlag
	fs.Var(&minCoverage, "min-coverage", "fail when the tests cover less than this percentage (implies --coverage)")
	format := fs.String("format", "text", "text, or json: OPA's coverage report (implies --coverage)")
	dir, err := parseWithDir(fs, args)
	if err != nil {
		return err
	}
	switch *format {
	case "text":
	case "json":
		*coverage = true
	default:
		return usageError(stderr, "test", "--format %q: want text or json", *format)
	}
	if minCoverage.set {
		*coverage = true
	}
	if len(eps) == 0 {
		eps = entrypointsFlag{policy.DefaultEntrypoint}
	}
	set, err := compilePolicy(ctx, dir, eps, stderr)
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var opts []policy.TestOption
	if *coverage {
		opts = append(opts, policy.WithCoverage())
	}
	rep, err := set.Test(tctx, *timeout, opts...)
	if err != nil {
		return err
	}
	summary := stdout
	if *format == "json" {
		// stdout is the coverage JSON alone, as opa test prints it.
		summary = stderr
	}
	fmt.Fprintf(summary, "%s: %s\n", dir, rep)
	if c := rep.Coverage; c != nil {
		if *format == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(c); err != nil {
				return err
			}
		} else {
			printCoverage(stdout, dir, c)
		}
	}
	if !rep.OK() {
		return errors.New("tests failed")
	}
	if minCoverage.set && rep.Coverage.Coverage < minCoverage.v {
		return fmt.Errorf("coverage %.2f%% is below --min-coverage %s%%: test the lines listed as not covered", rep.Coverage.Coverage, minCoverage.String())
	}
	return nil
}

// printCoverage writes the per-file coverage and every range no test
// evaluated, each as file:line so that an editor opens it.
func printCoverage(w io.Writer, dir string, c *policy.CoverageReport) {
	fmt.Fprintf(w, "coverage of %s: %.2f%% (%d of %d lines)\n", dir, c.Coverage, c.CoveredLines, c.CoveredLines+c.NotCoveredLines)
	for _, f := range c.Files() {
		fmt.Fprintf(w, "  %s: %.2f%% (%d of %d lines)\n", f.File, f.Coverage, f.CoveredLines, f.CoveredLines+f.NotCoveredLines)
		for _, r := range f.Uncovered {
			note := ""
			switch {
			case len(r.Kinds) == 0:
			case r.Kinds[0] == cover.KindIndexExcluded:
				note = " (OPA's rule indexing skipped it: no test gives an input it could match)"
			case r.Kinds[0] == cover.KindEarlyExit:
				note = " (evaluation stopped early: no test needs it)"
			}
			fmt.Fprintf(w, "    %s: not covered%s\n", r, note)
		}
	}
}
