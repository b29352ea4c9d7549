package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// curvePoint is one point of a scaling curve measured with wrk.
type curvePoint struct {
	x float64 // connections, or response bytes
	m measurement
}

// The curves' configurations and steps.
var (
	concConfigs = []string{"C1", "C4", "C5", "C6", "C7"}
	concSteps   = []int{1, 4, 16, 64, 256, 512}
	sizeConfigs = []string{"C0", "C1", "C2", "C4", "C6"}
	hsConfigs   = []string{"C0", "C1", "C2", "C3", "C4", "C6"}
)

// curveDuration is the length of each point of the concurrency curve;
// the size and handshake points take a second each, which their steady
// rates fill well.
func (b *bench) curveDuration() time.Duration {
	if b.opts.quick {
		return time.Second
	}
	return 2 * time.Second
}

// runCurves measures p99 against concurrency, throughput against response
// size, and new-connection handshakes with ECDSA and RSA certificates.
func (b *bench) runCurves(ctx context.Context, res *results) error {
	d := b.curveDuration()
	conc := concSteps
	if b.opts.quick {
		conc = []int{1, 16, 512}
	}
	b.logf("p99 against concurrency %v", conc)
	for _, id := range concConfigs {
		err := b.withServer(ctx, id, "conc", b.e.ecdsa, func(s *server) error {
			for _, n := range conc {
				m, err := b.wrk(ctx, s, workloads["get2k"], n, d, "")
				if err != nil {
					return err
				}
				b.logf("  %-5s c=%-4d %8.0f req/s  p99 %s", id, n, m.RPS, fmtMs(m.P99us))
				res.conc[id] = append(res.conc[id], curvePoint{float64(n), m})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	steps := sizeSteps
	if b.opts.quick {
		steps = []struct {
			name  string
			bytes int
		}{sizeSteps[0], sizeSteps[3], sizeSteps[5]}
	}
	b.logf("throughput against response size")
	for _, id := range sizeConfigs {
		err := b.withServer(ctx, id, "size", b.e.ecdsa, func(s *server) error {
			for _, st := range steps {
				m, err := b.wrk(ctx, s, workloads["get2k"], 16, time.Second, "/size/"+st.name)
				if err != nil {
					return err
				}
				size := float64(sizeBytes(b.e, st.name))
				b.logf("  %-5s %-5s %8.0f req/s  %7.1f MB/s", id, st.name, m.RPS, m.RPS*size/1e6)
				res.size[id] = append(res.size[id], curvePoint{size, m})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	b.logf("new connections: full TLS 1.3 handshakes, ECDSA P-256 against RSA 2048")
	hs := hsConfigs
	if b.opts.quick {
		// The Go floor and crmgate: the quick run stays within 3 minutes.
		hs = []string{"C4", "C6"}
	}
	for _, id := range hs {
		for _, alg := range []string{"ecdsa", "rsa"} {
			cert := b.e.ecdsa
			if alg == "rsa" {
				cert = b.e.rsa
			}
			err := b.withServer(ctx, id, "hs-"+alg, cert, func(s *server) error {
				m, err := b.wrk(ctx, s, workloads["handshake"], 16, time.Second, "")
				if err != nil {
					return err
				}
				b.logf("  %-5s %-5s %8.0f handshakes/s  %7.1f µs CPU each", id, alg, m.RPS, m.CPUus)
				res.hs[key(id, alg)] = append(res.hs[key(id, alg)], curvePoint{0, m})
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// withServer starts configuration id with cert, warms it up, runs f and
// stops it.
func (b *bench) withServer(ctx context.Context, id, what string, cert certSet, f func(*server) error) error {
	c, ok := b.selected(id)
	if !ok {
		return nil
	}
	s, err := c.start(ctx, b.e, strings.ReplaceAll(id, ".", "_")+"-"+what, cert)
	if err != nil {
		return err
	}
	defer b.e.stopServer(s)
	if _, err := b.wrk(ctx, s, workloads["get2k"], b.opts.conns, time.Second, ""); err != nil {
		return err
	}
	return f(s)
}

// ruleRow is one line of bench/cmd/rulescale's output.
type ruleRow struct {
	Rules        int     `json:"rules"`
	Engine       string  `json:"engine"` // embedded or server
	Decisions    int     `json:"decisions"`
	CPUus        float64 `json:"cpu_us"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	ServerCPUPct float64 `json:"server_cpu_pct"`
}

// sessionRow is one line of bench/cmd/sessionmem's output.
type sessionRow struct {
	Store    string  `json:"store"` // memory or redis
	Sessions int     `json:"sessions"`
	MB       float64 `json:"mb"`
	Seconds  float64 `json:"seconds"`
}

// runPrograms runs the decision-scaling and session-memory programs.
func (b *bench) runPrograms(ctx context.Context, res *results) error {
	rules := "10,100,1000"
	window := "2s"
	if b.opts.quick {
		window = "1s"
	}
	b.logf("policy decisions against the number of rules (%s): embedded vs. opa run --server", rules)
	out, err := b.e.procs.run(ctx, 10*time.Minute, []string{"GOMAXPROCS=1"}, filepath.Join(b.e.bin, "rulescale"),
		"-opa", b.e.tools["opa"], "-rules", rules, "-window", window, "-server-cpu", strconv.Itoa(serverCPU), "-client-cpu", strconv.Itoa(loadCPU), "-json")
	if err != nil {
		return fmt.Errorf("rulescale: %w", err)
	}
	if err := decodeLines(out, &res.rules); err != nil {
		return fmt.Errorf("rulescale: %w", err)
	}
	for _, r := range res.rules {
		b.logf("  %5d rules %-8s  %6.1f µs CPU  p50 %6.1f µs  p99 %6.1f µs", r.Rules, r.Engine, r.CPUus, r.P50us, r.P99us)
	}
	// A million sessions take about 30 s and 2 GB in the memory store,
	// and in Redis, filled 8 at a time, about as long and 2.7 GB.
	counts, redisCounts := "1000,10000,100000,1000000", "1000,10000,100000,1000000"
	if b.opts.quick {
		counts, redisCounts = "1000,10000", "1000,10000"
	}
	redisProc, redisAddr, err := startRedis(ctx, b.e, "sessions")
	if err != nil {
		return err
	}
	defer b.e.procs.stop(redisProc, 5*time.Second)
	b.logf("memory against active sessions (%s in memory, %s in Redis)", counts, redisCounts)
	// The memory store on the server CPU; Redis there too, filled from
	// the load CPU by 8 sign-ins at a time (what is measured is Redis's
	// memory, not the time).
	for _, args := range [][]string{
		pinned(serverCPU, filepath.Join(b.e.bin, "sessionmem"), "-counts", counts, "-json"),
		pinned(loadCPU, filepath.Join(b.e.bin, "sessionmem"), "-counts", "", "-redis", redisAddr, "-redis-counts", redisCounts, "-parallel", "8", "-json"),
	} {
		out, err = b.e.procs.run(ctx, 15*time.Minute, nil, args...)
		if err != nil {
			return fmt.Errorf("sessionmem: %w", err)
		}
		if err := decodeLines(out, &res.sess); err != nil {
			return fmt.Errorf("sessionmem: %w", err)
		}
	}
	for _, s := range res.sess {
		b.logf("  %-6s %8d sessions  %8.1f MB", s.Store, s.Sessions, s.MB)
	}
	return nil
}

// decodeLines decodes one JSON value per line into a slice.
func decodeLines[T any](out []byte, dst *[]T) error {
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return fmt.Errorf("%w: %q", err, line)
		}
		*dst = append(*dst, v)
	}
	return nil
}

// opaFactors are the server's CPU and p50 latency per decision over the
// embedded engine's, at the largest rule count measured by both.
func opaFactors(rows []ruleRow) (cpu, lat float64) {
	cpu, lat = math.NaN(), math.NaN()
	byN := map[int]map[string]ruleRow{}
	for _, r := range rows {
		if byN[r.Rules] == nil {
			byN[r.Rules] = map[string]ruleRow{}
		}
		byN[r.Rules][r.Engine] = r
	}
	ns := make([]int, 0, len(byN))
	for n := range byN {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	for _, n := range ns {
		e, ok1 := byN[n]["embedded"]
		s, ok2 := byN[n]["server"]
		if ok1 && ok2 && e.CPUus > 0 && e.P50us > 0 {
			cpu, lat = s.CPUus/e.CPUus, s.P50us/e.P50us
		}
	}
	return cpu, lat
}

// memPer100k is the store's memory per 100,000 sessions, from its largest
// measured count.
func memPer100k(rows []sessionRow, store string) float64 {
	best := sessionRow{}
	for _, r := range rows {
		if r.Store == store && r.Sessions > best.Sessions {
			best = r
		}
	}
	if best.Sessions == 0 {
		return math.NaN()
	}
	return best.MB * 100000 / float64(best.Sessions)
}

func writeCurves(w io.Writer, res *results) {
	if len(res.conc) > 0 {
		fmt.Fprintf(w, "## p99 against concurrency (GET 2 KB, wrk closed loop)\n\n![p99 against concurrency](concurrency.png)\n\n| connections |")
		for _, id := range concConfigs {
			if len(res.conc[id]) > 0 {
				fmt.Fprintf(w, " %s req/s, p99 ms |", id)
			}
		}
		fmt.Fprintf(w, "\n| --: |")
		for _, id := range concConfigs {
			if len(res.conc[id]) > 0 {
				fmt.Fprintf(w, " --: |")
			}
		}
		fmt.Fprintln(w)
		for i, n := range xs(res.conc) {
			fmt.Fprintf(w, "| %d |", int(n))
			for _, id := range concConfigs {
				if pts := res.conc[id]; len(pts) > 0 && i < len(pts) {
					fmt.Fprintf(w, " %s, %s |", thousands(pts[i].m.RPS), msf(pts[i].m.P99us))
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
	if len(res.size) > 0 {
		fmt.Fprintf(w, "## Throughput against response size (16 connections)\n\n![throughput against response size](size.png)\n\n| bytes |")
		for _, id := range sizeConfigs {
			if len(res.size[id]) > 0 {
				fmt.Fprintf(w, " %s req/s (MB/s) |", id)
			}
		}
		fmt.Fprintf(w, "\n| --: |")
		for _, id := range sizeConfigs {
			if len(res.size[id]) > 0 {
				fmt.Fprintf(w, " --: |")
			}
		}
		fmt.Fprintln(w)
		for i, x := range xs(res.size) {
			fmt.Fprintf(w, "| %s |", thousands(x))
			for _, id := range sizeConfigs {
				if pts := res.size[id]; len(pts) > 0 && i < len(pts) {
					fmt.Fprintf(w, " %s (%s) |", thousands(pts[i].m.RPS), one(pts[i].m.RPS*pts[i].x/1e6))
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
	if len(res.hs) > 0 {
		fmt.Fprintf(w, "## New connections (a full TLS 1.3 handshake per request, 16 connections)\n\n| id | ECDSA P-256 handshakes/s | CPU µs each | RSA 2048 handshakes/s | CPU µs each | RSA ÷ ECDSA CPU |\n| --- | --: | --: | --: | --: | --: |\n")
		for _, id := range hsConfigs {
			e, r := res.hs[key(id, "ecdsa")], res.hs[key(id, "rsa")]
			if len(e) == 0 || len(r) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", id, thousands(e[0].m.RPS), one(e[0].m.CPUus), thousands(r[0].m.RPS), one(r[0].m.CPUus), ratio(r[0].m.CPUus/e[0].m.CPUus))
		}
		fmt.Fprintln(w)
	}
	if len(res.rules) > 0 {
		fmt.Fprintf(w, "## Policy decisions against the number of rules\n\n![decision latency against rules](rules.png)\n\nOne decision at a time; the embedded engine (OPA's Go library, prepared query, as crmgate uses it) on CPU %d, against `opa run --server` on CPU %d asked over HTTP on loopback by a client on CPU %d. CPU per decision is the engine's process CPU (the server's, for the sidecar).\n\n", serverCPU, serverCPU, loadCPU)
		fmt.Fprintf(w, "| rules | engine | decisions | CPU µs per decision | p50 µs | p99 µs |\n| --: | --- | --: | --: | --: | --: |\n")
		for _, r := range res.rules {
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s |\n", r.Rules, r.Engine, thousands(float64(r.Decisions)), one(r.CPUus), one(r.P50us), one(r.P99us))
		}
		fmt.Fprintln(w)
	}
	if len(res.sess) > 0 {
		fmt.Fprintf(w, "## Memory against active sessions\n\n![memory against sessions](sessions.png)\n\ncrmgate's session manager with a signed-in user's record (tokens and claims), in the memory store (Go heap in use after GC) and in Redis (`used_memory`).\n\n| store | sessions | MB | MB per 100k |\n| --- | --: | --: | --: |\n")
		for _, s := range res.sess {
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", s.Store, thousands(float64(s.Sessions)), one(s.MB), one(s.MB*100000/float64(s.Sessions)))
		}
		fmt.Fprintln(w)
	}
}

// xs returns the x values of the longest curve.
func xs(curves map[string][]curvePoint) []float64 {
	var best []curvePoint
	for _, c := range curves {
		if len(c) > len(best) {
			best = c
		}
	}
	out := make([]float64, len(best))
	for i, p := range best {
		out[i] = p.x
	}
	return out
}

// writePlots writes gnuplot data and scripts into dir and renders PNGs.
func writePlots(ctx context.Context, e *env, dir string, res *results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	type series struct {
		title string
		pts   [][2]float64
	}
	plot := func(name, title, xlabel, ylabel string, logx, logy bool, ss []series) error {
		var script strings.Builder
		fmt.Fprintf(&script, "set terminal pngcairo size 800,500 font 'sans,10'\nset output '%s'\nset title %q\nset xlabel %q\nset ylabel %q\nset grid\nset key left top\n",
			filepath.Join(dir, name+".png"), title, xlabel, ylabel)
		if logx {
			script.WriteString("set logscale x 2\n")
		}
		if logy {
			script.WriteString("set logscale y 10\n")
		}
		var plots []string
		for i, s := range ss {
			if len(s.pts) == 0 {
				continue
			}
			dat := filepath.Join(dir, fmt.Sprintf("%s-%d.dat", name, i))
			var b strings.Builder
			for _, p := range s.pts {
				if !math.IsNaN(p[1]) {
					fmt.Fprintf(&b, "%g %g\n", p[0], p[1])
				}
			}
			if err := os.WriteFile(dat, []byte(b.String()), 0o644); err != nil {
				return err
			}
			plots = append(plots, fmt.Sprintf("'%s' using 1:2 with linespoints title %q", dat, s.title))
		}
		if len(plots) == 0 {
			return nil
		}
		script.WriteString("plot " + strings.Join(plots, ", ") + "\n")
		gp := filepath.Join(e.work, name+".gp")
		if err := os.WriteFile(gp, []byte(script.String()), 0o644); err != nil {
			return err
		}
		if _, err := e.procs.run(ctx, time.Minute, nil, e.tools["gnuplot"], gp); err != nil {
			// pngcairo is missing from some builds: fall back to png.
			s2 := strings.Replace(script.String(), "pngcairo size 800,500 font 'sans,10'", "png size 800,500", 1)
			if err := os.WriteFile(gp, []byte(s2), 0o644); err != nil {
				return err
			}
			if _, err := e.procs.run(ctx, time.Minute, nil, e.tools["gnuplot"], gp); err != nil {
				return err
			}
		}
		// The data files are only the plot's input.
		for i := range ss {
			os.Remove(filepath.Join(dir, fmt.Sprintf("%s-%d.dat", name, i)))
		}
		return nil
	}
	label := func(id string) string {
		c, _ := configByID(id)
		return id + " " + c.name
	}
	var ss []series
	for _, id := range concConfigs {
		s := series{title: label(id)}
		for _, p := range res.conc[id] {
			s.pts = append(s.pts, [2]float64{p.x, p.m.P99us / 1000})
		}
		ss = append(ss, s)
	}
	if err := plot("concurrency", "p99 latency against concurrency (GET 2 KB)", "connections", "p99 ms", true, true, ss); err != nil {
		return err
	}
	ss = nil
	for _, id := range sizeConfigs {
		s := series{title: label(id)}
		for _, p := range res.size[id] {
			s.pts = append(s.pts, [2]float64{p.x / 1024, p.m.RPS * p.x / 1e6})
		}
		ss = append(ss, s)
	}
	if err := plot("size", "throughput against response size (one core)", "response KiB", "MB/s", true, false, ss); err != nil {
		return err
	}
	ss = nil
	for _, eng := range []string{"embedded", "server"} {
		s := series{title: eng + " p50"}
		for _, r := range res.rules {
			if r.Engine == eng {
				s.pts = append(s.pts, [2]float64{float64(r.Rules), r.P50us})
			}
		}
		ss = append(ss, s)
	}
	if err := plot("rules", "decision latency against number of rules", "rules", "p50 µs per decision", true, true, ss); err != nil {
		return err
	}
	ss = nil
	for _, st := range []string{"memory", "redis"} {
		s := series{title: st + " store"}
		for _, r := range res.sess {
			if r.Store == st {
				s.pts = append(s.pts, [2]float64{float64(r.Sessions), r.MB})
			}
		}
		ss = append(ss, s)
	}
	return plot("sessions", "memory against active sessions", "sessions", "MB", true, true, ss)
}
