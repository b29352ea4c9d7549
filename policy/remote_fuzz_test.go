package policy

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDataAnswer feeds arbitrary bytes to the reader of an OPA server's
// answer and the decision decoder behind it: they must never panic, must
// accept only what encoding/json accepts too, and must allow only an
// answer whose result's allow is the JSON boolean true. The committed
// corpus holds answers of opa run --server and attacks on them.
func FuzzDataAnswer(f *testing.F) {
	for _, s := range []string{
		`{"result": {"allow": true, "reason": "ok"}}`,
		`{"result": {"allow": false, "step_up": {"acr": "mfa", "max_age_s": 300}}, "decision_id": "x"}`,
		`{"provenance": {"version": "1.22.2", "bundles": {"b": {"revision": "r"}}}, "result": {"allow": true}}`,
		`{"result": {"allow": "true"}}`,
		`{"result": {"allow": false, "allow": true}}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := parseDataAnswer(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted what is not JSON: %q", data)
		}
		if a.result == nil {
			return
		}
		d, err := decodeDecision(a.result)
		if err != nil || !d.Allow {
			return
		}
		var doc struct {
			Result struct {
				Allow any `json:"allow"`
			} `json:"result"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&doc); err != nil || doc.Result.Allow != true {
			t.Fatalf("allowed %q, whose result.allow is %v (%v)", data, doc.Result.Allow, err)
		}
	})
}
