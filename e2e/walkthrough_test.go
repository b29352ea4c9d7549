package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A newcomer runs the demo as the README says and tries what it prints:
// every "Try:" line is carried out here (curl commands as Go requests with
// the same URL, headers and CA, the audit log read and verified with the
// binary), and the browser steps it names with the demo's users.
func TestDemoWalkthrough(t *testing.T) {
	start := time.Now()
	d := startDemo(t, "--policy", "shipped")
	t.Logf("demo.json written %v after the start", time.Since(start).Round(time.Millisecond))
	out := waitOutput(t, d, "Try:")
	lines := tryLines(out)
	if len(lines) < 8 {
		t.Fatalf("the demo printed %d things to try:\n%s", len(lines), out)
	}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	jsonPath := d.dir + "/demo.json"
	subst := strings.NewReplacer(
		`$(jq -r .admin_token `+jsonPath+`)`, d.AdminToken,
		`$(jq -r '.api_keys[0].key' `+jsonPath+`)`, d.APIKeys[0].Key,
	)
	tried := map[string]bool{}
	for _, line := range lines {
		cmd, comment, _ := strings.Cut(line, "#")
		cmd, comment = strings.TrimSpace(subst.Replace(cmd)), strings.TrimSpace(comment)
		switch {
		case strings.HasPrefix(cmd, "curl "):
			res, body := curl(t, client, cmd)
			check := func(ok bool, what string) {
				t.Helper()
				if !ok {
					t.Errorf("%s: %s; got %d %s", cmd, what, res.StatusCode, tail(body, 300))
				}
			}
			switch {
			case strings.Contains(comment, "401"):
				check(res.StatusCode == 401, "want 401")
			case strings.Contains(comment, "spoofed header"):
				check(res.StatusCode == 200 && !strings.Contains(body, "mallory"), "want 200 without the spoofed user")
			case strings.Contains(comment, "400"):
				check(res.StatusCode == 400, "want 400")
			case strings.Contains(comment, "identity assertion"):
				check(res.StatusCode == 200 && strings.Contains(body, `"keys"`), "want the JWKS")
			case strings.Contains(comment, "API client"):
				check(res.StatusCode == 200 && !strings.Contains(body, `"ssn"`) && strings.Contains(body, `"credit_card"`), "want the contact, ssn removed")
			case strings.Contains(cmd, "/sessions"):
				check(res.StatusCode == 200, "want the session list")
			default:
				t.Errorf("no check for %q", line)
			}
			tried["curl"] = true
		case strings.HasPrefix(cmd, "tail -f "):
			events := readAuditLines(t, d.auditFiles(t).Log)
			types := map[string]int{}
			for _, e := range events {
				types[e]++
			}
			if types["http.request"] < 6 || types["config.loaded"] != 1 || types["policy.reloaded"] < 1 {
				t.Errorf("the audit log after the curl lines: %v", types)
			}
			tried["audit"] = true
		case strings.Contains(cmd, " audit verify "):
			// The demo names itself as it was run (here, the test's binary).
			args := strings.Fields(cmd)[1:]
			b, err := exec.Command(binPath, args...).CombinedOutput()
			if err != nil || !strings.Contains(string(b), "OK") {
				t.Errorf("%s: %v\n%s", cmd, err, b)
			}
			tried["verify"] = true
		case strings.HasPrefix(cmd, "open "):
			tried["browser"] = true
		case strings.HasPrefix(cmd, "as alice:"):
			b := d.browser(t)
			p := d.login(t, b, d.GatewayURL, "/api/contacts", "alice")
			var list struct {
				Items []map[string]any `json:"items"`
			}
			if p.Status != 200 || json.Unmarshal([]byte(p.Body), &list) != nil || len(list.Items) == 0 {
				t.Fatalf("alice's contacts: %d %s", p.Status, tail(p.Body, 300))
			}
			for _, c := range list.Items {
				_, ssn := c["ssn"]
				card, _ := c["credit_card"].(string)
				if c["owner"] != "alice" || ssn || (card != "" && !strings.Contains(card, "*")) {
					t.Errorf("alice sees %v", c)
				}
			}
			tried["alice"] = true
		case strings.HasPrefix(cmd, "as carol:"):
			b := d.browser(t)
			if p := d.login(t, b, d.GatewayURL, "/api/contacts/1", "carol"); p.Status != 200 {
				t.Fatalf("carol signs in: %d", p.Status)
			}
			p := b.Get(d.GatewayURL + "/api/export/contacts")
			if p.URL.Host != mustURL(t, d.IdPURL).Host || p.URL.Path != "/login" {
				t.Errorf("carol's export: %d at %s, want the IdP's sign-in again (step-up)", p.Status, p.URL)
			}
			tried["carol"] = true
		}
	}
	for _, k := range []string{"curl", "audit", "verify", "browser", "alice", "carol"} {
		if !tried[k] {
			t.Errorf("the printout has nothing for %q to try:\n%s", k, out)
		}
	}
}

// waitOutput returns the demo's printout once it holds marker.
func waitOutput(t *testing.T, d *demo, marker string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if out := d.proc.out.String(); strings.Contains(out, marker) {
			time.Sleep(100 * time.Millisecond) // the rest of the block
			return d.proc.out.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo printed no %q:\n%s", marker, d.proc.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tryLines are the lines of the printout's "Try:" block, indented
// continuations joined to what they continue.
func tryLines(out string) []string {
	_, block, ok := strings.Cut(out, "\nTry:\n")
	if !ok {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		switch {
		case strings.HasPrefix(l, "    "):
			lines = append(lines, strings.TrimSpace(l))
		case strings.HasPrefix(l, "  "):
			lines = append(lines, strings.TrimSpace(l))
		case strings.TrimSpace(l) == "":
			if len(lines) > 0 {
				return lines
			}
		}
	}
	return lines
}

// curl carries out a printed curl command: its URL and -H headers, with
// the CA the command names.
func curl(t *testing.T, c *http.Client, cmd string) (*http.Response, string) {
	t.Helper()
	args := shellWords(cmd)
	var url string
	hdr := http.Header{}
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "--cacert":
			i++
		case "-H":
			i++
			k, v, _ := strings.Cut(args[i], ":")
			hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		default:
			url = args[i]
		}
	}
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	req.Header = hdr
	req.Header.Set("User-Agent", "curl/8")
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// shellWords splits a command line on spaces outside single and double
// quotes, removing the quotes.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	in := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '\'' || r == '"'):
			quote, in = r, true
		case quote == 0 && r == ' ':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// readAuditLines returns the unmapped.type of every event of an audit log.
func readAuditLines(t *testing.T, path string) []string {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var types []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Unmapped struct {
				Type string `json:"type"`
			} `json:"unmapped"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Unmapped.Type != "" {
			types = append(types, e.Unmapped.Type)
		}
	}
	return types
}
