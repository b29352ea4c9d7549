package certs

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/fielderr"
)

// validationLines runs Defaults and Validate the way the config package
// does, rooted at tls, and returns one line per problem.
func validationLines(c Config) []string {
	c.Defaults()
	var lines []string
	for _, err := range fielderr.Flatten(fielderr.Prefix("tls", c.Validate())) {
		lines = append(lines, err.Error())
	}
	return lines
}

func TestValidate(t *testing.T) {
	goodACME := ACMEConfig{Email: "ops@crm.example", Domains: []string{"crm.example"}, Storage: "/var/lib/crmgate/acme"}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{
			name: "acme minimal",
			cfg:  Config{Source: SourceACME, ACME: goodACME},
		},
		{
			name: "acme full",
			cfg: Config{Source: SourceACME, ACME: ACMEConfig{
				Email: "ops@crm.example", Domains: []string{"crm.example", "localhost"}, Storage: "/acme",
				DirectoryURL: "https://ca.internal:9000/acme/acme/directory", TrustedRootsFile: "/etc/step/root.pem",
				Challenges: []string{"tls-alpn-01"}, AltHTTPPort: 8080, AltTLSALPNPort: 8443,
			}},
		},
		{
			name: "files",
			cfg:  Config{Source: SourceFiles, Files: FilesConfig{Cert: "/etc/tls/tls.crt", Key: "/etc/tls/tls.key"}},
		},
		{
			name: "devca",
			cfg:  Config{Source: SourceDevCA, DevCA: DevCAConfig{Dir: "/tmp/tls", Hosts: []string{"localhost", "crm.test", "10.0.0.1", "::1"}}},
		},
		{
			name: "other sections are ignored",
			cfg:  Config{Source: SourceFiles, Files: FilesConfig{Cert: "c", Key: "k"}, ACME: ACMEConfig{Email: "not an email"}},
		},
		{
			name: "no source",
			cfg:  Config{},
			want: []string{"tls.source: required (acme, files or devca)"},
		},
		{
			name: "unknown source",
			cfg:  Config{Source: "letsencrypt"},
			want: []string{`tls.source: "letsencrypt" is not allowed (acme, files or devca)`},
		},
		{
			name: "acme empty",
			cfg:  Config{Source: SourceACME},
			want: []string{
				"tls.acme.email: required when source is acme",
				"tls.acme.domains: at least one DNS name is required when source is acme",
				"tls.acme.storage: required when source is acme: a folder for accounts, keys and certificates",
			},
		},
		{
			name: "acme everything wrong",
			cfg: Config{Source: SourceACME, ACME: ACMEConfig{
				Email:        "Ops <ops@crm.example>",
				Domains:      []string{"*.crm.example", "10.0.0.1", "crm example", "CRM.example", "crm.example", "-crm.example"},
				DirectoryURL: "http://acme.example/directory",
				Storage:      "/acme",
				Challenges:   []string{"dns-01", "http-01", "http-01"},
				AltHTTPPort:  -1, AltTLSALPNPort: 70000,
			}},
			want: []string{
				`tls.acme.email: "Ops <ops@crm.example>" is not an email address (name@example.com, no display name)`,
				`tls.acme.domains[0]: "*.crm.example": wildcard names need the DNS-01 challenge, which is not supported`,
				`tls.acme.domains[1]: "10.0.0.1": IP addresses are not supported; use a DNS name`,
				`tls.acme.domains[2]: "crm example" is not a DNS name (letters, digits and hyphens in dot-separated labels)`,
				`tls.acme.domains[4]: "crm.example" is already acme.domains[3]`,
				`tls.acme.domains[5]: "-crm.example" is not a DNS name (letters, digits and hyphens in dot-separated labels)`,
				`tls.acme.directory_url: "http://acme.example/directory" is not an https URL (e.g. https://acme-v02.api.letsencrypt.org/directory)`,
				`tls.acme.challenges[0]: "dns-01" is not allowed (http-01, tls-alpn-01)`,
				`tls.acme.challenges[2]: "http-01" is already acme.challenges[1]`,
				"tls.acme.alt_http_port: -1 is not a port (1-65535, or 0 for the standard port)",
				"tls.acme.alt_tls_alpn_port: 70000 is not a port (1-65535, or 0 for the standard port)",
			},
		},
		{
			name: "acme same alternative ports",
			cfg:  Config{Source: SourceACME, ACME: ACMEConfig{Email: "a@b.example", Domains: []string{"b.example"}, Storage: "/s", AltHTTPPort: 8080, AltTLSALPNPort: 8080}},
			want: []string{"tls.acme.alt_tls_alpn_port: must differ from acme.alt_http_port"},
		},
		{
			name: "files empty",
			cfg:  Config{Source: SourceFiles},
			want: []string{
				"tls.files.cert: required when source is files: path of the PEM certificate",
				"tls.files.key: required when source is files: path of the PEM private key",
			},
		},
		{
			name: "devca everything wrong",
			cfg:  Config{Source: SourceDevCA, DevCA: DevCAConfig{Hosts: []string{"localhost", "crm_test", "::1", "0:0::1", "fe80::1%eth0", "LOCALHOST"}}},
			want: []string{
				"tls.devca.dir: required when source is devca: a folder for the CA and certificate",
				`tls.devca.hosts[1]: "crm_test" is not a DNS name or IP address`,
				`tls.devca.hosts[3]: "0:0::1" is already devca.hosts[2]`,
				`tls.devca.hosts[4]: "fe80::1%eth0": IP addresses with a zone are not allowed`,
				`tls.devca.hosts[5]: "LOCALHOST" is already devca.hosts[0]`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := validationLines(tc.cfg)
			if d := cmp.Diff(got, tc.want); d != "" {
				t.Errorf("Validate() (-got +want):\n%s", d)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{
			name: "acme",
			in:   Config{Source: SourceACME},
			want: Config{Source: SourceACME, ACME: ACMEConfig{DirectoryURL: LetsEncryptDirectory, Challenges: []string{"http-01", "tls-alpn-01"}}},
		},
		{
			name: "acme keeps what is set",
			in:   Config{Source: SourceACME, ACME: ACMEConfig{DirectoryURL: "https://ca.test/dir", Challenges: []string{"tls-alpn-01"}}},
			want: Config{Source: SourceACME, ACME: ACMEConfig{DirectoryURL: "https://ca.test/dir", Challenges: []string{"tls-alpn-01"}}},
		},
		{
			name: "devca",
			in:   Config{Source: SourceDevCA},
			want: Config{Source: SourceDevCA, DevCA: DevCAConfig{Hosts: []string{"localhost", "127.0.0.1", "::1"}}},
		},
		{
			name: "only the selected source",
			in:   Config{Source: SourceFiles},
			want: Config{Source: SourceFiles},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in
			got.Defaults()
			if d := cmp.Diff(got, tc.want); d != "" {
				t.Errorf("Defaults() (-got +want):\n%s", d)
			}
		})
	}
}
