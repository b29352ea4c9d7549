package redact

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// testKey is the HMAC key of the tests: 32 bytes.
var testKey = []byte("0123456789abcdef0123456789abcdef")

func mustCompile(tb testing.TB, rules []Rule, filters []Filter) *Program {
	tb.Helper()
	p, err := Compile(rules, filters, Options{HashKey: testKey})
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return p
}

// result is one way of running a transform.
type result struct {
	how   string
	out   string
	stats Stats
	err   error
}

// transformAll runs p over in through Transform, a Writer fed one byte at
// a time and a Reader over a source that returns one byte per read, and
// fails unless all three agree. It returns Transform's result.
func transformAll(tb testing.TB, p *Program, in string) (string, Stats, error) {
	tb.Helper()
	var rs []result

	var buf bytes.Buffer
	st, err := p.Transform(&buf, strings.NewReader(in))
	rs = append(rs, result{"Transform", buf.String(), st, err})

	var wbuf bytes.Buffer
	w := p.NewWriter(&wbuf)
	var werr error
	for i := 0; i < len(in) && werr == nil; i++ {
		_, werr = w.Write([]byte{in[i]})
	}
	if werr == nil {
		werr = w.Close()
	}
	rs = append(rs, result{"Writer byte by byte", wbuf.String(), w.Stats(), werr})

	r := p.NewReader(iotest.OneByteReader(strings.NewReader(in)))
	rout, rerr := io.ReadAll(r)
	rs = append(rs, result{"Reader byte by byte", string(rout), r.Stats(), rerr})

	for _, x := range rs[1:] {
		if kind(x.err) != kind(rs[0].err) {
			tb.Fatalf("%s: error %v, Transform: %v", x.how, x.err, rs[0].err)
		}
		if x.err == nil && x.out != rs[0].out {
			tb.Fatalf("%s: output\n%s\nTransform:\n%s", x.how, x.out, rs[0].out)
		}
		if x.err == nil && x.stats.RowsDropped != rs[0].stats.RowsDropped {
			tb.Fatalf("%s: stats %+v, Transform %+v", x.how, x.stats, rs[0].stats)
		}
	}
	return rs[0].out, rs[0].stats, rs[0].err
}

// kind names the sentinel an error matches.
func kind(err error) string {
	for _, s := range []error{ErrMalformed, ErrLimit, ErrRecordRefused, ErrFilterTarget} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	if err == nil {
		return "ok"
	}
	return "other: " + err.Error()
}
