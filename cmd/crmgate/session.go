package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/crmgate/crmgate/admin"
	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/secret"
	"github.com/crmgate/crmgate/session"
)

const sessionUsage = `usage:
  crmgate session list   [connection] [--user ID] [--json]
  crmgate session revoke [connection] (--id ID_HASH | --user ID | --all)

connection (one of):
  -c FILE                the gateway's configuration: admin.listen and admin.token
  --admin URL            the admin listener (e.g. http://127.0.0.1:9090), with the
                         token from --token-file FILE or $CRMGATE_ADMIN_TOKEN
`

// cmdSession lists and revokes browser sessions through the admin API of
// a running gateway, so that every replica sees the change.
func cmdSession(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "revoke") {
		fmt.Fprint(stderr, sessionUsage)
		return errUsage
	}
	sub := args[0]
	fs := newFlags("session "+sub, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sessionUsage) }
	conn := adminFlags(fs)
	user := fs.String("user", "", "the user id (OIDC subject)")
	var asJSON, all *bool
	var id *string
	if sub == "list" {
		asJSON = fs.Bool("json", false, "print the admin API's JSON")
	} else {
		id = fs.String("id", "", "the id_hash of one session, as list shows it")
		all = fs.Bool("all", false, "end every session of every user")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "crmgate session %s: unexpected argument %q\n", sub, fs.Arg(0))
		return errUsage
	}
	c, err := conn.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	if sub == "list" {
		path := "/sessions"
		if *user != "" {
			path += "?user=" + url.QueryEscape(*user)
		}
		body, err := c.call(ctx, "GET", path, nil)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(body)
			return err
		}
		var list struct {
			Sessions []session.Summary `json:"sessions"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return fmt.Errorf("admin API answered unexpectedly: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID_HASH\tUSER\tCREATED\tLAST SEEN\tEXPIRES")
		for _, s := range list.Sessions {
			u := s.UserID
			if s.Unreadable {
				u = "(sealed under a retired key)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Hash, u, stamp(s.Created), stamp(s.LastSeen), stamp(minNonZero(s.IdleExpires, s.Expires)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "%d session(s)\n", len(list.Sessions))
		return nil
	}

	n := 0
	for _, set := range []bool{*id != "", *user != "", *all} {
		if set {
			n++
		}
	}
	if n != 1 {
		fmt.Fprintln(stderr, "crmgate session revoke: give exactly one of --id, --user, --all")
		return errUsage
	}
	var body []byte
	switch {
	case *id != "":
		body, err = c.call(ctx, "DELETE", "/sessions/"+url.PathEscape(*id), nil)
	case *user != "":
		body, err = c.call(ctx, "POST", "/sessions/revoke", admin.RevokeRequest{User: *user})
	default:
		body, err = c.call(ctx, "POST", "/sessions/revoke", admin.RevokeRequest{All: true, Confirm: "all"})
	}
	if err != nil {
		return err
	}
	var res struct {
		Revoked int `json:"revoked"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("admin API answered unexpectedly: %w", err)
	}
	fmt.Fprintf(stdout, "revoked %d session(s)\n", res.Revoked)
	return nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func minNonZero(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// adminConn is how a command reaches the admin API.
type adminConn struct {
	configFile, url, tokenFile *string
}

func adminFlags(fs *flag.FlagSet) adminConn {
	return adminConn{
		configFile: fs.String("c", "", "configuration file of the gateway (admin.listen, admin.token)"),
		url:        fs.String("admin", "", "admin listener URL, e.g. http://127.0.0.1:9090"),
		tokenFile:  fs.String("token-file", "", "file holding the admin token (default: $CRMGATE_ADMIN_TOKEN)"),
	}
}

type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func (a adminConn) client() (*adminClient, error) {
	c := &adminClient{http: &http.Client{Timeout: 30 * time.Second}}
	switch {
	case *a.configFile != "" && *a.url != "":
		return nil, errors.New("give -c FILE or --admin URL, not both")
	case *a.configFile != "":
		f, err := config.Load(*a.configFile, secret.Resolver{})
		if err != nil {
			return nil, err
		}
		c.base = "http://" + f.Admin.Listen
		c.token = string(f.Admin.Token.Value())
	case *a.url != "":
		u, err := url.Parse(*a.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--admin: %q is not an http(s) URL", *a.url)
		}
		c.base = strings.TrimSuffix(u.String(), "/")
		if *a.tokenFile != "" {
			b, err := os.ReadFile(*a.tokenFile)
			if err != nil {
				return nil, fmt.Errorf("--token-file: %w", err)
			}
			c.token = strings.TrimSpace(string(b))
		} else {
			c.token = os.Getenv("CRMGATE_ADMIN_TOKEN")
		}
	default:
		return nil, errors.New("give -c FILE (the gateway's configuration) or --admin URL")
	}
	if c.token == "" {
		return nil, errors.New("no admin token: session operations need admin.token (configure it, or pass --token-file / CRMGATE_ADMIN_TOKEN)")
	}
	return c, nil
}

// call sends one admin request and returns the body of a 2xx answer; any
// other answer is an error carrying the API's message.
func (c *adminClient) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	if res.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, fmt.Errorf("admin API: %s: %s", res.Status, msg)
	}
	return b, nil
}
