package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/proxy/assertion"
	"github.com/crmgate/crmgate/secret"
)

const strongSecret = "q8Vf2kLm9Xz4Rt7Wb1Nc6Hy3Jd5Ps0Ga8Ue2Io4Ak7+/="

var testResolver = secret.Resolver{
	LookupEnv: func(k string) (string, bool) {
		v, ok := map[string]string{
			"ADMIN_TOKEN": strongSecret, "WEAK_TOKEN": "password123",
			"CLIENT_SECRET": strongSecret + "c", "SESSION_KEY": strongSecret + "s", "ASSERTION_KEY": string(testAssertionKey),
			"REDACT_KEY": strongSecret + "r",
		}[k]
		return v, ok
	},
	ReadFile: func(string) ([]byte, error) { return nil, os.ErrNotExist },
}

var testAssertionKey = func() []byte {
	k, err := assertion.GenerateKeyPEM()
	if err != nil {
		panic(err)
	}
	return k
}()

// Every file under testdata/bad is refused; the messages are golden, so a
// change in wording or position is a reviewed change.
func TestLoadErrorsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f, testResolver)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load(%s) = %v, want *Error", f, err)
			}
			got := ce.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if d := cmp.Diff(got, string(want)); d != "" {
				t.Errorf("Load(%s) errors (-got +want):\n%s", f, d)
			}
		})
	}
}

func TestLoadValid(t *testing.T) {
	f, err := Load("testdata/valid.yaml", testResolver)
	if err != nil {
		t.Fatalf("Load(valid) = %v", err)
	}
	if got := string(f.Admin.Token.Value()); got != strongSecret {
		t.Errorf("admin.token resolved to %q", got)
	}
	if f.Server.MaxBodyBytes != 10<<20 || f.Routes[0].Methods[0] != "GET" || f.Log.Format != "json" {
		t.Errorf("defaults not applied: %+v", f)
	}
	if f.Upstreams["crm"].DialTimeout == 0 {
		t.Errorf("upstream defaults not applied")
	}
	if f.Assertion.Issuer != "https://crm.example.com" || f.Session.CookieName != "__Host-crmgate" || f.OIDC.RedirectPath != "/.crmgate/callback" {
		t.Errorf("identity defaults not applied: assertion issuer %q, cookie %q, redirect %q", f.Assertion.Issuer, f.Session.CookieName, f.OIDC.RedirectPath)
	}
	if string(f.Redact.HashKey.Value()) != strongSecret+"r" || f.Redact.MaxDepth != 32 || f.Redact.MaskToken != "****" {
		t.Errorf("redact = %+v", f.Redact)
	}
	if f.Routes[0].RedactUntransformable != "block" || f.Routes[2].RedactUntransformable != "pass" {
		t.Errorf("redact_untransformable %q %q", f.Routes[0].RedactUntransformable, f.Routes[2].RedactUntransformable)
	}
	if pp := f.Server.ProxyProtocol; !pp.Enabled() || len(pp.From) != 2 || pp.HeaderTimeout != 5*time.Second {
		t.Errorf("server.proxy_protocol = %+v, want two balancers and the default header_timeout", pp)
	}
	if f.Routes[0].Auth != "required" || f.Routes[1].Auth != "none" {
		t.Errorf("route auth modes %q %q", f.Routes[0].Auth, f.Routes[1].Auth)
	}
}

func TestSchema(t *testing.T) {
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"routes"`, `"additionalProperties": false`, `"tls"`, `"pattern": "^(env:`} {
		if !strings.Contains(s, want) {
			t.Errorf("schema lacks %s", want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/valid.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("routes: [{id: a, path: /{x...}, upstream: u}]\nupstreams: {u: {url: 'http://h'}}"))
	f.Add([]byte("listen: &a {https: *a}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.yaml", data, testResolver)
		if err == nil {
			// Anything accepted must validate on its own again.
			if err := file.Validate(); err != nil {
				t.Fatalf("accepted config fails Validate: %v", err)
			}
			return
		}
		var ce *Error
		if !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("Parse error %v is not a *config.Error with problems", err)
		}
	})
}

// A gateway that asks an OPA server: the server's defaults apply, the
// token is resolved as a token another system issued, and none of the
// embedded set's settings is defaulted.
func TestLoadPolicyServer(t *testing.T) {
	const yaml = `tls:
  source: devca
  devca:
    dir: /tmp/crmgate-test-tls
upstreams:
  crm:
    url: http://127.0.0.1:8081
routes:
  - id: a
    path: /api/{id}
    upstream: crm
    auth: none
    policy: data.crm.other.decision
policy:
  server:
    url: unix:///run/opa/opa.sock
    bearer_token: env:OPA_TOKEN
`
	res := testResolver
	res.LookupEnv = func(k string) (string, bool) {
		if k == "OPA_TOKEN" {
			return "5f0c2d9e-8b7a-4c1e-9f3d-2a6b8c4e1d7f", true
		}
		return testResolver.LookupEnv(k)
	}
	f, err := Parse("server.yaml", []byte(yaml), res)
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	p := f.Policy
	if p.Server.Timeout != 100*time.Millisecond || p.Server.MaxIdleConns != 128 || string(p.Server.BearerToken.Value()) == "" {
		t.Errorf("server = %+v", p.Server)
	}
	if p.Dir != "" || p.EvalTimeout != 0 || p.Reload != "" || p.Entrypoint != "data.crmgate.authz.decision" {
		t.Errorf("policy = %+v", p)
	}
}
