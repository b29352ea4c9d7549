package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Value returns the input as the OPA value policies evaluate against, or
// an error wrapping ErrInputInvalid when the input cannot be represented
// faithfully.
func (in *Input) Value() (ast.Value, error) {
	in.once.Do(func() {
		if in.err == nil {
			in.value, in.err = in.convert()
		}
	})
	if in.err != nil {
		return nil, in.err
	}
	return in.value, nil
}

// Keys of the input's objects. Terms are immutable once made, so these are
// shared by every input.
var (
	kRequest     = ast.StringTerm("request")
	kRoute       = ast.StringTerm("route")
	kSubject     = ast.StringTerm("subject")
	kSession     = ast.StringTerm("session")
	kID          = ast.StringTerm("id")
	kMethod      = ast.StringTerm("method")
	kPath        = ast.StringTerm("path")
	kQuery       = ast.StringTerm("query")
	kHost        = ast.StringTerm("host")
	kClientIP    = ast.StringTerm("client_ip")
	kTime        = ast.StringTerm("time")
	kHeaders     = ast.StringTerm("headers")
	kParams      = ast.StringTerm("params")
	kTags        = ast.StringTerm("tags")
	kKind        = ast.StringTerm("kind")
	kEmail       = ast.StringTerm("email")
	kRoles       = ast.StringTerm("roles")
	kGroups      = ast.StringTerm("groups")
	kACR         = ast.StringTerm("acr")
	kAMR         = ast.StringTerm("amr")
	kAuthTime    = ast.StringTerm("auth_time")
	kAPIKey      = ast.StringTerm("api_key")
	kClaims      = ast.StringTerm("claims")
	kName        = ast.StringTerm("name")
	kOwner       = ast.StringTerm("owner")
	kScopes      = ast.StringTerm("scopes")
	kTier        = ast.StringTerm("tier")
	kAgeS        = ast.StringTerm("age_s")
	kIdleS       = ast.StringTerm("idle_s")
	kFingerprint = ast.StringTerm("fingerprint")
	kBound       = ast.StringTerm("bound")
	kMatch       = ast.StringTerm("match")
	kChanged     = ast.StringTerm("changed")
	kUserAgent   = ast.StringTerm("user_agent")
	kCurrent     = ast.StringTerm("current")
)

// maxClaimDepth bounds the nesting of identity claims a policy sees.
const maxClaimDepth = 32

// converter builds OPA values, handing out terms from blocks so that an
// input costs a few allocations per block rather than one per term.
type converter struct {
	block []ast.Term
	err   error
}

func (c *converter) term(v ast.Value) *ast.Term {
	if len(c.block) == 0 {
		c.block = make([]ast.Term, 48)
	}
	t := &c.block[0]
	c.block = c.block[1:]
	t.Value = v
	return t
}

// fail records the first reason the input is not faithful.
func (c *converter) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: "+format, append([]any{ErrInputInvalid}, args...)...)
	}
}

func (c *converter) str(field, s string) *ast.Term {
	if !utf8.ValidString(s) {
		c.fail("%s is not valid UTF-8", field)
	}
	return c.term(ast.String(s))
}

// key is a map key of the object named field.
func (c *converter) key(field, k string) *ast.Term {
	if !utf8.ValidString(k) {
		c.fail("a key of %s is not valid UTF-8: %q", field, k)
	}
	return c.term(ast.String(k))
}

func (c *converter) int(i int64) *ast.Term {
	if i >= -1 && i <= 512 {
		return ast.InternedTerm(int(i))
	}
	return c.term(ast.Number(strconv.FormatInt(i, 10)))
}

func (c *converter) strings(field string, ss []string) *ast.Term {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = c.str(field, s)
	}
	return c.term(ast.NewArray(terms...))
}

func (c *converter) stringMap(field string, m map[string]string) *ast.Term {
	kv := make([][2]*ast.Term, 0, len(m))
	for k, v := range m {
		if !utf8.ValidString(v) {
			c.fail("%s[%q] is not valid UTF-8", field, k)
		}
		kv = append(kv, [2]*ast.Term{c.key(field, k), c.term(ast.String(v))})
	}
	return c.term(ast.NewObject(kv...))
}

func (c *converter) query(q map[string][]string) *ast.Term {
	kv := make([][2]*ast.Term, 0, len(q))
	for k, vs := range q {
		terms := make([]*ast.Term, len(vs))
		for i, v := range vs {
			if !utf8.ValidString(v) {
				c.fail("request.query[%q] is not valid UTF-8", k)
			}
			terms[i] = c.term(ast.String(v))
		}
		kv = append(kv, [2]*ast.Term{c.key("request.query", k), c.term(ast.NewArray(terms...))})
	}
	return c.term(ast.NewObject(kv...))
}

// any converts a claim value as encoding/json decodes it.
func (c *converter) any(field string, x any, depth int) *ast.Term {
	if depth > maxClaimDepth {
		c.fail("%s nests deeper than %d levels", field, maxClaimDepth)
		return ast.NullTerm()
	}
	switch x := x.(type) {
	case nil:
		return ast.NullTerm()
	case bool:
		return ast.InternedTerm(x)
	case string:
		return c.str(field, x)
	case json.Number:
		n, err := ast.NumberChecked(string(x))
		if err != nil {
			c.fail("%s is not a number", field)
			return ast.NullTerm()
		}
		return c.term(n)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			c.fail("%s is not a finite number", field)
			return ast.NullTerm()
		}
		return c.term(ast.Number(strconv.FormatFloat(x, 'g', -1, 64)))
	case int:
		return c.int(int64(x))
	case int64:
		return c.int(x)
	case []any:
		terms := make([]*ast.Term, len(x))
		for i, e := range x {
			terms[i] = c.any(field, e, depth+1)
		}
		return c.term(ast.NewArray(terms...))
	case []string:
		return c.strings(field, x)
	case map[string]any:
		kv := make([][2]*ast.Term, 0, len(x))
		for k, v := range x {
			kv = append(kv, [2]*ast.Term{c.key(field, k), c.any(field, v, depth+1)})
		}
		return c.term(ast.NewObject(kv...))
	default:
		c.fail("%s holds a %T, which has no JSON form", field, x)
		return ast.NullTerm()
	}
}

// convert builds the OPA value of the input.
func (in *Input) convert() (ast.Value, error) {
	var c converter
	r := &in.Request
	request := ast.NewObject(
		[2]*ast.Term{kID, c.str("request.id", r.ID)},
		[2]*ast.Term{kMethod, c.str("request.method", r.Method)},
		[2]*ast.Term{kPath, c.str("request.path", r.Path)},
		[2]*ast.Term{kQuery, c.query(r.Query)},
		[2]*ast.Term{kHost, c.str("request.host", r.Host)},
		[2]*ast.Term{kClientIP, c.str("request.client_ip", r.ClientIP)},
		[2]*ast.Term{kTime, c.term(ast.String(r.Time.UTC().Format(time.RFC3339Nano)))},
		[2]*ast.Term{kHeaders, c.stringMap("request.headers", r.Headers)},
	)
	rt := &in.Route
	route := ast.NewObject(
		[2]*ast.Term{kID, c.str("route.id", rt.ID)},
		[2]*ast.Term{kParams, c.stringMap("route.params", rt.Params)},
		[2]*ast.Term{kTags, c.strings("route.tags", rt.Tags)},
	)
	s := &in.Subject
	apiKey := ast.NullTerm()
	if k := s.APIKey; k != nil {
		apiKey = c.term(ast.NewObject(
			[2]*ast.Term{kID, c.str("subject.api_key.id", k.ID)},
			[2]*ast.Term{kName, c.str("subject.api_key.name", k.Name)},
			[2]*ast.Term{kOwner, c.str("subject.api_key.owner", k.Owner)},
			[2]*ast.Term{kScopes, c.strings("subject.api_key.scopes", k.Scopes)},
			[2]*ast.Term{kTier, c.str("subject.api_key.tier", k.Tier)},
		))
	}
	claims := c.term(ast.NewObject())
	if s.Claims != nil {
		claims = c.any("subject.claims", s.Claims, 0)
	}
	subject := ast.NewObject(
		[2]*ast.Term{kKind, c.str("subject.kind", s.Kind)},
		[2]*ast.Term{kID, c.str("subject.id", s.ID)},
		[2]*ast.Term{kEmail, c.str("subject.email", s.Email)},
		[2]*ast.Term{kRoles, c.strings("subject.roles", s.Roles)},
		[2]*ast.Term{kGroups, c.strings("subject.groups", s.Groups)},
		[2]*ast.Term{kACR, c.str("subject.acr", s.ACR)},
		[2]*ast.Term{kAMR, c.strings("subject.amr", s.AMR)},
		[2]*ast.Term{kAuthTime, c.int(s.AuthTime)},
		[2]*ast.Term{kAPIKey, apiKey},
		[2]*ast.Term{kClaims, claims},
	)
	session := ast.NullTerm()
	if ses := in.Session; ses != nil {
		fp := &ses.Fingerprint
		session = c.term(ast.NewObject(
			[2]*ast.Term{kAgeS, c.int(ses.AgeS)},
			[2]*ast.Term{kIdleS, c.int(ses.IdleS)},
			[2]*ast.Term{kFingerprint, c.term(ast.NewObject(
				[2]*ast.Term{kBound, ast.InternedTerm(fp.Bound)},
				[2]*ast.Term{kMatch, ast.InternedTerm(fp.Match)},
				[2]*ast.Term{kChanged, c.strings("session.fingerprint.changed", fp.Changed)},
				[2]*ast.Term{kUserAgent, c.term(ast.NewObject(
					[2]*ast.Term{kBound, c.str("session.fingerprint.user_agent.bound", fp.UserAgent.Bound)},
					[2]*ast.Term{kCurrent, c.str("session.fingerprint.user_agent.current", fp.UserAgent.Current)},
				))},
			))},
		))
	}
	v := ast.NewObject(
		[2]*ast.Term{kRequest, c.term(request)},
		[2]*ast.Term{kRoute, c.term(route)},
		[2]*ast.Term{kSubject, c.term(subject)},
		[2]*ast.Term{kSession, session},
	)
	if c.err != nil {
		return nil, c.err
	}
	return v, nil
}
