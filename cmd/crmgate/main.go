// Command crmgate is the gateway binary: it serves (serve), runs the
// self-contained demo (demo), checks and describes configuration files
// (config validate, config schema), lists and revokes sessions of a
// running gateway (session list, session revoke) and prints its version (version).
//
// This package parses flags and wires packages together; it holds no logic
// of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `crmgate — a security gateway for legacy CRMs

Usage:
  crmgate serve -c FILE          run the gateway with a configuration file
  crmgate demo [flags]           run the complete demo on loopback
  crmgate demo crm|idp [flags]   run only the demo's sample CRM or OpenID provider
  crmgate config validate FILE   check a configuration file without starting anything
  crmgate config schema          print the JSON Schema of the configuration file
  crmgate session list|revoke    list or end browser sessions of a running gateway
  crmgate policy check|test|eval DIR
                                 compile, test or query a policy set
  crmgate apikey create|list|show|revoke|rotate|delete
                                 manage API keys in the configured key store
  crmgate audit verify|public-key
                                 check the audit log's hash chain and signatures
  crmgate version                print the version

Run "crmgate COMMAND -h" for a command's flags.
`

// errUsage marks a command-line mistake: exit status 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "crmgate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case "config":
		return cmdConfig(args[1:], stdout, stderr)
	case "session":
		return cmdSession(ctx, args[1:], stdout, stderr)
	case "policy":
		return cmdPolicy(ctx, args[1:], stdout, stderr)
	case "apikey":
		return cmdAPIKey(ctx, args[1:], stdout, stderr)
	case "audit":
		return cmdAudit(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "crmgate: unknown command %q\n\n%s", args[0], usage)
	return errUsage
}

// newFlags returns a FlagSet that reports errors to stderr and returns them.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("crmgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, mapping flag errors to errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return errUsage
	}
	return nil
}
