#!/usr/bin/env bash
# Checks the deployment recipes in deploy/ as far as a machine without a
# container runtime or cluster allows. Run from anywhere: deploy/check.sh
# (or `make deploy-check`). Needs Go; installs Debian packages it is missing
# (systemd for systemd-analyze, haproxy for `haproxy -c`) when run as root
# or with sudo. Exits non-zero on the first failing check.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
GO=${GO:-go}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/crmgate-deploy-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

failures=0
step() { printf '\n== %s\n' "$*"; }
pass() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }

need_pkg() { # need_pkg COMMAND PACKAGE
	command -v "$1" >/dev/null && return 0
	echo "installing $2 (for $1)"
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
	command -v "$1" >/dev/null
}

step "build crmgate (static, as the Dockerfile does)"
bin="$tmp/root/usr/bin/crmgate"
mkdir -p "$(dirname "$bin")"
(cd "$repo" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w -X main.version=deploy-check" -o "$bin" ./cmd/crmgate)
"$bin" version
if command -v file >/dev/null && ! file "$bin" | grep -q 'statically linked'; then
	fail "crmgate is not statically linked: $(file -b "$bin")"
else
	pass "static binary"
fi

# ---------------------------------------------------------------------------
# Configuration files: `crmgate config validate` resolves every secret
# reference, so each file:/… reference is pointed at a throwaway secret of the
# right kind in a temporary folder. Nothing else in the file is changed.
secrets="$tmp/secrets"
mkdir -p "$secrets"
make_secret() { # make_secret NAME PATH
	case "$1" in
	*assertion-key*) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2" 2>/dev/null ;;
	*audit-signing-key*) openssl genpkey -algorithm ed25519 -out "$2" 2>/dev/null ;;
	*) openssl rand -base64 48 >"$2" ;;
	esac
	chmod 600 "$2"
}
validate_config() { # validate_config FILE
	local src=$1 out ref name
	out="$tmp/config/$(basename "$(dirname "$src")")-$(basename "$src")"
	mkdir -p "$(dirname "$out")"
	cp "$src" "$out"
	for ref in $(grep -oE 'file:/[A-Za-z0-9._/-]+' "$src" | sort -u); do
		name=$(basename "${ref#file:}")
		[ -f "$secrets/$name" ] || make_secret "$name" "$secrets/$name"
		sed -i "s#${ref}\([^A-Za-z0-9._/-]\|\$\)#file:$secrets/$name\1#g" "$out"
	done
	if "$bin" config validate "$out" >"$tmp/validate.out" 2>&1; then
		pass "config validate ${src#"$repo"/}"
	else
		fail "config validate ${src#"$repo"/}"
		sed "s#$tmp/config/##" "$tmp/validate.out"
	fi
}

step "crmgate config validate (example and Kubernetes configurations)"
need_pkg openssl openssl
# compose/crmgate.yaml names files beyond secret references (the stack's
# certificate as the provider's CA): it is validated below, with the
# secrets gen-secrets.sh makes.
for f in "$here"/config/*.yaml "$here"/kubernetes/crmgate.yaml; do
	[ -f "$f" ] || { fail "missing $f"; continue; }
	validate_config "$f"
done

# ---------------------------------------------------------------------------
step "Dockerfile: BuildKit lint (the rules of docker build --check) and its build context"
# No container runtime is needed: deploy/tools runs BuildKit's Dockerfile
# front end with base images answered locally, then the binary is built from
# exactly the files deploy/Dockerfile.dockerignore lets into the context.
if (cd "$here/tools" && "$GO" run ./dockerfilecheck -dockerfile "$here/Dockerfile" -context "$repo" -copy-context "$tmp/context"); then
	pass "Dockerfile lint"
	if (cd "$tmp/context" && CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=check" -o "$tmp/context-crmgate" ./cmd/crmgate) &&
		ls "$tmp/context"/policies/*.rego "$tmp/context/policies/data.yaml" >/dev/null; then
		pass "the image's build context builds crmgate and holds the policy set"
	else
		fail "the build context that Dockerfile.dockerignore leaves does not build"
	fi
else
	fail "Dockerfile lint"
fi

# ---------------------------------------------------------------------------
step "systemd: systemd-analyze verify and security, sysusers.d, tmpfiles.d"
# The unit is checked inside a scratch root that holds the binary at its
# ExecStart path, the user from the sysusers.d file and the system's own
# units, so "command not found" and unknown users are real errors there.
# systemd-analyze verify exits 0 on unknown keys and bad values (it only
# logs them), so any output at all fails the check.
need_pkg systemd-analyze systemd
sroot="$tmp/root"
mkdir -p "$sroot/etc/systemd/system" "$sroot/usr/lib/sysusers.d" "$sroot/usr/lib/tmpfiles.d" "$sroot/usr/lib/systemd" "$sroot/usr/sbin"
cp -a /usr/lib/systemd/system "$sroot/usr/lib/systemd/"
cp "$here/systemd/crmgate.service" "$sroot/etc/systemd/system/crmgate.service"
cp "$here/systemd/crmgate.sysusers" "$sroot/usr/lib/sysusers.d/crmgate.conf"
cp "$here/systemd/crmgate.tmpfiles" "$sroot/usr/lib/tmpfiles.d/crmgate.conf"
touch "$sroot/usr/sbin/nologin"
if out=$(systemd-sysusers --root="$sroot" 2>&1) && grep -q '^crmgate:' "$sroot/etc/passwd"; then
	pass "sysusers.d creates the crmgate user"
else
	fail "systemd-sysusers: $out"
fi
if out=$(systemd-tmpfiles --root="$sroot" --create 2>&1) && [ -z "$out" ] && [ -d "$sroot/etc/crmgate/secrets" ]; then
	pass "tmpfiles.d creates /etc/crmgate, /etc/crmgate/policies and /etc/crmgate/secrets"
else
	fail "systemd-tmpfiles: $out"
fi
if out=$(systemd-analyze verify --root="$sroot" crmgate.service 2>&1) && [ -z "$out" ]; then
	pass "systemd-analyze verify crmgate.service"
else
	fail "systemd-analyze verify crmgate.service"
	printf '%s\n' "$out"
fi
# Exposure score on systemd's 0-10 scale, times ten: fail above 2.5.
if out=$(systemd-analyze security --offline=yes --root="$sroot" --threshold=25 crmgate.service 2>&1); then
	pass "systemd-analyze security: $(printf '%s\n' "$out" | grep -o 'Overall exposure level.*' | sed 's/ *$//')"
else
	fail "systemd-analyze security: exposure above 2.5"
	printf '%s\n' "$out" | grep -E '✗|Overall' || true
fi
# Every secret the single-node configuration reads from the credentials
# folder is handed over by a LoadCredential= line, and the other way round.
refs=$(grep -oE 'file:/run/credentials/crmgate\.service/[A-Za-z0-9._-]+' "$here/config/single-node.yaml" | sed 's#.*/##' | sort -u)
creds=$(sed -n 's/^LoadCredential=\([^:]*\):.*/\1/p' "$here/systemd/crmgate.service" | sort -u)
if [ "$refs" = "$creds" ]; then
	pass "LoadCredential= matches the secrets of config/single-node.yaml"
else
	fail "LoadCredential= and config/single-node.yaml differ:"
	diff <(echo "$refs") <(echo "$creds") || true
fi

# ---------------------------------------------------------------------------
step "compose: the Compose Specification loader, gen-secrets.sh, HAProxy configuration"
# docker compose is not needed: compose-go (the loader docker compose uses)
# checks the file against the specification's schema and for consistency, in
# a copy of deploy/compose whose secrets gen-secrets.sh has just made.
cp -r "$here/compose" "$tmp/compose"
rm -rf "$tmp/compose/secrets"
if "$here/compose/gen-secrets.sh" "$tmp/compose/secrets" >/dev/null &&
	[ "$(ls "$tmp/compose/secrets" | wc -l)" -ge 11 ]; then
	pass "gen-secrets.sh"
else
	fail "gen-secrets.sh"
fi
if (cd "$here/tools" && "$GO" run ./composecheck -gateway-config crmgate.yaml -internal crm "$tmp/compose/compose.yaml"); then
	pass "compose.yaml loads; every service is read-only and capability-free, the gateways have every secret, the CRM is internal only"
else
	fail "compose.yaml"
fi
# The gateway configuration once more, with the very secrets gen-secrets.sh
# made (the TLS pair included) at the paths the containers see them.
sed "s#/run/secrets/crmgate/#$tmp/compose/secrets/#g" "$here/compose/crmgate.yaml" >"$tmp/compose/crmgate-local.yaml"
if "$bin" config validate "$tmp/compose/crmgate-local.yaml" >"$tmp/validate.out" 2>&1; then
	pass "config validate compose/crmgate.yaml with gen-secrets.sh's secrets"
else
	fail "config validate compose/crmgate.yaml with gen-secrets.sh's secrets"
	cat "$tmp/validate.out"
fi
need_pkg haproxy haproxy
# Offline, the replicas' names do not resolve: that warning is expected
# (init-addr none lets HAProxy start without them); anything else fails.
if out=$(haproxy -c -f "$here/compose/haproxy.cfg" 2>&1) &&
	! printf '%s\n' "$out" | grep -E '^\[(WARNING|ALERT)\]' | grep -v 'could not resolve address' | grep -q .; then
	pass "haproxy -c compose/haproxy.cfg ($(haproxy -v | head -1 | awk '{print $3}'))"
else
	fail "haproxy -c compose/haproxy.cfg"
	printf '%s\n' "$out"
fi

# ---------------------------------------------------------------------------
step "Kubernetes: kustomize build, strict decoding into k8s.io/api types, cross-checks"
# There is no cluster and no network here (kubeconform would download the
# JSON schemas): deploy/tools renders the kustomization with the kustomize
# library, decodes each object case-sensitively and strictly into the
# k8s.io/api structs (unknown or misspelt fields fail), and checks selectors,
# ports, mounts, Secret keys and the hardening.
if (cd "$here/tools" && "$GO" run ./k8scheck -secrets "$here/kubernetes/secret.example.yaml" -o "$tmp/kubernetes.yaml" "$here/kubernetes"); then
	pass "kubernetes manifests"
else
	fail "kubernetes manifests"
fi
drift=
for f in authz.rego authz_test.rego data.yaml; do
	cmp -s "$repo/policies/$f" "$here/kubernetes/policies/$f" || drift="$drift $f"
done
if [ -z "$drift" ]; then
	pass "kubernetes/policies is the same as policies/"
else
	fail "kubernetes/policies differs from policies/:$drift (copy them again)"
fi
if "$bin" policy test "$here/kubernetes/policies" >"$tmp/policy.out" 2>&1; then
	pass "crmgate policy test kubernetes/policies ($(tail -1 "$tmp/policy.out"))"
else
	fail "crmgate policy test kubernetes/policies"
	cat "$tmp/policy.out"
fi

if [ "$failures" -gt 0 ]; then
	echo; echo "$failures check(s) failed"; exit 1
fi
echo; echo "all deployment checks passed"
