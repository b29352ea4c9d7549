// Command load is the benchmark's open-loop load generator: it sends GET
// requests for one HTTPS URL at a fixed rate over a fixed set of keep-alive
// HTTP/1.1 connections, verifying the server's certificate against -cacert,
// and reports latency percentiles.
//
// Open loop means the schedule does not wait for the server: request i is
// due at start + i/rate whatever happened before, and its latency is
// measured from that due time, not from when a connection became free to
// send it. A server that stalls therefore shows its stall in every request
// queued behind it (no coordinated omission), as a real client population
// would see it. The run stops by itself: the schedule lasts -duration, and
// requests still unanswered -drain after that are counted as unsent.
//
// It sends load to loopback addresses only.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/crmgate/crmgate/bench/internal/loopback"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	rawURL := fs.String("url", "", "HTTPS URL to GET (loopback host)")
	rate := fs.Float64("rate", 0, "requests per second (required)")
	duration := fs.Duration("duration", 10*time.Second, "how long the schedule runs")
	conns := fs.Int("conns", 32, "keep-alive connections")
	caFile := fs.String("cacert", "", "PEM file of the CA that signs the server's certificate (required)")
	timeout := fs.Duration("timeout", 5*time.Second, "longest time one request may take once sent")
	drain := fs.Duration("drain", 5*time.Second, "how long queued requests may still be answered after the schedule ends")
	tick := fs.Duration("tick", 50*time.Microsecond, "shortest pacing period: faster schedules are handed out in batches of this length")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	var headers headerFlag
	fs.Var(&headers, "header", `one more request header, "Name: value" (e.g. an API key or a cookie); repeatable, and a User-Agent given here replaces the generator's`)
	if err := fs.Parse(args); err != nil {
		return err
	}

	p, err := newPlan(*rawURL, *caFile, headers)
	if err != nil {
		return err
	}
	switch {
	case *rate <= 0 || *rate > 1e6:
		return fmt.Errorf("-rate %v: must be above 0 and at most 1e6", *rate)
	case *duration <= 0 || *duration > time.Hour:
		return fmt.Errorf("-duration %v: must be above 0 and at most 1h", *duration)
	case *conns < 1 || *conns > 4096:
		return fmt.Errorf("-conns %d: must be 1 to 4096", *conns)
	case *timeout <= 0 || *drain < 0 || *tick <= 0:
		return errors.New("-timeout and -tick must be positive and -drain not negative")
	}
	p.rate, p.duration, p.conns, p.timeout, p.drain, p.tick = *rate, *duration, *conns, *timeout, *drain, *tick

	res, err := generate(ctx, p)
	if err != nil {
		return err
	}
	res.URL = *rawURL
	if *asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(res)
	}
	res.print(stdout)
	return nil
}

// newPlan checks the target and prepares what every connection shares: the
// dial address, the TLS configuration and the request bytes.
func newPlan(rawURL, caFile string, headers []string) (plan, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return plan{}, fmt.Errorf("-url %q: need an https URL", rawURL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	if err := loopback.CheckHost(host); err != nil {
		return plan{}, fmt.Errorf("-url: %w", err)
	}
	dialHost := host
	if host == "localhost" {
		// Dial the address itself: no resolver, and no chance of the name
		// meaning anything but this machine.
		dialHost = "127.0.0.1"
	}
	if caFile == "" {
		return plan{}, errors.New("-cacert is required: the server's certificate is verified")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return plan{}, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return plan{}, fmt.Errorf("-cacert %s: no PEM certificates", caFile)
	}
	target := u.RequestURI()
	extra, ua := "", "User-Agent: crmgate-bench-load\r\n"
	for _, header := range headers {
		if header == "" {
			continue
		}
		name, value, ok := strings.Cut(header, ":")
		if !ok || strings.ContainsAny(header, "\r\n") || strings.TrimSpace(name) != name || name == "" {
			return plan{}, fmt.Errorf("-header %q: want \"Name: value\"", header)
		}
		line := name + ": " + strings.TrimSpace(value) + "\r\n"
		if strings.EqualFold(name, "User-Agent") {
			ua = line
			continue
		}
		extra += line
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n%sAccept: application/json\r\n%s\r\n", target, u.Host, ua, extra)
	return plan{
		addr: net.JoinHostPort(dialHost, port),
		tls: &tls.Config{
			RootCAs:    roots,
			ServerName: host,
			NextProtos: []string{"http/1.1"},
			// Every client of the benchmark speaks TLS 1.3 with X25519 only,
			// so that all servers do the same key exchange whatever they
			// would prefer (Go's own default is the hybrid X25519MLKEM768).
			MinVersion:         tls.VersionTLS13,
			CurvePreferences:   []tls.CurveID{tls.X25519},
			ClientSessionCache: tls.NewLRUClientSessionCache(64),
		},
		request: []byte(req),
	}, nil
}

// headerFlag collects the repeatable -header flag.
type headerFlag []string

func (h *headerFlag) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlag) Set(v string) error { *h = append(*h, v); return nil }
