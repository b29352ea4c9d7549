#!/usr/bin/env bash
# Creates the secrets of the compose stack in ./secrets (or the folder given
# as the first argument): random keys and tokens, the assertion and audit
# signing keys, the Redis password, the OIDC client secret the gateways
# and the development OpenID provider share, and a self-signed certificate
# for localhost and idp.localhost. Existing files are kept, so running it
# again changes nothing.
#
# With your own identity provider, replace secrets/oidc-client-secret with
# the secret it issued for the gateway's client.
#
# Compose mounts these files into the containers as they are (owner and mode
# included), and the gateway runs as UID 65532: the files are made readable
# to all, inside a folder only you can enter.
set -euo pipefail
dir=${1:-"$(dirname "$0")/secrets"}
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"

random() { [ -s "$1" ] || openssl rand -base64 48 >"$1"; }
for f in admin-token oidc-client-secret oidc-key session-key apikey-pepper redact-hash-key redis-password; do
	random "$f"
done
[ -s assertion-key.pem ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out assertion-key.pem 2>/dev/null
[ -s audit-signing-key ] || openssl genpkey -algorithm ed25519 -out audit-signing-key 2>/dev/null
if [ ! -s tls.crt ] || [ ! -s tls.key ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \
		-subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,DNS:idp.localhost,IP:127.0.0.1" \
		-keyout tls.key -out tls.crt 2>/dev/null
fi
chmod 644 ./*
echo "secrets in $dir; browsers must trust $dir/tls.crt"
