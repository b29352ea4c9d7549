package alert

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func TestEvent(t *testing.T) {
	a := Alert{Rule: "repeated-denials", Severity: SeverityHigh, KeyKind: KeySubject, Key: "alice", Measure: MeasureEvents,
		Value: 20, Threshold: 20, Window: time.Minute, First: base, Last: base.Add(30 * time.Second),
		RequestIDs: []string{"r1", "r2"}, Message: `repeated-denials: 20 events for subject "alice" within 1m (threshold 20)`}
	b, err := json.Marshal(a.Event())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(`{
		"class_uid": 2004, "class_name": "Detection Finding",
		"category_uid": 2, "category_name": "Findings",
		"activity_id": 1, "activity_name": "Create",
		"type_uid": 200401, "type_name": "Detection Finding: Create",
		"time": 1800000030000,
		"severity_id": 4, "severity": "High",
		"status_id": 1, "status": "New",
		"is_alert": true,
		"message": "repeated-denials: 20 events for subject \"alice\" within 1m (threshold 20)",
		"count": 20,
		"start_time": 1800000000000, "end_time": 1800000030000,
		"finding_info": {
			"uid": "`+a.uid()+`",
			"title": "repeated-denials",
			"analytic": {"name": "repeated-denials", "type_id": 1, "type": "Rule"},
			"first_seen_time": 1800000000000, "last_seen_time": 1800000030000,
			"related_events": [{"uid": "r1"}, {"uid": "r2"}]
		},
		"actor": {"user": {"uid": "alice"}},
		"metadata": {"version": "1.4.0", "product": {"name": "crmgate", "vendor_name": "crmgate"}},
		"unmapped": {"rule": "repeated-denials", "key_kind": "subject", "key": "alice", "measure": "events", "threshold": 20, "window_s": 60}
	}`), &want); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("Event JSON (-got +want):\n%s", d)
	}
}

func TestEventAddress(t *testing.T) {
	for _, tc := range []struct{ key, ip string }{
		{"192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2::/64", "2001:db8:1:2::"},
	} {
		f := Alert{Rule: "r", Severity: SeverityLow, KeyKind: KeyIP, Key: tc.key, Last: base}.Event()
		if f.Actor != nil || f.SrcEndpoint == nil || f.SrcEndpoint.IP != tc.ip || f.Unmapped.Key != tc.key || f.SeverityID != 2 {
			t.Errorf("Event of address %s: actor %+v, src_endpoint %+v, unmapped %+v, severity %d", tc.key, f.Actor, f.SrcEndpoint, f.Unmapped, f.SeverityID)
		}
	}
}

// The finding's uid names the firing: the same alert twice has the same
// one, another firing another.
func TestEventUID(t *testing.T) {
	a := Alert{Rule: "r", KeyKind: KeySubject, Key: "alice", Last: base}
	b := a
	b.Last = base.Add(time.Nanosecond)
	c := a
	c.Key = "alic"
	c.Rule = "re"
	if a.Event().FindingInfo.UID != a.Event().FindingInfo.UID {
		t.Error("uid differs for one alert")
	}
	if a.Event().FindingInfo.UID == b.Event().FindingInfo.UID || a.Event().FindingInfo.UID == c.Event().FindingInfo.UID {
		t.Error("uid same for two alerts")
	}
}

func counterValues(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + ","
			}
			if v := m.GetCounter().GetValue(); v != 0 {
				out[key] = v
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := oneRule(Rule{Name: "m", Match: Match{Type: "t"}, Threshold: 1, Window: time.Minute})
	cfg.MaxKeys = 2
	e, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		e.Observe(Observation{Time: base, Type: "t", ClientIP: "192.0.2." + string(rune('1'+i))})
	}
	// Built again on the same registry, as on reload: same counters.
	e2, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatalf("New again on the same registry: %v", err)
	}
	e2.Observe(Observation{Time: base, Type: "t", SubjectID: "s"})
	if d := cmp.Diff(counterValues(t, reg, "crmgate_audit_alerts_fired_total"), map[string]float64{"rule=m,": 5}); d != "" {
		t.Errorf("fired (-got +want):\n%s", d)
	}
	if d := cmp.Diff(counterValues(t, reg, "crmgate_audit_alert_keys_evicted_total"), map[string]float64{"kind=ip,rule=m,": 2}); d != "" {
		t.Errorf("evicted (-got +want):\n%s", d)
	}
}
