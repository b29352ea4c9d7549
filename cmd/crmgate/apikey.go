package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/crmgate/crmgate/auth/apikey"
	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/secret"
)

const apikeyUsage = `usage:
  crmgate apikey create -c FILE --name NAME [--owner WHO] [--scope S]... [--tier T] [--ttl 2160h]
  crmgate apikey list   -c FILE [--json]
  crmgate apikey show   -c FILE ID
  crmgate apikey revoke -c FILE ID
  crmgate apikey rotate -c FILE ID [--overlap 24h]
  crmgate apikey delete -c FILE ID

The command works on the key store of the gateway's configuration (api_keys:
the key file or Redis) with its pepper; running gateways see the change within
a second. The plaintext key is printed once, by create and rotate.
`

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func cmdAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, apikeyUsage)
		return errUsage
	}
	sub := args[0]
	fs := newFlags("apikey "+sub, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, apikeyUsage) }
	cfgPath := fs.String("c", "", "configuration file of the gateway")
	var (
		name, owner, tier, ttl, overlap *string
		scopes                          listFlag
		asJSON                          *bool
	)
	nargs := 1
	switch sub {
	case "create":
		name = fs.String("name", "", "what the key is for (required)")
		owner = fs.String("owner", "", "who is responsible for it")
		fs.Var(&scopes, "scope", "a scope the key grants (repeat)")
		tier = fs.String("tier", "", "rate-limit tier")
		ttl = fs.String("ttl", "", "lifetime, e.g. 2160h (empty: no expiry)")
		nargs = 0
	case "list":
		asJSON = fs.Bool("json", false, "print JSON")
		nargs = 0
	case "rotate":
		overlap = fs.String("overlap", "0s", "how long the old secret keeps working (at most 168h)")
	case "show", "revoke", "delete":
	default:
		fmt.Fprintf(stderr, "crmgate apikey: unknown subcommand %q\n\n%s", sub, apikeyUsage)
		return errUsage
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	// Flags may follow the key id too: "rotate ID --overlap 24h".
	var pos []string
	for fs.NArg() > 0 {
		pos = append(pos, fs.Arg(0))
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return err
		}
	}
	if *cfgPath == "" || len(pos) != nargs {
		fmt.Fprint(stderr, apikeyUsage)
		return errUsage
	}
	m, done, err := openKeyManager(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	switch sub {
	case "create":
		spec := apikey.Spec{Name: *name, Owner: *owner, Scopes: scopes, Tier: *tier}
		if *ttl != "" {
			if spec.TTL, err = parsePositive(*ttl); err != nil {
				return fmt.Errorf("--ttl: %w", err)
			}
		}
		key, rec, err := m.Create(ctx, spec)
		if err != nil {
			return err
		}
		printKey(stdout, stderr, key, rec)
		return nil
	case "list":
		list, err := m.List(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tOWNER\tSCOPES\tTIER\tSTATUS\tEXPIRES\tLAST USED")
		for _, r := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, dash(r.Owner), dash(strings.Join(r.Scopes, ",")), dash(r.Tier),
				r.Status(time.Now()), stamp(r.Expires), stamp(r.LastUsed))
		}
		return tw.Flush()
	case "show":
		rec, err := m.Get(ctx, pos[0])
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rec)
	case "revoke":
		if err := m.Revoke(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", pos[0])
		return nil
	case "delete":
		if err := m.Delete(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %s\n", pos[0])
		return nil
	default: // rotate
		d, err := time.ParseDuration(*overlap)
		if err != nil || d < 0 {
			return fmt.Errorf("--overlap: %q is not a duration such as 24h", *overlap)
		}
		key, rec, err := m.Rotate(ctx, pos[0], d)
		if err != nil {
			return err
		}
		printKey(stdout, stderr, key, rec)
		return nil
	}
}

func parsePositive(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration such as 2160h", s)
	}
	return d, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printKey prints a new key on stdout (alone, for scripts) and what it is
// on stderr.
func printKey(stdout, stderr io.Writer, key string, rec *apikey.Record) {
	fmt.Fprintln(stdout, key)
	fmt.Fprintf(stderr, "key %s (%s) — store it now: it is not shown again\n", rec.ID, rec.Name)
}

// openKeyManager opens the key store of the configuration at path.
func openKeyManager(ctx context.Context, path string) (*apikey.Manager, func(), error) {
	f, err := config.Load(path, secret.Resolver{})
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return nil, nil, fmt.Errorf("%s:\n%s", path, ce.Error())
		}
		return nil, nil, err
	}
	if f.APIKeys == nil {
		return nil, nil, fmt.Errorf("%s has no api_keys section", path)
	}
	log := slog.New(slog.DiscardHandler)
	store, closeStore, err := openKeyStore(ctx, f.APIKeys, log)
	if err != nil {
		return nil, nil, err
	}
	m, err := apikey.New(store, f.APIKeys.Pepper.Value(), time.Now, log)
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	return m, func() { _ = m.Close(); closeStore() }, nil
}
