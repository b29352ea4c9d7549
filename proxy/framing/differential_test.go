package framing

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// parsed is what net/http makes of one request.
type parsed struct {
	Method, RequestURI, Proto, Host string
	Header, Trailer                 http.Header
	ContentLength                   int64
	TransferEncoding                []string
	Close                           bool
	Body                            string
	Err                             string
}

// readRequests parses r with http.ReadRequest until the first error, which
// ends the list.
func readRequests(r io.Reader) []parsed {
	br := bufio.NewReader(r)
	var out []parsed
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return append(out, parsed{Err: err.Error()})
		}
		body, err := io.ReadAll(req.Body)
		p := parsed{
			Method: req.Method, RequestURI: req.RequestURI, Proto: req.Proto, Host: req.Host,
			Header: req.Header, Trailer: req.Trailer, ContentLength: req.ContentLength,
			TransferEncoding: req.TransferEncoding, Close: req.Close, Body: string(body),
		}
		if err != nil {
			p.Err = err.Error()
			return append(out, p)
		}
		out = append(out, p)
	}
}

// For valid streams, net/http parses the same requests from the wrapper's
// output, delivered in awkward pieces, as from the raw bytes.
func TestReadRequestDifferential(t *testing.T) {
	for _, tt := range acceptCases {
		if strings.Contains(tt.in, "\r\nUpgrade:") || strings.Contains(tt.in, "\r\nupgrade:") {
			continue // what follows an upgrade is not HTTP
		}
		for _, sizes := range [][]int{{1}, {3, 1, 7}, {0}} {
			t.Run(fmt.Sprintf("%s/reads=%v", tt.name, sizes), func(t *testing.T) {
				want := readRequests(strings.NewReader(tt.in))
				got := readRequests(NewConn(&memConn{data: []byte(tt.in), sizes: sizes}, tt.limits))
				if d := cmp.Diff(got, want); d != "" {
					t.Errorf("http.ReadRequest over Conn(%q) (-got +want):\n%s", tt.in, d)
				}
				// Accepted streams are ones net/http reads to the end,
				// but for the empty lines RFC 9112 §2.2 tolerates, which
				// it skips only after a POST.
				if last := want[len(want)-1]; last.Err != io.EOF.Error() && !strings.HasPrefix(tt.in, "\r\n") {
					t.Errorf("http.ReadRequest(%q) failed: %s", tt.in, last.Err)
				}
			})
		}
	}
}
