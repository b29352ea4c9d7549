package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Decision reuse: a policy set is a function of its input, so a request
// whose input equals an earlier one's in every field but the request id,
// within the same second of request time, gets the earlier decision
// without another evaluation. Keep-alive clients and browsers loading a
// page send such runs of identical requests, and a decision costs tens to
// hundreds of microseconds of evaluation.
//
// Reuse is exact, not approximate: the key is a SHA-256 digest of every
// input field (headers, query, subject, session ages and fingerprint
// comparison included) and the request time's whole second, so any
// difference is a new evaluation. A set that calls a non-deterministic
// built-in (http.send, rand.intn, time.now_ns, uuid.rfc4122, ...) is never
// reused: its answer may change with the same input. Only decisions that
// evaluated without error are kept; a set's memory holds the decisions of
// one second at a time, at most Config.ReuseEntries of them.

// reuseKey identifies an input for reuse: entrypoint, time second and the
// input's other fields, hashed.
type reuseKey [sha256.Size]byte

// reuse keeps the decisions of the current second of one set.
type reuse struct {
	max int

	mu  sync.Mutex
	sec int64
	m   map[reuseKey]Decision
}

func newReuse(max int) *reuse {
	if max <= 0 {
		return nil
	}
	return &reuse{max: max, m: make(map[reuseKey]Decision)}
}

// get returns the decision kept for k in second sec.
func (r *reuse) get(k *reuseKey, sec int64) (Decision, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec != r.sec {
		return Decision{}, false
	}
	d, ok := r.m[*k]
	return d, ok
}

// put keeps d for k in second sec. A new second starts an empty table; an
// older one (a request that waited) is not kept.
func (r *reuse) put(k *reuseKey, sec int64, d Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case sec > r.sec:
		r.sec = sec
		clear(r.m)
	case sec < r.sec:
		return
	}
	if len(r.m) < r.max {
		r.m[*k] = d
	}
}

// keyOf computes the reuse key of in for entrypoint; false when the input
// cannot be keyed (then it is evaluated).
func keyOf(in *Input, entrypoint string, k *reuseKey) bool {
	b := keyBufs.Get().(*[]byte)
	e := keyEncoder{b: (*b)[:0]}
	e.str(entrypoint)
	r := &in.Request
	e.int(r.Time.Unix())
	e.str(r.Method)
	e.str(r.Path)
	e.str(r.Host)
	e.str(r.ClientIP)
	e.multimap(r.Query)
	e.strmap(r.Headers)
	e.str(in.Route.ID)
	e.strmap(in.Route.Params)
	e.strs(in.Route.Tags)
	s := &in.Subject
	e.str(s.Kind)
	e.str(s.ID)
	e.str(s.Email)
	e.strs(s.Roles)
	e.strs(s.Groups)
	e.str(s.ACR)
	e.strs(s.AMR)
	e.int(s.AuthTime)
	if a := s.APIKey; a != nil {
		e.int(1)
		e.str(a.ID)
		e.str(a.Name)
		e.str(a.Owner)
		e.strs(a.Scopes)
		e.str(a.Tier)
	} else {
		e.int(0)
	}
	ok := true
	if len(s.Claims) > 0 {
		// encoding/json writes map keys sorted: equal claims, equal bytes.
		c, err := json.Marshal(s.Claims)
		ok = err == nil
		e.str(string(c))
	} else {
		e.int(0)
	}
	if ses := in.Session; ses != nil {
		e.int(1)
		e.int(ses.AgeS)
		e.int(ses.IdleS)
		f := &ses.Fingerprint
		e.bool(f.Bound)
		e.bool(f.Match)
		e.strs(f.Changed)
		e.str(f.UserAgent.Bound)
		e.str(f.UserAgent.Current)
	} else {
		e.int(0)
	}
	*k = sha256.Sum256(e.b)
	*b = e.b
	keyBufs.Put(b)
	return ok
}

var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// keyEncoder writes an unambiguous encoding: every string and list is
// prefixed with its length, maps are written in key order.
type keyEncoder struct{ b []byte }

func (e *keyEncoder) int(v int64) { e.b = binary.AppendVarint(e.b, v) }

func (e *keyEncoder) bool(v bool) {
	if v {
		e.int(1)
	} else {
		e.int(0)
	}
}

func (e *keyEncoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *keyEncoder) strs(v []string) {
	e.int(int64(len(v)))
	for _, s := range v {
		e.str(s)
	}
}

func (e *keyEncoder) strmap(m map[string]string) {
	e.int(int64(len(m)))
	for _, k := range sortedKeys(m) {
		e.str(k)
		e.str(m[k])
	}
}

func (e *keyEncoder) multimap(m map[string][]string) {
	e.int(int64(len(m)))
	for _, k := range sortedKeys(m) {
		e.str(k)
		e.strs(m[k])
	}
}

func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// nondeterministic lists the non-deterministic built-ins the compiled
// modules call, sorted; a set that calls any is not reused.
func nondeterministic(modules map[string]*ast.Module) []string {
	seen := map[string]bool{}
	for _, m := range modules {
		ast.WalkExprs(m, func(x *ast.Expr) bool {
			if !x.IsCall() {
				return false
			}
			name := x.Operator().String()
			if b, ok := ast.BuiltinMap[name]; ok && b.Nondeterministic {
				seen[name] = true
			}
			return false
		})
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if c, ok := t.Value.(ast.Call); ok && len(c) > 0 {
				name := c[0].String()
				if b, ok := ast.BuiltinMap[name]; ok && b.Nondeterministic {
					seen[name] = true
				}
			}
			return false
		})
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// reuseNote says why a set's decisions are not reused, for the log.
func reuseNote(calls []string) string {
	return "the set calls " + strings.Join(calls, ", ") + ", whose results may change with the same input"
}
