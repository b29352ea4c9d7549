// Package redistest runs a real redis-server for tests: on a free loopback
// port, one per test, killed when the test ends.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a real redis-server on a loopback port, owned by one test.
type Server struct {
	Addr   string
	port   int
	cmd    *exec.Cmd
	exited chan error
}

// Start starts redis-server on a free loopback port, waits until it
// answers PING and kills it when the test ends. A missing redis-server
// fails the test: `make test` installs it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found in PATH (%v): these tests run a real one; `make test` installs it (apt-get install redis-server)", err)
	}
	s := &Server{}
	for attempt := 0; ; attempt++ {
		s.port = freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		err := s.start(t, bin)
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("starting redis-server: %v", err)
		}
	}
	t.Cleanup(s.Stop)
	return s
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) start(t testing.TB, bin string) error {
	cmd := exec.Command(bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited before answering (port taken?): %v", err)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server did not answer PING within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server; it may be started again with Restart.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same port (empty: nothing is
// persisted).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	bin, _ := exec.LookPath("redis-server")
	var err error
	for range 20 {
		if err = s.start(t, bin); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("restarting redis-server: %v", err)
}
