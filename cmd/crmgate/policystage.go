package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/admin"
	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/policy"
)

// startPolicy builds the policy engine f configures and loads its set
// with every entrypoint the routes name: a set that does not compile or
// whose tests fail stops the start-up (there is no last good set yet). It
// returns nil without a policy section.
func startPolicy(ctx context.Context, f *config.File, log *slog.Logger, reg prometheus.Registerer, adm *admin.Server) (*policy.Engine, error) {
	if f.Policy == nil {
		return nil, nil
	}
	plog := log.With("component", "policy")
	e, err := policy.New(*f.Policy, policy.Options{Logger: plog, Registerer: reg})
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
	plog.Info("policy set loaded", "dir", f.Policy.Dir, "revision", e.Revision())
	adm.AddCheck("policy", func(context.Context) error {
		if e.Revision() == "" {
			return errors.New("no policy set loaded")
		}
		return nil
	})
	return e, nil
}
