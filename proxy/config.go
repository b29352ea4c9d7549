package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/crmgate/crmgate/auth/apikey"
	"github.com/crmgate/crmgate/auth/stepup"
	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/proxy/assertion"
	"github.com/crmgate/crmgate/ratelimit"
	"github.com/crmgate/crmgate/redact"
)

// Config is the gateway's listeners, server limits, header hygiene,
// upstreams and routes. The zero value is not valid: at least one upstream
// and one route are required; everything else has defaults (see Defaults).
type Config struct {
	Listen    ListenConfig              `yaml:"listen" jsonschema_description:"Where the gateway listens."`
	Server    ServerConfig              `yaml:"server" jsonschema_description:"Timeouts, limits and trusted proxies of the client-facing server."`
	Headers   HeadersConfig             `yaml:"headers" jsonschema_description:"Header hygiene: identity headers the gateway owns and the security headers it adds."`
	Upstreams map[string]UpstreamConfig `yaml:"upstreams" jsonschema_description:"The CRM backends, by name. Routes refer to these names."`
	Routes    []RouteConfig             `yaml:"routes" jsonschema_description:"Routes, matched by host, path pattern and method. A request that matches no route is refused (404): default deny."`
	RateLimit *ratelimit.Config         `yaml:"rate_limit" jsonschema_description:"Rate limits: named tiers, the tier of each kind of caller, and where the counters live. Absent: no rate limits."`
	Assertion assertion.Config          `yaml:"assertion" jsonschema_description:"A short-lived JWT signed by the gateway that tells the CRM who is calling, verifiable with the gateway's public keys (served at /.crmgate/jwks.json)."`
	StepUp    stepup.Config             `yaml:"step_up" jsonschema_description:"Strengths of authentication for the step-ups a policy asks for (decision step_up: {acr, max_age_s}): the acr levels in order and the amr methods that count as a level."`
	Redact    redact.Config             `yaml:"redact" jsonschema_description:"The response transform that applies a policy decision's redact and filter entries to JSON responses (see docs/redaction.md): the key of the hash action and the limits of a transformed body."`
}

// ListenConfig says where the gateway listens.
type ListenConfig struct {
	HTTPS string `yaml:"https" jsonschema_description:"Address of the TLS listener (host:port). Default :443."`
	HTTP  string `yaml:"http" jsonschema_description:"Address of an optional plain-HTTP listener that only redirects to HTTPS and answers ACME HTTP-01 challenges. Empty: off."`
	// PublicHTTPSPort is the port clients reach the HTTPS listener on,
	// for redirects; 0 derives it from HTTPS.
	PublicHTTPSPort int `yaml:"public_https_port" jsonschema_description:"Port that clients use for HTTPS when it differs from the listener's (behind port mapping); used in redirects. 0: the listener's port."`
}

// ServerConfig bounds what a client may send and how long it may take.
type ServerConfig struct {
	HandshakeTimeout  time.Duration `yaml:"handshake_timeout" jsonschema_description:"Longest TLS handshake. Default 10s."`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" jsonschema_description:"Longest time to read a request's headers. Default 10s."`
	IdleTimeout       time.Duration `yaml:"idle_timeout" jsonschema_description:"How long an idle keep-alive connection stays open. Default 120s."`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout" jsonschema_description:"How long a graceful shutdown waits for requests in flight. Default 20s."`
	MaxHeaderBytes    int           `yaml:"max_header_bytes" jsonschema_description:"Largest request head (request line and headers) in bytes. Default 65536."`
	MaxBodyBytes      int64         `yaml:"max_body_bytes" jsonschema_description:"Largest request body in bytes unless a route says otherwise. Default 10485760 (10 MiB)."`
	TrustedProxies    []string      `yaml:"trusted_proxies" jsonschema_description:"CIDRs of proxies in front of the gateway whose X-Forwarded-For and request id headers are believed. Empty: the socket peer is the client (behind a proxy_protocol balancer, the client its header names)."`
	RequestIDHeader   string        `yaml:"request_id_header" jsonschema_description:"Header carrying the request id (accepted from trusted proxies, always sent upstream and to the client). Default X-Request-Id."`
	// ProxyProtocol is the PROXY protocol of L4 load balancers on the
	// HTTPS listener; its zero value is off.
	ProxyProtocol ProxyProtocolConfig `yaml:"proxy_protocol" jsonschema_description:"The PROXY protocol (v1 and v2) on the HTTPS listener, for L4 load balancers in TCP passthrough mode (HAProxy send-proxy-v2, cloud network load balancers) that tell the gateway the client's address ahead of the TLS handshake. Absent: off, the socket peer is the client (or X-Forwarded-For from trusted_proxies)."`
}

// HeadersConfig is the header hygiene of the gateway.
type HeadersConfig struct {
	Identity []string `yaml:"identity" jsonschema_description:"Headers only the gateway may set (the CRM trusts them). Client copies are removed in every spelling (case, - _ . variants). Default X-CRM-User, X-CRM-Roles, X-CRM-Email, X-CRM-Assertion."`
	// Strip lists further client headers to remove before forwarding.
	Strip []string `yaml:"strip" jsonschema_description:"Further client headers to remove before forwarding."`
	// StripResponse lists upstream response headers removed before the
	// response reaches the client.
	StripResponse []string `yaml:"strip_response" jsonschema_description:"Upstream response headers removed before the client sees them (they reveal backend software and versions). Default Server, X-Powered-By, X-AspNet-Version, X-AspNetMvc-Version, X-Runtime, X-Backend-Server. Set to [] to keep all."`
	// GatewayCookiePrefix names the gateway's own cookies, which never
	// reach the upstream.
	GatewayCookiePrefix string                `yaml:"gateway_cookie_prefix" jsonschema_description:"Name prefix of the gateway's own cookies; they are removed before forwarding (also their __Host- and __Secure- forms). Default crmgate."`
	Security            SecurityHeadersConfig `yaml:"security" jsonschema_description:"Security headers added to every response."`
	// Upstream names the headers that carry the caller's identity to the
	// upstream.
	Upstream UpstreamIdentityConfig `yaml:"upstream_identity" jsonschema_description:"Headers the gateway sets on forwarded requests to tell the CRM who is calling. Client copies of them are always removed."`
}

// UpstreamIdentityConfig names the identity headers sent upstream. A name
// of "-" sends no such header.
type UpstreamIdentityConfig struct {
	User  string `yaml:"user" jsonschema_description:"Header with the caller's id (OIDC sub, API key id). Default X-CRM-User; - for none."`
	Roles string `yaml:"roles" jsonschema_description:"Header with the caller's roles, comma-separated. Default X-CRM-Roles; - for none."`
	Email string `yaml:"email" jsonschema_description:"Header with the caller's e-mail address. Default X-CRM-Email; - for none."`
}

// SecurityHeadersConfig says which security headers responses carry. Headers
// the upstream sets itself are kept, except HSTS and nosniff which the
// gateway owns.
type SecurityHeadersConfig struct {
	HSTSMaxAge            time.Duration `yaml:"hsts_max_age" jsonschema_description:"Strict-Transport-Security max-age. Default 8760h (one year). Negative: no HSTS header."`
	HSTSIncludeSubdomains bool          `yaml:"hsts_include_subdomains" jsonschema_description:"Add includeSubDomains to HSTS."`
	HSTSPreload           bool          `yaml:"hsts_preload" jsonschema_description:"Add preload to HSTS (only with include_subdomains and max-age of at least a year)."`
	ContentSecurityPolicy string        `yaml:"content_security_policy" jsonschema_description:"CSP added when the upstream sends none. Default frame-ancestors 'none'; object-src 'none'; base-uri 'self'. Set to - for none."`
	FrameOptions          string        `yaml:"frame_options" jsonschema_description:"X-Frame-Options added when the upstream sends none: DENY or SAMEORIGIN. Default DENY."`
	ReferrerPolicy        string        `yaml:"referrer_policy" jsonschema_description:"Referrer-Policy added when the upstream sends none. Default strict-origin-when-cross-origin."`
}

// UpstreamConfig is one backend.
type UpstreamConfig struct {
	URL                   string        `yaml:"url" jsonschema_description:"Base URL of the backend: http or https scheme, host and port, no path, query or credentials."`
	CAFile                string        `yaml:"ca_file" jsonschema_description:"PEM file of CAs that sign the backend's certificate (https only). Empty: the system roots."`
	ClientCert            string        `yaml:"client_cert" jsonschema_description:"PEM client certificate for mTLS to the backend."`
	ClientKey             string        `yaml:"client_key" jsonschema_description:"PEM private key of client_cert."`
	ServerName            string        `yaml:"server_name" jsonschema_description:"TLS server name to verify instead of the URL's host."`
	DialTimeout           time.Duration `yaml:"dial_timeout" jsonschema_description:"Longest TCP connect to the backend. Default 5s."`
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout" jsonschema_description:"Longest wait for the backend's response headers (504 after it). Default 30s."`
	IdleConnTimeout       time.Duration `yaml:"idle_conn_timeout" jsonschema_description:"How long idle backend connections are kept. Default 90s."`
	MaxIdleConns          int           `yaml:"max_idle_conns" jsonschema_description:"Idle keep-alive connections kept to the backend. Default 128."`
	PassHost              bool          `yaml:"pass_host" jsonschema_description:"Send the client's Host header instead of the backend's host."`
}

// RouteConfig is one route.
type RouteConfig struct {
	ID              string        `yaml:"id" jsonschema_description:"Unique route id, used by policies, logs, metrics and audit (letters, digits, . _ -)."`
	Host            string        `yaml:"host" jsonschema_description:"Host the route serves: exact (crm.example.com) or a wildcard (*.example.com). Empty: any host."`
	Path            string        `yaml:"path" jsonschema_description:"Path pattern: literal segments, {name} for exactly one segment, {name...} as the last segment for the rest of the path."`
	Methods         []string      `yaml:"methods" jsonschema_description:"Allowed methods. Default GET and HEAD."`
	Upstream        string        `yaml:"upstream" jsonschema_description:"Name of the upstream that serves the route."`
	Tags            []string      `yaml:"tags" jsonschema_description:"Free labels handed to the policy (e.g. pii)."`
	Policy          string        `yaml:"policy" jsonschema_description:"Policy entrypoint that decides the route. Empty: the default entrypoint."`
	AllowCIDRs      []string      `yaml:"allow_cidrs" jsonschema_description:"If set, only clients in these CIDRs may use the route (403 otherwise)."`
	DenyCIDRs       []string      `yaml:"deny_cidrs" jsonschema_description:"Clients in these CIDRs are refused (403); checked before allow_cidrs."`
	MaxBodyBytes    int64         `yaml:"max_body_bytes" jsonschema_description:"Largest request body for this route. 0: server.max_body_bytes."`
	Timeout         time.Duration `yaml:"timeout" jsonschema_description:"Longest wait for the backend's response headers on this route. 0: the upstream's."`
	MethodOverride  bool          `yaml:"method_override" jsonschema_description:"Honour X-HTTP-Method-Override and the _method query parameter; the effective method is then routed and decided. Default false: they are removed."`
	AllowNonASCII   bool          `yaml:"allow_non_ascii" jsonschema_description:"Allow percent-encoded non-ASCII UTF-8 in the path. Default false: 400."`
	CaseInsensitive bool          `yaml:"case_insensitive" jsonschema_description:"Match literal path segments case-insensitively (for backends that ignore case). Default false: paths are case-sensitive."`
	Cache           string        `yaml:"cache" jsonschema_description:"Caching of responses: no-store (default), private, or upstream (keep the backend's Cache-Control)."`
	WebSocket       bool          `yaml:"websocket" jsonschema_description:"Allow WebSocket upgrades on this route."`
	Auth            string        `yaml:"auth" jsonschema_description:"Who may call the route: required (default: an identified caller; browsers are sent to login, other clients get 401), optional (callers without credentials pass as anonymous, for the policy to decide), or none (public: no identification, no identity headers)."`
	// Credentials, APIKeyFrom, UpstreamCredential and RateLimit are the
	// route's identification and limits.
	Credentials        []string                 `yaml:"credentials" jsonschema_description:"Credentials the route accepts: session (browser sign-in), api_key, bearer (access tokens of the bearer issuers). Default: every kind that is configured."`
	APIKeyFrom         []string                 `yaml:"api_key_from" jsonschema_description:"Where API keys are read on this route: header:NAME, authorization:SCHEME, basic. Default: api_keys.sources."`
	UpstreamCredential UpstreamCredentialConfig `yaml:"upstream_credential" jsonschema_description:"Replace the client's credential with the CRM's own service credential on forwarded requests (credential translation), so integrations never hold CRM credentials."`
	RateLimit          RouteRateLimit           `yaml:"rate_limit" jsonschema_description:"The route's rate limit."`
	// RedactUntransformable says what happens to a response that a
	// decision wants redacted or filtered but that is not JSON.
	RedactUntransformable string `yaml:"redact_untransformable" jsonschema_description:"What happens to a response that the policy decision wants redacted or filtered but that is not JSON (CSV, HTML, a download): block (default: 502, nothing of it is sent) or pass (sent as the upstream wrote it, unredacted; only for routes whose other formats hold nothing the redactions protect)."`
}

// Values of RouteConfig.RedactUntransformable.
const (
	UntransformableBlock = "block"
	UntransformablePass  = "pass"
)

// RouteRateLimit is a route's rate-limit settings.
type RouteRateLimit struct {
	Tier     string `yaml:"tier" jsonschema_description:"Tier for every caller of this route, instead of the API key's or the caller kind's default."`
	PerRoute bool   `yaml:"per_route" jsonschema_description:"Count this route's requests separately from the caller's other routes."`
}

// Route authentication modes.
const (
	AuthRequired = "required"
	AuthOptional = "optional"
	AuthNone     = "none"
)

// ReservedPrefix is the path prefix of the gateway's own endpoints (login
// callback, logout, JWKS); no route may use it.
const ReservedPrefix = "/.crmgate/"

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	c.StepUp.Defaults()
	c.Redact.Defaults()
	if c.Listen.HTTPS == "" {
		c.Listen.HTTPS = ":443"
	}
	s := &c.Server
	setDur(&s.HandshakeTimeout, 10*time.Second)
	setDur(&s.ReadHeaderTimeout, 10*time.Second)
	setDur(&s.IdleTimeout, 120*time.Second)
	setDur(&s.ShutdownTimeout, 20*time.Second)
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = 64 << 10
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = 10 << 20
	}
	if s.RequestIDHeader == "" {
		s.RequestIDHeader = "X-Request-Id"
	}
	s.ProxyProtocol.Defaults()
	h := &c.Headers
	if h.Identity == nil {
		h.Identity = []string{"X-CRM-User", "X-CRM-Roles", "X-CRM-Email", "X-CRM-Assertion"}
	}
	if h.StripResponse == nil {
		h.StripResponse = []string{"Server", "X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version", "X-Runtime", "X-Backend-Server"}
	}
	if h.GatewayCookiePrefix == "" {
		h.GatewayCookiePrefix = "crmgate"
	}
	sec := &h.Security
	setDur(&sec.HSTSMaxAge, 365*24*time.Hour)
	if sec.ContentSecurityPolicy == "" {
		sec.ContentSecurityPolicy = "frame-ancestors 'none'; object-src 'none'; base-uri 'self'"
	}
	if sec.FrameOptions == "" {
		sec.FrameOptions = "DENY"
	}
	if sec.ReferrerPolicy == "" {
		sec.ReferrerPolicy = "strict-origin-when-cross-origin"
	}
	for name, u := range c.Upstreams {
		setDur(&u.DialTimeout, 5*time.Second)
		setDur(&u.ResponseHeaderTimeout, 30*time.Second)
		setDur(&u.IdleConnTimeout, 90*time.Second)
		if u.MaxIdleConns == 0 {
			u.MaxIdleConns = 128
		}
		c.Upstreams[name] = u
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if len(r.Methods) == 0 {
			r.Methods = []string{"GET", "HEAD"}
		}
		if r.Cache == "" {
			r.Cache = "no-store"
		}
		if r.Auth == "" {
			r.Auth = AuthRequired
		}
		if r.RedactUntransformable == "" {
			r.RedactUntransformable = UntransformableBlock
		}
	}
	u := &h.Upstream
	if u.User == "" {
		u.User = "X-CRM-User"
	}
	if u.Roles == "" {
		u.Roles = "X-CRM-Roles"
	}
	if u.Email == "" {
		u.Email = "X-CRM-Email"
	}
	c.Assertion.Defaults()
	if c.RateLimit != nil {
		c.RateLimit.Defaults()
	}
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

var (
	routeIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	tokenRe   = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// KnownMethods are the methods the gateway forwards at all; any other is
// answered 405 before routing. TRACE and CONNECT are never forwarded.
var KnownMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run.
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	errs = append(errs, fielderr.Prefix("step_up", c.StepUp.Validate()))
	errs = append(errs, fielderr.Prefix("redact", c.Redact.Validate()))

	if _, _, err := net.SplitHostPort(c.Listen.HTTPS); err != nil {
		add("listen.https", "%q is not host:port (e.g. :443 or 127.0.0.1:8443)", c.Listen.HTTPS)
	}
	if c.Listen.HTTP != "" {
		if _, _, err := net.SplitHostPort(c.Listen.HTTP); err != nil {
			add("listen.http", "%q is not host:port (e.g. :80); leave empty for no plain-HTTP listener", c.Listen.HTTP)
		} else if c.Listen.HTTP == c.Listen.HTTPS && !strings.HasSuffix(c.Listen.HTTP, ":0") {
			add("listen.http", "must differ from listen.https")
		}
	}
	if p := c.Listen.PublicHTTPSPort; p < 0 || p > 65535 {
		add("listen.public_https_port", "%d is not a port (1-65535, or 0 for the listener's)", p)
	}

	s := c.Server
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"handshake_timeout", s.HandshakeTimeout}, {"read_header_timeout", s.ReadHeaderTimeout}, {"idle_timeout", s.IdleTimeout}, {"shutdown_timeout", s.ShutdownTimeout}} {
		if d.v < 0 {
			add("server."+d.key, "must be positive, got %s", d.v)
		}
	}
	if s.MaxHeaderBytes < 1024 || s.MaxHeaderBytes > 1<<20 {
		add("server.max_header_bytes", "%d is out of range (1024 to 1048576)", s.MaxHeaderBytes)
	}
	if s.MaxBodyBytes < 0 {
		add("server.max_body_bytes", "must not be negative")
	}
	for i, p := range s.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			add(fmt.Sprintf("server.trusted_proxies[%d]", i), "%v", err)
		}
	}
	if !tokenRe.MatchString(s.RequestIDHeader) {
		add("server.request_id_header", "%q is not a header name", s.RequestIDHeader)
	}
	errs = append(errs, fielderr.Prefix("server.proxy_protocol", s.ProxyProtocol.Validate()))

	for i, h := range c.Headers.Identity {
		if !tokenRe.MatchString(h) {
			add(fmt.Sprintf("headers.identity[%d]", i), "%q is not a header name", h)
		}
	}
	for i, h := range c.Headers.Strip {
		if !tokenRe.MatchString(h) {
			add(fmt.Sprintf("headers.strip[%d]", i), "%q is not a header name", h)
		}
	}
	for i, h := range c.Headers.StripResponse {
		if !tokenRe.MatchString(h) {
			add(fmt.Sprintf("headers.strip_response[%d]", i), "%q is not a header name", h)
		}
	}
	for key, h := range map[string]string{"user": c.Headers.Upstream.User, "roles": c.Headers.Upstream.Roles, "email": c.Headers.Upstream.Email} {
		if h != "-" && !tokenRe.MatchString(h) {
			add("headers.upstream_identity."+key, "%q is not a header name (or - for none)", h)
		}
	}
	errs = append(errs, fielderr.Prefix("assertion", c.Assertion.Validate()))
	if c.RateLimit != nil {
		errs = append(errs, fielderr.Prefix("rate_limit", c.RateLimit.Validate()))
	}
	for i, r := range c.Routes {
		if t := r.RateLimit.Tier; t != "" {
			if c.RateLimit == nil {
				add(fmt.Sprintf("routes[%d].rate_limit.tier", i), "needs a rate_limit section with tier %q", t)
			} else if _, ok := c.RateLimit.Tiers[t]; !ok {
				add(fmt.Sprintf("routes[%d].rate_limit.tier", i), "tier %q is not defined under rate_limit.tiers", t)
			}
		}
	}
	if !tokenRe.MatchString(c.Headers.GatewayCookiePrefix) || strings.ContainsAny(c.Headers.GatewayCookiePrefix, "=;,") {
		add("headers.gateway_cookie_prefix", "%q is not a cookie name", c.Headers.GatewayCookiePrefix)
	}
	sec := c.Headers.Security
	if sec.HSTSPreload && (!sec.HSTSIncludeSubdomains || sec.HSTSMaxAge < 365*24*time.Hour) {
		add("headers.security.hsts_preload", "requires hsts_include_subdomains and hsts_max_age of at least 8760h")
	}
	if fo := strings.ToUpper(sec.FrameOptions); fo != "DENY" && fo != "SAMEORIGIN" && fo != "-" {
		add("headers.security.frame_options", "%q is not allowed (DENY, SAMEORIGIN, or - for none)", sec.FrameOptions)
	}
	for key, v := range map[string]string{"content_security_policy": sec.ContentSecurityPolicy, "referrer_policy": sec.ReferrerPolicy} {
		if strings.ContainsAny(v, "\r\n\x00") {
			add("headers.security."+key, "must be one line")
		}
	}

	if len(c.Upstreams) == 0 {
		add("upstreams", "at least one upstream is required")
	}
	for _, name := range sortedKeys(c.Upstreams) {
		errs = append(errs, fielderr.Prefix("upstreams."+name, c.Upstreams[name].validate()))
	}

	if len(c.Routes) == 0 {
		add("routes", "at least one route is required; requests matching no route are refused")
	}
	seen := map[string]int{}
	for i, r := range c.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		if j, dup := seen[r.ID]; dup && r.ID != "" {
			add(path+".id", "%q is already the id of routes[%d]", r.ID, j)
		}
		seen[r.ID] = i
		errs = append(errs, fielderr.Prefix(path, r.validate(c.Upstreams)))
	}
	if errors.Join(errs...) == nil {
		if _, err := compileRoutes(c.Routes); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (u UpstreamConfig) validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	pu, err := url.Parse(u.URL)
	switch {
	case u.URL == "":
		add("url", "required (e.g. http://127.0.0.1:8081)")
	case err != nil:
		add("url", "%q is not a URL", u.URL)
	case pu.Scheme != "http" && pu.Scheme != "https":
		add("url", "scheme %q is not allowed (http or https)", pu.Scheme)
	case pu.Host == "":
		add("url", "%q has no host", u.URL)
	case pu.User != nil:
		add("url", "must not contain credentials")
	case (pu.Path != "" && pu.Path != "/") || pu.RawQuery != "" || pu.Fragment != "":
		add("url", "must not have a path, query or fragment: the client's path is forwarded as it is")
	}
	if (u.CAFile != "" || u.ClientCert != "" || u.ServerName != "") && err == nil && pu.Scheme == "http" {
		add("url", "ca_file, client_cert and server_name need an https URL")
	}
	if (u.ClientCert == "") != (u.ClientKey == "") {
		add("client_key", "client_cert and client_key go together")
	}
	for key, d := range map[string]time.Duration{"dial_timeout": u.DialTimeout, "response_header_timeout": u.ResponseHeaderTimeout, "idle_conn_timeout": u.IdleConnTimeout} {
		if d < 0 {
			add(key, "must be positive, got %s", d)
		}
	}
	if u.MaxIdleConns < 0 {
		add("max_idle_conns", "must not be negative")
	}
	return errors.Join(errs...)
}

func (r RouteConfig) validate(upstreams map[string]UpstreamConfig) error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	if !routeIDRe.MatchString(r.ID) {
		add("id", "%q is not a route id (1-128 of letters, digits, . _ -, starting with a letter or digit)", r.ID)
	}
	if r.Host != "" {
		if err := validHostPattern(r.Host); err != nil {
			add("host", "%v", err)
		}
	}
	if _, err := parsePattern(r.Path); err != nil {
		add("path", "%v", err)
	} else if strings.HasPrefix(strings.ToLower(r.Path), ReservedPrefix) || strings.EqualFold(r.Path, strings.TrimSuffix(ReservedPrefix, "/")) {
		add("path", "%q is under %s, which the gateway keeps for its own endpoints", r.Path, ReservedPrefix)
	}
	switch r.Auth {
	case AuthRequired, AuthOptional, AuthNone:
	default:
		add("auth", "%q is not allowed (required, optional, none)", r.Auth)
	}
	seen := map[string]bool{}
	for i, k := range r.Credentials {
		switch {
		case k != CredSession && k != CredAPIKey && k != CredBearer:
			add(fmt.Sprintf("credentials[%d]", i), "%q is not allowed (session, api_key, bearer)", k)
		case seen[k]:
			add(fmt.Sprintf("credentials[%d]", i), "%q is listed twice", k)
		}
		seen[k] = true
	}
	for i, src := range r.APIKeyFrom {
		if _, err := apikey.ParseSource(src); err != nil {
			add(fmt.Sprintf("api_key_from[%d]", i), "%v", err)
		}
	}
	if u := r.UpstreamCredential; u.Header != "" || !u.Value.IsZero() {
		if !tokenRe.MatchString(u.Header) {
			add("upstream_credential.header", "%q is not a header name", u.Header)
		}
		if u.Value.IsZero() {
			add("upstream_credential.value", "required with header: a secret reference to the CRM's credential")
		}
	}
	for i, m := range r.Methods {
		if !slices.Contains(KnownMethods, m) {
			add(fmt.Sprintf("methods[%d]", i), "%q is not allowed (%s, upper case)", m, strings.Join(KnownMethods, ", "))
		}
	}
	if r.Upstream == "" {
		add("upstream", "required: the name of an entry of upstreams")
	} else if _, ok := upstreams[r.Upstream]; !ok {
		add("upstream", "%q is not defined under upstreams (defined: %s)", r.Upstream, strings.Join(sortedKeys(upstreams), ", "))
	}
	for i, p := range r.AllowCIDRs {
		if _, err := parsePrefix(p); err != nil {
			add(fmt.Sprintf("allow_cidrs[%d]", i), "%v", err)
		}
	}
	for i, p := range r.DenyCIDRs {
		if _, err := parsePrefix(p); err != nil {
			add(fmt.Sprintf("deny_cidrs[%d]", i), "%v", err)
		}
	}
	if r.MaxBodyBytes < 0 {
		add("max_body_bytes", "must not be negative")
	}
	if r.Timeout < 0 {
		add("timeout", "must be positive, got %s", r.Timeout)
	}
	switch r.Cache {
	case "no-store", "private", "upstream":
	default:
		add("cache", "%q is not allowed (no-store, private, upstream)", r.Cache)
	}
	switch r.RedactUntransformable {
	case UntransformableBlock, UntransformablePass:
	default:
		add("redact_untransformable", "%q is not allowed (block, pass)", r.RedactUntransformable)
	}
	return errors.Join(errs...)
}

// parsePrefix accepts a CIDR or a single address (as /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8 or 2001:db8::/32)", s)
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func parsePrefixes(ss []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

var hostLabelRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func validHostPattern(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if strings.ToLower(name) != name {
		return fmt.Errorf("%q must be lower case", h)
	}
	if _, err := netip.ParseAddr(name); err == nil && name == h {
		return nil
	}
	for _, l := range strings.Split(name, ".") {
		if !hostLabelRe.MatchString(l) {
			return fmt.Errorf("%q is not a host name or *.domain wildcard", h)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
