package policy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/crmgate/crmgate/scope"
)

// RevisionRemotePrefix starts the revision of a decision made by an OPA
// server that reports no bundle: "remote:" and the server's URL.
const RevisionRemotePrefix = "remote:"

// dataQuery is the query string of every decision: built-in errors are
// evaluation errors, as in the embedded engine (rego.StrictBuiltinErrors),
// and the answer names the server's bundles and their revisions.
const dataQuery = "?strict-builtin-errors=true&provenance=true"

// Remote asks an OPA server for decisions through its Data API (POST
// /v1/data/<entrypoint> with {"input": ...}), as configured by
// Config.Server. It builds the input and decodes the answer exactly as
// Engine does, and it never fails open: a server that cannot be reached
// (ReasonUnavailable), answers too late (ReasonTimeout), answers without
// a result (ReasonUndefined), with an evaluation error (ReasonError) or
// with anything that is not a valid decision (ReasonDecisionInvalid) is a
// deny. It is safe for concurrent use.
type Remote struct {
	cfg    Config
	srv    ServerConfig
	log    *slog.Logger
	inputs *InputBuilder
	// transport, when set by RemoteOptions, replaces the one Start
	// builds.
	transport http.RoundTripper
	metrics   *decisionMetrics
	// location names the server in logs and revisions, without
	// credentials (the configuration allows none in the URL).
	location string
	// revision is what decisions report when the server names no bundle.
	revision string
	token    string // "Bearer …", or empty

	state atomic.Pointer[remoteState]
	// down is set while the server cannot be asked, so that an outage
	// is logged when it starts and when it ends, not once per request.
	down atomic.Bool
	// status is the last change of down, for Status.
	status atomic.Pointer[RemoteStatus]
	now    func() time.Time
}

// RemoteStatus says whether the OPA server answers, for the admin
// dashboard.
type RemoteStatus struct {
	// Failing is true from a decision the server could not give
	// (ReasonUnavailable, ReasonTimeout) until it answers again.
	Failing bool
	// Since is when Failing last changed (or Start ran).
	Since time.Time
	// Err is what the failure was; empty while the server answers.
	Err string
}

// remoteState is what Start prepares: immutable once stored.
type remoteState struct {
	client *http.Client
	// base is the URL every path is appended to: the configured one,
	// or http://opa for a Unix socket.
	base string
	// urls maps every prepared entrypoint, as the configuration spells
	// it (which is how routes ask), to its Data API URL with dataQuery.
	urls map[string]string
}

// RemoteOptions are Remote's collaborators besides Options.
type RemoteOptions struct {
	// Transport, if set, carries the requests instead of the keep-alive
	// transport Start would build from the configuration (whose TLS,
	// pool and socket settings then do not apply). Nil: build it.
	Transport http.RoundTripper
}

// NewRemote returns a Remote for cfg, which must have Server set and have
// passed Defaults and Validate with its token resolved. It reads nothing
// and connects to nothing: Start does. It fails only when the metrics
// cannot be registered (Options.Registerer; Options.OnReload is not
// used: there is nothing to reload).
func NewRemote(cfg Config, o Options, ro RemoteOptions) (*Remote, error) {
	if cfg.Server == nil {
		return nil, errors.New("policy: NewRemote without server configuration")
	}
	r := &Remote{
		cfg:       cfg,
		srv:       *cfg.Server,
		log:       o.Logger,
		inputs:    NewInputBuilder(cfg.Headers, o.Now),
		transport: ro.Transport,
		metrics:   newDecisionMetrics(ModeServer),
		location:  strings.TrimSuffix(cfg.Server.URL, "/"),
		now:       o.Now,
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.revision = RevisionRemotePrefix + r.location
	if t := cfg.Server.BearerToken.Value(); t != nil {
		r.token = "Bearer " + string(t)
	}
	if err := r.metrics.register(o.Registerer); err != nil {
		return nil, err
	}
	return r, nil
}

// Start reads the TLS files, builds the connection pool and prepares the
// default entrypoint and the given ones (those the routes name); Decide
// denies any other. It then asks the server for its health once and logs
// the answer, but a server that is not up yet is no error: sidecars start
// in any order, and until it answers every decision is a deny
// (ReasonUnavailable) and Ready reports it.
func (r *Remote) Start(ctx context.Context, entrypoints ...string) error {
	st := &remoteState{urls: map[string]string{}}
	client, base, err := serverClient(r.srv, r.transport)
	if err != nil {
		return fmt.Errorf("policy server %s: %w", r.location, err)
	}
	st.client, st.base = client, base
	for _, ep := range append([]string{r.cfg.Entrypoint}, entrypoints...) {
		if ep == "" {
			continue
		}
		p, err := DataAPIPath(ep)
		if err != nil {
			return fmt.Errorf("policy server %s: entrypoint %w", r.location, err)
		}
		st.urls[ep] = base + p + dataQuery
	}
	r.state.Store(st)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := r.Ready(pctx); err != nil {
		r.down.Store(true)
		r.status.Store(&RemoteStatus{Failing: true, Since: r.now(), Err: err.Error()})
		r.log.LogAttrs(ctx, slog.LevelWarn, "policy server not answering yet; every request is denied (policy_unavailable) until it does",
			slog.String("server", r.location), slog.String("err", err.Error()))
		return nil
	}
	r.down.Store(false)
	r.status.Store(&RemoteStatus{Since: r.now()})
	r.log.LogAttrs(ctx, slog.LevelInfo, "policy server answers", slog.String("server", r.location))
	return nil
}

// Status says whether the server answers decisions, as the last ones
// found; the zero value before Start.
func (r *Remote) Status() RemoteStatus {
	if st := r.status.Load(); st != nil {
		return *st
	}
	return RemoteStatus{}
}

// Close closes the kept-alive connections.
func (r *Remote) Close() {
	if st := r.state.Load(); st != nil {
		st.client.CloseIdleConnections()
	}
}

// Location names the server: its URL.
func (r *Remote) Location() string { return r.location }

// Revision is the revision of decisions whose answer names no bundle:
// RevisionRemotePrefix and the server's URL.
func (r *Remote) Revision() string { return r.revision }

// Input builds the input of a request with the configured header
// allow-list, as Engine.Input does.
func (r *Remote) Input(s *scope.Scope, req *http.Request) *Input {
	return r.inputs.Build(s, req)
}

// Ready asks the server's health endpoint (GET /health?bundles: 200 once
// the server has loaded its policies and activated its bundles), for
// readiness checks.
func (r *Remote) Ready(ctx context.Context) error {
	st := r.state.Load()
	if st == nil {
		return errors.New("policy server client not started")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.base+"/health?bundles", nil)
	if err != nil {
		return err
	}
	if r.token != "" {
		req.Header.Set("Authorization", r.token)
	}
	resp, err := st.client.Do(req)
	if err != nil {
		return fmt.Errorf("policy server %s: %w", r.location, unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("policy server %s: GET /health?bundles answered %s", r.location, resp.Status)
	}
	return nil
}

// Decide asks the server for entrypoint's decision ("" for the default)
// on in, within ServerConfig.Timeout. It never fails open: any failure is
// a deny whose Reason is one of the Reason constants.
func (r *Remote) Decide(ctx context.Context, in *Input, entrypoint string) Decision {
	if entrypoint == "" {
		entrypoint = r.cfg.Entrypoint
	}
	start := time.Now()
	d := r.decide(ctx, in, entrypoint)
	d.Elapsed = time.Since(start)
	d.Entrypoint = entrypoint
	if d.Revision == "" {
		d.Revision = r.revision
	}
	r.metrics.observe(&d)
	r.track(ctx, &d)
	return d
}

// track logs the start and the end of an outage: a failure to reach the
// server (or a timeout) once, then the first decision it answers again.
func (r *Remote) track(ctx context.Context, d *Decision) {
	// A policy's own reason may read like one of the engine's: only a
	// deny the engine made (Failed) says anything about the server.
	failed := d.Failed()
	switch {
	case failed && (d.Reason == ReasonUnavailable || d.Reason == ReasonTimeout):
		if !r.down.Swap(true) {
			r.status.Store(&RemoteStatus{Failing: true, Since: r.now(), Err: d.Reason + ": " + d.Error})
			r.log.LogAttrs(ctx, slog.LevelError, "policy server failing; requests are denied until it answers",
				slog.String("server", r.location), slog.String("reason", d.Reason), slog.String("err", d.Error))
		}
	case failed && (d.Reason == ReasonCanceled || d.Reason == ReasonInputInvalid || d.Reason == ReasonUnknownEntrypoint || d.Reason == ReasonNotLoaded):
		// Nothing learnt about the server.
	default:
		if r.down.Swap(false) {
			r.status.Store(&RemoteStatus{Since: r.now()})
			r.log.LogAttrs(ctx, slog.LevelInfo, "policy server answers again", slog.String("server", r.location))
		}
	}
}

func (r *Remote) decide(ctx context.Context, in *Input, entrypoint string) Decision {
	st := r.state.Load()
	if st == nil {
		return deny(ReasonNotLoaded, errors.New("the policy server client is not started"))
	}
	target, ok := st.urls[entrypoint]
	if !ok {
		return deny(ReasonUnknownEntrypoint, fmt.Errorf("entrypoint %q was not prepared", entrypoint))
	}
	if in == nil {
		return deny(ReasonInputInvalid, fmt.Errorf("%w: no input", ErrInputInvalid))
	}
	iv, err := in.Value()
	if err != nil {
		return deny(ReasonInputInvalid, err)
	}
	// Not pooled: the transport may still hold the body after Do
	// returns (http.RoundTripper).
	body := append(make([]byte, 0, 2048), `{"input":`...)
	if body, err = appendJSON(body, iv); err != nil {
		return deny(ReasonInputInvalid, fmt.Errorf("%w: %v", ErrInputInvalid, err))
	}
	body = append(body, '}')

	tctx, cancel := context.WithTimeout(ctx, r.srv.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(tctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return deny(ReasonUnavailable, err)
	}
	req.Header["Content-Type"] = jsonType
	req.Header["Accept"] = jsonType
	// A decision is a pure evaluation: a request on a kept-alive
	// connection the server has just closed may be sent again. The empty
	// value marks it so without sending the header (net/http).
	req.Header["Idempotency-Key"] = nil
	if r.token != "" {
		req.Header["Authorization"] = []string{r.token}
	}
	fail := func(err error) Decision {
		switch {
		case ctx.Err() != nil:
			return deny(ReasonCanceled, ctx.Err())
		case tctx.Err() != nil:
			return deny(ReasonTimeout, fmt.Errorf("no answer from the policy server within %s", r.srv.Timeout))
		}
		return deny(ReasonUnavailable, fmt.Errorf("policy server %s: %w", r.location, unwrapURLError(err)))
	}
	resp, err := st.client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return r.refused(resp)
	}
	if resp.ContentLength > MaxServerResponseBytes {
		return deny(ReasonDecisionInvalid, fmt.Errorf("the policy server's answer is %d bytes, more than %d", resp.ContentLength, MaxServerResponseBytes))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxServerResponseBytes+1))
	if err != nil {
		return fail(err)
	}
	if len(b) > MaxServerResponseBytes {
		return deny(ReasonDecisionInvalid, fmt.Errorf("the policy server's answer is more than %d bytes", MaxServerResponseBytes))
	}
	a, err := parseDataAnswer(b)
	if err != nil {
		return deny(ReasonDecisionInvalid, fmt.Errorf("policy server: %w", err))
	}
	if a.result == nil {
		return deny(ReasonUndefined, fmt.Errorf("%s is undefined for this input on the policy server", entrypoint))
	}
	d, err := decodeDecision(a.result)
	if err != nil {
		return deny(ReasonDecisionInvalid, err)
	}
	d.DecisionID = a.decisionID
	if a.bundles != "" {
		d.Revision = a.bundles
	}
	return d
}

var jsonType = []string{"application/json"}

// refused turns an answer other than 200 into a deny: OPA's evaluation
// errors (500 with code internal_error listing the evaluation's errors,
// e.g. eval_conflict_error, eval_builtin_error) are ReasonError, as
// embedded; anything else says the server could not decide
// (ReasonUnavailable): an authentication failure, a missing route, a
// proxy's 502.
func (r *Remote) refused(resp *http.Response) Decision {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusInternalServerError {
		if msg, ok := opaEvalError(b); ok {
			return deny(ReasonError, fmt.Errorf("policy server: %s", msg))
		}
	}
	return deny(ReasonUnavailable, fmt.Errorf("policy server %s answered %s", r.location, resp.Status))
}

// opaEvalError reads OPA's error answer {"code": "internal_error",
// "errors": [{"code": "eval_…", "message": …}]} and returns its first
// evaluation error.
func opaEvalError(b []byte) (string, bool) {
	v, err := parseJSON(b)
	if err != nil {
		return "", false
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return "", false
	}
	if c, ok := member(obj, "code").(ast.String); !ok || c != "internal_error" {
		return "", false
	}
	errs, ok := member(obj, "errors").(*ast.Array)
	if !ok || errs.Len() == 0 {
		return "", false
	}
	e, ok := errs.Elem(0).Value.(ast.Object)
	if !ok {
		return "", false
	}
	code, _ := member(e, "code").(ast.String)
	msg, _ := member(e, "message").(ast.String)
	if !strings.HasPrefix(string(code), "eval_") {
		return "", false
	}
	s := string(code) + ": " + string(msg)
	if len(s) > maxStringLen {
		s = s[:maxStringLen]
	}
	return s, true
}

// member is obj's value at key, or nil.
func member(obj ast.Object, key string) ast.Value {
	if t := obj.Get(ast.StringTerm(key)); t != nil {
		return t.Value
	}
	return nil
}

// unwrapURLError drops net/http's "Post \"url\":" prefix, which repeats
// the URL the caller names already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// serverClient is the client of the OPA server: a keep-alive pool of
// max_idle_conns (at most max_conns open), no environment proxy, no
// redirects, TLS 1.2 or later verified against ca_file's CAs (else the
// system roots) with an optional client certificate. It returns the base
// URL paths are appended to.
func serverClient(c ServerConfig, given http.RoundTripper) (*http.Client, string, error) {
	u, err := parseServerURL(c.URL)
	if err != nil {
		return nil, "", err
	}
	base := strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/")
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	if u.Scheme == "unix" {
		sock := u.Path
		base = "http://opa"
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", sock)
		}
	}
	tr := given
	if tr == nil {
		t := &http.Transport{
			Proxy:                  nil,
			DialContext:            dial,
			MaxIdleConns:           c.MaxIdleConns,
			MaxIdleConnsPerHost:    c.MaxIdleConns,
			MaxConnsPerHost:        c.MaxConns,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    c.Timeout,
			MaxResponseHeaderBytes: 64 << 10,
			// Answers are small; compression would cost CPU both sides.
			DisableCompression: true,
		}
		if u.Scheme == "https" {
			tc, err := serverTLS(c)
			if err != nil {
				return nil, "", err
			}
			t.TLSClientConfig = tc
		}
		tr = t
	}
	return &http.Client{
		Transport: tr,
		// The Data API never redirects; following one would send the
		// input and the token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, base, nil
}

func serverTLS(c ServerConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pool, err := caPool("ca_file", c.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if c.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client_cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
