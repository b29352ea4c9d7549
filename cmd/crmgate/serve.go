package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/crmgate/crmgate/admin"
	"github.com/crmgate/crmgate/auth"
	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/internal/logbuf"
	"github.com/crmgate/crmgate/proxy"
	"github.com/crmgate/crmgate/proxy/certs"
	"github.com/crmgate/crmgate/secret"
	"github.com/crmgate/crmgate/session"
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
	gw, err := startGateway(ctx, f, log, listeners{})
	if err != nil {
		return err
	}
	attrs := []any{"version", version, "https", gw.server.Addr().String(), "admin", gw.admin.Addr().String(), "config", *path}
	if pp := f.Server.ProxyProtocol; pp.Enabled() {
		// Operators see at once whose PROXY headers are believed.
		attrs = append(attrs, "proxy_protocol_from", pp.From)
	}
	log.Info("crmgate started", attrs...)
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

// listeners are sockets bound before the configuration was written; nil
// ones are bound from the configuration.
type listeners struct{ gateway, admin net.Listener }

// startGateway wires the packages for f, binds every listener (so that an
// address in use fails here, clearly) and starts serving until ctx ends.
func startGateway(ctx context.Context, f *config.File, log *slog.Logger, lns listeners) (*runningGateway, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	cm := certs.New(f.TLS, log.With("component", "certs"), time.Now)
	adm := admin.New(f.Admin, log.With("component", "admin"), reg)
	aud, err := startAudit(f, log, reg, adm)
	if err != nil {
		return nil, err
	}
	id, err := startIdentity(ctx, f, log, reg, adm, aud)
	if err != nil {
		aud.close()
		return nil, err
	}
	// The trail outlives every other stage: it records their last events.
	id.closers = append([]func(){aud.close}, id.closers...)
	api, err := startAPIClients(ctx, f, log, adm)
	if err != nil {
		id.close()
		return nil, err
	}
	id.closers = append(id.closers, api.close)
	pol, err := startPolicy(ctx, f, log, reg, adm, aud)
	if err != nil {
		id.close()
		return nil, err
	}
	deps := pol.deps(api.deps(proxy.Deps{Log: log, Now: time.Now, Metrics: reg, Auth: id.auth}))
	if f.Session != nil {
		deps.Fingerprint = &f.Session.Fingerprint
	}
	if aud != nil {
		deps.Auditor = aud.trail
	}
	gw, err := proxy.New(f.Config, deps)
	if err != nil {
		id.close()
		return nil, err
	}
	srv := gw.NewServer(cm.TLSConfig(), cm.HTTPChallengeHandler)
	if lns.gateway != nil {
		srv.UseListener(lns.gateway)
	}
	if lns.admin != nil {
		adm.UseListener(lns.admin)
	}
	// Bind first: with ACME, certmagic may start a challenge at once and
	// must find the gateway's listeners already answering it.
	if err := srv.Listen(); err != nil {
		id.close()
		return nil, err
	}
	if err := adm.Listen(); err != nil {
		srv.Close()
		id.close()
		return nil, err
	}
	if err := cm.Start(ctx); err != nil {
		srv.Close()
		adm.Close()
		id.close()
		return nil, fmt.Errorf("tls.%w", err)
	}
	adm.AddCheck("tls", func(context.Context) error { return cm.Status().Err })
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx) })
	g.Go(func() error { return adm.Serve(gctx) })
	pol.run(g, gctx)
	g.Go(func() error {
		<-gctx.Done()
		id.close()
		return cm.Close()
	})
	return &runningGateway{server: srv, admin: adm, certs: cm, group: g}, nil
}

// identity is the wired browser sign-in: the relying party, nil without
// oidc, and what to close when the gateway stops.
type identity struct {
	auth    proxy.Authenticator
	closers []func()
}

func (id *identity) close() {
	for _, c := range slices.Backward(id.closers) {
		c()
	}
	id.closers = nil
}

// startIdentity builds the session store and manager and the OIDC relying
// party, starts them, and registers their readiness checks and the session
// operations with the admin server, and the session cache's metrics with
// reg. A provider that cannot be reached yet is not an error (the relying
// party keeps trying); a session store that cannot be reached is: sessions
// fail closed.
func startIdentity(ctx context.Context, f *config.File, log *slog.Logger, reg prometheus.Registerer, adm *admin.Server, aud *auditStage) (*identity, error) {
	id := &identity{}
	if f.OIDC == nil {
		return id, nil
	}
	slog := log.With("component", "session")
	var mgr *session.Manager
	onRevoke := func(r session.Revocation) {
		if mgr != nil {
			mgr.Revoked(r)
		}
	}
	var store session.Store
	switch f.Session.Store {
	case session.StoreRedis:
		opts, err := f.Session.Redis.RedisOptions()
		if err != nil {
			return nil, fmt.Errorf("session.redis: %w", err)
		}
		client := redis.NewUniversalClient(opts)
		rs := session.NewRedisStore(client, session.RedisOptions{Prefix: f.Session.Redis.KeyPrefix, Logger: slog, OnRevoke: onRevoke})
		id.closers = append(id.closers, func() { _ = rs.Close(); _ = client.Close() })
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = rs.Ready(pctx)
		cancel()
		if err != nil {
			// Not fatal: requests that need a session answer 503 and
			// readiness fails until Redis answers; go-redis reconnects.
			log.Warn("session: Redis unreachable; signed-in requests answer 503 until it is back", "err", err)
		}
		adm.AddCheck("session_store", rs.Ready)
		store = rs
	default:
		store = session.NewMemoryStore(session.MemoryOptions{MaxEntries: f.Session.MaxEntries, OnRevoke: onRevoke})
	}
	m, err := session.New(*f.Session, store, slog, time.Now)
	if err != nil {
		id.close()
		return nil, fmt.Errorf("session: %w", err)
	}
	mgr = m
	for _, c := range sessionCacheMetrics(m) {
		if err := reg.Register(c); err != nil {
			id.close()
			return nil, fmt.Errorf("session metrics: %w", err)
		}
	}
	if rs, ok := store.(*session.RedisStore); ok {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := rs.Start(sctx)
		cancel()
		if err != nil {
			// Revocations still take effect (every Load asks Redis); only
			// the prompt drop of decoded copies waits for the subscription.
			log.Warn("session: revocation channel not subscribed yet; retrying in the background", "err", err)
		}
	}
	client, err := f.OIDC.HTTPClient()
	if err != nil {
		id.close()
		return nil, fmt.Errorf("oidc: %w", err)
	}
	alog := log.With("component", "auth")
	opts := []auth.Option{auth.WithStepUpLevels(f.StepUp)}
	if aud != nil {
		// Security events go to the log as well: operators read both.
		opts = append(opts, auth.WithEventSink(auth.Sinks(auth.LogSink(alog), aud.trail)))
	}
	rp := auth.New(*f.OIDC, mgr, client, alog, time.Now, opts...)
	if err := rp.Start(ctx); err != nil {
		id.close()
		return nil, fmt.Errorf("oidc: %w", err)
	}
	adm.AddCheck("oidc", func(context.Context) error {
		if !rp.Ready() {
			return errors.New("identity provider not reached yet")
		}
		return nil
	})
	adm.SetSessions(mgr)
	id.auth = rp
	return id, nil
}

func (r *runningGateway) wait() error { return r.group.Wait() }
