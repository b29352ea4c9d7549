package decisionlog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/policy/decisionlog"
)

// The gateway logs each decision after making it; one goroutine writes.
func ExampleLogger() {
	dir, _ := os.MkdirTemp("", "decisionlog")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "decisions.log")

	cfg := decisionlog.Config{
		Output: path,
		Upsert: []decisionlog.Upsert{{Path: "/input/request/headers/user-agent", Value: "-"}},
		Labels: map[string]string{"env": "prod"},
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		log.Fatal(err)
	}
	dl, err := decisionlog.New(cfg, decisionlog.Options{Version: "v1.4.0"})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- dl.Run(ctx) }()

	// On the request path, after the engine decided:
	in := &policy.Input{Request: policy.RequestInput{
		ID: "req-1", Method: "GET", Path: "/api/contacts", ClientIP: "203.0.113.7",
		Headers: map[string]string{"user-agent": "curl/8.5.0"},
	}}
	d := policy.Decision{Allow: true, Reason: "sales may GET contacts.list",
		Revision: "4f2c0e9a", Entrypoint: "data.crmgate.authz.decision", Elapsed: 40 * time.Microsecond}
	dl.Log(decisionlog.Entry{Input: in, Decision: d})

	// At shutdown: Run writes what is queued, then the file is closed.
	cancel()
	<-done
	if err := dl.Close(); err != nil {
		log.Fatal(err)
	}

	b, _ := os.ReadFile(path)
	var ev decisionlog.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.Path, ev.Bundles["crmgate"].Revision, ev.Labels["env"], ev.Custom["request_id"])
	fmt.Println(string(ev.Result))
	fmt.Println("erased", ev.Erased)
	fmt.Println("masked", ev.Masked)
	// Output:
	// crmgate/authz/decision 4f2c0e9a prod req-1
	// {"allow":true,"reason":"sales may GET contacts.list"}
	// erased [/input/request/query /input/request/client_ip /input/subject/email /input/subject/claims]
	// masked [/input/request/headers/user-agent]
}
