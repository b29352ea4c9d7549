// Package certs owns where the gateway's serving certificates come from and
// the TLS parameters of the client-facing listener. Three sources sit behind
// one Manager:
//
//   - acme: certificates obtained and renewed from an ACME CA (Let's Encrypt,
//     or a private one such as step-ca or Pebble) through certmagic, with the
//     HTTP-01 and TLS-ALPN-01 challenges answered by the gateway's own
//     listeners;
//   - files: a PEM certificate chain and key, reloaded when the files change;
//   - devca: a development CA and leaf created on first start, for the demo
//     and tests.
//
// It does not own the listeners themselves (package proxy binds and serves
// them), client certificates towards the upstream (proxy's upstream
// settings), or trust decisions about clients.
package certs
