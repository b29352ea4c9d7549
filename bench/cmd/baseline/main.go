// Command baseline is the floor the gateway is measured against: a bare
// httputil.ReverseProxy terminating TLS on -addr in front of -upstream.
// It rewrites the URL (Rewrite with SetURL), recycles 32 KiB copy buffers
// and keeps enough idle upstream connections for the benchmark's
// concurrency; nothing else — no routing, no header hygiene, no logging.
// Whatever the gateway costs beyond this is the price of what it does.
//
// It listens on loopback only. GOMAXPROCS comes from the environment.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"time"

	"github.com/crmgate/crmgate/bench/internal/loopback"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8444", "TLS address (loopback)")
	upstream := flag.String("upstream", "http://127.0.0.1:8081", "upstream base URL (loopback)")
	certFile := flag.String("cert", "", "PEM certificate chain")
	keyFile := flag.String("key", "", "PEM private key")
	metricsAddr := flag.String("metrics", "", "plain-HTTP address (loopback) of /metrics with the allocation counter the harness reads; empty: off")
	flag.Parse()

	if err := loopback.Check(*addr); err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	target, err := url.Parse(*upstream)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") {
		return fmt.Errorf("-upstream %q is not an http(s) URL", *upstream)
	}
	if err := loopback.CheckHost(target.Hostname()); err != nil {
		return fmt.Errorf("-upstream: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("-cert/-key: %w", err)
	}

	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:  newTransport(),
		BufferPool: &bufferPool{},
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	srv := &http.Server{
		Handler:           rp,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Protocols:         &protos,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.New(os.Stderr, "baseline: ", 0),
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}

	if *metricsAddr != "" {
		if err := serveMetrics(*metricsAddr); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	fmt.Fprintf(os.Stderr, "baseline: serving %s -> %s (GOMAXPROCS %d)\n", ln.Addr(), target, runtime.GOMAXPROCS(0))

	select {
	case <-ctx.Done():
		err = nil
	case err = <-errc:
	}
	_ = srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// serveMetrics serves go_memstats_mallocs_total on addr, in the
// Prometheus text form the other Go servers of the benchmark use, so
// that the harness counts allocations per request the same way for all.
func serveMetrics(addr string) error {
	if err := loopback.Check(addr); err != nil {
		return fmt.Errorf("-metrics: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}}
		metrics.Read(s)
		fmt.Fprintf(w, "go_memstats_mallocs_total %d\n", s[0].Value.Uint64())
	})
	go func() { _ = http.Serve(ln, h) }()
	return nil
}

// newTransport is a keep-alive transport sized so that every client
// connection of the benchmark can have its own idle upstream connection:
// the default of two idle connections per host would make the proxy dial
// on most requests.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

const bufSize = 32 << 10

// bufferPool recycles the proxy's copy buffers. It pools array pointers,
// which convert to and from slices without allocating; pooling slices
// would allocate a header on every Put.
type bufferPool struct{ p sync.Pool }

var _ httputil.BufferPool = (*bufferPool)(nil)

func (b *bufferPool) Get() []byte {
	if a, ok := b.p.Get().(*[bufSize]byte); ok {
		return a[:]
	}
	return make([]byte, bufSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= bufSize {
		b.p.Put((*[bufSize]byte)(buf[:bufSize]))
	}
}
