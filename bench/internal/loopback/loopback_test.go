package loopback

import "testing"

func TestCheck(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8443", true},
		{"127.0.0.2:1", true},
		{"[::1]:80", true},
		{"localhost:9090", true},
		{"0.0.0.0:8443", false},
		{":8443", false},
		{"10.0.0.1:80", false},
		{"example.com:443", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if err := Check(tt.addr); (err == nil) != tt.ok {
				t.Errorf("Check(%q) = %v, want ok %v", tt.addr, err, tt.ok)
			}
		})
	}
}
