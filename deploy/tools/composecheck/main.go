// Command composecheck loads a compose file with compose-go, the reference
// loader of the Compose Specification that docker compose itself uses: the
// file is checked against the specification's JSON Schema, interpolated,
// normalised and checked for consistency (every network, volume, config and
// secret a service names is defined). It then checks what the loader does
// not: that every file a config or secret names exists, and that every
// gateway service (one that mounts -gateway-config) is read-only, drops
// every capability and mounts every secret its configuration refers to, and
// that the services named by -internal (the CRM) join internal networks
// only, where nothing but the gateways reaches them.
//
//	go run ./composecheck -gateway-config crmgate.yaml -internal crm ../compose/compose.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	gatewayConfig := flag.String("gateway-config", "crmgate.yaml", "file name of the gateway configuration the gateway services mount")
	internal := flag.String("internal", "", "comma-separated services that must join internal networks only")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: composecheck [-gateway-config NAME] [-internal SERVICE,...] COMPOSE_FILE")
		os.Exit(2)
	}
	var internalOnly []string
	if *internal != "" {
		internalOnly = strings.Split(*internal, ",")
	}
	problems, err := check(flag.Arg(0), *gatewayConfig, internalOnly)
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}

func check(file, gatewayConfig string, internalOnly []string) ([]string, error) {
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithOsEnv, cli.WithDotEnv, cli.WithConsistency(true), cli.WithResolvedPaths(true))
	if err != nil {
		return nil, err
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	for name, c := range p.Configs {
		if c.File != "" {
			if _, err := os.Stat(c.File); err != nil {
				bad("configs.%s: %v", name, err)
			}
		}
	}
	for name, s := range p.Secrets {
		if s.File != "" {
			if _, err := os.Stat(s.File); err != nil {
				bad("secrets.%s: %v (run gen-secrets.sh)", name, err)
			}
		}
	}

	gateways := 0
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		var cfgFile string
		for _, c := range svc.Configs {
			if f := p.Configs[c.Source].File; filepath.Base(f) == gatewayConfig {
				cfgFile = f
			}
		}
		if !svc.ReadOnly {
			bad("services.%s: read_only is not true", name)
		}
		if !contains(svc.CapDrop, "ALL") {
			bad("services.%s: cap_drop does not hold ALL", name)
		}
		if cfgFile == "" {
			continue
		}
		gateways++
		if svc.User == "" || svc.User[0] < '0' || svc.User[0] > '9' {
			bad("services.%s: user %q is not a numeric UID", name, svc.User)
		}
		mounted := map[string]bool{}
		for _, s := range svc.Secrets {
			mounted[s.Target] = true
		}
		b, err := os.ReadFile(cfgFile)
		if err != nil {
			return nil, err
		}
		for _, ref := range secretRefs(b) {
			if !mounted[ref] {
				bad("services.%s: %s refers to %s, which no secret of the service mounts", name, filepath.Base(cfgFile), ref)
			}
		}
		for _, target := range []string{"/var/lib/crmgate", "/var/log/crmgate"} {
			found := false
			for _, v := range svc.Volumes {
				found = found || v.Target == target
			}
			if !found {
				bad("services.%s: %s is not a volume (the root filesystem is read-only)", name, target)
			}
		}
	}
	for _, name := range internalOnly {
		svc, ok := p.Services[name]
		if !ok {
			bad("services.%s: no such service", name)
			continue
		}
		if len(svc.Ports) > 0 {
			bad("services.%s: publishes ports; it must be reachable from the gateways only", name)
		}
		if len(svc.Networks) == 0 {
			bad("services.%s: joins the default network, which is not internal", name)
		}
		for net := range svc.Networks {
			if !p.Networks[net].Internal {
				bad("services.%s: network %s is not internal", name, net)
			}
		}
	}
	if gateways < 2 {
		bad("%d gateway service(s) mount %s; want at least 2 replicas", gateways, gatewayConfig)
	}
	sort.Strings(problems)
	fmt.Printf("%s: compose-go loaded project %q: %d services, %d networks, %d volumes, %d secrets, %d configs; %d gateway replicas\n",
		file, p.Name, len(p.Services), len(p.Networks), len(p.Volumes), len(p.Secrets), len(p.Configs), gateways)
	return problems, nil
}

var fileRef = regexp.MustCompile(`file:(/[A-Za-z0-9._/-]+)`)

// secretRefs returns the paths of the file: secret references in a gateway
// configuration, and the certificate files of tls.files under /run/secrets.
func secretRefs(b []byte) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range fileRef.FindAllSubmatch(b, -1) {
		if p := string(m[1]); !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:cert|key):\s*(/run/secrets/\S+)`).FindAllSubmatch(b, -1) {
		if p := string(m[1]); !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
