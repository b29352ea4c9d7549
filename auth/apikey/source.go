package apikey

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// Source kinds.
const (
	// SourceHeader: the key is the whole value of a named header.
	SourceHeader = "header"
	// SourceAuthorization: the key follows a named scheme in the
	// Authorization header (RFC 9110 §11.6.2).
	SourceAuthorization = "authorization"
	// SourceBasic: the key is a credential of HTTP Basic (RFC 7617).
	SourceBasic = "basic"
)

// Source is one place in a request that may carry an API key. Its config
// form is one of
//
//	header:<Name>           the whole value of header Name (any header
//	                        but Authorization, Proxy-Authorization,
//	                        Cookie and Host), e.g. header:X-API-Key
//	authorization:<Scheme>  Authorization: <Scheme> <key>, the scheme
//	                        matched case-insensitively, exactly one space
//	                        before the key, e.g. authorization:ApiKey
//	basic                   Authorization: Basic, the key as the password
//	                        (any user name, or none) or as the user name
//	                        with an empty password
//
// With authorization:Bearer every bearer credential is taken for an API
// key; do not configure it where bearer JWTs are accepted too. The zero
// Source matches nothing.
type Source struct {
	kind string
	// name is the header name or scheme as configured.
	name string
	// norm is the header name lower-cased with '_' for '-': the spelling
	// every variant of the name shares.
	norm string
}

// ParseSource parses a source's config form (see Source).
func ParseSource(s string) (Source, error) {
	kind, arg, hasArg := strings.Cut(s, ":")
	switch {
	case kind == SourceBasic && !hasArg:
		return Source{kind: SourceBasic, name: "Basic", norm: "authorization"}, nil
	case kind == SourceHeader && hasArg:
		if !isToken(arg) {
			return Source{}, fmt.Errorf("source %q: %q is not a header name", s, arg)
		}
		norm := normName(arg)
		switch norm {
		case "authorization", "proxy-authorization", "cookie", "host":
			return Source{}, fmt.Errorf("source %q: the %s header cannot carry an API key as a whole (use authorization:<scheme> or basic)", s, arg)
		}
		return Source{kind: SourceHeader, name: arg, norm: norm}, nil
	case kind == SourceAuthorization && hasArg:
		if !isToken(arg) {
			return Source{}, fmt.Errorf("source %q: %q is not an authentication scheme", s, arg)
		}
		if strings.EqualFold(arg, "Basic") {
			return Source{}, fmt.Errorf("source %q: use basic for HTTP Basic", s)
		}
		return Source{kind: SourceAuthorization, name: arg, norm: "authorization"}, nil
	}
	return Source{}, fmt.Errorf("source %q is not header:<Name>, authorization:<Scheme> or basic", s)
}

// MustParseSource is ParseSource for sources written in code; it panics
// on error.
func MustParseSource(s string) Source {
	src, err := ParseSource(s)
	if err != nil {
		panic(err)
	}
	return src
}

// String returns the config form.
func (s Source) String() string {
	switch s.kind {
	case SourceBasic:
		return SourceBasic
	case "":
		return ""
	}
	return s.kind + ":" + s.name
}

// Kind returns SourceHeader, SourceAuthorization or SourceBasic; "" for
// the zero Source.
func (s Source) Kind() string { return s.kind }

// Name returns the header name (SourceHeader) or scheme (the others).
func (s Source) Name() string { return s.name }

// same reports whether s and o read the same place, whatever their
// spelling.
func (s Source) same(o Source) bool {
	return s.kind == o.kind && s.norm == o.norm && (s.kind == SourceHeader || strings.EqualFold(s.name, o.name))
}

// MarshalText writes the config form.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses the config form.
func (s *Source) UnmarshalText(b []byte) error {
	src, err := ParseSource(string(b))
	if err != nil {
		return err
	}
	*s = src
	return nil
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// normName lower-cases a header name and spells '_' as '-'.
func normName(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == '_':
			b[i] = '-'
		}
	}
	return string(b)
}

// sameName reports whether header name is norm in some spelling: any
// case, '-' or '_'. Proxies and CGI-style servers turn '-' into '_', so
// X_API_Key must count as a second X-API-Key, not as another header.
func sameName(name, norm string) bool {
	if len(name) != len(norm) {
		return false
	}
	for i := range len(name) {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != norm[i] {
			return false
		}
	}
	return true
}

// maxBasicLen bounds an encoded Basic credential: a user name, a key and
// a colon, in base64.
const maxBasicLen = 4 * (MaxLen + 1 + MaxLen + 2) / 3

// found is what one source holds in a request.
type found struct {
	present bool
	key     string
	err     error
}

// Extract returns the API key the request carries in one of sources, and
// which source it came from. It trims and normalises nothing; Parse or
// Verify judges the key. It fails with
//
//   - ErrNoCredential when no source carries anything;
//   - ErrAmbiguous when a source's header appears more than once, in any
//     spelling (X-API-Key, x-api-key, X_API_Key are one name; for the
//     Authorization kinds, when one of several Authorization headers has
//     the source's scheme), when two sources carry something, or when
//     Basic names a key and something else;
//   - an error wrapping ErrMalformed when the one source present is not
//     well-formed: an empty value, a scheme without exactly one space and
//     a key, bad base64, a value longer than MaxLen.
//
// An Authorization header with another scheme (Bearer for the JWT stage)
// is not an API key and is left alone. Extract does no I/O.
func Extract(r *http.Request, sources []Source) (string, Source, error) {
	var (
		which Source
		got   found
		n     int
		auth  []string
		nAuth int
	)
	needAuth := false
	for _, s := range sources {
		if s.kind != SourceHeader && s.kind != "" {
			needAuth = true
		}
	}
	if needAuth {
		for name, vs := range r.Header {
			if !sameName(name, "authorization") || len(vs) == 0 {
				continue
			}
			if auth == nil {
				auth = vs
			} else {
				auth = append(append([]string(nil), auth...), vs...)
			}
			nAuth += len(vs)
		}
	}
	for _, s := range sources {
		var f found
		switch s.kind {
		case SourceHeader:
			f = extractHeader(r.Header, s)
		case SourceAuthorization, SourceBasic:
			if nAuth == 0 {
				continue
			}
			if nAuth > 1 {
				// Several Authorization headers are ambiguous for us only
				// if one of them has our scheme; otherwise they are
				// another stage's problem.
				for _, v := range auth {
					if hasScheme(v, s.name) {
						return "", s, fmt.Errorf("%w: %d Authorization headers", ErrAmbiguous, nAuth)
					}
				}
				continue
			}
			f = extractAuthorization(auth[0], s)
		}
		if !f.present {
			continue
		}
		n++
		if n > 1 {
			return "", Source{}, fmt.Errorf("%w: both %s and %s carry a credential", ErrAmbiguous, which, s)
		}
		which, got = s, f
	}
	if n == 0 {
		return "", Source{}, ErrNoCredential
	}
	return got.key, which, got.err
}

func extractHeader(h http.Header, s Source) found {
	var f found
	count := 0
	for name, vs := range h {
		if sameName(name, s.norm) && len(vs) > 0 {
			count += len(vs)
			f.key = vs[0]
		}
	}
	switch {
	case count == 0:
		return found{}
	case count > 1:
		return found{present: true, err: fmt.Errorf("%w: %s sent %d times", ErrAmbiguous, s.name, count)}
	case f.key == "":
		return found{present: true, err: fmt.Errorf("%w: %s is empty", ErrMalformed, s.name)}
	case len(f.key) > MaxLen:
		return found{present: true, err: fmt.Errorf("%w: %s is longer than %d bytes", ErrMalformed, s.name, MaxLen)}
	}
	f.present = true
	return f
}

// extractAuthorization reads the one Authorization header value v for
// source s; it is present only if its scheme is s's.
func extractAuthorization(v string, s Source) found {
	if !hasScheme(v, s.name) {
		return found{}
	}
	rest := v[len(s.name):]
	if len(rest) < 2 || rest[0] != ' ' || rest[1] == ' ' {
		return found{present: true, err: fmt.Errorf("%w: Authorization %s needs exactly one space and a credential", ErrMalformed, s.name)}
	}
	cred := rest[1:]
	if s.kind == SourceAuthorization {
		if len(cred) > MaxLen {
			return found{present: true, err: fmt.Errorf("%w: Authorization %s credential longer than %d bytes", ErrMalformed, s.name, MaxLen)}
		}
		return found{present: true, key: cred}
	}
	return extractBasic(cred)
}

// hasScheme reports whether the Authorization value v starts with the
// token scheme, in any case, followed by its end or a non-token byte.
func hasScheme(v, scheme string) bool {
	i := 0
	for i < len(v) && isTokenByte(v[i]) {
		i++
	}
	return strings.EqualFold(v[:i], scheme)
}

func isTokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// extractBasic decodes an RFC 7617 credential: the key is the password
// (with any user name), or the user name when the password is empty.
func extractBasic(cred string) found {
	if len(cred) > maxBasicLen {
		return found{present: true, err: fmt.Errorf("%w: Basic credential longer than %d bytes", ErrMalformed, maxBasicLen)}
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(cred)
	if err != nil {
		return found{present: true, err: fmt.Errorf("%w: Basic credential is not base64", ErrMalformed)}
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	switch {
	case !ok:
		return found{present: true, err: fmt.Errorf("%w: Basic credential has no colon", ErrMalformed)}
	case pass == "" && user == "":
		return found{present: true, err: fmt.Errorf("%w: Basic credential is empty", ErrMalformed)}
	case pass == "":
		return found{present: true, key: user}
	case user != "" && user != pass && strings.HasPrefix(user, Prefix):
		// A key as the user name and something else as the password:
		// which one the client meant is not ours to guess.
		return found{present: true, err: fmt.Errorf("%w: Basic user name is a key and the password something else", ErrAmbiguous)}
	}
	return found{present: true, key: pass}
}

// Strip removes the credential s reads from h, in every spelling of its
// header, before the request is forwarded: for SourceHeader every header
// with that name; for the Authorization kinds every Authorization value
// with s's scheme (other schemes stay).
func (s Source) Strip(h http.Header) {
	if s.kind == "" {
		return
	}
	for name, vs := range h {
		if !sameName(name, s.norm) {
			continue
		}
		if s.kind == SourceHeader {
			delete(h, name)
			continue
		}
		keep := vs[:0:0]
		for _, v := range vs {
			if !hasScheme(v, s.name) {
				keep = append(keep, v)
			}
		}
		if len(keep) == 0 {
			delete(h, name)
		} else {
			h[name] = keep
		}
	}
}
