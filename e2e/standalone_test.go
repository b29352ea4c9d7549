package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	oidcIssuer   = regexp.MustCompile(`(?m)^  issuer: .*$`)
	oidcClientID = regexp.MustCompile(`(?m)^  client_id: .*$`)
	oidcExternal = regexp.MustCompile(`(?m)^  external_url: .*$`)
	oidcLogout   = regexp.MustCompile(`(?m)^  post_logout_redirect_url: .*$`)
	crmUpstream  = regexp.MustCompile(`(?m)^    url: "http://127\.0\.0\.1:\d+"$`)
	listenPort   = regexp.MustCompile(`(?m)^  https: "127\.0\.0\.1:(\d+)"$`)
)

// The container stack of deploy/compose runs the sample CRM and the
// development OpenID provider as processes of their own (`crmgate demo
// crm`, `crmgate demo idp`) beside `crmgate serve`. The same three, each
// its own process on loopback: alice signs in at the gateway through the
// stand-alone provider with her password and TOTP code, and reads her
// contacts from the stand-alone CRM through the gateway; the provider
// refuses to start on bad flags with a message that names them.
func TestDemoServicesStandalone(t *testing.T) {
	d := startDemo(t, "--policy", "shipped")
	crmPort, idpPort := freePort(t), freePort(t)
	crm := startProcess(t, "crmgate demo crm", "demo", "crm", "-addr", fmt.Sprintf("127.0.0.1:%d", crmPort), "-contacts", "50", "-seed", "7")
	waitHTTP(t, crm, fmt.Sprintf("http://127.0.0.1:%d/api/contacts", crmPort), nil)

	tlsDir := filepath.Dir(d.CACert)
	secretFile := filepath.Join(d.dir, "secrets", "oidc-client.secret")
	if _, err := os.Stat(secretFile); err != nil {
		t.Fatalf("the demo's client secret: %v", err)
	}
	idpURL := fmt.Sprintf("https://localhost:%d", idpPort)
	idpDir := t.TempDir()
	var gatewayURL string
	r := startReplica(t, d, func(cfg string) string {
		m := listenPort.FindStringSubmatch(cfg)
		if m == nil {
			t.Fatalf("no listen.https in the demo configuration:\n%s", cfg)
		}
		gatewayURL = "https://localhost:" + m[1]
		idp := startProcess(t, "crmgate demo idp", "demo", "idp",
			"-addr", fmt.Sprintf("127.0.0.1:%d", idpPort), "-issuer", idpURL, "-gateway-url", gatewayURL,
			"-cert", filepath.Join(tlsDir, "cert.pem"), "-key", filepath.Join(tlsDir, "key.pem"),
			"-data-dir", idpDir, "-client-id", "crmgate", "-client-secret", "file:"+secretFile,
			"-back-channel-ca", d.CACert)
		waitHTTP(t, idp, idpURL+"/.well-known/openid-configuration", newClient(d.pool, false))
		for _, r := range []struct {
			re   *regexp.Regexp
			with string
		}{
			{oidcIssuer, fmt.Sprintf("  issuer: %q", idpURL)},
			{oidcClientID, "  client_id: crmgate"},
			{oidcExternal, fmt.Sprintf("  external_url: %q", gatewayURL)},
			{oidcLogout, fmt.Sprintf("  post_logout_redirect_url: %q", gatewayURL+"/")},
			{crmUpstream, fmt.Sprintf(`    url: "http://127.0.0.1:%d"`, crmPort)},
		} {
			if !r.re.MatchString(cfg) {
				t.Fatalf("the demo configuration has no line like %s", r.re)
			}
			cfg = r.re.ReplaceAllString(cfg, r.with)
		}
		return cfg
	})

	// The provider's users are its own, in its data folder.
	b, err := os.ReadFile(filepath.Join(idpDir, "demo-users.json"))
	if err != nil {
		t.Fatal(err)
	}
	sd := *d
	sd.IdPURL, sd.Users = idpURL, nil
	if err := json.Unmarshal(b, &sd.Users); err != nil {
		t.Fatal(err)
	}
	if len(sd.Users) != 4 || sd.Users[0].Password == d.Users[0].Password {
		t.Fatalf("the stand-alone provider's users: %+v", sd.Users)
	}

	br := d.browser(t)
	p := sd.login(t, br, r.URL, "/api/contacts", "alice")
	if p.Status != http.StatusOK || !strings.HasPrefix(p.URL.String(), gatewayURL+"/api/contacts") {
		t.Fatalf("after signing in: %d at %s\n%s", p.Status, p.URL, tail(p.Body, 600))
	}
	var list struct {
		Items []struct {
			ID    int    `json:"id"`
			Name  string `json:"name"`
			Owner string `json:"owner"`
			SSN   string `json:"ssn"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(p.Body), &list); err != nil {
		t.Fatalf("contacts: %v\n%s", err, tail(p.Body, 600))
	}
	if len(list.Items) == 0 {
		t.Fatalf("alice sees no contacts:\n%s", tail(p.Body, 600))
	}
	for _, c := range list.Items {
		if c.Owner != "alice" || c.SSN != "" {
			t.Errorf("alice sees a contact of %q with ssn %q: the shipped policy applies to the stand-alone CRM too", c.Owner, c.SSN)
		}
	}
	// The records are the stand-alone CRM's (seed 7), not the demo's own.
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/contacts/%d", crmPort, list.Items[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	var direct struct {
		Name string `json:"name"`
	}
	err = json.NewDecoder(res.Body).Decode(&direct)
	res.Body.Close()
	if err != nil || direct.Name != list.Items[0].Name {
		t.Errorf("contact %d is %q through the gateway and %q (%v) at the stand-alone CRM", list.Items[0].ID, list.Items[0].Name, direct.Name, err)
	}

	// Bad flags: every problem named at once, exit status 1.
	bad := startProcess(t, "crmgate demo idp (bad flags)", "demo", "idp", "-issuer", "http://localhost:1", "-client-secret", "not-a-reference")
	select {
	case <-bad.done:
	case <-time.After(10 * time.Second):
		t.Fatal("crmgate demo idp with bad flags did not exit")
	}
	out := bad.out.String()
	for _, want := range []string{`-issuer: "http://localhost:1" is not an https URL`, "-gateway-url: required", "-cert is required", "-key is required"} {
		if !strings.Contains(out, want) {
			t.Errorf("the error lacks %q:\n%s", want, out)
		}
	}
	if bad.err == nil {
		t.Error("crmgate demo idp with bad flags exited with status 0")
	}
}

// waitHTTP waits until url answers with any HTTP status, or fails the test
// when p exits or 30 seconds pass.
func waitHTTP(t *testing.T, p *process, url string, c *http.Client) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := c.Get(url)
		if err == nil {
			res.Body.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer %s after 30s: %v\n%s", p.name, url, err, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
