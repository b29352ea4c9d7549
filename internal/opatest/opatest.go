// Package opatest runs a real OPA server (`opa run --server`) for tests:
// the opa command of the version crmgate embeds (built once by
// internal/opabin), on a free loopback port or a Unix socket, stopped
// when the test ends.
package opatest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/opabin"
)

// EnvBinary names an opa command to use instead of building one; its
// version must be the one crmgate embeds.
const EnvBinary = "CRMGATE_TEST_OPA"

var binary struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the opa command of the version go.mod requires, built
// at the first call of the process unless `make test-deps` built it
// already (minutes the very first time on a machine, then found in the
// Go build cache's folder). A failure fails the test: tests that compare
// with a real server do not skip silently.
func Binary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		ctx := context.Background()
		version, err := opabin.ModuleVersion(ctx)
		if err != nil {
			binary.err = err
			return
		}
		if p := os.Getenv(EnvBinary); p != "" {
			v, err := opabin.Version(ctx, p)
			switch {
			case err != nil:
				binary.err = err
			case "v"+v != version:
				binary.err = fmt.Errorf("%s=%s is OPA %s, crmgate embeds %s", EnvBinary, p, v, version)
			default:
				binary.path = p
			}
			return
		}
		binary.path, binary.err = opabin.Ensure(ctx, version, nil)
	})
	if binary.err != nil {
		t.Fatalf("the opa command for these tests: %v (`make test-deps` builds it; or set %s to an opa binary of the embedded version)", binary.err, EnvBinary)
	}
	return binary.path
}

// Options say what the server serves and how.
type Options struct {
	// Paths are the policy and data files and folders the server loads.
	// Hidden files and *_test.rego files are left out, as the gateway
	// leaves them out of an enforced set.
	Paths []string
	// Socket makes the server listen on a Unix socket instead of a
	// loopback port.
	Socket bool
	// URL, if set, is where to listen instead of a new port or socket:
	// the URL of a server stopped before, to start it again.
	URL string
	// Args are further flags of `opa run`, e.g. --authentication=token.
	Args []string
}

// Server is a running `opa run --server`, owned by one test.
type Server struct {
	// URL is where it listens, as the gateway's policy.server.url takes
	// it: http://127.0.0.1:PORT or unix:///PATH.
	URL string
	// Client reaches it (over the socket, for Socket).
	Client *http.Client
	// Base is the base URL of requests made with Client.
	Base string

	cmd    *exec.Cmd
	socket string // the socket's path, for Socket
	out    *syncBuffer
	exited chan struct{}
	stop   sync.Once
}

// Start starts the server, waits until GET /health answers 200 and stops
// it when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary(t)
	s := &Server{out: &syncBuffer{}, exited: make(chan struct{})}
	var addr string
	if sock, ok := strings.CutPrefix(o.URL, "unix://"); ok || (o.Socket && o.URL == "") {
		if !ok {
			// A socket path has at most 107 bytes: not below
			// t.TempDir().
			dir, err := os.MkdirTemp("", "opa")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			sock = filepath.Join(dir, "opa.sock")
		}
		s.socket = sock
		addr = "unix://" + sock
		s.URL = addr
		s.Base = "http://opa"
		s.Client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	} else {
		addr = strings.TrimPrefix(o.URL, "http://")
		if addr == "" {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
			l.Close()
		}
		s.URL = "http://" + addr
		s.Base = s.URL
		s.Client = &http.Client{Transport: &http.Transport{}}
	}
	args := []string{"run", "--server", "--addr", addr, "--log-level", "error",
		// No call to GitHub: tests have no business on the network.
		"--skip-version-check",
		"--ignore", ".*", "--ignore", "*_test.rego"}
	args = append(append(args, o.Args...), o.Paths...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting opa: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := s.health(); err == nil {
			return s
		} else if time.Now().After(deadline) {
			t.Fatalf("opa run --server did not answer GET /health within 30s: %v\n%s", err, s.Output())
		}
		select {
		case <-s.exited:
			t.Fatalf("opa run --server ended: %v\n%s", s.cmd.ProcessState, s.Output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Server) health() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Base+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /health answered %s", resp.Status)
	}
	return nil
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop kills the server and waits for it; further calls do nothing.
func (s *Server) Stop() {
	s.stop.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.Client.CloseIdleConnections()
		if s.socket != "" {
			// Killed, the server left its socket behind; the next one
			// on the same path needs it gone.
			_ = os.Remove(s.socket)
		}
	})
}

// Output is what the server wrote so far.
func (s *Server) Output() string { return s.out.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
