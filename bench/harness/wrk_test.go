package main

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const wrkOK = `Running 5s test @ https://localhost:18444/api/contacts/42
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.12ms  421.78us  10.55ms   78.26%
    Req/Sec    28.36k     1.06k   29.63k    84.00%
  Latency Distribution
     50%    0.99ms
     75%    1.22ms
     90%    1.73ms
     99%    2.51ms
  140990 requests in 5.00s, 61.04MB read
Requests/sec:  28194.20
Transfer/sec:     12.21MB
`

const wrkErrors = `Running 10s test @ https://localhost:8443/api/contacts/42
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.50us    1.20s    2.00s    99.00%
    Req/Sec     1.2k     0.1k     1.5k    70.00%
  Latency Distribution
     50%  812.50us
     75%    1.50s
     90%    1.20m
     99%    1.00h
  12000 requests in 10.00s, 5.00MB read
  Socket errors: connect 1, read 3, write 0, timeout 12
  Non-2xx or 3xx responses: 42
Requests/sec:   1199.95
Transfer/sec:    512.00KB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    wrkResult
		wantErr bool
	}{
		{
			name: "clean run, ms and us",
			in:   wrkOK,
			want: wrkResult{RPS: 28194.20, Requests: 140990, P50: 990 * time.Microsecond, P75: 1220 * time.Microsecond,
				P90: 1730 * time.Microsecond, P99: 2510 * time.Microsecond},
		},
		{
			name: "errors and every unit",
			in:   wrkErrors,
			want: wrkResult{RPS: 1199.95, Requests: 12000, P50: 812500 * time.Nanosecond, P75: 1500 * time.Millisecond,
				P90: 72 * time.Second, P99: time.Hour, Non2xx: 42, SocketErrors: 16},
		},
		{name: "empty", in: "", wantErr: true},
		{name: "connection refused", in: "unable to connect to localhost:1 Connection refused\n", wantErr: true},
		{name: "no --latency", in: "  1000 requests in 1.00s, 1.00MB read\nRequests/sec:   1000.00\n", wantErr: true},
		{name: "bad latency value", in: "  Latency Distribution\n     50%    fast\n     99%    1ms\nRequests/sec: 1\n", wantErr: true},
		{name: "bad rate", in: "  Latency Distribution\n     50%    1.00ms\n     99%    1.00ms\nRequests/sec: many\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseWrk() error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("parseWrk() mismatch (-got +want):\n%s", diff)
			}
		})
	}
	if _, err := parseWrk(""); !errors.Is(err, errNoWrkResult) {
		t.Errorf("parseWrk(\"\") = %v, want %v", err, errNoWrkResult)
	}
}

func TestParseWrkDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"0.00us", 0, false},
		{"456.00us", 456 * time.Microsecond, false},
		{"812.50us", 812500 * time.Nanosecond, false},
		{"1.23ms", 1230 * time.Microsecond, false},
		{"2.00s", 2 * time.Second, false},
		{"1.50m", 90 * time.Second, false},
		{"1.00h", time.Hour, false},
		{"12", 0, true},
		{"ms", 0, true},
		{"-1.00ms", 0, true},
		{"1.0ns", 0, true},
		{"fastms", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseWrkDuration(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseWrkDuration(%q) = %v, %v, want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
