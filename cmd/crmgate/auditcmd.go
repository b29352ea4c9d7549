package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/crmgate/crmgate/audit"
	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/secret"
)

const auditUsage = `usage:
  crmgate audit verify (--key PUBLIC_KEY... | -c CONFIG) [--live] FILE...
      Check the hash chain and the signed checkpoints of the audit file
      sink's segments. One FILE that is the sink's active file (audit.file.path)
      stands for every segment of the log, in order; several FILEs are
      checked in the order given. Exit status 1 names the first broken link.
      --key may be repeated (and given with -c): a log whose signing key
      was rotated verifies with the old and the new public key.
      --live accepts lines after the last checkpoint of a log being written.
  crmgate audit public-key -c CONFIG
      Print the public key (PEM) of the configured checkpoint signing key,
      for auditors who verify without access to the private key.
`

func cmdAudit(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "public-key") {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	sub := args[0]
	fs := newFlags("audit "+sub, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage) }
	cfgPath := fs.String("c", "", "gateway configuration whose audit.file.signing_key is used")
	var keyPaths listFlag
	var live *bool
	if sub == "verify" {
		fs.Var(&keyPaths, "key", "file with an Ed25519 public key (PEM, or 32 bytes raw, hex or base64); repeat for a rotated key")
		live = fs.Bool("live", false, "the log is being written: lines after the last checkpoint are reported, not a failure")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if sub == "public-key" {
		if *cfgPath == "" || fs.NArg() != 0 {
			fmt.Fprint(stderr, auditUsage)
			return errUsage
		}
		pub, err := configPublicKey(*cfgPath)
		if err != nil {
			return err
		}
		b, err := audit.MarshalPublicKey(pub)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	if fs.NArg() == 0 || (len(keyPaths) == 0 && *cfgPath == "") {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	var keys []ed25519.PublicKey
	for _, path := range keyPaths {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		pub, err := audit.ParsePublicKey(b)
		if err != nil {
			return fmt.Errorf("--key %s: %w", path, err)
		}
		keys = append(keys, pub)
	}
	if *cfgPath != "" {
		pub, err := configPublicKey(*cfgPath)
		if err != nil {
			return err
		}
		keys = append(keys, pub)
	}
	files := fs.Args()
	if len(files) == 1 {
		// The active file names the whole log.
		segs, err := audit.Segments(files[0])
		if err != nil {
			return err
		}
		if len(segs) == 0 {
			return fmt.Errorf("%s: no audit log there", files[0])
		}
		files = segs
	}
	r, err := audit.Verify(files, keys...)
	var p *audit.Problem
	if err != nil && !errors.As(err, &p) {
		return err
	}
	fmt.Fprintf(stdout, "files %d, lines %d, events %d, checkpoints %d, seq %d to %d\n",
		r.Files, r.Lines, r.Events, r.Checkpoints, r.FirstSeq, r.LastSeq)
	if r.LastCheckpointFile != "" {
		fmt.Fprintf(stdout, "last checkpoint: %s:%d (seq %d, %s)\n", r.LastCheckpointFile, r.LastCheckpointLine, r.LastCheckpointSeq,
			r.LastCheckpointTime.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if p != nil && p.Kind == audit.ProblemMissingCheckpoint && *live && r.Lines > 0 {
		fmt.Fprintf(stdout, "OK up to the last checkpoint; %d line(s) after it are not signed yet (the next checkpoint covers them)\n", r.Unsigned)
		return nil
	}
	if p != nil {
		fmt.Fprintf(stdout, "BROKEN: %s:%d: %s (seq %d): %s\n", p.File, p.Line, p.Kind, p.Seq, p.Detail)
		return fmt.Errorf("the audit log does not verify: %s at %s:%d", p.Kind, p.File, p.Line)
	}
	fmt.Fprintln(stdout, "OK: the chain is intact and every line is covered by a valid signature")
	return nil
}

// configPublicKey is the public key of a configuration's checkpoint
// signing key.
func configPublicKey(path string) (ed25519.PublicKey, error) {
	f, err := config.Load(path, secret.Resolver{})
	if err != nil {
		return nil, err
	}
	if f.Audit == nil || f.Audit.File.Path == "" {
		return nil, fmt.Errorf("%s: no audit.file section, so no signing key", path)
	}
	priv, err := audit.ParsePrivateKey(f.Audit.File.SigningKey.Value())
	if err != nil {
		return nil, fmt.Errorf("audit.file.signing_key: %w", err)
	}
	return priv.Public().(ed25519.PublicKey), nil
}
