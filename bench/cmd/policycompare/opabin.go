package main

import (
	"context"

	"github.com/crmgate/crmgate/internal/opabin"
)

// ensureOPA returns the path of an opa binary of version and its reported
// version. A binary given with -opa is used as it is. Otherwise the binary
// is built once with `go install` into the Go build cache's folder
// (crmgate-bench/opa-<version>/ below `go env GOCACHE`), outside the
// repository, and reused by later runs; `go clean -cache` leaves it.
func ensureOPA(ctx context.Context, given, version string, logf func(string, ...any)) (bin, reported string, err error) {
	if given != "" {
		reported, err := opabin.Version(ctx, given)
		if err != nil {
			return "", "", err
		}
		if "v"+reported != version {
			logf("warning: %s is OPA %s, but crmgate embeds OPA %s: the comparison is between two versions", given, reported, version)
		}
		return given, reported, nil
	}
	if bin, err = opabin.Ensure(ctx, version, logf); err != nil {
		return "", "", err
	}
	if reported, err = opabin.Version(ctx, bin); err != nil {
		return "", "", err
	}
	logf("using %s (OPA %s)", bin, reported)
	return bin, reported, nil
}
