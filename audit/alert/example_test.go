package alert_test

import (
	"fmt"
	"time"

	"github.com/crmgate/crmgate/audit/alert"
)

func Example() {
	e, err := alert.New(alert.Config{Rules: []alert.Rule{{
		Name:      "repeated-denials",
		Match:     alert.Match{Type: "http.request", Outcome: []string{"denied"}},
		Key:       alert.KeySubject,
		Threshold: 3,
		Window:    time.Minute,
		Severity:  alert.SeverityHigh,
	}}}, nil, nil)
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		// The gateway fills an Observation from each audit event...
		o := alert.Observation{
			Time: start.Add(time.Duration(i) * time.Second), Type: "http.request", Outcome: "denied", Status: 403,
			SubjectID: "alice@example.com", ClientIP: "192.0.2.10", RequestID: fmt.Sprint("req-", i),
		}
		// ...and sends what fires to the alert sinks.
		for _, a := range e.Observe(o) {
			f := a.Event()
			fmt.Println(a.Message)
			fmt.Println(f.ClassName, f.Severity, a.RequestIDs)
		}
	}
	// Output:
	// repeated-denials: 3 events for subject "alice@example.com" within 1m (threshold 3)
	// Detection Finding High [req-0 req-1 req-2]
}
