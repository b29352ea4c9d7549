// Command install builds the opa command of the OPA version crmgate
// embeds, once, into the Go build cache's folder (see package opabin),
// and prints its path. `make test-deps` runs it so that the tests that
// compare with a real OPA server do not build it within their timeout.
//
//	go run ./internal/opabin/install
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/crmgate/crmgate/internal/opabin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	version, err := opabin.ModuleVersion(ctx)
	if err == nil {
		var bin string
		if bin, err = opabin.Ensure(ctx, version, logf); err == nil {
			fmt.Println(bin)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "opabin install:", err)
	os.Exit(1)
}
