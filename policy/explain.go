package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/lineage"
)

// Explain modes: how much of the evaluation Explain reports besides the
// rules that held.
const (
	// ExplainRules reports the rules that held, nothing more (the
	// default).
	ExplainRules = "rules"
	// ExplainNotes adds OPA's trace of trace() notes and the rules that
	// led to them, as `opa eval --explain notes`.
	ExplainNotes = "notes"
	// ExplainFails adds OPA's trace of the expressions that failed and
	// the rules that led to them, as `opa eval --explain fails`.
	ExplainFails = "fails"
	// ExplainFull adds OPA's whole trace, as `opa eval --explain full`.
	ExplainFull = "full"
)

// ExplainModes lists the modes Explain accepts.
var ExplainModes = []string{ExplainRules, ExplainNotes, ExplainFails, ExplainFull}

// defaultExplainTimeout bounds an explained evaluation whose context has
// no deadline.
const defaultExplainTimeout = 10 * time.Second

// Explanation says why a set decided as it did.
type Explanation struct {
	// Rules are the clauses of the set's own rules (test modules apart)
	// that evaluated successfully, each once, in the order evaluation
	// entered them: the entrypoint's first. A clause that held inside a
	// clause that then failed (a helper the first branch of an else chain
	// computed) is listed too; Trace in ExplainFails mode says which
	// expressions failed.
	Rules []RuleHit `json:"rules"`
	// Trace is OPA's pretty trace, with locations joined to the set's
	// folder, for ExplainNotes, ExplainFails and ExplainFull; empty for
	// ExplainRules.
	Trace string `json:"trace,omitempty"`
}

// RuleHit is one rule clause that evaluated successfully.
type RuleHit struct {
	// Rule is the rule's full name, e.g. data.crmgate.authz.decision.
	Rule string `json:"rule"`
	// File is the module's path joined to the set's folder, Line the
	// clause's first line.
	File string `json:"file"`
	Line int    `json:"line"`
	// Clause is the clause's position in its else chain, from 1; 0 when
	// the rule has no else.
	Clause int `json:"clause,omitempty"`
	// Default reports the rule's default value, which applies when no
	// clause does.
	Default bool `json:"default,omitempty"`
	// Source is the clause's first line as written, shortened.
	Source string `json:"source"`
}

// String is "file:line: source", with the rule and clause named when
// the source line is an else clause, which does not name the rule.
func (h RuleHit) String() string {
	src := h.Source
	if h.Clause > 1 {
		src = fmt.Sprintf("%s, clause %d: %s", h.Rule[strings.LastIndexByte(h.Rule, '.')+1:], h.Clause, src)
	}
	return fmt.Sprintf("%s:%d: %s", h.File, h.Line, src)
}

// Explain decides in on entrypoint as Decide does and says why: the rules
// of the set that held, and in the notes, fails and full modes OPA's
// trace. The decision is Decide's own, within ctx's deadline (10 seconds
// without one); the explanation comes from a second, traced evaluation of
// the same prepared query, so that Decide itself never pays for tracing.
// The error is for an unknown mode or entrypoint; a decision that failed
// is a deny as always, explained as far as evaluation went.
func (s *Set) Explain(ctx context.Context, in *Input, entrypoint, mode string) (Decision, *Explanation, error) {
	if mode == "" {
		mode = ExplainRules
	}
	if !slices.Contains(ExplainModes, mode) {
		return Decision{}, nil, fmt.Errorf("explain mode %q: want one of %s", mode, strings.Join(ExplainModes, ", "))
	}
	pq := s.queries[entrypoint]
	if pq == nil {
		return Decision{}, nil, fmt.Errorf("entrypoint %q was not prepared", entrypoint)
	}
	timeout := defaultExplainTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	d := s.Decide(ctx, in, entrypoint, timeout)
	ex := &Explanation{}
	if in == nil || in.Err() != nil {
		return d, ex, nil
	}
	iv, err := in.Value()
	if err != nil {
		return d, ex, nil
	}
	buf := topdown.NewBufferTracer()
	opts := []rego.EvalOption{rego.EvalParsedInput(iv), rego.EvalQueryTracer(buf)}
	if t := in.Request.Time; !t.IsZero() {
		opts = append(opts, rego.EvalTime(t))
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Its result is Decide's; only the trace is wanted, however far
	// evaluation went.
	_, _ = pq.Eval(tctx, opts...)
	ex.Rules = s.ruleHits(*buf)
	var events []*topdown.Event
	switch mode {
	case ExplainNotes:
		events = lineage.Notes(*buf)
	case ExplainFails:
		events = lineage.Fails(*buf)
	case ExplainFull:
		events = lineage.Full(*buf)
	default:
		return d, ex, nil
	}
	var b strings.Builder
	topdown.PrettyTraceWithLocation(&b, s.locateEvents(events))
	ex.Trace = b.String()
	return d, ex, nil
}

// clauseInfo is where a rule clause sits in its rule.
type clauseInfo struct {
	clause  int
	isDflt  bool
	hasElse bool
}

// ruleHits lists the clauses of the enforced modules that exited
// successfully in trace, in the order they were entered.
func (s *Set) ruleHits(trace []*topdown.Event) []RuleHit {
	type key struct {
		file     string
		row, col int
	}
	keyOf := func(l *ast.Location) key { return key{l.File, l.Row, l.Col} }
	clauses := map[key]clauseInfo{}
	for name, m := range s.compiler.Modules {
		if isTestFile(name) {
			continue
		}
		for _, r := range m.Rules {
			if r.Location == nil {
				continue
			}
			if r.Default {
				clauses[keyOf(r.Location)] = clauseInfo{isDflt: true}
				continue
			}
			i := 1
			for c := r; c != nil; c = c.Else {
				if c.Location != nil {
					clauses[keyOf(c.Location)] = clauseInfo{clause: i, hasElse: r.Else != nil}
				}
				i++
			}
		}
	}
	// Each rule clause's body is a query of its own; its Enter event's
	// ParentID is the query that referred to it.
	parent := map[uint64]uint64{}
	ruleQuery := map[uint64]bool{}
	entered := map[key]int{}
	enterQuery := map[key]uint64{}
	type exit struct {
		rule         *ast.Rule
		depth, order int
	}
	var exited []exit
	seen := map[key]bool{}
	for i, e := range trace {
		parent[e.QueryID] = e.ParentID
		r, ok := e.Node.(*ast.Rule)
		if !ok || r.Location == nil {
			continue
		}
		k := keyOf(r.Location)
		if _, ours := clauses[k]; !ours {
			continue
		}
		switch e.Op {
		case topdown.EnterOp:
			ruleQuery[e.QueryID] = true
			if _, ok := entered[k]; !ok {
				entered[k], enterQuery[k] = i, e.QueryID
			}
		case topdown.ExitOp:
			if !seen[k] {
				seen[k] = true
				exited = append(exited, exit{rule: r, order: i})
			}
		}
	}
	// Clauses are listed by how many rules lie between them and the
	// entrypoint, then in evaluation order: the entrypoint's clause
	// first, then what it referred to.
	for i := range exited {
		k := keyOf(exited[i].rule.Location)
		q, ok := enterQuery[k]
		if !ok {
			continue
		}
		exited[i].order = entered[k]
		for p, steps := parent[q], 0; p != 0 && steps < len(parent); p, steps = parent[p], steps+1 {
			if ruleQuery[p] {
				exited[i].depth++
			}
		}
	}
	slices.SortStableFunc(exited, func(a, b exit) int {
		if a.depth != b.depth {
			return a.depth - b.depth
		}
		return a.order - b.order
	})
	hits := make([]RuleHit, 0, len(exited))
	for _, x := range exited {
		r := x.rule
		ci := clauses[keyOf(r.Location)]
		h := RuleHit{
			File:    s.src.path(r.Location.File),
			Line:    r.Location.Row,
			Default: ci.isDflt,
			Source:  firstLine(r.Location.Text),
		}
		if r.Default && r.Head.Location != nil {
			// A default rule's own text is the keyword alone.
			h.Source = firstLine(append([]byte("default "), r.Head.Location.Text...))
		}
		if ci.hasElse {
			h.Clause = ci.clause
		}
		if r.Module != nil {
			h.Rule = r.Path().String()
		} else {
			h.Rule = r.Head.Ref().String()
		}
		hits = append(hits, h)
	}
	return hits
}

// maxSourceLen bounds RuleHit.Source, in characters.
const maxSourceLen = 100

// firstLine is the first line of a rule's text, shortened.
func firstLine(text []byte) string {
	line, _, _ := strings.Cut(string(text), "\n")
	line = strings.TrimSpace(line)
	if utf8.RuneCountInString(line) > maxSourceLen {
		r := []rune(line)
		line = string(r[:maxSourceLen-1]) + "…"
	}
	return line
}

// locateEvents copies events with their locations' files joined to the
// set's folder, so that a trace names files an editor opens. The events
// themselves point into the compiled set and are not changed.
func (s *Set) locateEvents(events []*topdown.Event) []*topdown.Event {
	out := make([]*topdown.Event, len(events))
	for i, e := range events {
		c := *e
		if e.Location != nil && e.Location.File != "" {
			loc := *e.Location
			loc.File = s.src.path(loc.File)
			c.Location = &loc
		}
		out[i] = &c
	}
	return out
}
