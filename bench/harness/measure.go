package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"time"
)

// loadResult is the JSON that bench/cmd/load -json prints. Latencies are
// in microseconds from each request's scheduled time.
type loadResult struct {
	Rate         float64 `json:"rate"`
	Scheduled    int     `json:"scheduled"`
	Completed    int     `json:"completed"`
	Errors       int     `json:"errors"`
	Unsent       int     `json:"unsent"`
	FirstError   string  `json:"first_error"`
	AchievedRate float64 `json:"achieved_rate"`
	P50us        float64 `json:"p50_us"`
	P90us        float64 `json:"p90_us"`
	P99us        float64 `json:"p99_us"`
	MaxUs        float64 `json:"max_us"`
	LagP50us     float64 `json:"lag_p50_us"`
	LagP99us     float64 `json:"lag_p99_us"`
	GenLagP99us  float64 `json:"gen_lag_p99_us"`
}

// sample is what one configuration measured in one round.
type sample struct {
	sat wrkResult  // closed-loop saturation (wrk)
	own loadResult // open loop at half of sat.RPS
	ref loadResult // open loop at the reference rate
}

// results is everything a run measured.
type results struct {
	// refRate is the reference rate: half of the baseline's throughput in
	// the calibration run. Every configuration is measured at it in every
	// round, so their latencies compare at the same offered load.
	refRate float64
	order   [][]string          // configuration names per round, in run order
	samples map[string][]sample // by configuration name, one per round
}

// bench runs the measurements.
type bench struct {
	e    *env
	opts options
	logf func(format string, args ...any)
}

// wrkRun runs wrk on the load CPU for d against url.
func (b *bench) wrkRun(ctx context.Context, srv *server, d time.Duration) (wrkResult, error) {
	args := []string{b.e.wrk, "-t1", "-c" + strconv.Itoa(b.opts.conns), "-d" + wrkSeconds(d), "--latency"}
	if srv.header != "" {
		args = append(args, "-H", srv.header)
	}
	argv := pinned(loadCPU, append(args, srv.url)...)
	out, err := b.e.procs.run(ctx, d+20*time.Second, nil, argv...)
	if err != nil {
		return wrkResult{}, err
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return wrkResult{}, fmt.Errorf("%w:\n%s", err, out)
	}
	return r, nil
}

// wrkSeconds formats d for wrk's -d, which takes whole seconds.
func wrkSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) + "s"
}

// loadRun runs the open-loop generator on the load CPU at rate for the
// measurement duration.
func (b *bench) loadRun(ctx context.Context, srv *server, rate float64) (loadResult, error) {
	const drain = 5 * time.Second
	argv := pinned(loadCPU, filepath.Join(b.e.bin, "load"),
		"-url", srv.url, "-rate", strconv.FormatFloat(rate, 'f', 0, 64), "-duration", b.opts.duration.String(),
		"-conns", strconv.Itoa(b.opts.conns), "-cacert", b.e.caFile, "-drain", drain.String(), "-json", "-header", srv.header)
	out, err := b.e.procs.run(ctx, b.opts.duration+drain+30*time.Second, []string{"GOMAXPROCS=1"}, argv...)
	if err != nil {
		return loadResult{}, err
	}
	var r loadResult
	if err := json.Unmarshal(out, &r); err != nil {
		return loadResult{}, fmt.Errorf("load output: %w: %s", err, out)
	}
	return r, nil
}

// calibrate measures the baseline's throughput once, before the rounds,
// and sets the reference rate to half of it.
func (b *bench) calibrate(ctx context.Context) (float64, error) {
	srv, err := startBaseline(ctx, b.e, "baseline-calibration")
	if err != nil {
		return 0, err
	}
	defer b.e.procs.stop(srv.proc, 5*time.Second)
	if _, err := b.wrkRun(ctx, srv, b.opts.warmup); err != nil {
		return 0, fmt.Errorf("calibration warm-up: %w", err)
	}
	sat, err := b.wrkRun(ctx, srv, b.opts.duration)
	if err != nil {
		return 0, fmt.Errorf("calibration: %w", err)
	}
	if err := srv.checkAlive(); err != nil {
		return 0, err
	}
	if sat.RPS < 2 {
		return 0, fmt.Errorf("calibration: the baseline served %.1f req/s", sat.RPS)
	}
	return sat.RPS / 2, nil
}

// measure starts c, warms it up and takes its three measurements.
func (b *bench) measure(ctx context.Context, c configuration, round int, refRate float64) (sample, error) {
	tag := fmt.Sprintf("%s-r%d", c.name, round+1)
	srv, err := c.start(ctx, b.e, tag)
	if err != nil {
		return sample{}, err
	}
	defer b.e.procs.stop(srv.proc, 5*time.Second)

	if _, err := b.wrkRun(ctx, srv, b.opts.warmup); err != nil {
		return sample{}, fmt.Errorf("%s warm-up: %w", tag, err)
	}
	var s sample
	if s.sat, err = b.wrkRun(ctx, srv, b.opts.duration); err != nil {
		return sample{}, fmt.Errorf("%s throughput: %w", tag, err)
	}
	if err := srv.checkAlive(); err != nil {
		return sample{}, err
	}
	b.logf("  %-8s saturation %9.0f req/s  p50 %s  p99 %s", c.name, s.sat.RPS, ms(us(s.sat.P50)), ms(us(s.sat.P99)))
	if s.sat.RPS < 2 {
		return sample{}, fmt.Errorf("%s served %.1f req/s: nothing to measure latency at", tag, s.sat.RPS)
	}
	if s.own, err = b.loadRun(ctx, srv, s.sat.RPS/2); err != nil {
		return sample{}, fmt.Errorf("%s at half load: %w", tag, err)
	}
	b.logf("  %-8s at %9.0f req/s  p50 %s  p99 %s", c.name, s.own.Rate, ms(s.own.P50us), ms(s.own.P99us))
	if s.ref, err = b.loadRun(ctx, srv, refRate); err != nil {
		return sample{}, fmt.Errorf("%s at the reference rate: %w", tag, err)
	}
	b.logf("  %-8s at %9.0f req/s  p50 %s  p99 %s (reference rate)", c.name, s.ref.Rate, ms(s.ref.P50us), ms(s.ref.P99us))
	if err := srv.checkAlive(); err != nil {
		return sample{}, err
	}
	return s, nil
}

// runRounds calibrates, then measures every configuration once per round,
// in a new random order each round so that drift of the machine (thermal,
// neighbours) does not always favour the same configuration.
func (b *bench) runRounds(ctx context.Context) (*results, error) {
	b.logf("calibrating: baseline throughput for the reference rate")
	ref, err := b.calibrate(ctx)
	if err != nil {
		return nil, err
	}
	b.logf("reference rate: %.0f req/s (half of the baseline's calibration throughput)", ref)
	res := &results{refRate: ref, samples: map[string][]sample{}}
	rng := rand.New(rand.NewPCG(uint64(b.opts.seed), 0x6372_6d67_6174_65))
	for r := range b.opts.rounds {
		perm := rng.Perm(len(configurations))
		names := make([]string, len(perm))
		for i, j := range perm {
			names[i] = configurations[j].name
		}
		res.order = append(res.order, names)
		b.logf("round %d/%d: %v", r+1, b.opts.rounds, names)
		for _, j := range perm {
			c := configurations[j]
			s, err := b.measure(ctx, c, r, ref)
			if err != nil {
				return nil, err
			}
			res.samples[c.name] = append(res.samples[c.name], s)
		}
	}
	return res, nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
