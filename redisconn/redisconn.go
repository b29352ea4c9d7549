// Package redisconn owns how crmgate reaches Redis: the configuration
// section every Redis user (sessions, rate limits, API keys) embeds, its
// validation, and the go-redis options it yields. It opens no connection.
package redisconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

// Modes.
const (
	Single   = "single"
	Sentinel = "sentinel"
	Cluster  = "cluster"
)

// Config says how to reach Redis.
type Config struct {
	Mode        string        `yaml:"mode" jsonschema_description:"single (default), sentinel or cluster."`
	Addrs       []string      `yaml:"addrs" jsonschema_description:"host:port of the server (single), the sentinels (sentinel) or some cluster nodes (cluster)."`
	MasterName  string        `yaml:"master_name" jsonschema_description:"Name of the master the sentinels watch (sentinel only)."`
	Username    string        `yaml:"username" jsonschema_description:"ACL user name. Empty: the default user."`
	Password    secret.Ref    `yaml:"password" jsonschema_description:"Secret reference (env:NAME or file:/path) to the password. Empty: none."`
	DB          int           `yaml:"db" jsonschema_description:"Database number (single and sentinel only). Default 0."`
	KeyPrefix   string        `yaml:"key_prefix" jsonschema_description:"Prefix of every key and channel name this component writes. Each component has its own default (crmgate:session:, crmgate:ratelimit:, crmgate:apikey:)."`
	DialTimeout time.Duration `yaml:"dial_timeout" jsonschema_description:"Longest connect to Redis. Default 2s."`
	Timeout     time.Duration `yaml:"timeout" jsonschema_description:"Longest read or write of one command. Default 1s."`
	TLS         TLSConfig     `yaml:"tls" jsonschema_description:"TLS to Redis."`
}

// TLSConfig configures TLS to Redis.
type TLSConfig struct {
	Enabled    bool   `yaml:"enabled" jsonschema_description:"Connect with TLS."`
	CAFile     string `yaml:"ca_file" jsonschema_description:"PEM file of the CAs that sign the server certificate. Empty: the system roots."`
	ServerName string `yaml:"server_name" jsonschema_description:"Name to verify in the server certificate instead of the address's host."`
	ClientCert string `yaml:"client_cert" jsonschema_description:"PEM client certificate, for servers that require one."`
	ClientKey  string `yaml:"client_key" jsonschema_description:"PEM private key of client_cert."`
}

// Defaults fills unset fields; keyPrefix is the user's own default prefix.
func (r *Config) Defaults(keyPrefix string) {
	if r.Mode == "" {
		r.Mode = Single
	}
	if r.KeyPrefix == "" {
		r.KeyPrefix = keyPrefix
	}
	if r.DialTimeout == 0 {
		r.DialTimeout = 2 * time.Second
	}
	if r.Timeout == 0 {
		r.Timeout = time.Second
	}
}

// Validate reports every problem at once. It expects Defaults to have run.
func (r Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	switch r.Mode {
	case Single:
		if len(r.Addrs) != 1 {
			add("addrs", "single mode takes exactly one host:port, got %d", len(r.Addrs))
		}
	case Sentinel:
		if r.MasterName == "" {
			add("master_name", "required in sentinel mode")
		}
	case Cluster:
		if r.DB != 0 {
			add("db", "must be 0 in cluster mode")
		}
	default:
		add("mode", "%q is not allowed (single, sentinel, cluster)", r.Mode)
	}
	if r.Mode != Sentinel && r.MasterName != "" {
		add("master_name", "only used in sentinel mode")
	}
	if len(r.Addrs) == 0 && r.Mode != Single {
		add("addrs", "at least one host:port is required")
	}
	for i, a := range r.Addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			add(fmt.Sprintf("addrs[%d]", i), "%q is not host:port (e.g. 127.0.0.1:6379)", a)
		}
	}
	if r.DB < 0 {
		add("db", "must not be negative")
	}
	if r.KeyPrefix == "" || strings.ContainsAny(r.KeyPrefix, " \t\r\n*?[]{}") {
		add("key_prefix", "%q is not allowed (non-empty, no spaces, no * ? [ ] { })", r.KeyPrefix)
	}
	if r.DialTimeout <= 0 {
		add("dial_timeout", "must be positive, got %s", r.DialTimeout)
	}
	if r.Timeout <= 0 {
		add("timeout", "must be positive, got %s", r.Timeout)
	}
	t := r.TLS
	if !t.Enabled && (t.CAFile != "" || t.ServerName != "" || t.ClientCert != "" || t.ClientKey != "") {
		add("tls.enabled", "ca_file, server_name, client_cert and client_key need enabled: true")
	}
	if (t.ClientCert == "") != (t.ClientKey == "") {
		add("tls.client_key", "client_cert and client_key go together")
	}
	return errors.Join(errs...)
}

// RedisOptions turns the configuration into go-redis options for
// redis.NewUniversalClient; it reads the TLS files but connects nowhere.
// The client it yields reconnects by itself after Redis comes back.
func (r Config) RedisOptions() (*redis.UniversalOptions, error) {
	o := &redis.UniversalOptions{
		Addrs:        r.Addrs,
		MasterName:   r.MasterName,
		Username:     r.Username,
		DB:           r.DB,
		DialTimeout:  r.DialTimeout,
		ReadTimeout:  r.Timeout,
		WriteTimeout: r.Timeout,
		// A failed command is retried once on a fresh connection; beyond
		// that the request fails closed rather than queueing behind a
		// Redis that is down.
		MaxRetries:    1,
		DialerRetries: 1,
		// Request deadlines bound Redis calls too.
		ContextTimeoutEnabled: true,
		IsClusterMode:         r.Mode == Cluster,
	}
	if v := r.Password.Value(); v != nil {
		o.Password = string(v)
		if r.Mode == Sentinel {
			o.SentinelPassword = string(v)
		}
	}
	if r.TLS.Enabled {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: r.TLS.ServerName}
		if r.TLS.CAFile != "" {
			pem, err := os.ReadFile(r.TLS.CAFile)
			if err != nil {
				return nil, fielderr.New("tls.ca_file", "%v", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fielderr.New("tls.ca_file", "%s holds no PEM certificate", r.TLS.CAFile)
			}
		}
		if r.TLS.ClientCert != "" {
			cert, err := tls.LoadX509KeyPair(r.TLS.ClientCert, r.TLS.ClientKey)
			if err != nil {
				return nil, fielderr.New("tls.client_cert", "%v", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		o.TLSConfig = tc
	}
	return o, nil
}
