package crm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

func TestWebSocketEcho(t *testing.T) {
	srv := httptest.NewServer(newTestServer(t, Config{}).Handler())
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/ws"

	tests := []struct {
		name      string
		header    http.Header
		wantHello string
	}{
		{"signed in", http.Header{"X-Crm-User": {"carol"}, "Origin": {"https://crm.example.com"}}, `{"hello":"carol"}`},
		{"anonymous", nil, `{"hello":"anonymous"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: tt.header})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)

			typ, msg, err := c.Read(ctx)
			if err != nil || typ != websocket.MessageText || string(msg) != tt.wantHello {
				t.Fatalf("first message = %v %q, %v, want text %s", typ, msg, err, tt.wantHello)
			}
			type frame struct {
				Type websocket.MessageType
				Data string
			}
			sent := []frame{
				{websocket.MessageText, "hello, crm"},
				{websocket.MessageBinary, "\x00\x01\x02\xff"},
				{websocket.MessageText, strings.Repeat("ü", 50_000)},
			}
			var got []frame
			for _, f := range sent {
				if err := c.Write(ctx, f.Type, []byte(f.Data)); err != nil {
					t.Fatalf("Write: %v", err)
				}
				typ, msg, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				got = append(got, frame{typ, string(msg)})
			}
			if diff := cmp.Diff(got, sent); diff != "" {
				t.Errorf("echoes mismatch (-got +want):\n%s", diff)
			}
			if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}
