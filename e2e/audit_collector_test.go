package e2e

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// collector is an HTTPS audit collector on loopback that takes NDJSON
// batches and records the metadata.uid of every event in arrival order.
// While down it answers 503 and keeps nothing; before start (or after
// stop) nothing listens on its address.
type collector struct {
	t      *testing.T
	addr   string // 127.0.0.1:port
	caFile string // PEM of its self-signed certificate
	cert   tls.Certificate
	srv    *httptest.Server

	down    atomic.Bool
	posts   atomic.Int64 // batches kept
	refused atomic.Int64 // batches answered 503

	mu   sync.Mutex
	uids []string // every event kept, in arrival order
}

// newCollector reserves a loopback port and writes the collector's
// certificate; call start to listen.
func newCollector(t *testing.T) *collector {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "audit collector"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{t: t, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), caFile: filepath.Join(t.TempDir(), "collector-ca.pem"),
		cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
	if err := os.WriteFile(c.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	return c
}

func (c *collector) url() string { return "https://" + c.addr + "/ingest" }

// start listens on the collector's address.
func (c *collector) start() {
	c.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may still be in TIME_WAIT from its reservation
		if ln, err = net.Listen("tcp", c.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("collector: %v", err)
	}
	c.srv = httptest.NewUnstartedServer(c)
	c.srv.Listener.Close()
	c.srv.Listener = ln
	c.srv.TLS = &tls.Config{Certificates: []tls.Certificate{c.cert}}
	c.srv.StartTLS()
}

func (c *collector) stop() {
	if c.srv != nil {
		c.srv.Close()
		c.srv = nil
	}
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if c.down.Load() {
		c.refused.Add(1)
		http.Error(w, "collector down", http.StatusServiceUnavailable)
		return
	}
	var uids []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev struct {
			Metadata struct {
				UID string `json:"uid"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Metadata.UID == "" {
			http.Error(w, "not an event: "+sc.Text(), http.StatusBadRequest)
			return
		}
		uids = append(uids, ev.Metadata.UID)
	}
	c.mu.Lock()
	c.uids = append(c.uids, uids...)
	c.mu.Unlock()
	c.posts.Add(1)
	w.WriteHeader(http.StatusOK)
}

// received returns the uids kept so far, in arrival order.
func (c *collector) received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.uids...)
}

var (
	auditSection = regexp.MustCompile(`(?s)\naudit:\n.*?\nalerts:`)
	signingKey   = regexp.MustCompile(`signing_key: "[^"]*"`)
)

// withAuditSink returns an edit for startReplica that gives the replica
// its own audit file and spool in dir (the demo's are the demo's), with
// the spool options spool (YAML lines under spool:, indented by four) and
// c as an HTTP sink.
func withAuditSink(t *testing.T, dir string, c *collector, spool string) func(string) string {
	return func(cfg string) string {
		key := signingKey.FindString(cfg)
		if key == "" || !auditSection.MatchString(cfg) {
			t.Fatalf("the demo configuration has no audit section with a signing key:\n%s", cfg)
		}
		section := fmt.Sprintf("\naudit:\n  spool:\n    dir: %q\n%s  file:\n    path: %q\n    %s\n    checkpoint_interval: 10s\n"+
			"  http:\n    - url: %q\n      format: ndjson\n      tls: {ca_file: %q}\n      timeout: 5s\n      max_batch_bytes: 16777216\nalerts:",
			filepath.Join(dir, "spool"), spool, filepath.Join(dir, "audit.log"), key, c.url(), c.caFile)
		return auditSection.ReplaceAllLiteralString(cfg, section)
	}
}

// loadResult is one request of a load worker.
type loadResult struct {
	rid    string
	status int
	body   string
}

// load runs workers that each send GET path to base one after another on
// their own HTTP/1.1 connection, pausing pace between requests, until stop
// is closed; it returns every worker's requests in the order sent.
func load(t *testing.T, d *demo, base, path string, workers int, pace time.Duration, stop <-chan struct{}) func() [][]loadResult {
	out := make([][]loadResult, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := newClient(d.pool, false)
			defer c.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := c.Get(base + path)
				if err != nil {
					t.Errorf("load worker %d: %v", w, err)
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				out[w] = append(out[w], loadResult{rid: res.Header.Get("X-Request-Id"), status: res.StatusCode, body: string(b)})
				if pace > 0 {
					select {
					case <-stop:
						return
					case <-time.After(pace):
					}
				}
			}
		})
	}
	return func() [][]loadResult { wg.Wait(); return out }
}

// A collector that answers 503 for 30 seconds under load loses nothing:
// the replica spools its events and, once the collector is back, replays
// them. Every event in the replica's own file reaches the collector
// exactly once (no restart, and batches fit one POST, so the pipeline's
// exactly-once-without-a-restart applies), and each client's requests
// arrive in the order they were made.
func TestAuditSpoolReplayToCollector(t *testing.T) {
	d := startDemo(t)
	c := newCollector(t)
	c.start()
	dir := t.TempDir()
	r := startReplica(t, d, withAuditSink(t, dir, c, ""))
	fileLog := filepath.Join(dir, "audit.log")

	stop := make(chan struct{})
	wait := load(t, d, r.URL, "/api/whoami", 4, 100*time.Millisecond, stop)
	time.Sleep(3 * time.Second)
	c.down.Store(true)
	outage := time.Now()
	time.Sleep(30 * time.Second)
	c.down.Store(false)
	t.Logf("collector down for %s; %d batches refused", time.Since(outage).Round(time.Millisecond), c.refused.Load())
	time.Sleep(2 * time.Second)
	close(stop)
	results := wait()
	restored := time.Now()

	total, statuses := 0, map[int]int{}
	for _, w := range results {
		for _, res := range w {
			total++
			statuses[res.status]++
		}
	}
	if statuses[503] > 0 {
		t.Errorf("%d requests refused with 503 during the outage; the 1 GiB spool was nowhere near full", statuses[503])
	}
	if c.refused.Load() == 0 {
		t.Fatal("the collector refused no batch during the outage: the test proves nothing")
	}

	// Wait until every event of the replica's file reached the collector.
	var evs []auditEvent
	deadline := time.Now().Add(90 * time.Second)
	for {
		evs = readAudit(t, fileLog)
		got := map[string]bool{}
		for _, u := range c.received() {
			got[u] = true
		}
		missing := 0
		for _, e := range evs {
			if !got[e.str("metadata.uid")] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events of the replica's file never reached the collector within 90 s of its return", missing, len(evs))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d requests (%v); all %d events of the file at the collector %s after it came back",
		total, statuses, len(evs), time.Since(restored).Round(time.Millisecond))
	m := d.metricsAt(t, r.AdminURL)
	if metricValue(m, `crmgate_audit_events_spooled_total{sink="http-0"}`) <= 0 || metricValue(m, `crmgate_audit_events_replayed_total{sink="http-0"}`) <= 0 {
		t.Errorf("the outage went through no spool:\n%s", grepLines(m, "crmgate_audit_"))
	}

	// Exactly once.
	time.Sleep(time.Second)
	arrived := c.received()
	count, pos := map[string]int{}, map[string]int{}
	for i, u := range arrived {
		if count[u]++; count[u] == 1 {
			pos[u] = i
		}
	}
	dups := 0
	for _, e := range evs {
		if n := count[e.str("metadata.uid")]; n != 1 {
			dups++
			if dups <= 5 {
				t.Errorf("event %s (seq %d, %s) reached the collector %d times, want exactly once", e.str("metadata.uid"), e.Seq, e.typ(), n)
			}
		}
	}
	if dups > 0 {
		t.Errorf("%d of %d events arrived more than once", dups, len(evs))
	}

	// In order: each worker's requests, made one after another on one
	// connection, arrive in the order they were made.
	uidOf := map[string]string{}
	for _, e := range evs {
		if e.typ() == "http.request" {
			uidOf[e.str("http_request.uid")] = e.str("metadata.uid")
		}
	}
	for w, reqs := range results {
		prev, prevRID := -1, ""
		for _, res := range reqs {
			u, ok := uidOf[res.rid]
			if !ok {
				t.Errorf("worker %d: request %s (%d) has no http.request event in the replica's file", w, res.rid, res.status)
				continue
			}
			if pos[u] <= prev {
				t.Errorf("worker %d: request %s arrived at the collector at position %d, before its predecessor %s (%d)", w, res.rid, pos[u], prevRID, prev)
			}
			prev, prevRID = pos[u], res.rid
		}
	}
	// And overall the collector's order is the file's, but for events
	// emitted at the same moment (which reach the two sinks' queues in
	// either order).
	inversions := 0
	for i := 1; i < len(evs); i++ {
		if pos[evs[i].str("metadata.uid")] < pos[evs[i-1].str("metadata.uid")] {
			inversions++
		}
	}
	t.Logf("collector order vs file order: %d adjacent inversions among %d events", inversions, len(evs))
}

// fullSpool is a replica whose 1 MiB spool (the smallest allowed) filled
// under load because its only remote sink, the collector, is not there.
type fullSpool struct {
	d       *demo
	r       *replica
	c       *collector
	fileLog string // the replica's audit file
	// results are the load's requests; refused the first 503 seen.
	results     [][]loadResult
	refused     *http.Response
	refusedBody []byte
	full        time.Time
}

// fillSpool starts a replica with a 1 MiB spool, on_full: refuse and a
// collector that does not listen yet, and loads it until it answers 503.
func fillSpool(t *testing.T) *fullSpool {
	t.Helper()
	f := &fullSpool{d: startDemo(t), c: newCollector(t)}
	dir := t.TempDir()
	f.fileLog = filepath.Join(dir, "audit.log")
	f.r = startReplica(t, f.d, withAuditSink(t, dir, f.c, "    max_bytes: 1048576\n    on_full: refuse\n"))
	stop := make(chan struct{})
	wait := load(t, f.d, f.r.URL, "/api/whoami", 16, 0, stop)
	deadline := time.Now().Add(30 * time.Second)
	for f.refused == nil {
		if time.Now().After(deadline) {
			close(stop)
			wait()
			t.Fatalf("no 503 within 30 s of load with the collector down:\n%s", grepLines(f.d.metricsAt(t, f.r.AdminURL), "crmgate_audit_spool"))
		}
		time.Sleep(100 * time.Millisecond)
		req, _ := http.NewRequest("GET", f.r.URL+"/api/whoami", nil)
		if res, err := f.d.client.Do(req); err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 503 {
				f.refused, f.refusedBody = res, b
			}
		}
	}
	close(stop)
	f.results = wait()
	f.full = time.Now()
	return f
}

// recover starts the collector and waits until the replica serves again.
func (f *fullSpool) recover(t *testing.T) time.Duration {
	t.Helper()
	f.c.start()
	back := time.Now()
	for {
		if st := f.d.statusAt(t, f.r.URL+"/api/whoami"); st == 200 {
			return time.Since(back)
		}
		if time.Since(back) > 60*time.Second {
			t.Fatalf("still refused 60 s after the collector came back (%d batches received):\n%s", f.c.posts.Load(), grepLines(f.d.metricsAt(t, f.r.AdminURL), "crmgate_audit_"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// No audit, no access: once the spool is full, the gateway answers 503
// with a problem body and reports itself not ready; once the collector is
// up and the spool drains, requests are served again. No request is
// answered (but with the 503) without its event.
func TestAuditNoAuditNoAccess(t *testing.T) {
	f := fillSpool(t)
	d, r := f.d, f.r
	n503 := 0
	for _, w := range f.results {
		for _, res := range w {
			if res.status == 503 {
				n503++
			}
		}
	}
	t.Logf("the spool filled: %d requests refused with 503 under load", n503)
	var prob struct {
		Status    int    `json:"status"`
		Detail    string `json:"detail"`
		RequestID string `json:"request_id"`
	}
	if f.refused.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(f.refusedBody, &prob) != nil ||
		prob.Status != 503 || prob.RequestID == "" || prob.RequestID != f.refused.Header.Get("X-Request-Id") || !strings.Contains(prob.Detail, "record") {
		t.Errorf("503: %q %s, want a problem body with the request id that says requests cannot be recorded", f.refused.Header.Get("Content-Type"), f.refusedBody)
	}
	// Still refused while the collector is away; the readiness check says
	// why.
	time.Sleep(time.Second)
	if st := d.statusAt(t, r.URL+"/api/whoami"); st != 503 {
		t.Errorf("a second after the spool filled, with the collector still down: %d, want 503", st)
	}
	if res, err := http.Get(r.AdminURL + "/readyz"); err != nil || res.StatusCode != 503 {
		t.Errorf("readyz with the spool full: %v %v, want 503", statusOf(res), err)
	} else {
		res.Body.Close()
	}
	if m := d.metricsAt(t, r.AdminURL); metricValue(m, "crmgate_audit_events_refused_total") <= 0 {
		t.Errorf("crmgate_audit_events_refused_total is not positive:\n%s", grepLines(m, "crmgate_audit_"))
	}

	took := f.recover(t)
	t.Logf("served again %s after the collector came back (%s after the spool filled); %d events delivered",
		took.Round(time.Millisecond), time.Since(f.full).Round(time.Millisecond), len(f.c.received()))
	for i := range 20 {
		if st := d.statusAt(t, r.URL+"/api/whoami"); st != 200 {
			t.Fatalf("request %d after recovery: %d, want 200", i, st)
		}
	}

	// Every request answered with anything but the 503 is in the file.
	inFile := map[string]bool{}
	for _, e := range readAudit(t, f.fileLog) {
		inFile[e.str("http_request.uid")] = true
	}
	unrecorded := map[int]int{}
	var example loadResult
	for _, w := range f.results {
		for _, res := range w {
			if res.status != 503 && !inFile[res.rid] {
				unrecorded[res.status]++
				example = res
			}
		}
	}
	if len(unrecorded) > 0 {
		t.Errorf("requests answered without an audit event in the file, by status: %v; e.g. request %s answered %d", unrecorded, example.rid, example.status)
	}
}

// When the spool's budget runs out, the event that did not fit must not
// reach one sink and not another: every event of the replica's file
// reaches the collector once the collector is back (under on_full:
// refuse nothing is lost, and there is no audit.loss event to say so).
func TestAuditSpoolFullEventsReachEverySink(t *testing.T) {
	f := fillSpool(t)
	f.recover(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := map[string]bool{}
		for _, u := range f.c.received() {
			got[u] = true
		}
		var missing []auditEvent
		evs := readAudit(t, f.fileLog)
		for _, e := range evs {
			if !got[e.str("metadata.uid")] {
				missing = append(missing, e)
			}
		}
		if len(missing) == 0 {
			t.Logf("all %d events of the file reached the collector", len(evs))
			return
		}
		if time.Now().After(deadline) {
			answered := ""
			for _, w := range f.results {
				for _, res := range w {
					if res.rid == missing[0].str("http_request.uid") {
						answered = fmt.Sprintf(" (the client was answered %d)", res.status)
					}
				}
			}
			t.Fatalf("%d of %d events of the replica's file never reached the collector; the first%s: %s",
				len(missing), len(evs), answered, missing[0].describe())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
