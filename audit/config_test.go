package audit

import (
	"strings"
	"testing"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

func TestConfigDefaultsValidate(t *testing.T) {
	c := Config{Spool: SpoolConfig{Dir: "/var/lib/crmgate/audit-spool"}, Stdout: StdoutConfig{Enabled: true}}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(defaults) = %v", err)
	}
	if c.Queue != DefaultQueue || c.Spool.OnFull != OnFullRefuse || !*c.File.Compress || c.File.CheckpointInterval != DefaultCheckpointInterval {
		t.Errorf("Defaults = %+v", c)
	}
	if err := testConfig(t).Validate(); err != nil {
		t.Errorf("Validate(file sink) = %v", err)
	}
}

// Every problem is reported at once, naming its key.
func TestConfigValidateErrors(t *testing.T) {
	c := Config{
		Queue:        -1,
		Spool:        SpoolConfig{MaxBytes: 10, OnFull: "block"},
		File:         FileConfig{Path: "/var/log/audit.log.gz", MaxSize: 10, SigningKey: secret.FromValue([]byte("not a key at all, not 32 bytes long nor hex"))},
		Pseudonymise: PseudonymiseConfig{Key: secret.FromValue([]byte("short"))},
		Retention:    RetentionConfig{MaxAge: -1},
	}
	c.Defaults()
	var got []string
	for _, e := range fielderr.Flatten(c.Validate()) {
		got = append(got, strings.SplitN(e.Error(), ":", 2)[0])
	}
	want := []string{"queue", "spool.dir", "spool.max_bytes", "spool.on_full", "file.path", "file.max_size", "file.signing_key", "pseudonymise.key", "retention.max_age"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Validate errors on\n %v\nwant\n %v", got, want)
	}
}

func TestParseKeys(t *testing.T) {
	priv, pub := testKey()
	pemPub, err := MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{testSeed, []byte("303132333435363738396162636465666768696a6b6c6d6e6f707172737475760a")[:64], []byte("MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0dXY=")} {
		k, err := ParsePrivateKey(in)
		if err != nil || !k.Equal(priv) {
			t.Errorf("ParsePrivateKey(%q) = %v, want the test key", in, err)
		}
	}
	got, err := ParsePublicKey(pemPub)
	if err != nil || !got.Equal(pub) {
		t.Errorf("ParsePublicKey(PEM) = %v", err)
	}
}
