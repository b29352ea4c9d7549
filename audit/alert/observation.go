package alert

import (
	"net/netip"
	"slices"
	"time"
)

// Observation is what the rules see of one audit event. The gateway fills
// one from every audit event it writes. The Engine copies the strings it
// keeps (keys and sample request ids, each cut to a few hundred bytes).
type Observation struct {
	// Time is when the event happened; zero means the Engine's clock.
	// Windows slide on these times, so events that arrive a little out of
	// order still count where they belong.
	Time time.Time
	// Type is the audit event type: "http.request" for a request's own
	// event, or a security event such as "auth.login.failure",
	// "auth.step_up.failure" or "session.hijack_suspected".
	Type string
	// Outcome says how a request ended (http.request only): "forwarded",
	// "denied", "rate_limited", "unauthenticated", "step_up", "rejected",
	// "upstream_error", "unavailable", "no_route", "session_revoked", …;
	// empty for other events.
	Outcome string
	// Reason is the event's fixed reason code, if any: for a request the
	// refusal's reason ("policy", "invalid_credential",
	// "failed_credentials", "step_up", …), for a security event its
	// Reason ("state_replay", "step_up_too_weak", …).
	Reason string
	// Status is the HTTP status answered to the client; 0 for events other
	// than http.request.
	Status int
	// SubjectID identifies who made the request, unique across subject
	// kinds (users, services, API keys); empty when anonymous or unknown.
	SubjectID string
	// ClientIP is the client's address as the gateway determined it (after
	// trusted proxies), in netip's text form; empty when unknown.
	ClientIP string
	// Records is how many records the response returned to the subject:
	// the rows a filter kept, or the items of the returned array; 0 when
	// unknown or not a read.
	Records int
	// RequestID is the request's id, listed in the alerts it counts
	// towards; empty for none.
	RequestID string
}

// maxKeyLen and maxRequestIDLen bound what one key and one sample keep,
// whatever the strings they come from hold.
const (
	maxKeyLen       = 256
	maxRequestIDLen = 128
)

// compiledMatch is a Match with its lists in the form Observe tests.
type compiledMatch struct {
	outcome []string
	reason  []string
	status  []int
}

func compileMatch(m Match) compiledMatch {
	return compiledMatch{outcome: slices.Clone(m.Outcome), reason: slices.Clone(m.Reason), status: slices.Clone(m.Status)}
}

// matches reports whether o passes the lists (the type is matched by the
// engine's index). Lists are a few items long: a scan beats a map.
func (m *compiledMatch) matches(o *Observation) bool {
	if len(m.outcome) > 0 && !slices.Contains(m.outcome, o.Outcome) {
		return false
	}
	if len(m.reason) > 0 && !slices.Contains(m.reason, o.Reason) {
		return false
	}
	if len(m.status) > 0 && !slices.Contains(m.status, o.Status) {
		return false
	}
	return true
}

// subjectKey returns the key of o's subject, false when anonymous.
func subjectKey(o *Observation) (string, bool) {
	if o.SubjectID == "" {
		return "", false
	}
	return truncate(o.SubjectID, maxKeyLen), true
}

// ipKey returns the key of o's client address: an IPv4 address (also when
// written IPv4-mapped), or the /64 of an IPv6 address, which one client
// usually holds whole. A ClientIP that does not parse is used as written.
// It returns false when there is no address.
func ipKey(o *Observation) (string, bool) {
	if o.ClientIP == "" {
		return "", false
	}
	a, err := netip.ParseAddr(o.ClientIP)
	switch {
	case err != nil:
		return truncate(o.ClientIP, maxKeyLen), true
	case a.Is4():
		// ParseAddr takes IPv4 in its canonical form only: no copy.
		return o.ClientIP, true
	case a.Is4In6():
		return a.Unmap().String(), true
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String(), true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
