package policy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/secret"
)

// newRemote starts a Remote asking the server at url, with a deadline a
// loaded machine does not reach by accident unless mod sets another.
func newRemote(t testing.TB, url string, mod func(*Config), o Options) *Remote {
	t.Helper()
	cfg := Config{Server: &ServerConfig{URL: url, Timeout: 5 * time.Second}}
	if mod != nil {
		mod(&cfg)
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	r, err := NewRemote(cfg, o, RemoteOptions{})
	if err != nil {
		t.Fatalf("NewRemote: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// aliceInput is the input of alice listing contacts.
func aliceInput(r interface {
	Input(*scope.Scope, *http.Request) *Input
}) *Input {
	s := demoScope("GET", "contacts.list", "/api/contacts", demoSubjects()["alice"])
	req := httptest.NewRequest("GET", "https://crm.example.com/api/contacts?q=acme", nil)
	req.Header.Set("User-Agent", "Mozilla/5.0")
	return r.Input(s, req)
}

// answering is an OPA stand-in that answers every request with status
// and body.
func answering(t testing.TB, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A decision server's answer is decoded exactly as the embedded engine
// decodes a policy's value: anything but a valid decision is a deny with
// a reason, whatever the server claims.
func TestRemoteAnswers(t *testing.T) {
	huge := `{"result": {"allow": true, "reason": "` + strings.Repeat("a", MaxServerResponseBytes) + `"}}`
	deep := `{"result": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`
	tests := []struct {
		name   string
		status int
		body   string
		want   Decision // Revision, Entrypoint and Error are checked apart
	}{
		{"allow", 200, `{"result": {"allow": true, "reason": "sales may GET contacts.list", "redact": [{"path": "$..ssn", "action": "remove"}], "filter": [{"path": "$.items", "keep_where": {"owner": "alice"}}], "rate_limit": {"tier": "standard"}}}`,
			Decision{Allow: true, Reason: "sales may GET contacts.list", Redact: []Redaction{{Path: "$..ssn", Action: ActionRemove}},
				Filter: []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}}, RateLimit: &RateLimit{Tier: "standard"}, SessionAction: SessionNone}},
		{"deny with step-up", 200, `{"result": {"allow": false, "reason": "mfa", "step_up": {"acr": "mfa", "max_age_s": 300}}, "decision_id": "d-1"}`,
			Decision{Reason: "mfa", StepUp: &StepUp{ACR: "mfa", MaxAgeS: 300}, SessionAction: SessionNone, DecisionID: "d-1"}},
		// Attack: a string "true" is not a boolean.
		{"allow as a string", 200, `{"result": {"allow": "true"}}`, failed(ReasonDecisionInvalid)},
		{"allow as a number", 200, `{"result": {"allow": 1}}`, failed(ReasonDecisionInvalid)},
		// Attack: readers disagree on which of two values counts.
		{"allow twice", 200, `{"result": {"allow": false, "allow": true}}`, failed(ReasonDecisionInvalid)},
		{"allow twice, once escaped", 200, `{"result": {"allow": false, "\u0061llow": true}}`, failed(ReasonDecisionInvalid)},
		{"result twice", 200, `{"result": {"allow": false}, "result": {"allow": true}}`, failed(ReasonDecisionInvalid)},
		// Attack: a misspelt field silently ignored would leak what it hides.
		{"unknown field", 200, `{"result": {"allow": true, "redacts": [{"path": "$..ssn", "action": "remove"}]}}`, failed(ReasonDecisionInvalid)},
		{"step-up on an allow", 200, `{"result": {"allow": true, "step_up": {"acr": "mfa"}}}`, failed(ReasonDecisionInvalid)},
		{"result null", 200, `{"result": null}`, failed(ReasonDecisionInvalid)},
		{"result a list", 200, `{"result": [{"allow": true}]}`, failed(ReasonDecisionInvalid)},
		{"undefined", 200, `{}`, failed(ReasonUndefined)},
		{"undefined with provenance", 200, `{"provenance": {"version": "1.22.2"}}`, failed(ReasonUndefined)},
		{"not JSON", 200, `<html>ok</html>`, failed(ReasonDecisionInvalid)},
		{"empty body", 200, ``, failed(ReasonDecisionInvalid)},
		{"truncated", 200, `{"result": {"allow": true`, failed(ReasonDecisionInvalid)},
		// Attack: a second document after the first.
		{"trailing document", 200, `{"result": {"allow": false}} {"result": {"allow": true}}`, failed(ReasonDecisionInvalid)},
		{"array", 200, `[{"result": {"allow": true}}]`, failed(ReasonDecisionInvalid)},
		{"too deep", 200, deep, failed(ReasonDecisionInvalid)},
		{"larger than 1 MiB", 200, huge, failed(ReasonDecisionInvalid)},
		{"decision id not a string", 200, `{"result": {"allow": true}, "decision_id": 7}`, failed(ReasonDecisionInvalid)},
		{"provenance not an object", 200, `{"result": {"allow": true}, "provenance": "x"}`, failed(ReasonDecisionInvalid)},
		{"evaluation error", 500, `{"code": "internal_error", "message": "error(s) occurred while evaluating query", "errors": [{"code": "eval_conflict_error", "message": "rule data.crmgate.authz.decision produced conflicting values"}]}`, failed(ReasonError)},
		{"other server error", 500, `{"code": "internal_error", "message": "storage failure"}`, failed(ReasonUnavailable)},
		{"500 not JSON", 500, `oops`, failed(ReasonUnavailable)},
		{"unauthorized", 401, `{"code": "unauthorized", "message": "the requested operation is not authorized"}`, failed(ReasonUnavailable)},
		{"bad request", 400, `{"code": "invalid_parameter"}`, failed(ReasonUnavailable)},
		{"bad gateway", 502, `<html>bad gateway</html>`, failed(ReasonUnavailable)},
		{"no content", 204, ``, failed(ReasonUnavailable)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := answering(t, tt.status, tt.body)
			r := newRemote(t, srv.URL, nil, Options{})
			d := r.Decide(context.Background(), aliceInput(r), "")
			if d.Entrypoint != DefaultEntrypoint || d.Revision != "remote:"+srv.URL {
				t.Errorf("entrypoint %q revision %q", d.Entrypoint, d.Revision)
			}
			if tt.want.Reason != "" && isReason(tt.want.Reason) {
				if d.Allow || d.Reason != tt.want.Reason || d.Error == "" {
					t.Fatalf("Decide = allow %v reason %q error %q, want a deny %s", d.Allow, d.Reason, d.Error, tt.want.Reason)
				}
				return
			}
			if d.Failed() {
				t.Fatalf("Decide failed: %s: %s", d.Reason, d.Error)
			}
			d.Revision, d.Entrypoint, d.Elapsed = "", "", 0
			if diff := cmp.Diff(d, tt.want); diff != "" {
				t.Errorf("Decide (-got +want):\n%s", diff)
			}
		})
	}
}

// failed is the expectation of an engine-made deny.
func failed(reason string) Decision { return Decision{Reason: reason} }

func isReason(s string) bool {
	for _, r := range decisionResults[2:] {
		if s == r {
			return true
		}
	}
	return false
}

// A body larger than the limit without a Content-Length (chunked) is
// refused too, and the gateway stops reading it.
func TestRemoteHugeChunkedAnswer(t *testing.T) {
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"result": {"allow": true, "reason": "`)
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for i := 0; i < 1024; i++ { // 64 MiB
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	r := newRemote(t, srv.URL, nil, Options{})
	d := r.Decide(context.Background(), aliceInput(r), "")
	if d.Allow || d.Reason != ReasonDecisionInvalid {
		t.Fatalf("Decide = allow %v reason %q (%s), want decision_invalid", d.Allow, d.Reason, d.Error)
	}
	if w := written.Load(); w > 32<<20 {
		t.Errorf("the server could write %d bytes: the gateway kept reading", w)
	}
}

// The request is the Data API's: POST to the entrypoint's path with the
// embedded engine's input document, the token, strict built-in errors
// and provenance.
func TestRemoteRequest(t *testing.T) {
	var (
		mu  sync.Mutex
		got *http.Request
		raw []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, raw = r, b
		mu.Unlock()
		_, _ = io.WriteString(w, `{"result": {"allow": false, "reason": "no"}}`)
	}))
	defer srv.Close()
	token := "tok-" + strings.Repeat("x9Q", 12)
	r := newRemote(t, srv.URL+"/opa/", func(c *Config) {
		c.Server.BearerToken = secret.FromValue([]byte(token))
		c.Entrypoint = "data.crm.v2.decide"
	}, Options{})
	in := aliceInput(r)
	if err := r.Start(context.Background(), "data.other.route_decision"); err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{"", "data.other.route_decision"} {
		d := r.Decide(context.Background(), in, ep)
		if d.Failed() {
			t.Fatalf("Decide(%q): %s: %s", ep, d.Reason, d.Error)
		}
		mu.Lock()
		wantPath := map[string]string{"": "/opa/v1/data/crm/v2/decide", "data.other.route_decision": "/opa/v1/data/other/route_decision"}[ep]
		if got.Method != "POST" || got.URL.Path != wantPath || got.URL.Query().Get("strict-builtin-errors") != "true" || got.URL.Query().Get("provenance") != "true" {
			t.Errorf("request %s %s, want POST %s?strict-builtin-errors=true&provenance=true", got.Method, got.URL, wantPath)
		}
		if got.Header.Get("Authorization") != "Bearer "+token || got.Header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", got.Header)
		}
		if _, sent := got.Header["Idempotency-Key"]; sent {
			t.Errorf("Idempotency-Key sent: %v", got.Header)
		}
		var body map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			t.Fatalf("body %s: %v", raw, err)
		}
		mu.Unlock()
		iv, err := in.Value()
		if err != nil {
			t.Fatal(err)
		}
		want, err := ast.JSONWithOpt(iv, ast.JSONOpt{SortSets: true})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(body, map[string]any{"input": roundTrip(t, want)}); diff != "" {
			t.Errorf("the input sent is not the embedded engine's (-got +want):\n%s", diff)
		}
	}
	// Every field of the contract is there, with its JSON type.
	for _, want := range []string{`"query":{"q":["acme"]}`, `"headers":{"user-agent":"Mozilla/5.0"}`, `"time":"2026-01-02T15:04:05Z"`, `"api_key":null`, `"auth_time":`, `"fingerprint":{`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("body lacks %s: %s", want, raw)
		}
	}
}

func roundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// An input that cannot represent the request is refused before anything
// is sent, as embedded; so is an entrypoint Start did not prepare.
func TestRemoteRefusesBeforeAsking(t *testing.T) {
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		_, _ = io.WriteString(w, `{"result": {"allow": true}}`)
	}))
	defer srv.Close()
	r := newRemote(t, srv.URL, nil, Options{})
	s := demoScope("GET", "contacts.list", "/api/contacts", demoSubjects()["alice"])
	req := httptest.NewRequest("GET", "/api/contacts", nil)
	req.Header.Set("User-Agent", "bad \xff")
	for name, tt := range map[string]struct {
		in         *Input
		entrypoint string
		reason     string
	}{
		"input not UTF-8":     {r.Input(s, req), "", ReasonInputInvalid},
		"no input":            {nil, "", ReasonInputInvalid},
		"unknown entrypoint":  {aliceInput(r), "data.other.decision", ReasonUnknownEntrypoint},
		"malformed reference": {aliceInput(r), "data.x[", ReasonUnknownEntrypoint},
	} {
		t.Run(name, func(t *testing.T) {
			before := asked.Load()
			d := r.Decide(context.Background(), tt.in, tt.entrypoint)
			if d.Allow || d.Reason != tt.reason {
				t.Errorf("Decide = allow %v reason %q, want %s", d.Allow, d.Reason, tt.reason)
			}
			if asked.Load() != before {
				t.Error("the server was asked")
			}
		})
	}
	// Not started: no client, no decision.
	cfg := Config{Server: &ServerConfig{URL: srv.URL}}
	cfg.Defaults()
	r2, err := NewRemote(cfg, Options{}, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := r2.Decide(context.Background(), aliceInput(r2), ""); d.Allow || d.Reason != ReasonNotLoaded {
		t.Errorf("Decide before Start = allow %v reason %q, want policy_not_loaded", d.Allow, d.Reason)
	}
	if err := r2.Ready(context.Background()); err == nil {
		t.Error("Ready before Start = nil")
	}
}

// A server that is not there is a deny (policy_unavailable), promptly.
func TestRemoteUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for name, url := range map[string]string{
		"closed port":    "http://" + addr,
		"missing socket": "unix://" + filepath.Join(t.TempDir(), "opa.sock"),
	} {
		t.Run(name, func(t *testing.T) {
			r := newRemote(t, url, nil, Options{})
			start := time.Now()
			d := r.Decide(context.Background(), aliceInput(r), "")
			if d.Allow || d.Reason != ReasonUnavailable || !strings.Contains(d.Error, "refused") && !strings.Contains(d.Error, "no such file") {
				t.Errorf("Decide = allow %v reason %q error %q, want policy_unavailable", d.Allow, d.Reason, d.Error)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %s", el)
			}
			if err := r.Ready(context.Background()); err == nil {
				t.Error("Ready = nil")
			}
		})
	}
}

// A server that stalls, before its headers or in the middle of its body,
// is a deny at the deadline (policy_timeout); the caller's own end is
// policy_canceled.
func TestRemoteSlowServer(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/health" {
			return
		}
		if r.URL.Path == "/v1/data/crmgate/authz/body" {
			_, _ = io.WriteString(w, `{"result": {"allow": tr`)
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	timeout := 150 * time.Millisecond
	r := newRemote(t, srv.URL, func(c *Config) { c.Server.Timeout = timeout }, Options{})
	if err := r.Start(context.Background(), "data.crmgate.authz.body"); err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{"", "data.crmgate.authz.body"} {
		start := time.Now()
		d := r.Decide(context.Background(), aliceInput(r), ep)
		el := time.Since(start)
		if d.Allow || d.Reason != ReasonTimeout {
			t.Errorf("Decide(%q) = allow %v reason %q (%s), want policy_timeout", ep, d.Allow, d.Reason, d.Error)
		}
		if el < timeout || el > timeout+2*time.Second {
			t.Errorf("Decide(%q) took %s with a %s deadline", ep, el, timeout)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if d := r.Decide(ctx, aliceInput(r), ""); d.Allow || d.Reason != ReasonCanceled {
		t.Errorf("Decide(canceled) = allow %v reason %q, want policy_canceled", d.Allow, d.Reason)
	}
}

// Decisions reuse kept-alive connections: a sequence of decisions is one
// connection, not one each.
func TestRemoteKeepAlive(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"result": {"allow": true}}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	r := newRemote(t, srv.URL, nil, Options{})
	base := conns.Load() // the health probe's
	for range 50 {
		if d := r.Decide(context.Background(), aliceInput(r), ""); !d.Allow {
			t.Fatalf("Decide: %s: %s", d.Reason, d.Error)
		}
	}
	if n := conns.Load() - base; n > 1 {
		t.Errorf("50 decisions opened %d connections", n)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				r.Decide(context.Background(), aliceInput(r), "")
			}
		}()
	}
	wg.Wait()
	// net/http may dial for a request that an idle connection then
	// serves; the dialled one joins the pool. Within twice the callers,
	// and none more for the next burst.
	n := conns.Load() - base
	if n > 32 {
		t.Errorf("16 concurrent callers opened %d connections", n)
	}
	for range 50 {
		r.Decide(context.Background(), aliceInput(r), "")
	}
	if m := conns.Load() - base; m != n {
		t.Errorf("decisions after the burst opened %d more connections", m-n)
	}
}

// https: the server's certificate is verified against ca_file, and a
// client certificate can be presented.
func TestRemoteTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, `{"code": "unauthorized"}`, http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"result": {"allow": true}}`)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writePEM(t, ca, "CERTIFICATE", srv.Certificate().Raw)
	// The test server's own certificate and key serve as a client pair.
	cert, key := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	writePEM(t, cert, "CERTIFICATE", srv.TLS.Certificates[0].Certificate[0])
	writeKey(t, key, srv.TLS.Certificates[0])

	t.Run("verified with a client certificate", func(t *testing.T) {
		r := newRemote(t, srv.URL, func(c *Config) { c.Server.CAFile, c.Server.ClientCert, c.Server.ClientKey = ca, cert, key }, Options{})
		if d := r.Decide(context.Background(), aliceInput(r), ""); !d.Allow {
			t.Errorf("Decide: %s: %s", d.Reason, d.Error)
		}
	})
	t.Run("without a client certificate", func(t *testing.T) {
		r := newRemote(t, srv.URL, func(c *Config) { c.Server.CAFile = ca }, Options{})
		if d := r.Decide(context.Background(), aliceInput(r), ""); d.Allow || d.Reason != ReasonUnavailable {
			t.Errorf("Decide = allow %v reason %q, want policy_unavailable (401)", d.Allow, d.Reason)
		}
	})
	t.Run("unknown CA", func(t *testing.T) {
		r := newRemote(t, srv.URL, nil, Options{})
		d := r.Decide(context.Background(), aliceInput(r), "")
		if d.Allow || d.Reason != ReasonUnavailable || !strings.Contains(d.Error, "certificate") {
			t.Errorf("Decide = allow %v reason %q error %q, want policy_unavailable for the certificate", d.Allow, d.Reason, d.Error)
		}
	})
	t.Run("CA file missing", func(t *testing.T) {
		cfg := Config{Server: &ServerConfig{URL: srv.URL, CAFile: filepath.Join(dir, "nope.pem")}}
		cfg.Defaults()
		r, err := NewRemote(cfg, Options{}, RemoteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "ca_file") {
			t.Errorf("Start = %v, want the ca_file error", err)
		}
	})
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t *testing.T, path string, c tls.Certificate) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "PRIVATE KEY", der)
}

// A redirect is not followed: it would send the input and the token
// elsewhere.
func TestRemoteNoRedirect(t *testing.T) {
	var followed atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Store(true)
		_, _ = io.WriteString(w, `{"result": {"allow": true}}`)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL+"/v1/data/crmgate/authz/decision", http.StatusTemporaryRedirect))
	defer srv.Close()
	r := newRemote(t, srv.URL, nil, Options{})
	if d := r.Decide(context.Background(), aliceInput(r), ""); d.Allow || d.Reason != ReasonUnavailable {
		t.Errorf("Decide = allow %v reason %q, want policy_unavailable", d.Allow, d.Reason)
	}
	if followed.Load() {
		t.Error("the redirect was followed")
	}
}

// An outage is logged when it starts and when it ends, not per request;
// decisions are counted by mode and result.
func TestRemoteOutageLogAndMetrics(t *testing.T) {
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"result": {"allow": true}}`)
	}))
	defer srv.Close()
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))
	reg := prometheus.NewRegistry()
	r := newRemote(t, srv.URL, nil, Options{Logger: log, Registerer: reg})
	for range 3 {
		r.Decide(context.Background(), aliceInput(r), "")
	}
	if st := r.Status(); !st.Failing || !strings.Contains(st.Err, "503") {
		t.Errorf("Status while failing = %+v", st)
	}
	up.Store(true)
	for range 2 {
		r.Decide(context.Background(), aliceInput(r), "")
	}
	if st := r.Status(); st.Failing || st.Err != "" {
		t.Errorf("Status while answering = %+v", st)
	}
	// Down again after answering: one line for the whole outage.
	up.Store(false)
	for range 3 {
		r.Decide(context.Background(), aliceInput(r), "")
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	for msg, want := range map[string]int{"policy server not answering yet": 1, "policy server failing": 1, "policy server answers again": 1} {
		if n := strings.Count(out, msg); n != want {
			t.Errorf("%q logged %d times, want %d:\n%s", msg, n, want, out)
		}
	}
	for result, want := range map[string]float64{ReasonUnavailable: 6, ResultAllow: 2, ReasonTimeout: 0} {
		if got := decisionCount(t, reg, ModeServer, result); got != want {
			t.Errorf("crmgate_policy_decisions_total{mode=server,result=%s} = %v, want %v", result, got, want)
		}
	}
}

// decisionCount reads crmgate_policy_decisions_total{mode, result}; a
// missing series fails the test.
func decisionCount(t *testing.T, reg *prometheus.Registry, mode, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "crmgate_policy_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["mode"] == mode && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("crmgate_policy_decisions_total{mode=%q,result=%q} not found", mode, result)
	return 0
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Provenance names the server's bundles; the revision is then theirs.
func TestRemoteRevisionFromProvenance(t *testing.T) {
	srv := answering(t, 200, `{"result": {"allow": true}, "provenance": {"version": "1.22.2", "bundles": {"crmgate": {"revision": "8cbafc2"}, "extra": {"revision": "r2"}}}}`)
	r := newRemote(t, srv.URL, nil, Options{})
	if d := r.Decide(context.Background(), aliceInput(r), ""); d.Revision != "crmgate@8cbafc2,extra@r2" {
		t.Errorf("revision %q (%s %s)", d.Revision, d.Reason, d.Error)
	}
}

// parseJSON reads one JSON value, refusing what readers disagree on.
func TestParseJSON(t *testing.T) {
	for _, ok := range []string{`{}`, `{"a": [1, 2.5e3, "x", true, false, null]}`, ` {"a": {"b": {}}} `} {
		if _, err := parseJSON([]byte(ok)); err != nil {
			t.Errorf("parseJSON(%s) = %v", ok, err)
		}
	}
	for _, bad := range []string{``, `{`, `{"a": 1,}`, `{"a": 1} x`, `{"a": 1, "a": 1}`, `{"a": {"b": 1, "b": 2}}`, `[1] [2]`, `{'a': 1}`, `NaN`} {
		if _, err := parseJSON([]byte(bad)); err == nil {
			t.Errorf("parseJSON(%s) = nil, want an error", bad)
		}
	}
	if _, err := parseJSON([]byte(`{"a": 1, "a": 2}`)); !errors.Is(err, errDuplicateKey) {
		t.Errorf("duplicate key: %v", err)
	}
}

// appendJSON writes what parseJSON reads back.
func TestAppendJSONRoundTrip(t *testing.T) {
	s := demoScope("GET", "contacts.item", "/api/contacts/42", demoSubjects()["carol_mfa"])
	s.Subject.Claims = map[string]any{"n": json.Number("12345678901234567890123"), "f": 2.5, "nested": map[string]any{"l": []any{"a\u2028\"b", nil, true}}}
	req := httptest.NewRequest("GET", "/api/contacts/42?x=%E2%9C%93&x=2", nil)
	req.Header.Set("Referer", "https://crm.example.com/a\tb")
	in := NewInputBuilder(DefaultHeaders, nil).Build(s, req)
	iv, err := in.Value()
	if err != nil {
		t.Fatal(err)
	}
	b, err := appendJSON(nil, iv)
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseJSON(b)
	if err != nil {
		t.Fatalf("parseJSON(%s): %v", b, err)
	}
	if back.Compare(iv) != 0 {
		t.Errorf("round trip:\n%s\nwant\n%s", back, iv)
	}
}

// Embedded decisions are counted in the same series, mode embedded.
func TestDecisionMetricsEmbedded(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(shippedDir, "")
	cfg.EvalTimeout = 5 * time.Second
	e := newEngine(t, cfg, Options{Registerer: reg})
	subs := demoSubjects()
	for _, tt := range []struct{ who, route, path string }{
		{"alice", "contacts.list", "/api/contacts"},
		{"alice", "invoices.list", "/api/invoices"},
		{"anonymous", "whoami", "/api/whoami"},
	} {
		s := demoScope("GET", tt.route, tt.path, subs[tt.who])
		e.Decide(context.Background(), e.Input(s, httptest.NewRequest("GET", tt.path, nil)), "")
	}
	e.Decide(context.Background(), nil, "")
	for result, want := range map[string]float64{ResultAllow: 2, ResultDeny: 1, ReasonInputInvalid: 1, ReasonTimeout: 0} {
		if got := decisionCount(t, reg, ModeEmbedded, result); got != want {
			t.Errorf("crmgate_policy_decisions_total{mode=embedded,result=%s} = %v, want %v", result, got, want)
		}
	}
}
