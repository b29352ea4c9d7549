package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Alert is a rule firing for one key: an audit event of its own, for the
// alert sinks.
type Alert struct {
	// Rule is the rule's name; Severity its severity.
	Rule     string
	Severity string
	// KeyKind is KeySubject or KeyIP: what Key is. A subject_or_ip rule
	// fires with the kind it counted by.
	KeyKind string
	// Key is the subject id, or the client address (an IPv6 /64 as a
	// prefix, e.g. 2001:db8:1:2::/64).
	Key string
	// Measure is what Value counts: "events", or SumRecords.
	Measure string
	// Value is the count or sum within the window when the alert fired, at
	// least Threshold.
	Value     int64
	Threshold int64
	Window    time.Duration
	// First is when the earliest observation in the window happened, to a
	// twentieth of the window (never before the earliest counted one);
	// Last when the latest did, the one that fired the alert.
	First, Last time.Time
	// RequestIDs are the ids of the latest requests that counted, oldest
	// first, at most Config.Samples; nil when none had one.
	RequestIDs []string
	// Message says what happened, in one line.
	Message string
}

// MeasureEvents is Alert.Measure of a rule that counts events.
const MeasureEvents = "events"

// alert builds the alert of e firing. The shard's lock is held.
func (r *rule) alert(kind string, e *entry) Alert {
	a := Alert{
		Rule: r.Name, Severity: r.Severity,
		KeyKind: kind, Key: e.key,
		Measure: MeasureEvents, Value: e.total, Threshold: r.Threshold, Window: r.Window,
		First:      time.Unix(0, e.first(r)).UTC(),
		Last:       time.Unix(0, e.last).UTC(),
		RequestIDs: e.requestIDs(),
	}
	if r.Sum == SumRecords {
		a.Measure = SumRecords
	}
	a.Message = a.message()
	return a
}

func (a Alert) message() string {
	what := "events"
	if a.Measure == SumRecords {
		what = "records returned"
	}
	return fmt.Sprintf("%s: %d %s for %s %q within %s (threshold %d)",
		a.Rule, a.Value, what, a.KeyKind, a.Key, formatDuration(a.Window), a.Threshold)
}

// formatDuration writes d as 10m or 1h30m rather than 10m0s or 1h30m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// OCSF identifiers of a Detection Finding (OCSF 1.4 schema, class 2004 in
// the Findings category): the alert is the creation of a finding by a
// rule.
const (
	OCSFVersion          = "1.4.0"
	ClassUIDDetection    = 2004
	CategoryUIDFindings  = 2
	ActivityIDCreate     = 1
	TypeUIDDetectionNew  = ClassUIDDetection*100 + ActivityIDCreate
	StatusIDNew          = 1
	AnalyticTypeIDRule   = 1
	severityInformation  = 1
	defaultProductVendor = "crmgate"
)

// severityIDs maps a severity to OCSF's severity_id.
var severityIDs = map[string]int{
	SeverityLow:      2,
	SeverityMedium:   3,
	SeverityHigh:     4,
	SeverityCritical: 5,
}

// Finding is an alert as an OCSF Detection Finding (class_uid 2004): the
// form the alert sinks receive. Times are Unix milliseconds, as OCSF's
// timestamp_t. The caller may add to it (the product's version, say)
// before writing it out.
type Finding struct {
	ClassUID     int    `json:"class_uid"`
	ClassName    string `json:"class_name"`
	CategoryUID  int    `json:"category_uid"`
	CategoryName string `json:"category_name"`
	ActivityID   int    `json:"activity_id"`
	ActivityName string `json:"activity_name"`
	TypeUID      int    `json:"type_uid"`
	TypeName     string `json:"type_name"`
	Time         int64  `json:"time"`
	SeverityID   int    `json:"severity_id"`
	Severity     string `json:"severity"`
	StatusID     int    `json:"status_id"`
	Status       string `json:"status"`
	IsAlert      bool   `json:"is_alert"`
	Message      string `json:"message"`
	// Count is the alert's Value: events counted or records summed.
	Count       int64       `json:"count"`
	StartTime   int64       `json:"start_time"`
	EndTime     int64       `json:"end_time"`
	FindingInfo FindingInfo `json:"finding_info"`
	// Actor is set for a subject key, SrcEndpoint for an address key.
	Actor       *Actor    `json:"actor,omitempty"`
	SrcEndpoint *Endpoint `json:"src_endpoint,omitempty"`
	Metadata    Metadata  `json:"metadata"`
	// Unmapped holds the rule's terms, which OCSF has no attributes for.
	Unmapped Unmapped `json:"unmapped"`
}

// FindingInfo is OCSF's finding_info.
type FindingInfo struct {
	// UID is the same for the same rule, key and firing time, so that a
	// sink that receives an alert twice can tell.
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	Analytic      Analytic       `json:"analytic"`
	FirstSeenTime int64          `json:"first_seen_time"`
	LastSeenTime  int64          `json:"last_seen_time"`
	RelatedEvents []RelatedEvent `json:"related_events,omitempty"`
}

// Analytic names the rule that fired.
type Analytic struct {
	Name   string `json:"name"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type"`
}

// RelatedEvent names a request that counted, by its request id.
type RelatedEvent struct {
	UID string `json:"uid"`
}

// Actor is OCSF's actor, holding the subject.
type Actor struct {
	User User `json:"user"`
}

// User is OCSF's user; UID is the subject id.
type User struct {
	UID string `json:"uid"`
}

// Endpoint is OCSF's network endpoint; IP is the client address, or the
// first address of an IPv6 /64 key.
type Endpoint struct {
	IP string `json:"ip"`
}

// Metadata is OCSF's metadata.
type Metadata struct {
	Version string  `json:"version"`
	Product Product `json:"product"`
}

// Product names the product that made the finding.
type Product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	Version    string `json:"version,omitempty"`
}

// Unmapped is the rule's terms and the key, as the Alert has them.
type Unmapped struct {
	Rule      string `json:"rule"`
	KeyKind   string `json:"key_kind"`
	Key       string `json:"key"`
	Measure   string `json:"measure"`
	Threshold int64  `json:"threshold"`
	// Window is the window in seconds.
	Window int64 `json:"window_s"`
}

// Event returns the alert as an OCSF Detection Finding.
func (a Alert) Event() Finding {
	sevID, ok := severityIDs[a.Severity]
	if !ok {
		sevID = severityInformation
	}
	f := Finding{
		ClassUID: ClassUIDDetection, ClassName: "Detection Finding",
		CategoryUID: CategoryUIDFindings, CategoryName: "Findings",
		ActivityID: ActivityIDCreate, ActivityName: "Create",
		TypeUID: TypeUIDDetectionNew, TypeName: "Detection Finding: Create",
		Time:       a.Last.UnixMilli(),
		SeverityID: sevID, Severity: severityName(sevID),
		StatusID: StatusIDNew, Status: "New",
		IsAlert:   true,
		Message:   a.Message,
		Count:     a.Value,
		StartTime: a.First.UnixMilli(),
		EndTime:   a.Last.UnixMilli(),
		FindingInfo: FindingInfo{
			UID:           a.uid(),
			Title:         a.Rule,
			Analytic:      Analytic{Name: a.Rule, TypeID: AnalyticTypeIDRule, Type: "Rule"},
			FirstSeenTime: a.First.UnixMilli(),
			LastSeenTime:  a.Last.UnixMilli(),
		},
		Metadata: Metadata{Version: OCSFVersion, Product: Product{Name: defaultProductVendor, VendorName: defaultProductVendor}},
		Unmapped: Unmapped{
			Rule: a.Rule, KeyKind: a.KeyKind, Key: a.Key, Measure: a.Measure,
			Threshold: a.Threshold, Window: int64(a.Window / time.Second),
		},
	}
	for _, id := range a.RequestIDs {
		f.FindingInfo.RelatedEvents = append(f.FindingInfo.RelatedEvents, RelatedEvent{UID: id})
	}
	switch a.KeyKind {
	case KeySubject:
		f.Actor = &Actor{User: User{UID: a.Key}}
	case KeyIP:
		ip := a.Key
		if p, err := netip.ParsePrefix(a.Key); err == nil {
			ip = p.Addr().String()
		}
		f.SrcEndpoint = &Endpoint{IP: ip}
	}
	return f
}

func severityName(id int) string {
	switch id {
	case 2:
		return "Low"
	case 3:
		return "Medium"
	case 4:
		return "High"
	case 5:
		return "Critical"
	}
	return "Informational"
}

// uid hashes what makes the alert one: rule, key and firing time.
func (a Alert) uid() string {
	h := sha256.New()
	for _, s := range []string{a.Rule, a.KeyKind, a.Key, strconv.FormatInt(a.Last.UnixNano(), 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
