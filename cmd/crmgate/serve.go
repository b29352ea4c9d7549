package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/crmgate/crmgate/admin"
	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/internal/logbuf"
	"github.com/crmgate/crmgate/proxy"
	"github.com/crmgate/crmgate/proxy/certs"
	"github.com/crmgate/crmgate/secret"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	path := fs.String("c", "", "configuration file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: crmgate serve -c FILE")
		return errUsage
	}
	f, err := config.Load(*path, secret.Resolver{})
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, ce.Error())
			return fmt.Errorf("%s: %d problem(s); nothing started", *path, len(ce.Problems))
		}
		return err
	}
	log, flush := newLogger(f.Log, stderr)
	defer flush()
	gw, err := startGateway(ctx, f, log)
	if err != nil {
		return err
	}
	log.Info("crmgate started", "version", version, "https", gw.server.Addr().String(), "admin", gw.admin.Addr().String(), "config", *path)
	return gw.wait()
}

// newLogger returns the process logger writing to w, buffered as the
// configuration says, and the function that writes out what is buffered.
func newLogger(c config.LogConfig, w io.Writer) (*slog.Logger, func()) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	flush := func() {}
	if c.FlushInterval > 0 {
		bw := logbuf.New(w, 64<<10, c.FlushInterval)
		w, flush = bw, func() { _ = bw.Close() }
	}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), flush
	}
	return slog.New(slog.NewJSONHandler(w, opts)), flush
}

// runningGateway is a started gateway: its listeners are bound and serving.
type runningGateway struct {
	server *proxy.Server
	admin  *admin.Server
	certs  *certs.Manager
	group  *errgroup.Group
}

// startGateway wires the packages for f, binds every listener (so that an
// address in use fails here, clearly) and starts serving until ctx ends.
func startGateway(ctx context.Context, f *config.File, log *slog.Logger) (*runningGateway, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	cm := certs.New(f.TLS, log.With("component", "certs"), time.Now)
	gw, err := proxy.New(f.Config, proxy.Deps{Log: log, Now: time.Now, Metrics: reg})
	if err != nil {
		return nil, err
	}
	srv := gw.NewServer(cm.TLSConfig(), cm.HTTPChallengeHandler)
	adm := admin.New(f.Admin, log.With("component", "admin"), reg)
	// Bind first: with ACME, certmagic may start a challenge at once and
	// must find the gateway's listeners already answering it.
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	if err := adm.Listen(); err != nil {
		srv.Close()
		return nil, err
	}
	if err := cm.Start(ctx); err != nil {
		srv.Close()
		adm.Close()
		return nil, fmt.Errorf("tls.%w", err)
	}
	adm.AddCheck("tls", func(context.Context) error { return cm.Status().Err })
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx) })
	g.Go(func() error { return adm.Serve(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		return cm.Close()
	})
	return &runningGateway{server: srv, admin: adm, certs: cm, group: g}, nil
}

func (r *runningGateway) wait() error { return r.group.Wait() }
