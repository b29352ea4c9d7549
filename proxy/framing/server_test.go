package framing

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// listener wraps every accepted conn in a Conn, as the gateway does after
// the TLS handshake.
type listener struct {
	net.Listener
	limits Limits
}

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewConn(c, l.limits), nil
}

// serve runs h on a real http.Server behind Conn and returns its address.
func serve(t *testing.T, l Limits, h http.Handler, configure ...func(*http.Server)) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Listener = listener{Listener: ts.Listener, limits: l}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	for _, f := range configure {
		f(ts.Config)
	}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// exchange sends raw on a new connection and returns the status of every
// response until the server closes the connection, and the error that
// ended reading (io.EOF for a clean close).
func exchange(t *testing.T, addr, raw string) ([]int, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var statuses []int
	for {
		if _, err := br.Peek(1); err != nil {
			return statuses, err
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return statuses, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		statuses = append(statuses, res.StatusCode)
	}
}

// drain answers 200 after reading the whole body.
var drain = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
})

// Every refused head reaches net/http as a read error, which it answers
// with 400 before closing the connection (net/http server.go, conn.serve:
// a readRequest error that isCommonNetReadError does not recognise).
// Requests before the refused head are served normally.
func TestServerAnswers400AndCloses(t *testing.T) {
	for _, tt := range refuseCases {
		if tt.body {
			continue // covered by TestServerBadChunkInBody
		}
		var want []int
		for range len(readRequests(strings.NewReader(tt.out))) - 1 {
			want = append(want, 200)
		}
		want = append(want, 400)
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, tt.limits, drain)
			got, err := exchange(t, addr, tt.in)
			if d := cmp.Diff(got, want); d != "" || err != io.EOF {
				t.Errorf("statuses for %q (-got +want):\n%s\nend = %v, want EOF", tt.in, d, err)
			}
		})
	}
}

// CL.TE smuggling behind a good pipelined request: the good request is
// answered, the smuggled one is refused and never reaches a handler.
func TestServerPipelinedSmuggling(t *testing.T) {
	var calls atomic.Int32
	ctxErr := make(chan error, 1)
	addr := serve(t, Limits{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.Copy(io.Discard, r.Body)
		// net/http's background read must not meet the error while the
		// valid request is in flight: it would cancel its context.
		time.Sleep(20 * time.Millisecond)
		ctxErr <- r.Context().Err()
		io.WriteString(w, "ok")
	}))
	raw := "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
	got, err := exchange(t, addr, raw)
	if d := cmp.Diff(got, []int{200, 400}); d != "" || err != io.EOF {
		t.Errorf("statuses (-got +want):\n%s\nend = %v, want EOF", d, err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
	if err := <-ctxErr; err != nil {
		t.Errorf("valid request's context ended early: %v", err)
	}
}

// A violation inside a chunked body reaches the handler as a body read
// error, and the connection is closed before the next request is read.
func TestServerBadChunkInBody(t *testing.T) {
	var calls atomic.Int32
	bodyErr := make(chan error, 1)
	addr := serve(t, Limits{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, err := io.Copy(io.Discard, r.Body)
		bodyErr <- err
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
		}
	}))
	got, err := exchange(t, addr, chunkedHead+"5\r\nhello\r\n5\nworld\r\n0\r\n\r\n"+head0)
	if d := cmp.Diff(got, []int{400}); d != "" || err != io.EOF {
		t.Errorf("statuses (-got +want):\n%s\nend = %v, want EOF", d, err)
	}
	if err := <-bodyErr; reasonOf(err) != reasonBareLF {
		t.Errorf("body read error = %v, want reason %q", err, reasonBareLF)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
}

// A chunked upload streams through: the handler sees the first chunk
// before the client has sent the rest, and the body and trailer arrive
// unchanged.
func TestServerChunkedUploadStreams(t *testing.T) {
	body := make([]byte, 1<<20)
	for i := range body {
		body[i] = byte(i * 7)
	}
	sum := sha256.Sum256(body)
	firstChunk := make(chan struct{})
	addr := serve(t, Limits{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1000)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		close(firstChunk)
		h := sha256.New()
		h.Write(buf)
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%x %s", h.Sum(nil), r.Trailer.Get("X-Sum"))
	}))

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "PUT /upload HTTP/1.1\r\nHost: a\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n%x;part=first\r\n%s\r\n", 1000, body[:1000])
	select {
	case <-firstChunk:
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not see the first chunk before the rest was sent")
	}
	w := bufio.NewWriter(c)
	for rest := body[1000:]; len(rest) > 0; {
		n := min(len(rest), 8191)
		fmt.Fprintf(w, "%x\r\n%s\r\n", n, rest[:n])
		rest = rest[n:]
	}
	fmt.Fprintf(w, "0\r\nX-Sum: %x\r\n\r\n", sum)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	want := hex.EncodeToString(sum[:]) + " " + hex.EncodeToString(sum[:])
	if res.StatusCode != 200 || string(got) != want {
		t.Errorf("upload answer = %d %q, want 200 %q", res.StatusCode, got, want)
	}
}

// After an Upgrade request, the bytes that follow are not HTTP and pass
// through untouched, even ones that would be violations in a head.
func TestServerUpgradePassthrough(t *testing.T) {
	addr := serve(t, Limits{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			w.Header().Set("Connection", "close")
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 4096)
		for {
			n, err := brw.Read(buf)
			conn.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}))
	var payload bytes.Buffer
	for i := range 256 {
		payload.WriteByte(byte(i))
	}
	payload.WriteString("\nGET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\n\x00")

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The first half is pipelined right behind the head, so it is already
	// in the parser's buffer when the head is accepted.
	half := payload.Len() / 2
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"+payload.String()[:half])
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answer = %d, want 101", res.StatusCode)
	}
	io.WriteString(c, payload.String()[half:])
	got := make([]byte, payload.Len())
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("reading echo: %v", err)
	}
	if !bytes.Equal(got, payload.Bytes()) {
		t.Errorf("echo = %q, want %q", got, payload.Bytes())
	}
}

// A timeout is passed to net/http unchanged, so a slow head is dropped
// without an answer, as without the wrapper; a wrapped or replaced error
// would have been answered with 400.
func TestServerReadHeaderTimeout(t *testing.T) {
	addr := serve(t, Limits{}, drain, func(s *http.Server) { s.ReadHeaderTimeout = 100 * time.Millisecond })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n")
	got, err := io.ReadAll(c)
	if len(got) != 0 || err != nil {
		t.Errorf("answer to a slow head = %q, %v, want nothing and a clean close", got, err)
	}
}

// Keep-alive requests keep working across the wrapper, including ones
// split at awkward places.
func TestServerKeepAlive(t *testing.T) {
	addr := serve(t, Limits{}, drain)
	raw := strings.Repeat(typicalGET, 3) + chunkedHead + "3\r\nabc\r\n0\r\n\r\n" + head0
	got, err := exchange(t, addr, raw+"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if d := cmp.Diff(got, []int{200, 200, 200, 200, 200, 200}); d != "" || !errors.Is(err, io.EOF) {
		t.Errorf("statuses (-got +want):\n%s\nend = %v, want EOF", d, err)
	}
}
