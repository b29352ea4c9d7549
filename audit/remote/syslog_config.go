package remote

import (
	"errors"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/crmgate/crmgate/fielderr"
)

// Syslog transports.
const (
	TransportTLS = "tls" // RFC 5425, the default
	TransportTCP = "tcp" // plain TCP with the same framing, on explicit opt-in
)

// facilities are the RFC 5424 §6.2.1 facility codes by their usual names.
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
	"lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"ntp": 12, "security": 13, "console": 14, "clock": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

func facilityNames() string {
	names := make([]string, 0, len(facilities))
	for n := range facilities {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return facilities[names[i]] < facilities[names[j]] })
	return strings.Join(names, ", ")
}

// SyslogConfig configures the syslog sink. The zero value is not valid:
// address is required; everything else has defaults (see Defaults).
type SyslogConfig struct {
	Name            string        `yaml:"name" jsonschema_description:"Name of the sink in logs and metrics. Default syslog:ADDRESS."`
	Address         string        `yaml:"address" jsonschema_description:"host:port of the syslog receiver (6514 is the RFC 5425 port)."`
	Transport       string        `yaml:"transport" jsonschema_description:"tls (default; RFC 5425) or tcp (plain TCP, for a relay on the same host or tests: events travel unencrypted)."`
	TLS             TLSConfig     `yaml:"tls" jsonschema_description:"TLS to the receiver (transport: tls)."`
	Facility        string        `yaml:"facility" jsonschema_description:"Syslog facility name (kern, user, ..., authpriv, ..., local0 to local7). Default local0."`
	AppName         string        `yaml:"app_name" jsonschema_description:"RFC 5424 APP-NAME. Default crmgate."`
	Hostname        string        `yaml:"hostname" jsonschema_description:"RFC 5424 HOSTNAME. Default: the machine's host name."`
	OmitBOM         bool          `yaml:"omit_bom" jsonschema_description:"Leave out the UTF-8 byte order mark RFC 5424 puts before a UTF-8 message, for receivers that keep it as part of the JSON. Default false."`
	MaxMessageBytes int           `yaml:"max_message_bytes" jsonschema_description:"Largest syslog message (header and event) to send; a bigger event is refused rather than cut. Raise the receiver's limit to match (rsyslog maxMessageSize, syslog-ng log-msg-size). Default 65536."`
	DialTimeout     time.Duration `yaml:"dial_timeout" jsonschema_description:"Longest connect and TLS handshake. Default 5s."`
	WriteTimeout    time.Duration `yaml:"write_timeout" jsonschema_description:"Longest a write may make no progress before the connection is dropped. Default 10s."`
}

// Defaults fills unset fields with their defaults. The host name is left
// to NewSyslog, which asks the operating system.
func (c *SyslogConfig) Defaults() {
	if c.Transport == "" {
		c.Transport = TransportTLS
	}
	if c.Facility == "" {
		c.Facility = "local0"
	}
	if c.AppName == "" {
		c.AppName = "crmgate"
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 64 << 10
	}
	setDur(&c.DialTimeout, 5*time.Second)
	setDur(&c.WriteTimeout, 10*time.Second)
	if c.Name == "" && c.Address != "" {
		c.Name = "syslog:" + c.Address
	}
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// minSyslogMessage is the least max_message_bytes: every receiver must
// accept 2048 octets (RFC 5425 §4.3.1).
const minSyslogMessage = 2048

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run and secret references to be resolved.
func (c SyslogConfig) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	if host, port, err := net.SplitHostPort(c.Address); err != nil || host == "" || port == "" {
		add("address", "%q is not host:port (e.g. siem.example.com:6514)", c.Address)
	}
	switch c.Transport {
	case TransportTLS:
		errs = append(errs, fielderr.Prefix("tls", c.TLS.validate()))
	case TransportTCP:
		if !c.TLS.IsZero() {
			add("tls", "set, but transport is tcp; use transport: tls")
		}
	default:
		add("transport", "%q is not allowed (tls, tcp)", c.Transport)
	}
	if _, ok := facilities[c.Facility]; !ok {
		add("facility", "%q is not a facility (%s)", c.Facility, facilityNames())
	}
	if !printUSASCII(c.AppName, 48) {
		add("app_name", "%q is not allowed (1 to 48 printable ASCII characters, no spaces)", c.AppName)
	}
	if c.Hostname != "" && !printUSASCII(c.Hostname, 255) {
		add("hostname", "%q is not allowed (1 to 255 printable ASCII characters, no spaces)", c.Hostname)
	}
	if c.MaxMessageBytes < minSyslogMessage {
		add("max_message_bytes", "must be at least %d (RFC 5425 §4.3.1), got %d", minSyslogMessage, c.MaxMessageBytes)
	}
	if c.DialTimeout <= 0 {
		add("dial_timeout", "must be positive, got %s", c.DialTimeout)
	}
	if c.WriteTimeout <= 0 {
		add("write_timeout", "must be positive, got %s", c.WriteTimeout)
	}
	return errors.Join(errs...)
}

// printUSASCII reports whether s is 1 to max characters of RFC 5424
// PRINTUSASCII (%d33-126), the alphabet of every header field.
func printUSASCII(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}
