package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/crmgate/crmgate/admin"
	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/policy/decisionlog"
	"github.com/crmgate/crmgate/proxy"
)

// policyStage is the wired policy stage: the engine, the candidate set of
// shadow mode and the decision log, when they are configured; or, with
// policy.server, the client of the OPA server that decides instead.
type policyStage struct {
	engine    *policy.Engine
	remote    *policy.Remote
	shadow    *policy.Shadow
	decisions *decisionlog.Logger
}

// startPolicy builds the policy engine f configures and loads its set
// with every entrypoint the routes name: a set that does not compile or
// whose tests fail stops the start-up (there is no last good set yet). A
// shadow candidate that does not load does not: it enforces nothing, is
// reported, and is compared from the moment a good one is in place. It
// returns nil without a policy section.
func startPolicy(ctx context.Context, f *config.File, log *slog.Logger, reg prometheus.Registerer, adm *admin.Server, aud *auditStage) (*policyStage, error) {
	if f.Policy == nil {
		return nil, nil
	}
	plog := log.With("component", "policy")
	if f.Policy.Server != nil {
		return startPolicyServer(ctx, f, plog, reg, adm)
	}
	opts := policy.Options{Logger: plog, Registerer: reg}
	var (
		mu   sync.Mutex
		last admin.PolicyStatus
	)
	opts.OnReload = func(ev policy.ReloadEvent) {
		if aud != nil {
			aud.trail.PolicyReload(ev)
		}
		if ev.Result == policy.ReloadUnchanged {
			return
		}
		st := admin.PolicyStatus{Revision: ev.Active, LastResult: ev.Result, LastReload: time.Now()}
		if ev.Err != nil {
			st.LastError = ev.Err.Error()
		}
		mu.Lock()
		last = st
		mu.Unlock()
	}
	adm.SetPolicyStatus(func() admin.PolicyStatus {
		mu.Lock()
		defer mu.Unlock()
		return last
	})
	e, err := policy.New(*f.Policy, opts)
	if err != nil {
		return nil, err
	}
	var eps []string
	for _, r := range f.Routes {
		eps = append(eps, r.Policy)
	}
	if err := e.Load(ctx, eps...); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	plog.Info("policy set loaded", "source", policySource(f.Policy), "revision", e.Revision())
	adm.AddCheck("policy", func(context.Context) error {
		if e.Revision() == "" {
			return errors.New("no policy set loaded")
		}
		return nil
	})
	st := &policyStage{engine: e}
	if f.Policy.Shadow != nil {
		sh, err := policy.NewShadow(*f.Policy, *f.Policy.Shadow, policy.Options{Logger: plog.With("mode", "shadow"), Registerer: reg})
		if err != nil {
			return nil, err
		}
		if err := sh.Load(ctx, eps...); err != nil {
			plog.Error("shadow mode idle: the candidate policy set did not load", "dir", f.Policy.Shadow.Dir, "err", err)
		} else {
			plog.Info("shadow mode on", "dir", f.Policy.Shadow.Dir, "candidate", sh.Candidate().Revision(), "active", e.Revision())
		}
		st.shadow = sh
	}
	if f.DecisionLog != nil {
		dl, err := decisionlog.New(*f.DecisionLog, decisionlog.Options{
			Logger: log.With("component", "decision_log"), Registerer: reg, Version: version,
		})
		if err != nil {
			return nil, fmt.Errorf("decision_log: %w", err)
		}
		st.decisions = dl
	}
	return st, nil
}

// startPolicyServer wires the client of the OPA server that decides
// every request. A server that does not answer yet does not stop the
// start-up (a sidecar may start after the gateway): every request is
// denied (503) and readiness fails until it answers.
func startPolicyServer(ctx context.Context, f *config.File, plog *slog.Logger, reg prometheus.Registerer, adm *admin.Server) (*policyStage, error) {
	r, err := policy.NewRemote(*f.Policy, policy.Options{Logger: plog, Registerer: reg}, policy.RemoteOptions{})
	if err != nil {
		return nil, err
	}
	var eps []string
	for _, rt := range f.Routes {
		eps = append(eps, rt.Policy)
	}
	if err := r.Start(ctx, eps...); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	adm.AddCheck("policy_server", r.Ready)
	adm.SetPolicyStatus(func() admin.PolicyStatus {
		st := r.Status()
		ps := admin.PolicyStatus{Revision: r.Revision(), LastResult: "server answering", LastReload: st.Since, LastError: st.Err}
		if st.Failing {
			ps.LastResult = "server failing"
		}
		return ps
	})
	plog.Info("policy decisions from an OPA server", "server", r.Location(), "entrypoint", f.Policy.Entrypoint, "timeout", f.Policy.Server.Timeout)
	return &policyStage{remote: r}, nil
}

// policySource names where the active set comes from, for logs.
func policySource(c *policy.Config) string {
	if c.Bundle != nil {
		if c.Bundle.URL != "" {
			// Without the query, which may hold a presigned credential.
			if u, err := url.Parse(c.Bundle.URL); err == nil {
				return u.Scheme + "://" + u.Host + u.EscapedPath()
			}
			return "bundle url"
		}
		return c.Bundle.File
	}
	return c.Dir
}

// deps hands the stage to the gateway.
func (st *policyStage) deps(d proxy.Deps) proxy.Deps {
	if st == nil {
		return d
	}
	if st.remote != nil {
		d.Policy = st.remote
		return d
	}
	d.Policy = st.engine
	if st.shadow != nil {
		d.Shadow = st.shadow
	}
	if st.decisions != nil {
		d.DecisionLog = st.decisions
	}
	return d
}

// run watches the policy sources and runs the shadow comparisons until
// ctx ends; a server's connections are closed then.
func (st *policyStage) run(g *errgroup.Group, ctx context.Context) {
	if st == nil {
		return
	}
	if st.remote != nil {
		g.Go(func() error {
			<-ctx.Done()
			st.remote.Close()
			return nil
		})
		return
	}
	g.Go(func() error { return st.engine.Watch(ctx) })
	if st.shadow != nil {
		g.Go(func() error { return st.shadow.Run(ctx) })
	}
	if st.decisions != nil {
		// Run writes what is queued when ctx ends, then returns.
		g.Go(func() error { return st.decisions.Run(ctx) })
	}
}
