package redact_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/redact"
)

func Example() {
	p, err := redact.Compile(
		[]redact.Rule{
			{Path: "$..ssn", Action: redact.ActionRemove},
			{Path: "$..credit_card", Action: redact.ActionMask, KeepLast: 4},
		},
		[]redact.Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}},
		redact.Options{},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	body := `{"items":[
		{"id":1,"owner":"alice","ssn":"078-05-1120","credit_card":"4111111111111111"},
		{"id":2,"owner":"bob","ssn":"219-09-9999","credit_card":"5500000000000004"}]}`
	stats, err := p.Transform(os.Stdout, strings.NewReader(body))
	fmt.Println()
	fmt.Println(stats.Redacted, stats.RowsKept, stats.RowsDropped, err)
	// Output:
	// {"items":[{"id":1,"owner":"alice","credit_card":"****1111"}]}
	// [1 1] 1 1 <nil>
}

// A decision's rules and filters convert field by field.
func ExampleCompile_decision() {
	d := policy.Decision{
		Allow:  true,
		Redact: []policy.Redaction{{Path: "$..email", Action: policy.ActionHash}},
		Filter: []policy.Filter{{Path: "$", KeepWhere: map[string]any{"owner": "alice"}}},
	}
	rules := make([]redact.Rule, len(d.Redact))
	for i, r := range d.Redact {
		rules[i] = redact.Rule(r)
	}
	filters := make([]redact.Filter, len(d.Filter))
	for i, f := range d.Filter {
		filters[i] = redact.Filter(f)
	}
	// The key comes from the configuration (Config.HashKey, a secret
	// reference), never from code.
	key := bytes.Repeat([]byte{0x5c}, 32)
	p, err := redact.Compile(rules, filters, redact.Options{HashKey: key})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = p.Transform(os.Stdout, strings.NewReader(`{"id":7,"owner":"alice","email":"ada@example.com"}`))
	fmt.Println()
	_, err2 := p.Transform(io.Discard, strings.NewReader(`{"id":8,"owner":"bob","email":"bob@example.com"}`))
	fmt.Println(err, errors.Is(err2, redact.ErrRecordRefused))
	// Output:
	// {"id":7,"owner":"alice","email":"hmac:yC3J390CtcfTnu9nGzg9SQ"}
	// <nil> true
}

// What the proxy does in httputil.ReverseProxy's ModifyResponse: wrap the
// body, and let Prefetch turn an early refusal into an error response
// before anything was sent.
func ExampleProgram_NewReader() {
	p, err := redact.Compile(nil, []redact.Filter{{Path: "$", KeepWhere: map[string]any{"owner": "alice"}}}, redact.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	modifyResponse := func(res *http.Response) error {
		if !redact.Transformable(res.Header.Get("Content-Type")) {
			return errors.New("response cannot be redacted") // refused, never passed on
		}
		r := p.NewReader(res.Body)
		if err := r.Prefetch(); err != nil {
			r.Close()
			return err // ErrorHandler: 404 for ErrRecordRefused, else 502
		}
		res.Body = r
		res.ContentLength = -1
		res.Header.Del("Content-Length")
		return nil
	}
	for _, body := range []string{`{"id":7,"owner":"alice"}`, `{"id":8,"owner":"bob"}`} {
		res := &http.Response{
			Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
			Body:   io.NopCloser(strings.NewReader(body)),
		}
		if err := modifyResponse(res); err != nil {
			fmt.Println("refused:", errors.Is(err, redact.ErrRecordRefused))
			continue
		}
		out, err := io.ReadAll(res.Body)
		fmt.Println(string(out), err)
	}
	// Output:
	// {"id":7,"owner":"alice"} <nil>
	// refused: true
}
