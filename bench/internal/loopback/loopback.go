// Package loopback keeps the benchmark's servers and load on this machine:
// every address a benchmark program listens on or sends load to must be a
// loopback address. It owns only that check, not the programs' flags.
package loopback

import (
	"fmt"
	"net"
	"net/netip"
)

// Check returns an error unless addr is host:port with a loopback IP
// literal (127.0.0.0/8, ::1) or the name localhost as its host.
func Check(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	return CheckHost(host)
}

// CheckHost is Check for a bare host.
func CheckHost(host string) error {
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("%q is not a loopback address: the benchmark only runs on 127.0.0.1", host)
	}
	return nil
}
