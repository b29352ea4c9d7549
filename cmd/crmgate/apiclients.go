package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/admin"
	"github.com/crmgate/crmgate/auth/apikey"
	"github.com/crmgate/crmgate/auth/bearer"
	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/proxy"
	"github.com/crmgate/crmgate/ratelimit"
	"github.com/crmgate/crmgate/redisconn"
)

// apiClients is the wired identification of API clients and the rate
// limiter: what proxy.Deps needs of them, and what to close.
type apiClients struct {
	keys    *apikey.Manager
	sources []apikey.Source
	bearer  *bearer.Verifier
	limiter ratelimit.Limiter
	closers []func()
}

func (a *apiClients) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// redisClient opens a go-redis client for c; it connects lazily.
func redisClient(c redisconn.Config) (redis.UniversalClient, error) {
	opts, err := c.RedisOptions()
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(opts), nil
}

// openKeyStore opens the API key store f configures.
func openKeyStore(ctx context.Context, c *apikey.Config, log *slog.Logger) (apikey.Store, func(), error) {
	if c.Store == apikey.StoreRedis {
		client, err := redisClient(c.Redis)
		if err != nil {
			return nil, nil, fmt.Errorf("api_keys.redis: %w", err)
		}
		return apikey.NewRedisStore(client, apikey.RedisOptions{Prefix: c.Redis.KeyPrefix}), func() { _ = client.Close() }, nil
	}
	fs, err := apikey.OpenFileStore(c.File, apikey.FileOptions{Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("api_keys.file: %w", err)
	}
	if err := fs.Start(ctx); err != nil {
		_ = fs.Close()
		return nil, nil, fmt.Errorf("api_keys.file: %w", err)
	}
	return fs, func() { _ = fs.Close() }, nil
}

// startAPIClients builds the API key manager, the bearer verifier and the
// rate limiter f configures, registers their readiness checks and admin
// operations, and starts what runs in the background.
func startAPIClients(ctx context.Context, f *config.File, log *slog.Logger, adm *admin.Server) (*apiClients, error) {
	a := &apiClients{}
	if c := f.APIKeys; c != nil {
		klog := log.With("component", "apikey")
		store, closeStore, err := openKeyStore(ctx, c, klog)
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, closeStore)
		m, err := apikey.New(store, c.Pepper.Value(), time.Now, klog)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("api_keys: %w", err)
		}
		a.closers = append(a.closers, func() { _ = m.Close() })
		if a.sources, err = c.ParsedSources(); err != nil {
			a.close()
			return nil, fmt.Errorf("api_keys.sources: %w", err)
		}
		if rs, ok := store.(*apikey.RedisStore); ok {
			adm.AddCheck("apikey_store", rs.Ready)
		}
		adm.SetAPIKeys(m)
		a.keys = m
	}
	if c := f.Bearer; c != nil {
		v, err := bearer.New(*c, nil, log.With("component", "bearer"), time.Now)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("bearer: %w", err)
		}
		if err := v.Start(ctx); err != nil {
			a.close()
			return nil, fmt.Errorf("bearer: %w", err)
		}
		adm.AddCheck("bearer", func(context.Context) error {
			if !v.Ready() {
				return errors.New("issuer keys not fetched yet")
			}
			return nil
		})
		a.bearer = v
	}
	if c := f.RateLimit; c != nil {
		var client ratelimit.RedisClient
		if c.Backend == ratelimit.BackendRedis {
			rc, err := redisClient(c.Redis)
			if err != nil {
				a.close()
				return nil, fmt.Errorf("rate_limit.redis: %w", err)
			}
			a.closers = append(a.closers, func() { _ = rc.Close() })
			client = rc
		}
		l, err := ratelimit.New(*c, client, time.Now, log.With("component", "ratelimit"))
		if err != nil {
			a.close()
			return nil, fmt.Errorf("rate_limit: %w", err)
		}
		a.limiter = l
	}
	return a, nil
}

// deps adds the API client parts to d.
func (a *apiClients) deps(d proxy.Deps) proxy.Deps {
	if a.keys != nil {
		d.APIKeys, d.APIKeySources = a.keys, a.sources
	}
	if a.bearer != nil {
		d.Bearer = a.bearer
	}
	d.Limiter = a.limiter
	return d
}
