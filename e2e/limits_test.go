package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestLimitsAndStreaming(t *testing.T) {
	d := startDemo(t)

	t.Run("oversized head is refused", func(t *testing.T) {
		reply := d.raw(t, "GET /api/contacts/1 HTTP/1.1\r\nHost: localhost\r\nX-Big: "+strings.Repeat("a", 128<<10)+"\r\n\r\n")
		if st := statuses(reply); len(st) != 1 || (st[0] != 431 && st[0] != 400) {
			t.Errorf("statuses = %v, want [431] or [400]", st)
		}
	})

	t.Run("body over the route limit is 413", func(t *testing.T) {
		body := strings.Repeat("x", 11<<20)
		res, _ := d.do(t, d.client, "PUT", "/api/contacts/1", strings.NewReader(body), "Content-Type", "application/json", "Cookie", d.session(t, "alice"))
		if res.StatusCode != 413 {
			t.Errorf("PUT 11 MiB = %d, want 413", res.StatusCode)
		}
	})

	t.Run("slow upstream is 504 after the route timeout", func(t *testing.T) {
		start := time.Now()
		res, body := d.get(t, "/api/slow?ms=5000")
		if res.StatusCode != 504 || time.Since(start) > 4*time.Second {
			t.Errorf("slow = %d after %s (%s), want 504 after about 2s", res.StatusCode, time.Since(start), body)
		}
	})

	t.Run("large upload streams through", func(t *testing.T) {
		const size = 64 << 20
		src := io.LimitReader(zeroReader{}, size)
		h := sha256.New()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", d.GatewayURL+"/api/echo", io.TeeReader(src, h))
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := d.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		got := sha256.New()
		n, _ := io.Copy(got, res.Body)
		if res.StatusCode != 200 || n != size || string(got.Sum(nil)) != string(h.Sum(nil)) {
			t.Errorf("echo = %d, %d bytes, want 200 and the same %d bytes", res.StatusCode, n, size)
		}
	})

	t.Run("large export streams without the gateway holding it", func(t *testing.T) {
		before := gatewayRSS(t, d)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", d.GatewayURL+"/api/export/contacts?bytes=100000000", nil)
		req.Header.Set("Cookie", d.session(t, "alice"))
		res, err := (&http.Client{Transport: d.client.Transport}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || n < 99e6 {
			t.Fatalf("export = %d, %d bytes (%v)", res.StatusCode, n, err)
		}
		after := gatewayRSS(t, d)
		// The demo process also runs the CRM, which generates the export
		// on the fly; both stream, so growth is far below the body size.
		if growth := after - before; growth > 48<<20 {
			t.Errorf("resident memory grew by %d MiB while streaming %d MiB", growth>>20, n>>20)
		}
	})

	t.Run("websocket is tunnelled after routing", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.pool}}}
		c, _, err := websocket.Dial(ctx, strings.Replace(d.GatewayURL, "https", "wss", 1)+"/api/ws", &websocket.DialOptions{
			HTTPClient: hc, HTTPHeader: http.Header{"X-CRM-User": {"carol"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		_, hello, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(hello), "carol") {
			t.Errorf("hello %s: the spoofed identity reached the CRM through the upgrade", hello)
		}
		for i := range 3 {
			msg := fmt.Sprintf("ping %d", i)
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(ctx)
			if err != nil || string(got) != msg {
				t.Fatalf("echo = %q, %v; want %q", got, err, msg)
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
	})

	t.Run("websocket refused where the route does not allow it", func(t *testing.T) {
		reply := d.raw(t, "GET /api/contacts/1 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		if st := statuses(reply); len(st) == 0 || st[0] != 400 {
			t.Errorf("statuses = %v, want 400", st)
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

// gatewayRSS reads the process's resident memory from its metrics.
func gatewayRSS(t *testing.T, d *demo) int64 {
	t.Helper()
	_, b := d.adminGet(t, "/metrics")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			var f float64
			if err := json.Unmarshal([]byte(v), &f); err == nil {
				return int64(f)
			}
			fmt.Sscan(v, &f)
			return int64(f)
		}
	}
	t.Fatal("no process_resident_memory_bytes in metrics")
	return 0
}
