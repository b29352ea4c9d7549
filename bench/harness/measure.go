package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// workload is one kind of request the load sends.
type workload struct {
	name   string
	what   string
	method string
	path   string
	auth   bool     // send the configuration's authentication (session cookie)
	extra  []string // more headers
	expect int      // the status every answer must have
	close  bool     // a new connection (TLS handshake) per request
	// cred is another credential sent instead of the session: "apikey"
	// (the configuration's API key) or "bearer" (a JWT access token).
	cred string
}

var workloads = map[string]workload{
	"get2k":     {"get2k", "GET one contact, 2 KB", "GET", pathItem, true, nil, 200, false, ""},
	"get64k":    {"get64k", "GET a page of contacts, 64 KB", "GET", pathList, true, nil, 200, false, ""},
	"post1k":    {"post1k", "POST a 1 KB contact", "POST", pathList, true, nil, 201, false, ""},
	"deny401":   {"deny401", "no credentials: 401", "GET", pathItem, false, nil, 401, false, ""},
	"deny403":   {"deny403", "signed in, refused by the policy: 403", "GET", pathAdmin, true, nil, 403, false, ""},
	"deny429":   {"deny429", "a wrong API key once its address is over the failed-credential limit: 429", "GET", pathItem, false, []string{"X-API-Key: cg_wrong_key_0000000000000000000000000000"}, 429, false, ""},
	"apikey":    {"apikey", "GET 2 KB with an API key instead of a session", "GET", pathItem, false, nil, 200, false, "apikey"},
	"jwt":       {"jwt", "GET 2 KB with a JWT access token (ES256) instead of a session", "GET", pathItem, false, nil, 200, false, "bearer"},
	"handshake": {"handshake", "GET 2 KB on a new connection each time (full TLS 1.3 handshake)", "GET", pathItem, true, []string{"Connection: close"}, 200, true, ""},
}

// measurement is what one wrk run against one configuration gave.
type measurement struct {
	RPS      float64 `json:"rps"`
	Requests int64   `json:"requests"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	Errors   int64   `json:"errors"` // socket errors and unexpected statuses
	// CPUus is the server's CPU time (its processes and sidecars) per
	// request, in µs.
	CPUus float64 `json:"cpu_us"`
	// SUTBusy and LoadBusy are how busy CPU 0 and CPU 1 were.
	SUTBusy  float64 `json:"sut_busy"`
	LoadBusy float64 `json:"load_busy"`
	RSSMB    float64 `json:"rss_mb"`
	// Allocs is heap allocations per request (Go servers), NaN if unknown.
	Allocs float64 `json:"allocs"`
	// Discarded marks a run whose client side saturated first.
	Discarded bool `json:"discarded"`
}

// perCore is requests per second per core of server CPU.
func (m measurement) perCore() float64 {
	if m.CPUus <= 0 {
		return math.NaN()
	}
	return 1e6 / m.CPUus
}

// bench runs the measurements.
type bench struct {
	e    *env
	opts options
	logf func(format string, args ...any)
}

// headersFor is what a request of w sends to s.
func headersFor(s *server, w workload) []string {
	h := []string{"Accept: application/json"}
	if w.auth {
		h = append(h, s.auth...)
	}
	switch w.cred {
	case "apikey":
		h = append(h, s.apiKey)
	case "bearer":
		h = append(h, s.bearer)
	}
	return append(h, w.extra...)
}

// check sends w's request up to three times (a 429 comes only once the
// failed-credential tier is spent) and fails unless the status is the expected one.
func (b *bench) check(ctx context.Context, s *server, w workload) error {
	url := s.base + w.path
	var st int
	var err error
	for range 3 {
		if st, err = probe(ctx, b.e.caPool, w.method, url, headersFor(s, w)); err != nil {
			return fmt.Errorf("%s %s: %w", w.method, url, err)
		}
		if st == w.expect {
			return nil
		}
	}
	return fmt.Errorf("%s %s (%s): %d, want %d", w.method, url, w.name, st, w.expect)
}

// mallocs reads go_memstats_mallocs_total from url; NaN if it cannot.
func mallocs(ctx context.Context, url string) float64 {
	if url == "" {
		return math.NaN()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return math.NaN()
	}
	defer res.Body.Close()
	return parseMallocs(res.Body)
}

// parseMallocs finds go_memstats_mallocs_total in Prometheus text.
func parseMallocs(r io.Reader) float64 {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "go_memstats_mallocs_total" {
			v, err := strconv.ParseFloat(f[1], 64)
			if err == nil {
				return v
			}
		}
	}
	return math.NaN()
}

// wrk runs wrk on the load CPU against s with w for d and conns
// connections, and accounts the server's CPU time, memory and
// allocations over the run.
func (b *bench) wrk(ctx context.Context, s *server, w workload, conns int, d time.Duration, path string) (measurement, error) {
	if path == "" {
		path = w.path
	}
	args := []string{b.e.tools["wrk"], "-t1", "-c" + strconv.Itoa(conns), "-d" + wrkSeconds(d), "--latency"}
	for _, h := range headersFor(s, w) {
		args = append(args, "-H", h)
	}
	if w.method == http.MethodPost {
		args = append(args, "-s", b.e.postLua)
	}
	argv := pinned(loadCPU, append(args, s.base+path)...)
	env := []string{"OPENSSL_CONF=" + b.e.sslConf}

	if s.pprof != "" && w.name == "get2k" && path == w.path && d == b.opts.duration && conns == b.opts.conns {
		done := b.profile(ctx, s, d)
		defer func() { <-done }()
	}
	m0 := mallocs(ctx, s.metrics)
	g0, c0 := readGroups(s.pgids()), readCPUTimes()
	out, err := b.e.procs.run(ctx, d+30*time.Second, env, argv...)
	g1, c1 := readGroups(s.pgids()), readCPUTimes()
	m1 := mallocs(ctx, s.metrics)
	if err != nil {
		return measurement{}, err
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return measurement{}, fmt.Errorf("%w:\n%s", err, out)
	}
	m := measurement{
		RPS: r.RPS, Requests: r.Requests, P50us: us(r.P50), P99us: us(r.P99),
		Errors:   r.SocketErrors,
		SUTBusy:  busyFraction(c0, c1, serverCPU),
		LoadBusy: busyFraction(c0, c1, loadCPU),
		RSSMB:    float64(g1.rssBytes) / (1 << 20),
		Allocs:   math.NaN(),
	}
	if w.expect/100 == 2 {
		m.Errors += r.Non2xx
	}
	if r.Requests > 0 {
		m.CPUus = float64(g1.cpuTicks-g0.cpuTicks) * (1e6 / clockTicks) / float64(r.Requests)
		if !math.IsNaN(m0) && !math.IsNaN(m1) {
			m.Allocs = (m1 - m0) / float64(r.Requests)
		}
	}
	m.Discarded = clientBound(m.SUTBusy, m.LoadBusy)
	return m, nil
}

// wrkSeconds formats d for wrk's -d, which takes whole seconds.
func wrkSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) + "s"
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// results is everything a run measured.
type results struct {
	order [][]string // configuration ids per round, in run order
	// runs holds, by "ID/workload", one measurement per round.
	runs    map[string][]measurement
	latency map[string][]loadPoint // by configuration id
	conc    map[string][]curvePoint
	size    map[string][]curvePoint
	hs      map[string][]curvePoint // by "ID/ecdsa" and "ID/rsa"
	rules   []ruleRow
	sess    []sessionRow
	c4Sat   float64 // C4's median GET 2 KB throughput, the latency reference
}

func key(id, w string) string { return id + "/" + w }

// measureConfig starts c and measures its workloads.
func (b *bench) measureConfig(ctx context.Context, c configuration, round int, res *results) error {
	tag := fmt.Sprintf("%s-r%d", strings.ReplaceAll(c.id, ".", "_"), round+1)
	s, err := c.start(ctx, b.e, tag, b.e.ecdsa)
	if err != nil {
		return fmt.Errorf("%s (%s): %w", c.id, c.name, err)
	}
	defer b.e.stopServer(s)
	names := append([]string{"get2k"}, c.workloads...)
	if b.opts.quick && len(names) > 1 && c.id != "C4" && c.id != "C6" && c.id != "C7" {
		names = names[:1]
	}
	for i, name := range names {
		w := workloads[name]
		if err := b.check(ctx, s, w); err != nil {
			if w.expect/100 == 2 {
				return fmt.Errorf("%s: %w", c.id, err)
			}
			// A deny path that does not answer as expected is reported
			// and skipped rather than measured as something else.
			b.logf("  %-5s %-8s skipped: %v", c.id, name, err)
			continue
		}
		if i == 0 {
			if _, err := b.wrk(ctx, s, w, b.opts.conns, b.opts.warmup, ""); err != nil {
				return fmt.Errorf("%s warm-up: %w", c.id, err)
			}
		}
		m, err := b.wrk(ctx, s, w, b.opts.conns, b.opts.duration, "")
		if err != nil {
			return fmt.Errorf("%s %s: %w", c.id, name, err)
		}
		if err := s.checkAlive(); err != nil {
			return err
		}
		flag := ""
		if m.Discarded {
			flag = "  (client-bound: discarded)"
		}
		if m.Errors > 0 {
			flag += fmt.Sprintf("  %d errors", m.Errors)
		}
		b.logf("  %-5s %-8s %8.0f req/s  %6.1f µs CPU/req  p99 %s  CPU0 %3.0f%% CPU1 %3.0f%%%s",
			c.id, name, m.RPS, m.CPUus, fmtMs(m.P99us), 100*m.SUTBusy, 100*m.LoadBusy, flag)
		res.runs[key(c.id, name)] = append(res.runs[key(c.id, name)], m)
	}
	return nil
}

// runRounds measures every selected configuration once per round, in a
// new random order each round so that drift of the machine does not
// always favour the same configuration.
func (b *bench) runRounds(ctx context.Context, configs []configuration, res *results) error {
	rng := rand.New(rand.NewPCG(uint64(b.opts.seed), 0x6372_6d67_6174_65))
	for r := range b.opts.rounds {
		perm := rng.Perm(len(configs))
		ids := make([]string, len(perm))
		for i, j := range perm {
			ids[i] = configs[j].id
		}
		res.order = append(res.order, ids)
		b.logf("round %d/%d: %v", r+1, b.opts.rounds, ids)
		for _, j := range perm {
			if err := b.measureConfig(ctx, configs[j], r, res); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadResult is the JSON that bench/cmd/load -json prints. Latencies are
// in microseconds from each request's scheduled time.
type loadResult struct {
	Rate         float64 `json:"rate"`
	Scheduled    int     `json:"scheduled"`
	Completed    int     `json:"completed"`
	Errors       int     `json:"errors"`
	AchievedRate float64 `json:"achieved_rate"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	GenLagP99us  float64 `json:"gen_lag_p99_us"`
}

// loadPoint is the latency of one configuration at a share of C4's
// saturation rate.
type loadPoint struct {
	share float64
	res   loadResult
}

// latencyShares are the offered loads, as shares of C4's throughput.
var latencyShares = []float64{0.25, 0.50, 0.75}

// loadRun runs the open-loop generator on the load CPU at rate.
func (b *bench) loadRun(ctx context.Context, s *server, rate float64, d time.Duration) (loadResult, error) {
	const drain = 3 * time.Second
	args := []string{filepath.Join(b.e.bin, "load"),
		"-url", s.base + pathItem, "-rate", strconv.FormatFloat(rate, 'f', 0, 64), "-duration", d.String(),
		"-conns", strconv.Itoa(b.opts.conns), "-cacert", b.e.caFile, "-drain", drain.String(), "-json"}
	for _, h := range s.auth {
		args = append(args, "-header", h)
	}
	out, err := b.e.procs.run(ctx, d+drain+30*time.Second, []string{"GOMAXPROCS=1"}, pinned(loadCPU, args...)...)
	if err != nil {
		return loadResult{}, err
	}
	var r loadResult
	if err := json.Unmarshal(out, &r); err != nil {
		return loadResult{}, fmt.Errorf("load output: %w: %s", err, out)
	}
	return r, nil
}

// latencyConfigs are measured at fixed shares of C4's throughput.
var latencyConfigs = []string{"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C7r"}

func (b *bench) runLatency(ctx context.Context, res *results) error {
	ref := res.c4Sat
	if ref <= 0 {
		return nil
	}
	b.logf("latency at %v of C4's %.0f req/s", latencyShares, ref)
	for _, id := range latencyConfigs {
		c, ok := b.selected(id)
		if !ok {
			continue
		}
		s, err := c.start(ctx, b.e, strings.ReplaceAll(c.id, ".", "_")+"-latency", b.e.ecdsa)
		if err != nil {
			return err
		}
		if _, err := b.wrk(ctx, s, workloads["get2k"], b.opts.conns, b.opts.warmup, ""); err != nil {
			b.e.stopServer(s)
			return err
		}
		for _, share := range latencyShares {
			r, err := b.loadRun(ctx, s, ref*share, b.opts.duration)
			if err != nil {
				b.e.stopServer(s)
				return fmt.Errorf("%s at %.0f%%: %w", id, share*100, err)
			}
			b.logf("  %-5s at %3.0f%% (%6.0f req/s)  p50 %s  p99 %s  errors %d", id, share*100, r.Rate, fmtMs(r.P50us), fmtMs(r.P99us), r.Errors)
			res.latency[id] = append(res.latency[id], loadPoint{share, r})
		}
		b.e.stopServer(s)
	}
	return nil
}

// selected returns the configuration id if this run measures it.
func (b *bench) selected(id string) (configuration, bool) {
	c, ok := configByID(id)
	if !ok {
		return c, false
	}
	if len(b.opts.only) > 0 && !b.opts.only[id] {
		return c, false
	}
	return c, true
}

func fmtMs(usv float64) string {
	if math.IsNaN(usv) {
		return "—"
	}
	return strconv.FormatFloat(usv/1000, 'f', 2, 64) + " ms"
}

// profile fetches a CPU profile of s for most of d, in the background,
// into the -pprof folder; the channel closes when it is written (or has
// failed, which is logged).
func (b *bench) profile(ctx context.Context, s *server, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	secs := max(1, int(d/time.Second)-1)
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.pprof+"?seconds="+strconv.Itoa(secs), nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil && res.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s", res.Status)
		}
		if err != nil {
			b.logf("  profile of %s: %v", s.tag, err)
			return
		}
		defer res.Body.Close()
		f := filepath.Join(b.e.pprofDir, s.tag+"-get2k.pprof")
		data, err := io.ReadAll(res.Body)
		if err == nil {
			err = os.WriteFile(f, data, 0o644)
		}
		if err != nil {
			b.logf("  profile of %s: %v", s.tag, err)
		}
	}()
	return done
}
