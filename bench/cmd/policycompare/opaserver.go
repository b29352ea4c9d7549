package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/crmgate/crmgate/bench/internal/loopback"
	"github.com/crmgate/crmgate/policy"
)

// opaServer is the `opa run --server` child process.
type opaServer struct {
	cmd     *exec.Cmd
	logPath string
	// url is the server's base URL: http://127.0.0.1:port.
	url  string
	done chan struct{} // closed once the process has exited
	err  error         // its exit status; read only after done
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
// Another process could take it before OPA does; waitHealthy then fails
// (or answers from the wrong server, which the decision check catches).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startOPA starts the OPA server on the policy folder, on cpu (< 0: not
// pinned) with GOMAXPROCS=1, listening on 127.0.0.1 only. It loads the
// folder as the embedded engine does: hidden files and *_test.rego files
// are left out. Its output goes to logPath.
func startOPA(bin, policies string, cpu int, logPath string) (*opaServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := loopback.Check(addr); err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer lf.Close() // the child has its own descriptor
	argv := pinned(cpu, bin, "run", "--server",
		"--addr", addr,
		"--log-level", "error",
		// No call to GitHub at start-up: the benchmark has no business on
		// the network, and the check would run during the warm-up.
		"--skip-version-check",
		"--ignore", ".*",
		"--ignore", "*_test.rego",
		policies)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("opa: %w", err)
	}
	s := &opaServer{cmd: cmd, logPath: logPath, url: "http://" + addr, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// pid is the server's process id. taskset executes opa in its own
// process, so this is OPA's.
func (s *opaServer) pid() int { return s.cmd.Process.Pid }

// checkAlive fails if the server has ended: figures measured meanwhile
// would describe a crash.
func (s *opaServer) checkAlive() error {
	select {
	case <-s.done:
		return fmt.Errorf("the OPA server ended: %v; its log (%s) ends:\n%s", s.err, s.logPath, logTail(s.logPath))
	default:
		return nil
	}
}

// waitHealthy waits until GET /health answers 200, for at most timeout.
func (s *opaServer) waitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		if err := s.checkAlive(); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/health", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("the OPA server did not answer GET /health with 200 within %v; its log (%s) ends:\n%s", timeout, s.logPath, logTail(s.logPath))
			}
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends the server's process group: SIGTERM, then SIGKILL if it has
// not exited within grace. It is safe to call more than once.
func (s *opaServer) stop(grace time.Duration) {
	pid := s.pid()
	select {
	case <-s.done:
		killGroup(pid, syscall.SIGKILL) // anything it left behind
		return
	default:
	}
	killGroup(pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(grace):
	}
	killGroup(pid, syscall.SIGKILL)
	<-s.done
}

// killGroup signals the process group led by pid. ESRCH (already gone) is
// not an error.
func killGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return nil
	}
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// logTail returns the last lines of a log file, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// dataPath is the Data API path of an entrypoint:
// data.crmgate.authz.decision is /v1/data/crmgate/authz/decision.
func dataPath(entrypoint string) (string, error) {
	if err := policy.ValidateEntrypoint(entrypoint); err != nil {
		return "", err
	}
	rest, _ := strings.CutPrefix(entrypoint, "data.")
	if strings.ContainsAny(rest, `["/ `) {
		return "", fmt.Errorf("%s: only dotted rule names map to a Data API path", entrypoint)
	}
	return "/v1/data/" + strings.ReplaceAll(rest, ".", "/"), nil
}

// opaClient asks the OPA server for decisions the way a gateway with an
// OPA sidecar does: the input encoded as JSON, one POST to the Data API
// over a keep-alive HTTP/1.1 connection, the answer decoded into the
// decision type.
type opaClient struct {
	url string
	hc  *http.Client
}

// newOPAClient returns a client for the decision at path on the server at
// base, keeping up to conns connections open.
func newOPAClient(base, path string, conns int) *opaClient {
	tr := &http.Transport{
		// Loopback only, no proxy from the environment.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		// OPA's answers are small; compression would only cost CPU.
		DisableCompression: true,
	}
	return &opaClient{url: base + path, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// opaRequest is the body of a Data API query.
type opaRequest struct {
	Input *policy.Input `json:"input"`
}

// opaResponse is the Data API's answer; Result is nil when the rule is
// undefined for the input.
type opaResponse struct {
	Result *policy.Decision `json:"result"`
}

// Decide returns the server's decision on in.
func (c *opaClient) Decide(ctx context.Context, in *policy.Input) (policy.Decision, error) {
	body, err := json.Marshal(opaRequest{Input: in})
	if err != nil {
		return policy.Decision{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return policy.Decision{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return policy.Decision{}, err
	}
	// The body is read to its end and closed, whatever happens, so that
	// the connection goes back to the pool for the next decision.
	defer func() {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return policy.Decision{}, fmt.Errorf("POST %s: status %d: %s", c.url, resp.StatusCode, bytes.TrimSpace(msg))
	}
	var out opaResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return policy.Decision{}, fmt.Errorf("POST %s: %w", c.url, err)
	}
	if out.Result == nil {
		return policy.Decision{}, fmt.Errorf("POST %s: the decision is undefined for this input", c.url)
	}
	return *out.Result, nil
}

// close closes the client's idle connections.
func (c *opaClient) close() { c.hc.CloseIdleConnections() }
