// Package policies holds the shipped CRM policy: Rego rules, their tests
// and the access table (see docs/policy.md). The Go side only embeds the
// files, so that the binary can run the demo with them; the gateway reads
// a policy from a folder or a bundle named in its configuration.
package policies

import "embed"

// FS holds the policy files of this folder.
//
//go:embed *.rego *.yaml
var FS embed.FS
