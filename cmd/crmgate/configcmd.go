package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/secret"
)

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: crmgate config validate FILE | crmgate config schema")
		return errUsage
	}
	switch args[0] {
	case "validate":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: crmgate config validate FILE")
			return errUsage
		}
		if _, err := config.Load(args[1], secret.Resolver{}); err != nil {
			var ce *config.Error
			if errors.As(err, &ce) {
				fmt.Fprintln(stderr, ce.Error())
				return fmt.Errorf("%s: %d problem(s)", args[1], len(ce.Problems))
			}
			return err
		}
		fmt.Fprintf(stdout, "%s: ok\n", args[1])
		return nil
	case "schema":
		b, err := config.Schema()
		if err != nil {
			return err
		}
		_, err = stdout.Write(append(b, '\n'))
		return err
	}
	fmt.Fprintf(stderr, "crmgate config: unknown subcommand %q (validate, schema)\n", args[0])
	return errUsage
}
