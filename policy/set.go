package policy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing/fstest"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// deniedBuiltins are built-in functions a policy may not call: a decision
// must depend on its input and the set's data only, so that it is
// reproducible by tests, bounded by the evaluation deadline and cannot
// leak the gateway's environment.
var deniedBuiltins = []string{
	"http.send",          // network calls on the request path
	"net.lookup_ip_addr", // DNS on the request path
	"opa.runtime",        // the process environment, secrets included
}

// Set is one compiled policy set: the modules of a Source (tests apart),
// its data, and one prepared query per entrypoint. It is immutable and
// safe for concurrent use; a reload builds a new Set.
type Set struct {
	src      *Source
	compiler *ast.Compiler
	store    storage.Store
	// modules are every parsed module, tests included, for Test.
	modules map[string]*ast.Module
	// queries holds the prepared query of each entrypoint, by the
	// spelling the caller gave and by its canonical form.
	queries     map[string]*rego.PreparedEvalQuery
	entrypoints []string
	// asked are the entrypoints the engine asked for, as spelt.
	asked []string
	// nondet are the non-deterministic built-ins the enforced modules
	// call; a set with any is never reused.
	nondet []string
	// reuse keeps decisions for identical inputs; nil: none are kept.
	// The engine sets it before the set becomes active.
	reuse *reuse
}

// CompileError is a policy set that does not compile: parse errors, type
// errors, strict-mode errors, unknown built-ins, an entrypoint no rule
// defines. Errors holds OPA's errors, each with file and line.
type CompileError struct {
	// Dir is the folder of the set.
	Dir string
	// Errors are OPA's errors; their file names are joined to Dir.
	Errors ast.Errors
	// Err is set instead of Errors for problems OPA does not locate.
	Err error
}

func (e *CompileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy set %s does not compile", e.Dir)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	for _, x := range e.Errors {
		b.WriteString("\n  ")
		b.WriteString(x.Error())
	}
	return b.String()
}

func (e *CompileError) Unwrap() error { return e.Err }

// locate rewrites the file names of errs, relative to the source's folder,
// into paths that an editor opens: Dir joined with the name.
func (src *Source) locate(errs ast.Errors) ast.Errors {
	out := make(ast.Errors, len(errs))
	for i, e := range errs {
		c := *e
		if e.Location != nil {
			loc := *e.Location
			loc.File = src.path(loc.File)
			c.Location = &loc
		}
		out[i] = &c
	}
	return out
}

// path is the file name of a module or test, joined to Dir.
func (src *Source) path(name string) string {
	if name == "" || src.Dir == "" {
		return name
	}
	return filepath.Join(src.Dir, filepath.FromSlash(name))
}

// capabilities are OPA's, less deniedBuiltins and the network.
func capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		return slices.Contains(deniedBuiltins, b.Name)
	})
	caps.AllowNet = []string{}
	return caps
}

// newCompiler is the compiler of both the enforced set and its tests:
// Rego v1, strict mode (unused variables and imports, shadowed names are
// errors), no print statements, the restricted capabilities.
func newCompiler() *ast.Compiler {
	return ast.NewCompiler().
		WithDefaultRegoVersion(ast.RegoV1).
		WithCapabilities(capabilities()).
		WithStrict(true).
		WithEnablePrintStatements(false)
}

// Compile parses and compiles src, loads its data and prepares one query
// per entrypoint (at least one is required). Test modules (*_test.rego)
// are parsed but not part of the enforced set. Errors are *CompileError.
func Compile(ctx context.Context, src *Source, entrypoints []string) (*Set, error) {
	fail := func(err error) (*Set, error) {
		var errs ast.Errors
		if errors.As(err, &errs) {
			return nil, &CompileError{Dir: src.Dir, Errors: src.locate(errs)}
		}
		var le loader.Errors
		if errors.As(err, &le) {
			ce := &CompileError{Dir: src.Dir}
			for _, e := range le {
				var ae *ast.Error
				if errors.As(e, &ae) {
					ce.Errors = append(ce.Errors, src.locate(ast.Errors{ae})...)
				} else {
					ce.Err = errors.Join(ce.Err, e)
				}
			}
			return nil, ce
		}
		return nil, &CompileError{Dir: src.Dir, Err: err}
	}
	if len(entrypoints) == 0 {
		return fail(errors.New("no entrypoint to prepare"))
	}
	for _, ep := range entrypoints {
		if err := ValidateEntrypoint(ep); err != nil {
			return fail(fmt.Errorf("entrypoint: %w", err))
		}
	}

	// The loader gives the same layout as `opa test DIR` and `opa eval -d
	// DIR`: a data file's content is placed under data by its folder's
	// path. It reads the snapshot, not the folder, so that the revision
	// names exactly what was compiled.
	fsys := make(fstest.MapFS, len(src.files))
	for name, b := range src.files {
		fsys[name] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	loaded, err := loader.NewFileLoader().
		WithFS(fsys).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).
		WithCapabilities(capabilities()).
		All([]string{"."})
	if err != nil {
		return fail(err)
	}

	modules := make(map[string]*ast.Module, len(loaded.Modules))
	enforced := make(map[string]*ast.Module, len(loaded.Modules))
	for _, m := range loaded.Modules {
		modules[m.Name] = m.Parsed
		if !isTestFile(m.Name) {
			enforced[m.Name] = m.Parsed
		}
	}
	if len(enforced) == 0 {
		return fail(errNoPolicy)
	}
	compiler := newCompiler()
	if compiler.Compile(enforced); compiler.Failed() {
		return fail(compiler.Errors)
	}
	store := inmem.NewFromObjectWithOpts(loaded.Documents,
		inmem.OptRoundTripOnWrite(true), inmem.OptReturnASTValuesOnRead(true))

	s := &Set{
		src:      src,
		compiler: compiler,
		store:    store,
		modules:  modules,
		queries:  make(map[string]*rego.PreparedEvalQuery, 2*len(entrypoints)),
		nondet:   nondeterministic(enforced),
	}
	for _, ep := range entrypoints {
		ref := ast.MustParseRef(ep)
		canon := ref.String()
		if pq, ok := s.queries[canon]; ok {
			s.queries[ep] = pq
			continue
		}
		if len(compiler.GetRules(ref)) == 0 {
			return fail(fmt.Errorf("entrypoint %s: no rule defines it", canon))
		}
		pq, err := rego.New(
			rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(ref)))),
			rego.Compiler(compiler),
			rego.Store(store),
			// A built-in error is an evaluation error (a deny with
			// ReasonError) rather than a silently undefined expression.
			rego.StrictBuiltinErrors(true),
		).PrepareForEval(ctx)
		if err != nil {
			return fail(fmt.Errorf("entrypoint %s: %w", canon, err))
		}
		s.queries[canon] = &pq
		s.queries[ep] = &pq
		s.entrypoints = append(s.entrypoints, canon)
	}
	return s, nil
}

// Revision is the content hash of the set's source.
func (s *Set) Revision() string { return s.src.revision }

// Source is what the set was compiled from.
func (s *Set) Source() *Source { return s.src }

// Entrypoints lists the prepared entrypoints, canonical form.
func (s *Set) Entrypoints() []string { return slices.Clone(s.entrypoints) }

// Modules returns the set's parsed modules by file name, tests included:
// for tools that lint or measure coverage. The modules must not be
// changed.
func (s *Set) Modules() map[string]*ast.Module { return maps.Clone(s.modules) }

// Decide evaluates entrypoint ("" is not allowed here; the Engine maps it
// to its default) on in, within timeout. It never fails open: any failure
// is a deny whose Reason is one of the Reason constants.
func (s *Set) Decide(ctx context.Context, in *Input, entrypoint string, timeout time.Duration) Decision {
	start := time.Now()
	d := s.decide(ctx, in, entrypoint, timeout)
	d.Revision = s.src.revision
	d.Entrypoint = entrypoint
	d.Elapsed = time.Since(start)
	return d
}

// asValue hands the evaluation's result over as OPA's value.
func asValue(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil }

func deny(reason string, err error) Decision {
	return Decision{Reason: reason, Error: err.Error(), SessionAction: SessionNone}
}

func (s *Set) decide(ctx context.Context, in *Input, entrypoint string, timeout time.Duration) Decision {
	pq := s.queries[entrypoint]
	if pq == nil {
		return deny(ReasonUnknownEntrypoint, fmt.Errorf("entrypoint %q was not prepared", entrypoint))
	}
	if in == nil {
		return deny(ReasonInputInvalid, fmt.Errorf("%w: no input", ErrInputInvalid))
	}
	iv, err := in.Value()
	if err != nil {
		return deny(ReasonInputInvalid, err)
	}
	// The deadline and the caller's cancellation both stop evaluation
	// through one topdown.Cancel; timers and context.AfterFunc do not
	// start the goroutine per evaluation that rego would otherwise use
	// to watch ctx.
	c := topdown.NewCancel()
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		c.Cancel()
	})
	defer timer.Stop()
	stop := context.AfterFunc(ctx, c.Cancel)
	defer stop()
	opts := []rego.EvalOption{
		rego.EvalParsedInput(iv),
		rego.EvalExternalCancel(c),
		rego.EvalMetrics(metrics.NoOp()),
		// The decision is decoded from OPA's values as they are.
		rego.EvalGenerateJSON(asValue),
	}
	if t := in.Request.Time; !t.IsZero() {
		// time.now_ns() is the request's time, as in the input.
		opts = append(opts, rego.EvalTime(t))
	}
	rs, err := pq.Eval(ctx, opts...)
	switch {
	case err != nil && timedOut.Load():
		return deny(ReasonTimeout, fmt.Errorf("evaluation exceeded %s", timeout))
	case err != nil && ctx.Err() != nil:
		return deny(ReasonCanceled, ctx.Err())
	case err != nil:
		return deny(ReasonError, err)
	case len(rs) == 0 || len(rs[0].Expressions) == 0:
		return deny(ReasonUndefined, fmt.Errorf("%s is undefined for this input", entrypoint))
	case len(rs) > 1:
		return deny(ReasonDecisionInvalid, fmt.Errorf("%s has %d results, want one", entrypoint, len(rs)))
	}
	v, ok := rs[0].Expressions[0].Value.(ast.Value)
	if !ok {
		return deny(ReasonDecisionInvalid, fmt.Errorf("%s gave a %T", entrypoint, rs[0].Expressions[0].Value))
	}
	d, err := decodeDecision(v)
	if err != nil {
		return deny(ReasonDecisionInvalid, err)
	}
	d.Memo = &Memo{}
	return d
}
